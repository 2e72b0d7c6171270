"""The local region pair: `up`, `status`, `down`, and what a drill needs to know of it.

`LocalPair` is the one object the CLI, the tests and (later) the drill engine
hold. It is built from a stack config (`stacks/Pulumi.local.yaml`) and keeps a
small state file so that `status` and `down` work from another process.

Every piece it creates is named from the pair's prefix (namespaces, links,
bridge, cgroups), so `down` can remove everything by name even when the state
file is missing or the `up` that created it was killed half way.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import KafkaException

from components.local import (
    cgroups,
    config,
    kafka,
    kafka_dist,
    mirrormaker,
    network,
    objectstore,
    toxiproxy,
)
from components.local import processes as procs
from components.local.config import LocalConfig, RegionSpec
from components.local.errors import LocalEnvError

STATE_ROOT = Path(os.environ.get("KDRILL_STATE_DIR", "/var/tmp/kdrill"))

Progress = Callable[[str], None]

# A one-partition topic on the primary whose records prove, end to end, that
# replication runs (after `up` and whenever MirrorMaker 2 is restarted).
PROBE_TOPIC = "kdrill-probe"


@dataclass(frozen=True)
class Region:
    """A running region as clients and drills see it."""

    spec: RegionSpec
    namespace: str
    cgroup: str
    client_ip: str
    backbone_ip: str
    brokers: tuple[kafka.Broker, ...]

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def role(self) -> str:
        return self.spec.role

    @property
    def bootstrap(self) -> str:
        """Client bootstrap servers (the CLIENT listeners, reached over the client link)."""
        return ",".join(b.client_address for b in self.brokers)

    @property
    def replication_bootstrap(self) -> str:
        """Where the other region reads this one: the REPLICATION listeners as
        advertised (for the primary, through toxiproxy in the standby)."""
        return ",".join(b.replication_advertised for b in self.brokers)

    @property
    def s3_endpoint(self) -> str:
        return objectstore.endpoint(self.client_ip)


@dataclass
class Proc:
    role: str  # "broker", "s3", "mirrormaker2"
    region: str
    pid: int
    log: str
    node: int | None = None

    @property
    def label(self) -> str:
        return f"{self.role} {self.region}" + (f"/{self.node}" if self.node is not None else "")


@dataclass
class RegionStatus:
    name: str
    role: str
    namespace: str
    bootstrap: str
    s3_endpoint: str
    cpu_cores: float | None
    brokers_expected: int
    brokers_registered: int
    processes: dict[str, bool] = field(default_factory=dict)  # label -> alive
    topics: dict[str, dict[int, int]] = field(
        default_factory=dict
    )  # topic -> partition -> end offset
    groups: list[str] = field(default_factory=list)
    buckets: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class PairStatus:
    up: bool
    stack: str
    policy: str
    regions: list[RegionStatus]


class LocalPair:
    def __init__(self, cfg: LocalConfig, state_root: Path = STATE_ROOT):
        self.cfg = cfg
        self.dir = state_root / cfg.prefix
        self.state_file = self.dir / "state.json"
        state = self._read_state()
        self.policy: str = state.get("policy", cfg.replication.policy)
        self.procs: list[Proc] = [Proc(**p) for p in state.get("processes", [])]
        self.regions: tuple[Region, Region] = tuple(self._region(r) for r in cfg.regions)  # type: ignore[assignment]

    # --- construction ------------------------------------------------------------

    @classmethod
    def from_stack(
        cls, stack: str = "local", path: Path | None = None, state_root: Path = STATE_ROOT
    ) -> LocalPair:
        return cls(config.load(stack, path), state_root)

    @classmethod
    def from_state(cls, prefix: str = "kd", state_root: Path = STATE_ROOT) -> LocalPair | None:
        """The pair recorded under `prefix`, with the config it was brought up with."""
        f = state_root / prefix / "state.json"
        if not f.exists():
            return None
        s = json.loads(f.read_text())
        return cls(config.parse(s["config"], stack=s["stack"]), state_root)

    def _region(self, spec: RegionSpec) -> Region:
        a = network.addresses(self.cfg, spec)
        standby_backbone = network.addresses(self.cfg, self.cfg.standby).backbone_ip
        brokers = tuple(
            kafka.Broker(
                spec.name,
                i,
                a.client_ip,
                a.backbone_ip,
                spec.brokers,
                f"{standby_backbone}:{toxiproxy.PROXY_PORT + i}"
                if spec.role == "primary"
                else None,
            )
            for i in range(spec.brokers)
        )
        return Region(spec, a.namespace, a.namespace, a.client_ip, a.backbone_ip, brokers)

    # --- lookups ------------------------------------------------------------------

    @property
    def primary(self) -> Region:
        return next(r for r in self.regions if r.role == "primary")

    @property
    def standby(self) -> Region:
        return next(r for r in self.regions if r.role == "standby")

    def region(self, name: str) -> Region:
        self.cfg.region(name)  # one clear error for an unknown name
        return next(r for r in self.regions if r.name == name)

    def remote_topic(self, topic: str) -> str:
        """The standby's name for a primary topic under the current replication policy."""
        return mirrormaker.remote_topic(topic, self.primary.name, self.policy)

    def is_up(self) -> bool:
        return self.state_file.exists() and self._read_state().get("phase") == "up"

    # --- up -------------------------------------------------------------------------

    def up(self, progress: Progress = lambda s: None, timeout: float = 180.0) -> None:
        """Build both regions, start their clusters and S3 endpoints, then MirrorMaker 2.

        On any failure or interrupt (KeyboardInterrupt, SIGTERM turned into one
        by the CLI) everything already created is torn down before re-raising.
        """
        self._preflight()
        deadline = time.monotonic() + timeout
        self.dir.mkdir(parents=True, exist_ok=True)
        self.procs = []
        self._write_state("creating")  # first, so a killed `up` can still be cleaned by `down`
        try:
            progress("creating network namespaces and links")
            network.create(self.cfg)
            for r in self.regions:
                cgroups.create(r.cgroup, r.spec.cpu_cores)

            progress("formatting KRaft storage")
            self._format_storage()

            progress("starting brokers and S3 endpoints")
            for r in self.regions:
                self._start_region(r)
            self._write_state("creating")
            for r in self.regions:
                progress(f"waiting for {r.name} ({len(r.brokers)} broker(s)) to be ready")
                kafka.wait_ready(r.bootstrap, len(r.brokers), deadline, self._check_alive)
                objectstore.wait_ready(r.s3_endpoint, deadline, self._check_alive)
                objectstore.create_buckets(r.s3_endpoint, r.spec.aws_region, r.spec.buckets)

            progress("creating topics on the primary")
            kafka.create_topics(
                self.primary.bootstrap,
                {t.name: t.partitions for t in self.cfg.topics} | {PROBE_TOPIC: 1},
                min(3, len(self.primary.brokers)),
            )

            progress(f"routing replication through toxiproxy ({self.cfg.rtt_ms} ms round trip)")
            self._start_latency_proxies(deadline)

            progress(f"starting MirrorMaker 2 in {self.standby.name} ({self.policy} policy)")
            self._start_mirrormaker(deadline)
            self._write_state("up")
        except BaseException:
            with contextlib.suppress(BaseException):  # a progress display may re-raise an interrupt
                progress("failed or interrupted: tearing down")
            self.down()
            raise

    def _preflight(self) -> None:
        if os.geteuid() != 0:
            raise LocalEnvError(
                "the local pair needs root (network namespaces, cgroups, nftables); run as root or with sudo"
            )
        kafka_dist.java()
        kafka_dist.libs_dir()
        if self.state_file.exists() or network.leftovers(self.cfg):
            raise LocalEnvError(
                f"local pair {self.cfg.prefix!r} is already up (or was left half up); "
                "run `kdrill local down` first"
            )
        if not shutil.which("ip"):
            raise LocalEnvError("`ip` (iproute2) not found; apt-get install iproute2")

    def _paths(self, r: Region, node: int | None = None) -> Path:
        base = self.dir / r.name
        return base / f"broker-{node}" if node is not None else base

    def _log4j(self) -> Path:
        p = self.dir / "log4j2.properties"
        if not p.exists():
            p.write_text(kafka_dist.LOG4J2)
        return p

    def _format_storage(self) -> None:
        jobs = []
        for r in self.regions:
            cluster_id = kafka.new_cluster_id()
            for b in r.brokers:
                d = self._paths(r, b.node_id)
                (d / "data").mkdir(parents=True, exist_ok=True)
                props = d / "server.properties"
                props.write_text(kafka.server_properties(b, d / "data"))
                argv = kafka.format_argv(props, cluster_id, len(r.brokers) == 1, self._log4j())
                log = open(d / "format.log", "wb")  # noqa: SIM115 - closed after the job ends
                jobs.append(
                    (r, b, subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT), log)
                )
        for r, b, p, log in jobs:
            p.wait()
            log.close()
            if p.returncode != 0:
                last = procs.tail(self._paths(r, b.node_id) / "format.log", 1)
                raise LocalEnvError(
                    f"formatting storage for broker {r.name}/{b.node_id} failed: {last}"
                )

    def _start_region(self, r: Region) -> None:
        for b in r.brokers:
            self.start_broker(r, b.node_id)
        self._start(r, "s3", objectstore.argv())
        if r.role == "standby":
            self._start(r, "toxiproxy", toxiproxy.argv(r.client_ip))

    def _start(self, r: Region, role: str, argv: list[str], node: int | None = None) -> Proc:
        """Start one daemon of region r and record it (replacing a dead entry of the same label)."""
        d = self._paths(r, node) if node is not None else self._paths(r)
        log = d / ("broker.log" if role == "broker" else f"{role}.log")
        pid = procs.start(r.namespace, r.cgroup, argv, log)
        proc = Proc(role, r.name, pid, str(log), node)
        self.procs = [p for p in self.procs if p.label != proc.label] + [proc]
        self._write_state(self._read_state().get("phase", "creating"))
        return proc

    def _sync(self) -> None:
        """Take the process list and policy from the state file: another kdrill process
        (a drill, `kdrill local fault`, `recover`) may have restarted daemons since."""
        state = self._read_state()
        if "processes" in state:
            self.procs = [Proc(**p) for p in state["processes"]]
            self.policy = state.get("policy", self.policy)

    def start_broker(self, r: Region, node: int) -> Proc:
        props = self._paths(r, node) / "server.properties"
        return self._start(r, "broker", kafka.broker_argv(props, self._log4j()), node)

    def find(self, role: str, region: str, node: int | None = None) -> Proc | None:
        self._sync()
        return next(
            (p for p in self.procs if (p.role, p.region, p.node) == (role, region, node)), None
        )

    def kill(self, proc: Proc) -> None:
        """SIGKILL one recorded daemon and forget it (a fault's doing, undone by restarting it)."""
        self._sync()
        proc = next((p for p in self.procs if p.label == proc.label), proc)
        procs.kill_all([proc.pid])
        self.procs = [p for p in self.procs if p.pid != proc.pid]
        self._write_state("up")

    def kill_region(self, name: str) -> list[Proc]:
        """SIGKILL every process of a region (its whole cgroup) and forget them."""
        self._sync()
        r = self.region(name)
        killed = [p for p in self.procs if p.region == name]
        procs.kill_all(cgroups.procs(r.cgroup) + [p.pid for p in killed])
        self.procs = [p for p in self.procs if p.region != name]
        self._write_state("up")
        return killed

    def restore_region(self, name: str, timeout: float = 120.0) -> None:
        """Start again whatever of region `name` is not running, and wait until it serves.

        Brokers restart on their existing data (a killed region comes back with
        what it had); the S3 endpoint comes back empty and gets its buckets again.
        """
        r = self.region(name)
        deadline = time.monotonic() + timeout
        for b in r.brokers:
            if not self._running("broker", name, b.node_id):
                self.start_broker(r, b.node_id)
        s3_restarted = not self._running("s3", name)
        if s3_restarted:
            self._start(r, "s3", objectstore.argv())
        proxy_restarted = r.role == "standby" and not self._running("toxiproxy", name)
        if proxy_restarted:
            self._start(r, "toxiproxy", toxiproxy.argv(r.client_ip))
        self._write_state("up")
        kafka.wait_ready(r.bootstrap, len(r.brokers), deadline, self._check_alive)
        if s3_restarted:
            objectstore.wait_ready(r.s3_endpoint, deadline, self._check_alive)
            objectstore.create_buckets(r.s3_endpoint, r.spec.aws_region, r.spec.buckets)
        if proxy_restarted:
            self._start_latency_proxies(deadline)
        if not self._running("mirrormaker2", self.standby.name):
            self._start_mirrormaker(deadline)
        self._write_state("up")

    def _running(self, role: str, region: str, node: int | None = None) -> bool:
        p = self.find(role, region, node)
        return p is not None and procs.alive(p.pid)

    @property
    def latency_proxy(self) -> toxiproxy.Toxiproxy:
        return toxiproxy.Toxiproxy(self.standby.client_ip)

    def replication_proxies(self) -> list[str]:
        """Toxiproxy proxy names, one per primary broker."""
        return [f"replication-{b.node_id}" for b in self.primary.brokers]

    def set_replication_latency(self, rtt_ms: float, jitter_ms: float = 0) -> None:
        for name in self.replication_proxies():
            self.latency_proxy.set_latency(name, rtt_ms, jitter_ms)

    def _start_latency_proxies(self, deadline: float) -> None:
        tp = self.latency_proxy
        tp.wait_ready(deadline, self._check_alive)
        for b, name in zip(self.primary.brokers, self.replication_proxies(), strict=True):
            tp.create_proxy(name, listen=b.replication_advertised, upstream=b.replication_address)
        self.set_replication_latency(self.cfg.rtt_ms)

    def _start_mirrormaker(self, deadline: float) -> None:
        props = self.dir / "mm2.properties"
        props.write_text(
            mirrormaker.properties(
                self.cfg, self.primary.replication_bootstrap, self.standby.bootstrap, self.policy
            )
        )
        self._start(
            self.standby, "mirrormaker2", mirrormaker.argv(props, self._log4j(), self.standby.name)
        )
        self._write_state(self._read_state().get("phase", "creating"))
        self._wait_replicating(deadline)

    def _wait_replicating(self, deadline: float) -> None:
        """MM2 is ready when the standby holds the remote topics of the primary's
        configured topics and its checkpoints topic: both connectors are running."""
        want = {self.remote_topic(t.name) for t in self.cfg.topics}
        want.add(mirrormaker.checkpoints_topic(self.primary.name))
        a = kafka.admin(self.standby.bootstrap)
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                have = set(a.list_topics(timeout=3).topics)
            except KafkaException:  # the standby's brokers may still be (re)starting
                have = set()
            if want <= have:
                break
            time.sleep(0.25)
        else:
            raise LocalEnvError(
                f"MirrorMaker 2 did not create {sorted(want - have)} in {self.standby.name} in time; "
                f"see {self.dir / self.standby.name / 'mirrormaker2.log'}"
            )
        self._probe_replication(deadline)

    def _probe_replication(self, deadline: float) -> None:
        """Topics existing is not replication running (a restarted MM2 takes seconds to
        rejoin its group and restart tasks): send one record through and wait for it.
        When the primary cannot take the probe (it is the one faulted), there is nothing
        to prove yet; MM2 catches up once it returns."""
        from confluent_kafka import Producer

        p = Producer(
            {"bootstrap.servers": self.primary.bootstrap, "message.timeout.ms": 3000},
            logger=kafka.RDKAFKA_LOG,
        )
        remote = self.remote_topic(PROBE_TOPIC)
        # Growth, not equality: after a policy change the new remote topic holds only
        # what MM2 copied since (its source offsets carry over from the old name).
        before = sum(kafka.end_offsets(self.standby.bootstrap, remote).values())
        acked: list = []
        p.produce(PROBE_TOPIC, b"probe", on_delivery=lambda err, msg: acked.append(err is None))
        p.flush(5)
        if acked != [True]:
            return
        last_probe = time.monotonic()
        while time.monotonic() < deadline:
            self._check_alive()
            if sum(kafka.end_offsets(self.standby.bootstrap, remote).values()) > before:
                return
            if time.monotonic() - last_probe > 2:
                # A restarting MM2 may still copy under its previous config for a few
                # seconds (a probe could land under the old name): keep probing.
                p.produce(PROBE_TOPIC, b"probe")
                p.flush(5)
                last_probe = time.monotonic()
            time.sleep(0.25)
        raise LocalEnvError(
            f"MirrorMaker 2 runs but did not replicate a probe record to {remote} in time; "
            f"see {self.dir / self.standby.name / 'mirrormaker2.log'}"
        )

    def _check_alive(self) -> None:
        self._sync()
        for p in self.procs:
            if not procs.alive(p.pid):
                last = procs.tail(Path(p.log), 30)
                if "Address already in use" in last:
                    raise LocalEnvError(
                        f"{p.label}: a port it needs is taken; stop what holds it and retry"
                    )
                last_line = next(
                    (ln for ln in reversed(last.splitlines()) if ln.strip()), "no output"
                )
                raise LocalEnvError(
                    f"{p.label} exited while starting: {last_line[:300]} (log: {p.log})"
                )

    def restart_replication(self, policy: str | None = None, timeout: float = 120.0) -> None:
        """Restart MirrorMaker 2, optionally under another replication policy."""
        if policy is not None and policy not in config.POLICIES:
            raise LocalEnvError(
                f"unknown replication policy {policy!r}; use one of: {', '.join(config.POLICIES)}"
            )
        self._sync()
        mm = [p for p in self.procs if p.role == "mirrormaker2"]
        procs.kill_all([p.pid for p in mm])
        self.procs = [p for p in self.procs if p.role != "mirrormaker2"]
        self.policy = policy or self.policy
        self._start_mirrormaker(time.monotonic() + timeout)
        self._write_state("up")

    # --- down -----------------------------------------------------------------------

    def down(self) -> list[str]:
        """Remove everything: processes, namespaces, links, bridge, cgroups, state.

        Idempotent; works by name, so it also cleans what a killed `up` left.
        """
        from components.local.faults import catalogue  # faults build on this module

        removed = [
            f"fault {e.id} ({e.fault.describe()})" for e in catalogue.recover(self, teardown=True)
        ]
        pids = set()
        for r in self.regions:
            pids.update(cgroups.procs(r.cgroup))
            pids.update(network.pids_in(r.namespace) if r.namespace in network.namespaces() else [])
        pids.update(p.pid for p in self.procs if procs.alive(p.pid) and _is_ours(p.pid, self.dir))
        if pids:
            procs.kill_all(sorted(pids))
            removed.append(f"{len(pids)} process(es)")
        removed += network.destroy(self.cfg)
        for r in self.regions:
            for _ in range(50):  # the kernel may take a moment to release a killed task
                try:
                    if cgroups.remove(r.cgroup):
                        removed.append(f"cgroup cpu/kdrill/{r.cgroup}")
                    break
                except OSError:
                    time.sleep(0.05)
        if self.dir.exists():
            shutil.rmtree(self.dir, ignore_errors=True)
            removed.append(f"state {self.dir}")
        self.procs = []
        return removed

    def leftovers(self) -> list[str]:
        """Anything of this pair that still exists; empty after a clean `down`."""
        left = network.leftovers(self.cfg)
        for r in self.regions:
            if cgroups.exists(r.cgroup):
                left.append(
                    f"cgroup cpu/kdrill/{r.cgroup} ({len(cgroups.procs(r.cgroup))} processes)"
                )
        left += [f"process {p.label} ({p.pid})" for p in self.procs if procs.alive(p.pid)]
        if self.dir.exists():
            left.append(f"state {self.dir}")
        return left

    # --- status ---------------------------------------------------------------------

    def status(self) -> PairStatus:
        out = []
        for r in self.regions:
            st = RegionStatus(
                name=r.name,
                role=r.role,
                namespace=r.namespace,
                bootstrap=r.bootstrap,
                s3_endpoint=r.s3_endpoint,
                cpu_cores=cgroups.quota_cores(r.cgroup) if cgroups.exists(r.cgroup) else None,
                brokers_expected=len(r.brokers),
                brokers_registered=0,
                processes={p.label: procs.alive(p.pid) for p in self.procs if p.region == r.name},
            )
            try:
                st.brokers_registered, st.topics, st.groups = _inventory(r.bootstrap)
                st.buckets = objectstore.list_buckets(r.s3_endpoint, r.spec.aws_region)
            except Exception as e:  # status reports what it cannot reach; it never fails
                st.error = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
            out.append(st)
        return PairStatus(self.is_up(), self.cfg.stack, self.policy, out)

    # --- state file -------------------------------------------------------------------

    def _read_state(self) -> dict:
        try:
            return json.loads(self.state_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def _write_state(self, phase: str) -> None:
        state = {
            "phase": phase,
            "stack": self.cfg.stack,
            "policy": self.policy,
            "config": self.cfg.raw,
            "processes": [p.__dict__ for p in self.procs],
        }
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.state_file)


def _is_ours(pid: int, state_dir: Path) -> bool:
    """Guard against pid reuse: only kill a recorded pid whose command line names our state dir."""
    try:
        return str(state_dir) in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except FileNotFoundError:
        return False


def _inventory(bootstrap: str) -> tuple[int, dict[str, dict[int, int]], list[str]]:
    """Brokers, user topics with end offsets, and consumer groups of one cluster."""
    from confluent_kafka import Consumer, TopicPartition

    a = kafka.admin(bootstrap)
    nodes = len(a.describe_cluster(request_timeout=3).result().nodes)
    md = a.list_topics(timeout=3)
    c = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "kdrill-status", "enable.auto.commit": False},
        logger=kafka.RDKAFKA_LOG,
    )
    topics: dict[str, dict[int, int]] = {}
    try:
        for name, t in sorted(md.topics.items()):
            if name.startswith("__"):
                continue
            topics[name] = {
                p: c.get_watermark_offsets(TopicPartition(name, p), timeout=3)[1]
                for p in sorted(t.partitions)
            }
    finally:
        c.close()
    groups = sorted(g.group_id for g in a.list_consumer_groups(request_timeout=3).result().valid)
    return nodes, topics, groups
