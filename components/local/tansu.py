"""Tansu, a stateless Kafka-compatible broker on S3, as a process in a region of the pair.

Tansu (https://github.com/tansu-io/tansu, Apache-2.0) keeps nothing on local disk:
every batch, watermark, topic and consumer-group offset is an object in its bucket,
and updates go through S3 conditional writes (If-None-Match / If-Match, which moto
honours). Two brokers started on the same bucket and cluster id therefore serve the
same log: the shared-storage rehearsal (drills/sharedstorage.py) kills one and starts
one in the other region.

The binary is built from crates.io with cargo (tools/tansu/build.sh, slow: it is
never built by the default test run); `binary()` finds it, or says how to build it.
Nothing here imports `drills`.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka.admin import AdminClient

from components.clientconf import client_config
from components.local import processes
from components.local.errors import LocalEnvError
from components.local.objectstore import ACCESS
from components.wait import wait_until

VERSION = "0.6.0"  # the newest release on crates.io (2026-12-02); see tools/tansu/README.md
FEATURES = "dynostore"  # the S3 (and memory) storage engine; not in the default features
CACHE = Path(os.environ.get("KDRILL_TANSU_ROOT", Path.home() / ".cache/kdrill/tansu"))
PORT = 9192  # beside the region's Kafka listeners (9092+), never one of them
BUILD_SCRIPT = "tools/tansu/build.sh"


def binary() -> Path:
    """The built `tansu` binary, or a one-line LocalEnvError saying how to build it."""
    path = CACHE / "bin" / "tansu"
    if not os.access(path, os.X_OK):
        raise LocalEnvError(
            f"tansu {VERSION} not built at {path}; run {BUILD_SCRIPT} (cargo, ~1 h at one job)"
        )
    return path


@dataclass(frozen=True)
class TansuBroker:
    """One Tansu broker: where it listens, which bucket (at which S3 endpoint) it serves.

    Every broker of a cluster id on the same bucket serves the same topics; node id is
    Tansu's fixed one, so a second broker replaces the first rather than joining it."""

    region: str  # the region it runs in (a cluster name in the history)
    namespace: str
    cgroup: str
    ip: str  # its listener, also what it advertises
    s3_endpoint: str  # http://host:port of the S3 endpoint holding the bucket
    aws_region: str
    bucket: str
    cluster_id: str
    port: int = PORT

    @property
    def bootstrap(self) -> str:
        return f"{self.ip}:{self.port}"

    def argv(self, tansu: Path) -> list[str]:
        url = f"tcp://{self.bootstrap}"
        return [
            str(tansu), "broker",
            "--cluster-id", self.cluster_id,
            "--listener-url", url,
            "--advertised-listener-url", url,
            "--storage-engine", f"s3://{self.bucket}/",
        ]  # fmt: skip

    def env(self) -> dict[str, str]:
        """object_store's AmazonS3Builder::from_env settings (moto takes any key: these
        name the local endpoint, they are not secrets), path-style over plain HTTP."""
        return {
            "AWS_ENDPOINT": self.s3_endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_REGION": self.aws_region,
            "AWS_DEFAULT_REGION": self.aws_region,
            "AWS_ACCESS_KEY_ID": ACCESS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": ACCESS["aws_secret_access_key"],
            "RUST_LOG": os.environ.get("KDRILL_TANSU_LOG", "warn"),
        }


def start(broker: TansuBroker, log: Path) -> int:
    """Start `broker` in its region's namespace and cgroup; returns its pid. Its working
    directory is the log's (Tansu loads a `.env` from its working directory)."""
    tansu = binary()
    log.parent.mkdir(parents=True, exist_ok=True)
    return processes.start(broker.namespace, broker.cgroup, broker.argv(tansu), log,
                           env=broker.env(), cwd=log.parent)  # fmt: skip


def serves(bootstrap: str, timeout: float = 2.0) -> bool:
    """Whether a broker at `bootstrap` answers a metadata request (the TCP port alone
    opens before the storage engine is usable)."""
    host, port = bootstrap.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError:
        return False
    try:
        md = AdminClient(client_config(bootstrap, {"socket.timeout.ms": int(timeout * 1000)}))
        return bool(md.list_topics(timeout=timeout).brokers)
    except Exception:  # KafkaException: not serving yet
        return False


def wait_ready(broker: TansuBroker, pid: int, deadline: float, log: Path) -> float:
    """Wait until `broker` serves metadata (by `deadline`, monotonic); fails fast, with
    its log's tail, if the process died. Returns the instant it first served."""

    def alive() -> None:
        if not processes.alive(pid):
            raise LocalEnvError(f"tansu in {broker.region} exited: {processes.tail(log, 3)}")

    wait_until(
        lambda: serves(broker.bootstrap),
        deadline - time.monotonic(),
        f"tansu at {broker.bootstrap}",
        interval=0.05,
        check=alive,
        error=lambda _: LocalEnvError(
            f"tansu at {broker.bootstrap} did not serve in time; see {log}"
        ),
    )
    return time.monotonic()


def kill(pid: int) -> float:
    """SIGKILL the broker (the region lost: nothing flushed, nothing said goodbye) and wait
    until it is gone; returns that instant."""
    processes.kill_all([pid])
    if processes.alive(pid):
        raise LocalEnvError(f"tansu pid {pid} survived SIGKILL; kill it by hand")
    return time.monotonic()
