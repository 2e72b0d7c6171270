"""The local region pair: `up`, `status`, `down`, and what a drill needs to know of it.

`LocalPair` is the one object the CLI, the tests, the fault code and the drill
target hold. It is built from a stack config (`stacks/Pulumi.local.yaml`) and
keeps a small state file so that `status` and `down` work from another process.
It is a facade over modules named for what they hold:

    region.py       Region: a region's namespace, cgroup, addresses, brokers
    state.py        Proc, ProcessRegistry: the state file and the daemons it records
    replication.py  MirrorMaker 2 and the toxiproxy path (start, probe, restart, latency)
    status.py       RegionStatus, PairStatus: what `status` reports
    kafka.py        brokers, readiness, end offsets, inventory

Every piece it creates is named from the pair's prefix (namespaces, links,
bridge, cgroups), so `down` can remove everything by name even when the state
file is missing or the `up` that created it was killed half way.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from components.clientconf import register
from components.local import (
    cgroups,
    config,
    kafka,
    kafka_dist,
    network,
    objectstore,
    security,
    toxiproxy,
)
from components.local import processes as procs
from components.local import region as regions_of
from components.local.config import LocalConfig
from components.local.errors import LocalEnvError
from components.local.region import Region
from components.local.replication import PROBE_TOPIC, Replication
from components.local.stack import LocalStack
from components.local.state import Proc, ProcessRegistry
from components.local.status import PairStatus, RegionStatus, gather
from components.wait import WaitTimeout, wait_until

__all__ = [
    "PROBE_TOPIC",
    "STATE_ROOT",
    "LocalPair",
    "PairStatus",
    "Proc",
    "Progress",
    "Region",
    "RegionStatus",
]

STATE_ROOT = Path(os.environ.get("KDRILL_STATE_DIR", "/var/tmp/kdrill"))

Progress = Callable[[str], None]


class LocalPair:
    """Lifecycle (up, down, restore) of one pair, and the members faults, the drill
    target and the CLI use; the work is done by the registry and replication it holds."""

    def __init__(self, cfg: LocalConfig, state_root: Path = STATE_ROOT):
        self.cfg = cfg
        self.dir = state_root / cfg.prefix
        self.registry = ProcessRegistry(self.dir, cfg)
        self.state_file = self.registry.path
        self.regions: tuple[Region, Region] = regions_of.regions(cfg)
        self.replication = Replication(cfg, self.primary, self.standby, self.registry)
        self.register_clients()

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
        s = ProcessRegistry.load(f)
        if "config" not in s:  # unreadable: `down` still works from the stack file, by name
            return None
        return cls(config.parse(s["config"], stack=s["stack"]), state_root)

    # --- lookups ------------------------------------------------------------------

    @property
    def policy(self) -> str:
        """The replication policy in force (set before `up` to bring the pair up under another)."""
        return self.registry.policy

    @policy.setter
    def policy(self, value: str) -> None:
        self.registry.policy = value

    @property
    def procs(self) -> list[Proc]:
        """The daemons this process knows of (the state file as last read or written)."""
        return self.registry.procs

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
        return self.replication.remote_topic(topic)

    @property
    def stack(self) -> LocalStack:
        """The pair's Pulumi stack: backend, passphrase and drill-time config in its state dir."""
        return LocalStack(
            self.dir, stack=self.cfg.stack, stack_file=self.cfg.source, config=self.cfg.raw
        )

    # --- security (components/local/security.py) ------------------------------------

    @property
    def secure(self) -> bool:
        return self.cfg.security.enabled

    @property
    def credentials(self) -> dict[str, str] | None:
        """The stack's credentials as its parts wrote them (mode 0600 in the state dir)."""
        return security.read_credentials(self.dir) if self.secure else None

    def _need_credentials(self) -> dict[str, str]:
        creds = self.credentials
        if creds is None:
            raise LocalEnvError(
                f"security is on but {self.dir / security.CREDENTIALS_FILE} is missing; "
                f"bring the pair up through its stack (`kdrill local up`)"
            )
        return creds

    def use_credentials(self, creds: dict[str, str] | None) -> None:
        """Credentials handed to a part by the engine (a stack secret): written where the
        pair's clients read them, and registered for this process's clients."""
        if self.secure and creds:
            security.write_credentials(self.dir, creds)
            self.register_clients()

    @property
    def tls(self) -> security.TlsFiles | None:
        """Where the pair's TLS material is (`kdrill:security.tls`), or None: TLS off, or
        the credentials (from which the stores' password is derived) not written yet."""
        creds = self.credentials
        if not (self.secure and self.cfg.security.tls and creds):
            return None
        return security.tls_files(self.dir, creds)

    def _tls_material(self) -> security.TlsFiles | None:
        """Make the pair's CA, certificates and stores if missing (a Kafka part's start)."""
        if not (self.secure and self.cfg.security.tls):
            return None
        ips = {r.name: sorted({b.client_ip for b in r.brokers}) for r in self.regions}
        return security.tls_material(self.dir, self._need_credentials(), self.cfg.stack, ips)

    def admin_client_properties(self, name: str) -> Path:
        """kdrill-admin's Java client properties (ConfigCommand) for region `name`, 0600."""
        creds = self._need_credentials()
        return security.write_private(
            self.registry.workdir(name) / "admin-client.properties",
            security.java_client_properties(security.ADMIN, creds[security.ADMIN], self.tls),
        )

    def register_clients(self) -> None:
        """Every client this process builds for either region authenticates (kdrill-admin by
        default; the workload's roles as their own principals), over TLS when the stack says
        so. Nothing when security is off or the credentials are not written yet."""
        creds = self.credentials
        tls = self.tls
        ca = tls.ca if tls else None
        for r in self.regions:
            if creds is None:
                register(r.bootstrap, {})
                continue
            admin = security.client_settings(security.ADMIN, creds[security.ADMIN], ca)
            roles = security.roles(creds, self.cfg.security.groups, ca)
            register(r.bootstrap, admin, roles)

    def is_up(self) -> bool:
        return self.state_file.exists() and self.registry.phase == "up"

    # --- up -------------------------------------------------------------------------

    def up(self, progress: Progress = lambda s: None, timeout: float = 300.0) -> None:
        """Stand the pair up as its Pulumi stack: `pulumi up` of the stack's parts
        (components/local/parts.py), each part built by its dynamic provider.

        On any failure or interrupt (KeyboardInterrupt, SIGTERM turned into one
        by the CLI) the engine's session is ended and everything already created is
        torn down before re-raising.
        """
        self._preflight()
        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            progress(f"pulumi up -s {self.cfg.stack} (state in {self.stack.backend_dir})")
            self.stack.ensure(policy=self.policy)
            if self.secure:
                self.stack.ensure_credentials(security.principals(self.cfg.security.groups))
            if len(self.stack.resource_urns()) > 1:  # the pair is down (preflight) but its
                self.stack.destroy()  # stack still lists parts (a reboot, a killed `down`)
            self.stack.up(timeout=timeout, on_line=lambda line: _engine_progress(line, progress))
            self.register_clients()
            if not self.is_up():
                raise LocalEnvError(
                    f"pulumi up finished but the pair is not up; see {self.dir}/*/*.log"
                )
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

    # --- the stack's parts (what components/local/parts.py's providers call) ----------

    def build_region(self, name: str) -> None:
        """A region's namespace, links (the backbone bridge if missing) and cgroup."""
        r = self.region(name)
        if not self.state_file.exists():
            self.registry.set_phase("creating")  # first, so a killed `up` can be cleaned by `down`
        network.destroy_region(self.cfg, r.spec)  # what a killed create left
        network.create_region(self.cfg, r.spec)
        cgroups.create(r.cgroup, r.spec.cpu_cores)

    def region_present(self, name: str) -> bool:
        r = self.region(name)
        return network.region_present(self.cfg, r.spec) and cgroups.exists(r.cgroup)

    def remove_region(self, name: str) -> None:
        """Everything still running in the region, then its links, namespace and cgroup;
        the bridge and the state file go with the last region."""
        r = self.region(name)
        pids = set(cgroups.procs(r.cgroup)) if cgroups.exists(r.cgroup) else set()
        if r.namespace in network.namespaces():
            pids.update(network.pids_in(r.namespace))
        self.registry.sync()
        pids.update(p.pid for p in self.procs if p.region == name and procs.alive(p.pid))
        procs.kill_all(sorted(pids))
        self.registry.forget(lambda p: p.region == name)
        network.destroy_region(self.cfg, r.spec)
        _remove_cgroup(r.cgroup)
        others = [x for x in self.regions if x.name != name]
        if not any(x.namespace in network.namespaces() for x in others):
            network.destroy_bridge(self.cfg)

    def start_cluster(self, name: str, timeout: float = 120.0) -> None:
        """Format the region's KRaft storage (a new cluster id), start its brokers and wait
        until they serve; the primary gets the stack's topics and the probe topic."""
        r = self.region(name)
        deadline = time.monotonic() + timeout
        self._format_storage(r)
        for b in r.brokers:
            self.start_broker(r, b.node_id)
        kafka.wait_ready(r.bootstrap, len(r.brokers), deadline, self._alive(name))
        # a JVM: runs while the topics and ACLs are made (started once the brokers serve,
        # as its admin client gives up after 60 s of not reaching one)
        quotas = self._set_quotas(r) if self.secure else None
        if r.role == "primary":
            kafka.create_topics(
                r.bootstrap,
                {t.name: t.partitions for t in self.cfg.topics} | {PROBE_TOPIC: 1},
                min(3, len(r.brokers)),
            )
        if self.secure:
            kafka.create_acls(r.bootstrap, security.bindings(self.acl_specs(name)))
        if quotas is not None:
            quotas(
                max(deadline, time.monotonic() + 90)
            )  # its JVM starts slowly on a loaded machine

    def acl_specs(self, name: str) -> list[tuple[str, str, str, str, str]]:
        """The workload's ACLs the stack gives region `name` (security.acl_specs): the standby
        also lets the groups read the primary's topics under their replicated names."""
        topics = [t.name for t in self.cfg.topics]
        remote = [self.remote_topic(t) for t in topics] if name == self.standby.name else []
        read_also = [t for t in remote if t not in topics]
        return security.acl_specs(topics, self.cfg.security.groups, read_also)

    def create_workload_topics(self, name: str, topics: dict[str, int]) -> list[str]:
        """Create `topics` in region `name` as kdrill-admin; the workload's principals get the
        ACLs of security.acl_specs on the ones this call created (and, in the primary, on
        their replicated names in the standby), so a drill's own topics are usable. Topics
        that already existed keep the ACLs they have: a missing one there is a finding of the
        drill's preflight, not something to paper over. Returns the topics created."""
        r = self.region(name)
        have = set(kafka.admin(r.bootstrap).list_topics(timeout=10).topics)
        kafka.create_topics(r.bootstrap, topics, min(3, len(r.brokers)))
        new = sorted(set(topics) - have)
        if self.secure and new:
            groups = self.cfg.security.groups
            specs = security.acl_specs(new, groups, group_acls=False)  # topics only: a group
            kafka.create_acls(r.bootstrap, security.bindings(specs))  # ACL gap stays a finding
            if name == self.primary.name:
                # In the standby: READ on the replicas; under the identity policy the replica
                # is also the topic producers write after cutover, and MirrorMaker 2 (which
                # creates it) never copies ALLOW WRITE: the drill's own topic gets it here.
                remote = [x for t in new if (x := self.remote_topic(t)) != t]
                same = [t for t in new if self.remote_topic(t) == t]
                specs = security.acl_specs(same, groups, remote, group_acls=False)
                kafka.create_acls(self.standby.bootstrap, security.bindings(specs))
        return new

    def quotas(self) -> dict[str, dict[str, dict[str, str]]]:
        """Region -> user -> quota (ConfigCommand --describe, both regions at once: a JVM each).
        Empty with security off (no principals to hold a quota)."""
        if not self.secure:
            return {}
        jobs = {}
        for r in self.regions:
            cc = self.admin_client_properties(r.name)
            argv = security.describe_quotas_argv(r.brokers[0].client_address, cc,
                                                 kafka_dist.log4j_config(self.dir))  # fmt: skip
            jobs[r.name] = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                            text=True, start_new_session=True)  # fmt: skip
        out = {}
        for name, p in jobs.items():
            try:
                text, _ = p.communicate(timeout=90)
            except subprocess.TimeoutExpired:
                p.kill()
                p.communicate()
                raise LocalEnvError(f"reading the quotas of {name} timed out") from None
            if p.returncode != 0:
                raise LocalEnvError(f"reading the quotas of {name} failed (ConfigCommand)")
            out[name] = security.parse_described(text)["quotas"]
        return out

    def set_quota(self, name: str, user: str, quota: dict[str, str]) -> None:
        """Set `user`'s quotas in region `name` (ConfigCommand, as kdrill-admin)."""
        r = self.region(name)
        cc = self.admin_client_properties(r.name)
        values = ",".join(f"{k}={v}" for k, v in sorted(quota.items()))
        args = ["--bootstrap-server", r.brokers[0].client_address, "--command-config", str(cc),
                "--alter", "--entity-type", "users", "--entity-name", user, "--add-config", values]  # fmt: skip
        argv = kafka_dist.java_argv("kafka.admin.ConfigCommand", kafka_dist.TOOL_HEAP,
                                    kafka_dist.log4j_config(self.dir), args)  # fmt: skip
        p = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            raise LocalEnvError(f"setting {user}'s quota in {name} failed (ConfigCommand)")

    def _set_quotas(self, r: Region) -> Callable[[float], None]:
        """Start Kafka's ConfigCommand setting the producer principal's quotas (it retries
        until the brokers answer); returns the wait for it."""
        d = self.registry.workdir(r.name)
        command_config = self.admin_client_properties(r.name)
        sec = self.cfg.security
        args = security.quota_args(r.brokers[0].client_address, command_config, security.PRODUCER,
                                   sec.producer_byte_rate, sec.consumer_byte_rate)  # fmt: skip
        argv = kafka_dist.java_argv("kafka.admin.ConfigCommand", kafka_dist.TOOL_HEAP,
                                    kafka_dist.log4j_config(self.dir), args)  # fmt: skip
        log = open(d / "quotas.log", "wb")  # noqa: SIM115 - closed by the wait
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

        def wait(deadline: float) -> None:
            try:
                p.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            finally:
                log.close()
            if p.returncode != 0:
                lines = (d / "quotas.log").read_text(errors="replace").splitlines()
                why = [x for x in lines if ("Exception" in x or "Error" in x) and
                       not x.lstrip().startswith("at ")] or lines[-1:]  # fmt: skip
                raise LocalEnvError(
                    f"setting quotas in {r.name} failed: {why[0].strip()[:300] if why else '?'}"
                    f" (see {d / 'quotas.log'})"
                )

        return wait

    def brokers_running(self, name: str) -> list[int]:
        """Node ids of the region's brokers whose process runs now (live, by pid)."""
        r = self.region(name)
        return [b.node_id for b in r.brokers if self.registry.running("broker", name, b.node_id)]

    def heal_cluster(self, name: str, timeout: float = 120.0) -> None:
        """Start the region's brokers that are not running, on their data."""
        r = self.region(name)
        for b in r.brokers:
            if not self.registry.running("broker", name, b.node_id):
                self.start_broker(r, b.node_id)
        kafka.wait_ready(r.bootstrap, len(r.brokers), time.monotonic() + timeout, self._alive(name))

    def stop(self, role: str, name: str) -> None:
        """SIGKILL the region's daemons of `role` and forget them (a part deleted)."""
        self.registry.sync()
        mine = [p for p in self.procs if (p.role, p.region) == (role, name)]
        procs.kill_all([p.pid for p in mine if procs.alive(p.pid)])
        self.registry.forget(lambda p: (p.role, p.region) == (role, name))

    def start_object_store(self, name: str, timeout: float = 60.0) -> None:
        """The region's S3 endpoint (moto) with the stack's buckets (it starts empty)."""
        r = self.region(name)
        if not self.registry.running("s3", name):
            self.registry.start(r, "s3", objectstore.argv())
        deadline = time.monotonic() + timeout
        objectstore.wait_ready(r.s3_endpoint, deadline, self._alive(name))
        objectstore.create_buckets(r.s3_endpoint, r.spec.aws_region, r.spec.buckets)

    def start_replication_path(self, timeout: float = 60.0) -> None:
        """Toxiproxy in the standby, one proxy per primary broker at the stack's round trip."""
        r = self.standby
        if not self.registry.running("toxiproxy", r.name):
            self.registry.start(r, "toxiproxy", toxiproxy.argv(r.client_ip))
        self.replication.start_proxies(time.monotonic() + timeout)

    def start_mirrormaker(self, timeout: float = 120.0) -> None:
        """MirrorMaker 2 in the standby; returns once a probe record crossed. The last part:
        the pair is `up` from here."""
        policy = self.policy  # this part's input: recorded before MirrorMaker 2 reads it
        self.registry.set_policy(policy)
        if not self.registry.running("mirrormaker2", self.standby.name):
            self.replication.start(time.monotonic() + timeout)
        self.registry.set_phase("up")

    def _alive(self, region: str) -> Callable[[], None]:
        """A readiness check that fails fast when one of the region's daemons died."""
        return lambda: self.registry.check_alive(region)

    def _format_storage(self, r: Region) -> None:
        jobs = []
        log4j = kafka_dist.log4j_config(self.dir)
        cluster_id = kafka.new_cluster_id()
        tls = self._tls_material()
        secure = security.broker_properties(tls, r.name) if self.secure else ""
        users = security.scram_args(self._need_credentials()) if self.secure else []
        for b in r.brokers:
            d = self.registry.workdir(r.name, b.node_id)
            shutil.rmtree(d / "data", ignore_errors=True)  # a re-created cluster starts empty
            (d / "data").mkdir(parents=True, exist_ok=True)
            props = d / "server.properties"
            # 0600: with TLS it holds the keystore's password
            security.write_private(props, kafka.server_properties(b, d / "data", secure))
            argv = kafka.format_argv(props, cluster_id, len(r.brokers) == 1, log4j, users)
            argfile = d / "format.args"
            if users:  # the SCRAM passwords: never on a command line
                argv = security.argfile_argv(argv, argfile)
            log = open(d / "format.log", "wb")  # noqa: SIM115 - closed after the job ends
            p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
            jobs.append((b, p, log, argfile))
        for b, p, log, argfile in jobs:
            p.wait()
            log.close()
            argfile.unlink(missing_ok=True)
            if p.returncode != 0:
                last = procs.tail(self.registry.workdir(r.name, b.node_id) / "format.log", 1)
                raise LocalEnvError(
                    f"formatting storage for broker {r.name}/{b.node_id} failed: {last}"
                )

    # --- daemons (what faults stop and restart) ---------------------------------------

    def start_broker(self, r: Region, node: int) -> Proc:
        """Start broker `node` of region `r` on its existing data; recorded in the state file."""
        props = self.registry.workdir(r.name, node) / "server.properties"
        argv = kafka.broker_argv(props, kafka_dist.log4j_config(self.dir))
        return self.registry.start(r, "broker", argv, node)

    def find(self, role: str, region: str, node: int | None = None) -> Proc | None:
        """The recorded daemon (as the state file has it now), or None."""
        return self.registry.find(role, region, node)

    def kill(self, proc: Proc) -> None:
        """SIGKILL one recorded daemon and forget it (a fault's doing, undone by restarting it)."""
        self.registry.kill(proc)

    def kill_region(self, name: str) -> list[Proc]:
        """SIGKILL every process of a region (its whole cgroup) and forget them."""
        r = self.region(name)
        return self.registry.kill_region(r, cgroups.procs(r.cgroup))

    def restore_region(self, name: str, timeout: float = 120.0) -> None:
        """Start again whatever of region `name` is not running, and wait until it serves.

        Brokers restart on their existing data (a killed region comes back with
        what it had); the S3 endpoint comes back empty and gets its buckets again.
        """
        r = self.region(name)
        deadline = time.monotonic() + timeout
        running = self.registry.running
        for b in r.brokers:
            if not running("broker", name, b.node_id):
                self.start_broker(r, b.node_id)
        s3_restarted = not running("s3", name)
        if s3_restarted:
            self.registry.start(r, "s3", objectstore.argv())
        proxy_restarted = r.role == "standby" and not running("toxiproxy", name)
        if proxy_restarted:
            self.registry.start(r, "toxiproxy", toxiproxy.argv(r.client_ip))
        kafka.wait_ready(r.bootstrap, len(r.brokers), deadline, self.registry.check_alive)
        if s3_restarted:
            objectstore.wait_ready(r.s3_endpoint, deadline, self.registry.check_alive)
            objectstore.create_buckets(r.s3_endpoint, r.spec.aws_region, r.spec.buckets)
        if proxy_restarted:
            self.replication.start_proxies(deadline)
        if not running("mirrormaker2", self.standby.name) and not self._replication_held():
            self.replication.start(deadline)
        self.registry.set_phase("up")

    def _replication_held(self) -> bool:
        """A drill's direct replication stop is in force: a region brought back (a failback)
        must not restart MirrorMaker 2 behind it (it would copy the lost tail over)."""
        from components.local.faults.lifecycle import direct_kinds

        return "replication-stop" in direct_kinds(self)

    # --- replication --------------------------------------------------------------------

    def restart_replication(self, policy: str | None = None, timeout: float = 120.0) -> None:
        """Restart MirrorMaker 2, optionally under another replication policy."""
        self.replication.restart(policy, timeout)

    @property
    def latency_proxy(self) -> toxiproxy.Toxiproxy:
        return self.replication.latency_proxy

    def replication_proxies(self) -> list[str]:
        """Toxiproxy proxy names, one per primary broker."""
        return self.replication.proxy_names()

    def set_replication_latency(self, rtt_ms: float, jitter_ms: float = 0) -> None:
        self.replication.set_latency(rtt_ms, jitter_ms)

    # --- down -----------------------------------------------------------------------

    def down(self) -> list[str]:
        """Remove everything: faults still applied, processes, namespaces, links,
        bridge, cgroups, state.

        Idempotent; works by name, so it also cleans what a killed `up` left.
        """
        from components.local import faults  # they act on a LocalPair: imported when used

        stack = self.stack
        # every fault effect, found on the live system by name (no file needed), nothing restarted
        removed = [f"fault effect: {x}" for x in faults.recover(self, teardown=True)]
        removed += stack.teardown()
        self.registry.sync()
        pids = set()
        for r in self.regions:
            pids.update(cgroups.procs(r.cgroup))
            pids.update(network.pids_in(r.namespace) if r.namespace in network.namespaces() else [])
        pids.update(self.registry.alive_pids())
        if pids:
            procs.kill_all(sorted(pids))
            removed.append(f"{len(pids)} process(es)")
        removed += network.destroy(self.cfg)
        for r in self.regions:
            if _remove_cgroup(r.cgroup):
                removed.append(f"cgroup cpu/kdrill/{r.cgroup}")
        if self.dir.exists():  # all but the stack's history, passphrase and config
            gone = [p for p in self.dir.iterdir() if p.name not in stack.kept()]
            for p in gone:
                if p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)
            if gone:
                removed.append(f"state {self.dir} (the stack's history kept)")
        self.registry.procs = []
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
            kept = self.stack.kept()
            left += [f"state {p}" for p in self.dir.iterdir() if p.name not in kept]
        return left

    # --- status ---------------------------------------------------------------------

    def status(self) -> PairStatus:
        return gather(self.regions, self.registry, self.is_up())


def _remove_cgroup(group: str, timeout: float = 2.5) -> bool:
    """Remove a region's cgroup once the kernel has released its killed tasks; True if
    it existed. Gives up quietly after `timeout` (`leftovers` then reports it)."""

    def attempt() -> tuple[bool] | None:
        try:
            return (cgroups.remove(group),)
        except OSError:  # still holds a task the kernel is releasing
            return None

    try:
        return wait_until(attempt, timeout, f"cgroup {group} to empty", interval=0.05)[0]
    except WaitTimeout:
        return False


def _engine_progress(line: str, progress: Progress) -> None:
    """The engine's per-resource lines (`+  <type> kd-east-kafka creating (3s)`) as progress."""
    words = line.split()
    for verb in ("created", "deleted", "updated", "failed"):
        if verb in words and len(words) >= 3:
            i = words.index(verb)
            if i >= 2 and words[i - 2] != "pulumi:pulumi:Stack":
                progress(f"{words[i - 1]} {verb}")
            return
