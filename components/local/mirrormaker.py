"""MirrorMaker 2 in dedicated mode, running in the standby region.

It reads the primary over the primary's REPLICATION listener (the backbone
link) and writes to the standby's brokers over the standby's own addresses.

MM2's defaults are tuned for steady operation, not for drills: topics and
groups are rediscovered every 600 s and checkpoints / group offsets emitted
every 60 s, so a drill would measure MM2's timers instead of the failover.
Here all four run every `intervalSeconds` (2 s by default).
`offset.lag.max` (100 by default) stays visible: it bounds how far behind an
offset sync may be, so consumers re-read up to that many records after a
failover, by design.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from components.local import kafka_dist, security
from components.local.config import POLICIES, LocalConfig

MAIN_CLASS = kafka_dist.MM2_MAIN
REST_PORT = 8083  # the internal REST listener exactly-once needs (in the region it runs in)


def properties(
    cfg: LocalConfig,
    primary_bootstrap: str,
    standby_bootstrap: str,
    policy: str,
    secrets: Path | None = None,
    *,
    reverse: bool = False,
    tls: security.TlsFiles | None = None,
    exactly_once: str | None = None,
) -> str:
    """The dedicated-mode config of the forward flow (primary -> standby, run in the standby),
    or with `reverse` of the failback flow (standby -> old primary, run in the old primary):
    one function, so every setting (timers, security) holds in both directions. With
    `secrets` (security on: the 0600 file `secrets_file` wrote, holding the MM2 principal's
    JAAS line) both clusters are reached as the kdrill-mm2 super user over SASL/SCRAM, and
    topic ACLs are synced (MirrorMaker 2 copies them only partly: the drill's control-state
    parity shows what it left out). With `tls` the destination, reached through its CLIENT
    listener, is SASL_SSL with the pair's truststore (its password from the secrets file);
    the source is read on its REPLICATION listener, which TLS leaves as it is. With
    `exactly_once` (the internal REST listener's URL, in the region MirrorMaker 2 runs in)
    the destination is written with exactly-once source support: records and source offsets
    in one transaction, the source read committed, so a MirrorMaker 2 killed mid-flow (its
    region lost) re-copies nothing when it starts again (Kafka >= 3.5, dedicated mode with
    the internal REST server). Its copies then carry transaction markers: offsets in the
    destination are no longer one per record."""
    src, dst = cfg.primary.name, cfg.standby.name
    src_bootstrap, dst_bootstrap = primary_bootstrap, standby_bootstrap
    src_brokers, dst_brokers = cfg.primary.brokers, cfg.standby.brokers
    if reverse:
        src, dst = dst, src
        src_bootstrap, dst_bootstrap = dst_bootstrap, src_bootstrap
        src_brokers, dst_brokers = dst_brokers, src_brokers
    rep = cfg.replication
    rf = min(3, dst_brokers)
    every = rep.interval_seconds
    role = "failback: the standby -> the old primary" if reverse else "primary -> standby"
    return f"""\
# Written by kdrill: {src} -> {dst} ({role}), dedicated mode.
clusters = {src}, {dst}
{src}.bootstrap.servers = {src_bootstrap}
{dst}.bootstrap.servers = {dst_bootstrap}

{src}->{dst}.enabled = true
{src}->{dst}.topics = .*
{src}->{dst}.groups = .*
{dst}->{src}.enabled = false
# No heartbeat flow back into the source.
{dst}->{src}.emit.heartbeats.enabled = false

replication.policy.class = {POLICIES[policy]}

# Every plugin on the classpath has a ServiceLoader manifest (Connect says so at start):
# the default discovery also scans the whole classpath, twice, which took 24 s of a 35 s
# `kdrill up` on 2 loaded cores. service_load reads the manifests only.
plugin.discovery = service_load

# Drill timing: MM2's 600 s / 60 s defaults would dominate any measured RTO.
refresh.topics.interval.seconds = {every}
refresh.groups.interval.seconds = {every}
emit.checkpoints.interval.seconds = {every}
sync.group.offsets.enabled = true
sync.group.offsets.interval.seconds = {every}
emit.heartbeats.interval.seconds = 1
# Offset syncs may trail by this many records: consumers re-read up to this after failover.
offset.lag.max = {rep.offset_lag_max}

sync.topic.configs.enabled = true
{_security(secrets, every, src, dst, tls=tls)}
replication.factor = {rf}
checkpoints.topic.replication.factor = {rf}
heartbeats.topic.replication.factor = {rf}
offset-syncs.topic.replication.factor = {min(3, src_brokers)}
offset.storage.replication.factor = {rf}
status.storage.replication.factor = {rf}
config.storage.replication.factor = {rf}
tasks.max = 2
{_exactly_once(exactly_once, src, dst)}"""


def _exactly_once(listener: str | None, src: str, dst: str) -> str:
    if listener is None:
        return ""
    return (f"{dst}.exactly.once.source.support = enabled\n"
            f"{src}.consumer.isolation.level = read_committed\n"
            "dedicated.mode.enable.internal.rest = true\n"
            f"listeners = {listener}\n")  # fmt: skip


def _security(
    secrets: Path | None, every: int, src: str, dst: str, tls: security.TlsFiles | None = None
) -> str:
    if secrets is None:
        return "# The clusters run without an authorizer; ACL sync would only log errors.\n" \
               "sync.topic.acls.enabled = false\n"  # fmt: skip
    lines = ["# ALLOW WRITE is not copied and ALL becomes READ; group ACLs are not copied.",
             "sync.topic.acls.enabled = true",
             f"sync.topic.acls.interval.seconds = {every}",
             "# The password stays in the 0600 secrets file: connector configs, which MirrorMaker 2",
             "# stores in a Kafka topic, hold only the reference (FileConfigProvider).",
             "config.providers = file",
             "config.providers.file.class = org.apache.kafka.common.config.provider.FileConfigProvider"]  # fmt: skip
    ref = f"${{file:{secrets}:jaas}}"
    for a in (src, dst):
        ssl = tls is not None and a == dst  # the destination: its CLIENT listener
        lines += [f"{a}.security.protocol = {'SASL_SSL' if ssl else 'SASL_PLAINTEXT'}",
                  f"{a}.sasl.mechanism = {security.MECHANISM}",
                  f"{a}.sasl.jaas.config = {ref}"]  # fmt: skip
        if ssl:
            lines += [f"{a}.ssl.truststore.type = PKCS12",
                      f"{a}.ssl.truststore.location = {tls.truststore}",
                      f"{a}.ssl.truststore.password = ${{file:{secrets}:truststore.password}}"]  # fmt: skip
    return "\n".join(lines) + "\n"


def secrets_file(credentials: Mapping[str, str], tls: security.TlsFiles | None = None) -> str:
    """The contents of MirrorMaker 2's secrets file (mode 0600), which FileConfigProvider reads."""
    text = f"jaas = {security.jaas(security.MM2, credentials[security.MM2])}\n"
    if tls is not None:
        text += f"truststore.password = {tls.password}\n"
    return text


def argv(props_path, log4j, target_alias: str) -> list[str]:
    """MirrorMaker 2 driving the flows into `target_alias` (the region it runs in)."""
    return kafka_dist.java_argv(
        MAIN_CLASS, kafka_dist.MM2_HEAP, log4j, [str(props_path), "--clusters", target_alias]
    )


def remote_topic(topic: str, source_alias: str, policy: str) -> str:
    """The name `topic` of the primary has in the standby under `policy`."""
    return f"{source_alias}.{topic}" if policy == "prefixed" else topic


def checkpoints_topic(source_alias: str) -> str:
    return f"{source_alias}.checkpoints.internal"
