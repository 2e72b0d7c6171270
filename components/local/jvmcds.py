"""Class-data-sharing archives of the Kafka classes: JVMs that start faster.

Every region restore, MirrorMaker 2 restart and pair start launches a JVM that loads
some 7,000 classes from ~90 jars, parsing and verifying each one again. A CDS archive
(JDK 17 `-Xshare:dump` from a class list) holds those classes pre-parsed; a JVM given
`-XX:SharedArchiveFile` maps it instead. Measured here (2 cores, under load): a broker's
CPU until "Kafka Server started" 5.1-5.5 s without, 3.5-3.7 s with the archive.

The archive is an optimisation only: `build()` is a set-up step (tools/setup-kafka-cds.sh)
that never fails set-up (it reports and leaves no archive), and `kafka_dist.cds_archive()` returns
None until an archive for this Java and these jars exists, so JVMs start as before.
A JVM whose classpath or Java differs from the archive's ignores it (`-Xshare:auto`).

How a class list is made: a throwaway single-node broker on 127.0.0.1 (its own temporary
directory and free ports) started with `-XX:DumpLoadedClassList`, and MirrorMaker 2
replicating one topic of it onto itself (clusters `a` and `b` both that broker), each run
until its log says it serves, then stopped. Two archives, `broker.jsa` (also used by the
storage tool and other Kafka tools) and `mirrormaker2.jsa`, under
~/.cache/kdrill/cds/<java and jars fingerprint>/.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from components.local import kafka_dist
from components.local.kafka_dist import MM2_MAIN, ROLES, cds_directory

# --- building (a set-up step) --------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_line(log: Path, proc: subprocess.Popen, needle: str, timeout: float) -> None:
    from components.wait import wait_until

    def seen() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode} before {needle!r} (see {log})")
        return log.exists() and needle in log.read_text(errors="replace")

    wait_until(seen, timeout, f"{needle!r} in {log.name}", interval=0.2)


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM and wait: the class list is complete only when the JVM has exited."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _java(main_class: str, heap: list[str], log4j: Path, args: list[str], classlist: Path):
    argv = kafka_dist.java_argv(main_class, heap, log4j, args, cds=False)
    return [argv[0], f"-XX:DumpLoadedClassList={classlist}", *argv[1:]]


def _class_lists(work: Path) -> dict[str, Path]:
    """Run the throwaway broker and MirrorMaker 2; return role -> class list."""
    from components.local import kafka

    log4j = kafka_dist.log4j_config(work)
    client, controller = _free_port(), _free_port()
    props = work / "server.properties"
    props.write_text(
        "process.roles=broker,controller\nnode.id=1\n"
        f"controller.quorum.bootstrap.servers=127.0.0.1:{controller}\n"
        "controller.listener.names=CONTROLLER\n"
        f"listeners=PLAINTEXT://127.0.0.1:{client},CONTROLLER://127.0.0.1:{controller}\n"
        f"log.dirs={work / 'data'}\noffsets.topic.replication.factor=1\n"
        "transaction.state.log.replication.factor=1\ntransaction.state.log.min.isr=1\n"
        "group.initial.rebalance.delay.ms=0\n"
    )
    lists = {r: work / f"{r}.classlist" for r in ROLES}
    fmt = kafka.format_argv(props, kafka.new_cluster_id(), True, log4j)
    subprocess.run(fmt, check=True, capture_output=True, timeout=120)
    logs = {r: work / f"{r}.log" for r in ROLES}
    procs: list[subprocess.Popen] = []
    try:
        with open(logs["broker"], "wb") as out:
            broker = subprocess.Popen(
                _java("kafka.Kafka", kafka_dist.BROKER_HEAP, log4j, [str(props)],
                      lists["broker"]),
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        procs.append(broker)
        _wait_for_line(logs["broker"], broker, "Kafka Server started", 180)
        bootstrap = f"127.0.0.1:{client}"
        kafka.create_topics(bootstrap, {"cds": 1}, 1)
        mm2 = work / "mm2.properties"
        mm2.write_text(
            f"clusters = a, b\na.bootstrap.servers = {bootstrap}\n"
            f"b.bootstrap.servers = {bootstrap}\na->b.enabled = true\na->b.topics = cds\n"
            "plugin.discovery = service_load\n"
            "replication.factor = 1\ncheckpoints.topic.replication.factor = 1\n"
            "heartbeats.topic.replication.factor = 1\noffset-syncs.topic.replication.factor = 1\n"
            "offset.storage.replication.factor = 1\nstatus.storage.replication.factor = 1\n"
            "config.storage.replication.factor = 1\n"
        )
        with open(logs["mirrormaker2"], "wb") as out:
            mirror = subprocess.Popen(
                _java(MM2_MAIN, kafka_dist.MM2_HEAP, log4j, [str(mm2), "--clusters", "b"],
                      lists["mirrormaker2"]),
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        procs.append(mirror)
        _wait_for_line(logs["mirrormaker2"], mirror, "topic-partitions a->b", 180)
    finally:
        for p in reversed(procs):
            _stop(p)
    return lists


def build(force: bool = False) -> str:
    """Make the archives if they are missing; one line saying what happened."""
    target = cds_directory()
    if not force and all((target / f"{r}.jsa").is_file() for r in ROLES):
        return f"CDS archives present ({target})"
    t0 = time.monotonic()
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kdrill-cds-") as tmp:
        work = Path(tmp)
        lists = _class_lists(work)
        for role, classlist in lists.items():
            partial = target / f"{role}.jsa.partial"
            dump = [
                kafka_dist.java(),
                "-Xshare:dump",
                *kafka_dist.JVM_OPTS,
                f"-XX:SharedClassListFile={classlist}",
                f"-XX:SharedArchiveFile={partial}",
                "-cp",
                f"{kafka_dist.libs_dir()}/*",
            ]
            done = subprocess.run(dump, capture_output=True, text=True, timeout=600)
            if done.returncode != 0 or not partial.is_file():
                tail = (done.stdout + done.stderr).strip().splitlines()[-1:] or ["no output"]
                raise RuntimeError(f"-Xshare:dump for {role} failed: {tail[0]}")
            partial.rename(target / f"{role}.jsa")
    return f"CDS archives built in {time.monotonic() - t0:.0f} s ({target})"


def main() -> int:
    try:
        print(f"[setup] {build(force='--force' in sys.argv)}", file=sys.stderr)
    except Exception as e:  # an optimisation: set-up goes on without it
        shutil.rmtree(cds_directory(), ignore_errors=True)
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"[setup] no CDS archive (JVMs start without one): {first}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
