"""The local pair's parts as Pulumi resources: one Python dynamic provider per part.

    region          a region's namespace, client and backbone links, cgroup
    kafka           a region's KRaft cluster (storage formatted, brokers serving, topics)
    object-store    a region's S3 endpoint (moto) and its buckets
    replication     the replication path: toxiproxy in the standby, one proxy per primary broker
    mirrormaker2    MirrorMaker 2 in the standby (ready once a probe record crossed)
    mirrormaker2-reverse
                    MirrorMaker 2 from the standby into the old primary, in the primary's
                    region: declared only while the drill-time config's
                    `kdrill:reverseReplication` is true (a failback; faultswitch.set_reverse)
    backup-sink     kdrill-s3backup's sink in the standby, backing the primary's topics up
                    into the standby's bucket: declared only while the drill-time config's
                    `kdrill:backup` is set (a backup-and-restore drill; components/local/backup.py)

(the fault switch, the sixth, is components/local/faultswitch.py.)

Each provider manages only its own part, through the LocalPair methods named for it, and
`read` inspects the live system: what runs now, by pid and by name, never the old outputs.
The outputs a client needs (bootstrap addresses, S3 endpoint, buckets) are static facts of
the config; `running` (the node ids of the brokers up, or whether the part's process runs)
is the one live output, so `pulumi refresh` reports a broker killed outside Pulumi as a
change of exactly its cluster, and a restart (a new pid) as no change at all.

Every daemon a provider starts runs in a new session with its standard streams on files
and no other descriptor open (components/local/processes.py): the engine kills the
provider's process group when the update ends, and a daemon holding the provider's pipes
would keep `pulumi up` waiting for its whole life.

A diff replaces a part when its shape (the config it is built from) changed, and updates
it (starting what is not running) when a refresh recorded it as not running.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pulumi
from pulumi.dynamic import (
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    ResourceProvider,
    UpdateResult,
)

TYPE = "pulumi-python:dynamic:Resource"  # every dynamic resource's type (for URNs)
# Inputs that name the pair: a change means another pair, so the part is replaced.
IDENTITY = ("prefix", "state_root", "stack", "region")


def _ints(v: Any) -> Any:
    """Numbers come back from the engine as floats (protobuf's Struct has only doubles):
    whole ones are made ints again before the config is validated."""
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, dict):
        return {k: _ints(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_ints(x) for x in v]
    return v


def _no_nones(v: Any) -> Any:
    """The engine drops None values from state: a shape compared with its stored self
    must not hold any."""
    if isinstance(v, dict):
        return {k: _no_nones(x) for k, x in v.items() if x is not None}
    return v


def pair_of(props: dict[str, Any]):
    """The LocalPair a part belongs to, from its inputs (the stack's config, not a state file)."""
    from components.local import config
    from components.local.env import LocalPair

    pair = LocalPair(config.parse(_ints(dict(props["config"])), stack=props["stack"]),
                     Path(props["state_root"]))  # fmt: skip
    if props.get("policy"):
        pair.policy = props["policy"]
    if props.get("credentials"):  # the stack secret: written 0600 where the pair's clients read it
        import json

        pair.use_credentials(json.loads(props["credentials"]))
    return pair


class PartProvider(ResourceProvider):
    """create/diff/update/delete/read of one part; a subclass says what each means."""

    part = ""

    # --- what a part is (subclasses) --------------------------------------------------

    def shape(self, props: dict[str, Any]) -> Any:
        """The config the part is built from: a change replaces it."""
        raise NotImplementedError

    def facts(self, pair, props: dict[str, Any]) -> dict[str, Any]:
        """Static outputs (addresses): derived from the config."""
        return {}

    def start(self, pair, props: dict[str, Any]) -> None:
        raise NotImplementedError

    def heal(self, pair, props: dict[str, Any]) -> None:
        """Start what of the part is not running (after a refresh found it so)."""
        self.start(pair, props)

    def running(self, pair, props: dict[str, Any]) -> Any:
        raise NotImplementedError

    def whole(self, props: dict[str, Any]) -> Any:
        """What `running` is when nothing of the part is missing."""
        return True

    def stop(self, pair, props: dict[str, Any]) -> None:
        raise NotImplementedError

    # --- the provider protocol -------------------------------------------------------

    def _outs(self, pair, props: dict[str, Any], running: Any) -> dict[str, Any]:
        """Outputs: the inputs but the credentials (kept only as the secret input), the
        facts, the shape and what runs."""
        kept = {k: v for k, v in props.items() if k != "credentials"}
        return {**kept, **self.facts(pair, props), "shape": _no_nones(self.shape(props)),
                "running": running}  # fmt: skip

    def _id(self, props: dict[str, Any]) -> str:
        return f"{props['prefix']}-{props.get('region') or ''}-{self.part}".replace("--", "-")

    def create(self, props: dict[str, Any]) -> CreateResult:
        pair = pair_of(props)
        self.start(pair, props)
        return CreateResult(self._id(props), self._outs(pair, props, self.whole(props)))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [k for k in IDENTITY if olds.get(k) != news.get(k)]
        if _ints(olds.get("shape")) != _ints(_no_nones(self.shape(news))):
            replaces.append("config")
        healing = _ints(olds.get("running")) != self.whole(news)
        return DiffResult(
            changes=bool(replaces) or healing, replaces=replaces, delete_before_replace=True
        )

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        pair = pair_of(news)
        self.heal(pair, news)
        return UpdateResult(self._outs(pair, news, self.running(pair, news)))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        self.stop(pair_of(props), props)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        pair = pair_of(props)
        return ReadResult(id_, {**props, "running": self.running(pair, props)})


def _spec(props: dict[str, Any]) -> dict[str, Any]:
    """The stack config's entry of the part's region."""
    return next(r for r in props["config"]["kdrill:regions"] if r["name"] == props["region"])


class RegionProvider(PartProvider):
    part = "region"

    def shape(self, props):
        return {"region": _spec(props), "local": props["config"].get("kdrill:local")}

    def facts(self, pair, props):
        r = pair.region(props["region"])
        return {"namespace": r.namespace, "client_ip": r.client_ip, "cgroup": r.cgroup}

    def start(self, pair, props):
        pair.build_region(props["region"])

    def heal(self, pair, props):
        if not pair.region_present(props["region"]):
            pair.build_region(props["region"])

    def running(self, pair, props):
        return pair.region_present(props["region"])

    def stop(self, pair, props):
        pair.remove_region(props["region"])


class KafkaProvider(PartProvider):
    part = "kafka"

    def shape(self, props):
        spec = _spec(props)
        topics = props["config"].get("kdrill:topics") if spec["role"] == "primary" else None
        return {"brokers": spec.get("brokers", 1), "topics": topics,
                "security": props["config"].get("kdrill:security")}  # fmt: skip

    def facts(self, pair, props):
        r = pair.region(props["region"])
        return {"bootstrap": r.bootstrap, "replication_bootstrap": r.replication_bootstrap}

    def start(self, pair, props):
        pair.start_cluster(props["region"])

    def heal(self, pair, props):
        pair.heal_cluster(props["region"])

    def running(self, pair, props):
        return pair.brokers_running(props["region"])

    def whole(self, props):
        return list(range(int(_spec(props).get("brokers", 1))))  # node ids 0..n-1

    def stop(self, pair, props):
        pair.stop("broker", props["region"])


class ObjectStoreProvider(PartProvider):
    part = "s3"

    def shape(self, props):
        spec = _spec(props)
        return {"buckets": spec.get("buckets"), "awsRegion": spec.get("awsRegion")}

    def facts(self, pair, props):
        r = pair.region(props["region"])
        return {"endpoint": r.s3_endpoint, "buckets": list(r.spec.buckets)}

    def start(self, pair, props):
        pair.start_object_store(props["region"])

    def running(self, pair, props):
        return pair.registry.running("s3", props["region"])

    def stop(self, pair, props):
        pair.stop("s3", props["region"])


class ReplicationPathProvider(PartProvider):
    part = "replication-path"

    def shape(self, props):
        return {"rtt_ms": props["config"]["kdrill:local"].get("interRegionRttMs")}

    def facts(self, pair, props):
        return {"proxies": pair.replication_proxies()}

    def start(self, pair, props):
        pair.start_replication_path()

    def running(self, pair, props):
        return pair.registry.running("toxiproxy", pair.standby.name)

    def stop(self, pair, props):
        pair.stop("toxiproxy", pair.standby.name)


class MirrorMakerProvider(PartProvider):
    part = "mirrormaker2"

    def shape(self, props):
        return {"replication": props["config"].get("kdrill:replication"), "policy": props["policy"],
                "security": props["config"].get("kdrill:security")}  # fmt: skip

    def start(self, pair, props):
        pair.start_mirrormaker()

    def running(self, pair, props):
        return pair.registry.running("mirrormaker2", pair.standby.name)

    def stop(self, pair, props):
        pair.stop("mirrormaker2", pair.standby.name)
        pair.registry.set_phase("creating")  # no longer `up`: replication is gone


class ReverseMirrorMakerProvider(PartProvider):
    """Failback's replication: the same MirrorMaker 2 code and config function, the flow
    reversed. Not part of the pair's steady shape: a drill declares it for its failback."""

    part = "mirrormaker2-reverse"

    def shape(self, props):
        return {"replication": props["config"].get("kdrill:replication"), "policy": props["policy"],
                "security": props["config"].get("kdrill:security"),
                "exactly_once": props.get("exactly_once") or None}  # fmt: skip

    def start(self, pair, props):
        pair.replication.start_reverse(time.monotonic() + 120, bool(props.get("exactly_once")))

    def running(self, pair, props):
        return pair.replication.reverse_running()

    def stop(self, pair, props):
        pair.replication.stop_reverse()


class BackupSinkProvider(PartProvider):
    """A backup-and-restore drill's sink (components/local/backup.py): what it backs up and
    where (`backup`: topics, prefix, flush interval) is its shape."""

    part = "backup-sink"

    def shape(self, props):
        return {"backup": props["backup"], "security": props["config"].get("kdrill:security")}

    def start(self, pair, props):
        from components.local import backup

        backup.start(pair, _ints(dict(props["backup"])))

    def running(self, pair, props):
        from components.local import backup

        return backup.running(pair)

    def stop(self, pair, props):
        from components.local import backup

        backup.stop(pair)


PROVIDERS: dict[str, type[PartProvider]] = {
    "region": RegionProvider,
    "kafka": KafkaProvider,
    "s3": ObjectStoreProvider,
    "replication-path": ReplicationPathProvider,
    "mirrormaker2": MirrorMakerProvider,
    "mirrormaker2-reverse": ReverseMirrorMakerProvider,
    "backup-sink": BackupSinkProvider,
}


class Part(Resource):
    """One part of the local pair. `inputs`: prefix, state_root, stack, config (the stack's
    `kdrill:*` mapping), policy, and region for the per-region parts."""

    running: pulumi.Output[Any]

    def __init__(
        self,
        kind: str,
        name: str,
        inputs: dict[str, Any],
        outputs: tuple[str, ...] = (),
        opts: pulumi.ResourceOptions | None = None,
    ):
        empty = dict.fromkeys(o for o in ("shape", "running", *outputs) if o not in inputs)
        super().__init__(PROVIDERS[kind](), name, {**inputs, **empty}, opts)


def declare(
    prefix: str,
    state_root: str,
    stack: str,
    cfg: dict[str, Any],
    credentials: Any = None,
    reverse: bool = False,
    backup: dict[str, Any] | None = None,
    exactly_once: bool = False,
) -> dict[str, Any]:
    """Declare the pair's parts (the program's side); returns the stack outputs to export
    and the parts the fault switch depends on. `credentials`: the stack's secret (JSON),
    an input of the parts that need it (each Kafka cluster, both MirrorMaker 2s).
    `reverse`: also the failback's reverse MirrorMaker 2 (the drill-time config's
    `kdrill:reverseReplication`); `exactly_once`: that part transactional (active-active's
    `kdrill:reverseExactlyOnce`: a region loss that kills it re-copies nothing on restart).
    `backup`: also the backup sink, with these settings (the drill-time config's
    `kdrill:backup`)."""
    policy = cfg["kdrill:replication"].get("policy", "prefixed")
    base = {"prefix": prefix, "state_root": state_root, "stack": stack, "config": cfg,
            "policy": policy}  # fmt: skip
    regions = {r["name"]: r for r in cfg["kdrill:regions"]}
    primary = next(n for n, r in regions.items() if r["role"] == "primary")
    standby = next(n for n, r in regions.items() if r["role"] == "standby")
    made: dict[str, Part] = {}
    outputs: dict[str, Any] = {"regions": {}}
    secret = {"credentials": credentials} if credentials is not None else {}
    for name in regions:
        on = {**base, "region": name}
        made[f"{name}-region"] = region = Part(
            "region", f"{prefix}-{name}-region", on, ("namespace", "client_ip", "cgroup")
        )
        after = pulumi.ResourceOptions(depends_on=[region])
        kafka = Part("kafka", f"{prefix}-{name}-kafka", {**on, **secret},
                     ("bootstrap", "replication_bootstrap"), after)  # fmt: skip
        s3 = Part("s3", f"{prefix}-{name}-s3", on, ("endpoint", "buckets"), after)
        made[f"{name}-kafka"], made[f"{name}-s3"] = kafka, s3
        outputs["regions"][name] = {
            "role": regions[name]["role"],
            "bootstrap": kafka.bootstrap,  # type: ignore[attr-defined]
            "replication_bootstrap": kafka.replication_bootstrap,  # type: ignore[attr-defined]
            "s3_endpoint": s3.endpoint,  # type: ignore[attr-defined]
            "buckets": s3.buckets,  # type: ignore[attr-defined]
        }
    path = Part(
        "replication-path", f"{prefix}-replication-path", base, ("proxies",),
        pulumi.ResourceOptions(depends_on=[made[f"{primary}-region"], made[f"{standby}-region"]]),
    )  # fmt: skip
    mm2 = Part(
        "mirrormaker2", f"{prefix}-mirrormaker2", {**base, **secret}, (),
        pulumi.ResourceOptions(
            depends_on=[made[f"{primary}-kafka"], made[f"{standby}-kafka"], path]
        ),
    )  # fmt: skip
    made["replication-path"], made["mirrormaker2"] = path, mm2
    if reverse:
        # Not among the parts the switch waits for: it comes and goes within a drill.
        Part(
            "mirrormaker2-reverse", f"{prefix}-mirrormaker2-reverse",
            {**base, **secret, **({"exactly_once": True} if exactly_once else {})}, (),
            pulumi.ResourceOptions(depends_on=[made[f"{primary}-kafka"], made[f"{standby}-kafka"]]),
        )  # fmt: skip
    if backup:
        # Like the reverse MirrorMaker 2: it comes and goes within a drill.
        Part(
            "backup-sink", f"{prefix}-backup-sink", {**base, **secret, "backup": backup}, (),
            pulumi.ResourceOptions(depends_on=[made[f"{primary}-kafka"], made[f"{standby}-s3"]]),
        )  # fmt: skip
    outputs["replication"] = {"policy": mm2.policy, "proxies": path.proxies}  # type: ignore[attr-defined]
    return {"outputs": outputs, "parts": list(made.values())}
