"""Replication between the regions: MirrorMaker 2 in the standby, and the toxiproxy
path it reads the primary through.

Contract: `start` returns only once replication is proven end to end — the
standby holds the remote topics and the checkpoints topic MM2 creates, and a
probe record produced to the primary's PROBE_TOPIC has arrived in the standby
(topics existing is not replication running: a restarted MM2 takes seconds to
rejoin its group and restart its tasks). `restart` does the same under another
replication policy. Latency on the path is toxiproxy's (components/local/toxiproxy.py).

Failback runs a second MirrorMaker 2 the other way (`start_reverse`, role
`mirrormaker2-reverse`, in the old primary's region): it reads the standby over the
standby's REPLICATION listener (the backbone) and writes into the old primary, under the
same replication policy, from a config built by the same function as the forward one
(`mirrormaker.properties(..., reverse=True)`). Under the prefixed policy the standby's
`orders` arrives as `<standby>.orders` in the old primary and the standby's replicas of the
primary (`<primary>.orders`) are not copied back (MirrorMaker 2's cycle detection); under
identity every standby topic is copied into the topic of the same name.

The policy in force is the process registry's (components/local/state.py), so
it is recorded in the state file along with the MM2 process.
"""

from __future__ import annotations

import time
from pathlib import Path

from confluent_kafka import KafkaException, Producer

from components.clientconf import client_config
from components.local import (
    config,
    kafka,
    kafka_dist,
    mirrormaker,
    processes,
    security,
    toxiproxy,
)
from components.local.config import LocalConfig
from components.local.errors import LocalEnvError
from components.local.region import Region
from components.local.state import ProcessRegistry
from components.wait import wait_until

# A one-partition topic on the primary whose records prove, end to end, that
# replication runs (after `up` and whenever MirrorMaker 2 is restarted).
PROBE_TOPIC = "kdrill-probe"

# How often a probe is sent again while waiting: a restarting MM2 may still copy under
# its previous config for a few seconds (so a probe could land under the old name).
REPROBE_SECONDS = 2.0

REVERSE_ROLE = "mirrormaker2-reverse"


class Replication:
    """MirrorMaker 2 (primary -> standby) and its latency proxies, for one pair."""

    def __init__(
        self, cfg: LocalConfig, primary: Region, standby: Region, registry: ProcessRegistry
    ):
        self.cfg = cfg
        self.primary = primary
        self.standby = standby
        self.registry = registry

    @property
    def policy(self) -> str:
        return self.registry.policy

    @property
    def log(self) -> Path:
        return self.registry.workdir(self.standby.name) / "mirrormaker2.log"

    def remote_topic(self, topic: str) -> str:
        """The standby's name for a primary topic under the current replication policy."""
        return mirrormaker.remote_topic(topic, self.primary.name, self.policy)

    # --- latency ----------------------------------------------------------------------

    @property
    def latency_proxy(self) -> toxiproxy.Toxiproxy:
        return toxiproxy.Toxiproxy(self.standby.client_ip)

    def proxy_names(self) -> list[str]:
        """Toxiproxy proxy names, one per primary broker."""
        return [f"replication-{b.node_id}" for b in self.primary.brokers]

    def set_latency(self, rtt_ms: float, jitter_ms: float = 0) -> None:
        for name in self.proxy_names():
            self.latency_proxy.set_latency(name, rtt_ms, jitter_ms)

    def start_proxies(self, deadline: float) -> None:
        """Once toxiproxy answers, route each primary broker's replication listener
        through it at the stack's round trip."""
        tp = self.latency_proxy
        tp.wait_ready(deadline, self.registry.check_alive)
        for b, name in zip(self.primary.brokers, self.proxy_names(), strict=True):
            tp.create_proxy(name, listen=b.replication_advertised, upstream=b.replication_address)
        self.set_latency(self.cfg.rtt_ms)

    # --- MirrorMaker 2 ----------------------------------------------------------------

    def start(self, deadline: float) -> None:
        """Start MirrorMaker 2 under the current policy and wait until it replicates."""
        secrets = self._secrets()
        props = self.registry.dir / "mm2.properties"
        props.write_text(mirrormaker.properties(self.cfg, self.primary.replication_bootstrap,
                                                self.standby.bootstrap, self.policy, secrets,
                                                tls=self._tls()))  # fmt: skip
        log4j = kafka_dist.log4j_config(self.registry.dir)
        self.registry.start(
            self.standby, "mirrormaker2", mirrormaker.argv(props, log4j, self.standby.name)
        )
        self.wait_replicating(deadline)

    def _secrets(self) -> Path | None:
        """MirrorMaker 2's 0600 secrets file (read by its FileConfigProvider), written from
        the stack's credentials; None when security is off. Both directions use it."""
        creds = security.read_credentials(self.registry.dir) if self.cfg.security.enabled else None
        if self.cfg.security.enabled and not creds:
            raise LocalEnvError(f"security is on but {self.registry.dir} holds no credentials")
        if not creds:
            return None
        return security.write_private(self.registry.dir / "mm2-secrets.properties",
                                      mirrormaker.secrets_file(creds, self._tls()))  # fmt: skip

    def _tls(self) -> security.TlsFiles | None:
        """The pair's TLS material (`kdrill:security.tls`): MirrorMaker 2 reaches its
        destination through the CLIENT listener, which then speaks SASL_SSL."""
        sec = self.cfg.security
        creds = security.read_credentials(self.registry.dir) if sec.enabled and sec.tls else None
        return security.tls_files(self.registry.dir, creds) if creds else None

    def restart(self, policy: str | None = None, timeout: float = 120.0) -> None:
        """Restart MirrorMaker 2, optionally under another replication policy."""
        if policy is not None and policy not in config.POLICIES:
            raise LocalEnvError(
                f"unknown replication policy {policy!r}; use one of: {', '.join(config.POLICIES)}"
            )
        self.registry.sync()
        processes.kill_all([p.pid for p in self.registry.procs if p.role == "mirrormaker2"])
        self.registry.forget(lambda p: p.role == "mirrormaker2")
        self.registry.set_policy(policy or self.registry.policy)
        self.start(time.monotonic() + timeout)
        self.registry.set_phase("up")

    def wait_replicating(self, deadline: float) -> None:
        """MM2 is ready when the standby holds the remote topics of the primary's
        configured topics and its checkpoints topic (both connectors run), and a
        probe record crosses."""
        want = {self.remote_topic(t.name) for t in self.cfg.topics}
        want.add(mirrormaker.checkpoints_topic(self.primary.name))
        a = kafka.admin(self.standby.bootstrap)
        have: set[str] = set()

        def created() -> bool:
            nonlocal have
            try:
                have = set(a.list_topics(timeout=3).topics)
            except KafkaException:  # the standby's brokers may still be (re)starting
                have = set()
            return want <= have

        wait_until(
            created,
            deadline - time.monotonic(),
            f"MirrorMaker 2's topics in {self.standby.name}",
            interval=0.25,
            check=self.registry.check_alive,
            error=lambda _: LocalEnvError(
                f"MirrorMaker 2 did not create {sorted(want - have)} in {self.standby.name} "
                f"in time; see {self.log}"
            ),
        )
        self.probe(deadline)

    def probe(self, deadline: float, reverse: bool = False) -> None:
        """Send one record through and wait for it in the standby (with `reverse`: from
        the standby into the old primary).

        When the source cannot take the probe (it is the one faulted), there is
        nothing to prove yet; MM2 catches up once it returns.
        """
        source, target = (self.standby, self.primary) if reverse else (self.primary, self.standby)
        p = Producer(
            client_config(source.bootstrap, {"message.timeout.ms": 3000}),
            logger=kafka.RDKAFKA_LOG,
        )
        remote = self.reverse_topic(PROBE_TOPIC) if reverse else self.remote_topic(PROBE_TOPIC)
        # Growth, not equality: after a policy change the new remote topic holds only
        # what MM2 copied since (its source offsets carry over from the old name).
        before = self._records(remote, target=target)
        acked: list[bool] = []
        p.produce(PROBE_TOPIC, b"probe", on_delivery=lambda err, msg: acked.append(err is None))
        p.flush(5)
        if acked != [True]:
            return
        last_probe = time.monotonic()

        def arrived() -> bool:
            nonlocal last_probe
            if self._records(remote, patience=1, target=target) > before:
                return True
            if time.monotonic() - last_probe > REPROBE_SECONDS:
                p.produce(PROBE_TOPIC, b"probe")
                p.flush(5)
                last_probe = time.monotonic()
            return False

        wait_until(
            arrived,
            deadline - time.monotonic(),
            f"a probe record in {remote}",
            interval=0.25,
            check=self.registry.check_alive,
            error=lambda _: LocalEnvError(
                f"MirrorMaker 2 runs but did not replicate a probe record to {remote} in "
                f"{target.name} in time; see {self.reverse_log if reverse else self.log}"
            ),
        )

    def _records(self, remote: str, patience: float = 10.0, target: Region | None = None) -> int:
        """Records in the `remote` topic of `target` (the standby by default); 0 while it
        is absent or unreachable."""
        target = target or self.standby
        try:
            return sum(kafka.end_offsets(target.bootstrap, remote, patience).values())
        except KafkaException:
            return 0

    # --- the reverse flow (failback) --------------------------------------------------

    @property
    def reverse_log(self) -> Path:
        return self.registry.workdir(self.primary.name) / f"{REVERSE_ROLE}.log"

    def reverse_topic(self, topic: str) -> str:
        """The old primary's name for a standby topic under the current policy."""
        return mirrormaker.remote_topic(topic, self.standby.name, self.policy)

    def reverse_running(self) -> bool:
        return self.registry.running(REVERSE_ROLE, self.primary.name)

    def start_reverse(self, deadline: float, exactly_once: bool = False) -> None:
        """Start MirrorMaker 2 from the standby into the old primary (in the old primary's
        region) and return once a probe record produced in the standby arrived there.
        `exactly_once`: transactional writes into the old primary (active-active)."""
        if not self.reverse_running():
            props = self.registry.dir / "mm2-reverse.properties"
            props.write_text(
                mirrormaker.properties(
                    self.cfg,
                    self.primary.bootstrap,
                    self.standby.replication_bootstrap,
                    self.policy,
                    reverse=True,
                    secrets=self._secrets(),
                    tls=self._tls(),
                    exactly_once=(
                        f"http://{self.primary.client_ip}:{mirrormaker.REST_PORT}"
                        if exactly_once
                        else None
                    ),
                )
            )
            log4j = kafka_dist.log4j_config(self.registry.dir)
            self.registry.start(
                self.primary, REVERSE_ROLE, mirrormaker.argv(props, log4j, self.primary.name)
            )
        want = mirrormaker.checkpoints_topic(self.standby.name)
        a = kafka.admin(self.primary.bootstrap)

        def created() -> bool:
            try:
                return want in a.list_topics(timeout=3).topics
            except KafkaException:
                return False

        wait_until(
            created,
            deadline - time.monotonic(),
            f"the reverse MirrorMaker 2's {want} in {self.primary.name}",
            interval=0.25,
            check=lambda: self.registry.check_alive(self.primary.name),
            error=lambda _: LocalEnvError(
                f"the reverse MirrorMaker 2 did not create {want} in {self.primary.name} in "
                f"time; see {self.reverse_log}"
            ),
        )
        self.probe(deadline, reverse=True)

    def stop_reverse(self) -> bool:
        """SIGKILL the reverse MirrorMaker 2 and forget it; True if one ran."""
        self.registry.sync()
        mine = [
            p
            for p in self.registry.procs
            if (p.role, p.region) == (REVERSE_ROLE, self.primary.name)
        ]
        processes.kill_all([p.pid for p in mine])
        self.registry.forget(lambda p: (p.role, p.region) == (REVERSE_ROLE, self.primary.name))
        return bool(mine)
