"""The local region pair (components/local) as a drill target.

`LocalTarget.for_stack(stack)` reads the stack file and the pair's state file
only: validating a drill against it touches nothing. `prepare` brings the pair
up when it is not running (the target then owns it and `release` tears it
down); a pair someone else brought up is used as it is and left up.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from components.faults import FaultSpec
from components.local import config, kafka_dist, mirrormaker, network, objectstore
from components.local import faults as local_faults
from components.local.env import LocalPair
from components.local.errors import LocalEnvError
from drills.cost.model import Inventory, inventory_local
from drills.targets.base import Progress, TargetError, TargetFacts
from drills.targets.kafka_side import KafkaSide, decode_checkpoint

__all__ = ["LocalTarget", "decode_checkpoint"]


class LocalTarget(KafkaSide):
    """The local pair: regions are network namespaces, faults kernel-level or signals."""

    def __init__(self, pair: LocalPair, keep: bool = False):
        self.pair = pair
        self.primary = pair.primary.name
        self.standby = pair.standby.name
        self.keep = keep  # leave an environment this target brought up running afterwards
        self.owned = False  # set by prepare(): this target brought the pair up

    @classmethod
    def for_stack(cls, stack: str, keep: bool = False) -> LocalTarget:
        """The pair recorded as running for `stack`, else one built from its stack file."""
        try:
            cfg = config.load(stack)
        except LocalEnvError as e:
            raise TargetError(str(e)) from None
        return cls(LocalPair.from_state(cfg.prefix) or LocalPair(cfg), keep)

    # --- the environment --------------------------------------------------------------

    @property
    def policy(self) -> str:
        return self.pair.policy

    def facts(self) -> TargetFacts:
        rep = self.pair.cfg.replication
        return TargetFacts(
            stack=self.pair.cfg.stack,
            kind="local",
            primary=self.primary,
            standby=self.standby,
            policy=self.policy,
            versions={"kafka": kafka_dist.pinned_version()},
            replication_settings={
                # MirrorMaker 2's checkpoint / group-offset sync interval and offset.lag.max:
                # what bounds the duplicates a resumed group re-reads (the report predicts them)
                "sync_interval_s": float(rep.interval_seconds),
                "offset_lag_max": rep.offset_lag_max,
            },
        )

    def resolve_fault(self, fault: FaultSpec) -> FaultSpec:
        try:
            return local_faults.validate(fault, self.pair.cfg)
        except LocalEnvError as e:
            raise TargetError(str(e)) from None

    def prepare(self, progress: Progress = lambda s: None) -> None:
        if self.pair.is_up():
            return
        self.owned = True
        self.pair.up(progress=progress)

    def release(self) -> None:
        self.close_clients()
        if self.owned and not self.keep:
            self.pair.down()

    @property
    def releases_environment(self) -> bool:
        return self.owned and not self.keep

    # --- clients ----------------------------------------------------------------------

    def bootstrap(self, region: str) -> str:
        return self.pair.region(region).bootstrap

    def set_policy(self, policy: str) -> None:
        """Run replication under `policy` (restarts MirrorMaker 2)."""
        self.pair.restart_replication(policy)

    def remote_topic(self, topic: str) -> str:
        return self.pair.remote_topic(topic)

    # create_topics, inventory, end_offsets, checkpoints: KafkaSide (drills/targets/kafka_side.py)

    def replication_factor(self, region: str) -> int:
        return min(3, len(self.pair.region(region).brokers))

    def checkpoints_topic(self) -> str:
        return mirrormaker.checkpoints_topic(self.primary)

    # --- faults -----------------------------------------------------------------------

    def apply_fault(self, spec: FaultSpec) -> tuple[str, float]:
        e = local_faults.apply(self.pair, spec)
        return e.id, e.t_fault

    def clear_fault(self, fault_id: str) -> None:
        local_faults.clear(self.pair, fault_id)

    def clear_faults(self, fault_ids: list[str], final: bool = False) -> None:
        """Clear several, restarting what they stopped in dependency order (not when the
        pair is torn down right after)."""
        local_faults.clear_many(self.pair, fault_ids, final and self.releases_environment)

    def recover(self) -> list[str]:
        """Clear every fault the pair's ledger says is applied, whoever applied it."""
        return [
            f"{e.id}: {e.fault.describe()} (applied by pid {e.applier_pid})"
            for e in local_faults.recover(self.pair)
        ]

    def open_faults(self, applier_pid: int) -> list[str]:
        """Faults this process recorded that are not cleared: what an interrupt may have
        left between the ledger write and the caller learning the fault's id."""
        return [
            e.id
            for e in local_faults.ledger(self.pair).open_entries()
            if e.applier_pid == applier_pid
        ]

    def fence(self, region: str) -> tuple[str, float]:
        """Our clients can no longer reach the region's brokers (both directions dropped)."""
        return self.apply_fault(FaultSpec("blackhole", region=region, params={"endpoint": "kafka"}))

    def stop_replication(self) -> tuple[str, float]:
        return self.apply_fault(FaultSpec("replication-stop"))

    # --- measurement and evidence -----------------------------------------------------

    def region_out_bytes(self) -> dict[str, int]:
        """Bytes each region sent over its backbone link (nftables counters); a region whose
        namespace is gone (torn down) is left out."""
        out = {}
        for r in self.pair.regions:
            with contextlib.suppress(LocalEnvError):
                out[r.name] = network.read_counters(r.namespace).get("out_bytes", 0)
        return out

    def cost_inventory(self) -> Inventory:
        return inventory_local(self.pair.cfg)

    def evidence_bucket(self) -> str:
        for b in self.pair.standby.spec.buckets:
            if "evidence" in b:
                return b
        raise TargetError(
            f"the standby {self.standby} has no evidence bucket in the stack (a name with 'evidence')"
        )

    def upload_evidence(self, run_dir: Path) -> str:
        bucket = self.evidence_bucket()
        s3 = objectstore.client(self.pair.standby.s3_endpoint, self.pair.standby.spec.aws_region)
        prefix = f"drills/{run_dir.name}"
        for f in sorted(run_dir.rglob("*")):
            if f.is_file():
                s3.upload_file(str(f), bucket, f"{prefix}/{f.relative_to(run_dir)}")
        return f"s3://{bucket}/{prefix}/"
