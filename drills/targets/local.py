"""The local region pair (components/local) as a drill target.

`LocalTarget.for_stack(stack)` reads the stack file and the pair's state file
only: validating a drill against it touches nothing. `prepare` brings the pair
up when it is not running (the target then owns it and `release` tears it
down); a pair someone else brought up is used as it is and left up.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

from components.clientconf import client_config
from components.faults import FaultSpec, Placed
from components.local import config, kafka_dist, mirrormaker, network, objectstore
from components.local import faults as local_faults
from components.local import processes as procs
from components.local.env import LocalPair
from components.local.errors import LocalEnvError
from components.wait import wait_until
from drills.cost.model import Inventory, inventory_local
from drills.targets.base import Progress, TargetError, TargetFacts
from drills.targets.kafka_side import KafkaSide, decode_checkpoint

__all__ = ["LocalTarget", "decode_checkpoint"]


def _switch():
    """components.local.faultswitch, imported when first used: it imports the Pulumi SDK,
    which every `kdrill` command would otherwise pay for at start."""
    from components.local import faultswitch

    return faultswitch


class LocalTarget(KafkaSide):
    """The local pair: regions are network namespaces, faults kernel-level or signals."""

    def __init__(self, pair: LocalPair, keep: bool = False):
        self.pair = pair
        self.primary = pair.primary.name
        self.standby = pair.standby.name
        self.keep = keep  # leave an environment this target brought up running afterwards
        self.owned = False  # set by prepare(): this target brought the pair up
        # The local stack: the incident fault is an entry of its drill-time config, applied
        # by a targeted update of the fault switch (components/local/faultswitch.py).
        self.stack = pair.stack
        self.updates: dict[str, dict] = {}  # fault key -> what its update reported
        self.direct: dict[str, Placed] = {}  # direct faults applied and not cleared: id -> fault
        self._outputs: dict[str, dict] = {}  # region -> its stack outputs, once read

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
        if not self.pair.is_up():
            self.owned = True
            self.pair.up(progress=progress)
        try:
            progress(f"stack {self.stack.stack!r}: the fault switch (pulumi up if needed)")
            _switch().deploy(self.pair)
        except LocalEnvError as e:
            raise TargetError(str(e)) from None

    def release(self) -> None:
        self.close_clients()
        if self.owned and not self.keep:
            self.pair.down()

    @property
    def releases_environment(self) -> bool:
        return self.owned and not self.keep

    # --- clients ----------------------------------------------------------------------

    def _region_outputs(self, region: str) -> dict:
        """What the stack says of a region (its `regions` output: bootstrap, S3 endpoint,
        buckets), read from the state backend; the config-derived values before the stack
        has any (a drill that is only validated)."""
        if region not in self._outputs:
            got = (self.stack.stack_outputs().get("regions") or {}).get(region)
            if got:
                self._outputs[region] = got
        if region in self._outputs:
            return self._outputs[region]
        r = self.pair.region(region)
        return {"bootstrap": r.bootstrap, "s3_endpoint": r.s3_endpoint,
                "buckets": list(r.spec.buckets)}  # fmt: skip

    def bootstrap(self, region: str) -> str:
        return self._region_outputs(region)["bootstrap"]

    def set_policy(self, policy: str) -> None:
        """Run replication under `policy` (restarts MirrorMaker 2)."""
        self.pair.restart_replication(policy)

    def remote_topic(self, topic: str) -> str:
        return self.pair.remote_topic(topic)

    def restart_replication(self) -> float:
        """MirrorMaker 2 restarted under the policy in force, proven replicating again (a
        probe crossed); the instant."""
        try:
            self.pair.restart_replication(self.policy)
        except LocalEnvError as e:
            raise TargetError(f"restarting MirrorMaker 2 failed: {e}") from None
        return time.monotonic()

    def create_topics(self, region: str, topics: dict[str, int]) -> None:
        """Create the workload's topics; with security on, the workload's principals may use
        the ones created here (components/local/env.py `create_workload_topics`)."""
        try:
            self.pair.create_workload_topics(region, topics)
        except LocalEnvError as e:
            raise TargetError(str(e)) from None

    def inventory(self, region: str) -> dict:
        """KafkaSide's inventory, and the client quotas (Kafka's ConfigCommand: confluent-kafka
        has none); both regions' quotas are read at once, on the first call."""
        inv = super().inventory(region)
        if self.pair.secure:
            if region not in self.__dict__.setdefault("_quotas", {}):
                try:
                    self._quotas.update(self.pair.quotas())
                except LocalEnvError as e:
                    inv.setdefault("unavailable", {})["quotas"] = str(e)
                    return inv
            inv["quotas"] = self._quotas.get(region, {})
        return inv

    def set_quota(self, region: str, user: str, quota: dict) -> None:
        try:
            self.pair.set_quota(region, user, quota)
        except LocalEnvError as e:
            raise TargetError(str(e)) from None

    def new_user_secret(self, region: str, user: str) -> tuple[str, str]:
        """A new password for `user` created in `region` by sync-control-state, kept in the
        pair's state directory (mode 0600): (the password, where it is kept)."""
        from components.local import security

        path = self.pair.dir / f"synced-users-{region}.json"
        try:
            kept = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            kept = {}
        kept[user] = security.generate([user])[user]
        security.write_private(path, json.dumps(kept, indent=1))
        return kept[user], str(path)

    # end_offsets, checkpoints: KafkaSide (drills/targets/kafka_side.py)

    def replication_factor(self, region: str) -> int:
        return min(3, len(self.pair.region(region).brokers))

    def checkpoints_topic(self) -> str:
        return mirrormaker.checkpoints_topic(self.primary)

    # --- faults -----------------------------------------------------------------------

    def _switch_update(self) -> dict:
        return _switch().update(self.pair)

    def apply_fault(self, spec: FaultSpec) -> tuple[str, float]:
        """Add the fault to the stack's drill-time config and update the fault switch;
        T_fault is the instant the provider applied it (the update's output)."""
        spec = self.resolve_fault(spec)
        used = [*self.stack.faults(), *self.updates]
        key = f"s{1 + max((int(k[1:]) for k in used if k[1:].isdigit()), default=0)}"
        # None values would not survive as resource inputs; FaultSpec's defaults restore them
        self.stack.add_fault(key, {k: v for k, v in spec.to_dict().items() if v is not None})
        t0 = time.monotonic()
        try:
            applied = self._switch_update()
        except LocalEnvError as e:
            raise TargetError(f"stack update applying {spec.describe()} failed: {e}") from None
        t_end = time.monotonic()
        if key not in applied or applied[key].get("t_fault") is None:
            raise TargetError(f"the stack update did not apply {spec.describe()} (key {key})")
        t_fault = float(applied[key]["t_fault"])
        self.updates[key] = {
            "update_started": t0,
            "t_fault": t_fault,
            "update_returned": t_end,
            "start_to_t_fault_s": round(t_fault - t0, 3),
            "t_fault_to_return_s": round(t_end - t_fault, 3),
            "stack_version": self._stack_version(),
        }
        return key, t_fault

    def _stack_version(self) -> int | None:
        """The update's number in `pulumi stack history` (a file backend records every
        version as 0, so the count of updates is the number)."""
        return self.stack.update_count()

    def fault_update(self, fault_id: str) -> dict:
        """What the stack update that applied `fault_id` reported (empty for a direct one)."""
        return dict(self.updates.get(fault_id, {}))

    def clear_fault(self, fault_id: str) -> None:
        self.clear_faults([fault_id])

    def clear_faults(self, fault_ids: list[str], final: bool = False) -> None:
        """Clear several, restarting what they stopped in dependency order (not when the
        pair is torn down right after): newest first, then by kind rank, so a fence is
        lifted before the region lost is restarted and waited for. Each run of stack faults
        is cleared from its config entry, removed from the config and reconciled by one
        update of the switch (the update is in the history); direct ones (fence,
        stop-replication) are cleared from what this target keeps of them."""
        have = self.stack.faults()
        teardown = final and self.releases_environment
        placed = {}
        for f in fault_ids:
            if f in have:
                placed[f] = local_faults.place(self.pair, have[f], f)
            elif f in self.direct:
                placed[f] = self.direct[f]
        order = [f.key for f in local_faults.clear_order(list(placed.values()))]
        runs: list[list[str]] = []
        for f in order:
            if runs and (f in have) == (runs[-1][0] in have):
                runs[-1].append(f)
            else:
                runs.append([f])
        for run in runs:
            if run[0] not in have:
                local_faults.clear_many(self.pair, [self.direct[k] for k in run], teardown)
                for k in run:
                    self.direct.pop(k, None)
                continue
            try:
                _switch().clear_keys(self.pair, run, teardown)
            except LocalEnvError as e:
                raise TargetError(f"clearing {', '.join(run)} failed: {e}") from None

    def recover(self) -> list[str]:
        """Engine sessions, lock, every fault effect on the pair (stack or direct, by
        anyone), then a refresh (components/local/faultswitch.py `recover`)."""
        done = _switch().recover(self.pair)
        self.direct.clear()
        return done

    def open_faults(self, applier_pid: int) -> list[str]:
        """Faults this process applied that are not cleared: the stack's fault entries
        (one drill at a time per pair), and the direct ones this target keeps."""
        direct = list(self.direct) if applier_pid == os.getpid() else []
        return [*self.stack.faults(), *direct]

    def _direct(self, spec: FaultSpec) -> tuple[str, float]:
        spec = self.resolve_fault(spec)
        key = local_faults.lifecycle.direct_key(spec)  # `direct-...`: its table stands apart
        # kept before it is applied: an interrupt right after still finds it in open_faults
        self.direct[key] = Placed(spec, key)
        a = local_faults.apply(self.pair, spec, key=key, direct=True)
        return a.key, a.t_fault

    def fence(self, region: str) -> tuple[str, float]:
        """Our clients can no longer reach the region's brokers (both directions dropped).
        Direct (a stack update would add seconds to RTO), recorded in the journal, cleared
        by recover (its table's name says it is direct)."""
        return self._direct(FaultSpec("blackhole", region=region, params={"endpoint": "kafka"}))

    def stop_replication(self) -> tuple[str, float]:
        """Stop MirrorMaker 2 (direct). Already stopped -- a fault of the drill's timeline
        stopped it -- there is nothing to stop: the id says so and clears nothing."""
        mm2 = self.pair.find("mirrormaker2", self.standby)
        if mm2 is None or not procs.alive(mm2.pid):
            return "replication-already-stopped", time.monotonic()
        return self._direct(FaultSpec("replication-stop"))

    # --- failback ---------------------------------------------------------------------

    def reverse_topic(self, topic: str) -> str:
        """The old primary's name for a standby topic under the pair's policy (the reverse
        flow's naming: `<standby>.orders` under prefixed, `orders` under identity)."""
        return self.pair.replication.reverse_topic(topic)

    def rebuild_topics(
        self, region: str, topics: dict[str, int], reverse_state: bool = False
    ) -> None:
        """Delete and create again `topics` (name -> partitions) in `region`: the old
        primary's copies are dropped, lost tail and all, before replication fills them back.
        `reverse_state`: also the reverse MirrorMaker 2's stored positions and status (its
        internal topics there), so that it copies the standby's topics from their start."""
        from components.local import kafka

        a = kafka.admin(self.bootstrap(region))
        have = set(a.list_topics(timeout=10).topics)
        internal = (
            [f"mm2-{k}.{self.standby}.internal" for k in ("offsets", "status", "configs")]
            if reverse_state
            else []
        )
        gone = [t for t in [*topics, *internal] if t in have]
        if gone:
            for name, f in a.delete_topics(gone, operation_timeout=15).items():
                try:
                    f.result()
                except Exception as e:
                    raise TargetError(f"could not delete topic {name!r} in {region}: {e}") from None
        wait_until(
            lambda: not set(gone) & set(a.list_topics(timeout=5).topics),
            30,
            f"topics {gone} deleted in {region}",
            error=TargetError,
        )
        self.create_topics(region, topics)

    def start_reverse_replication(self, exactly_once: bool = False) -> float:
        """The stack's reverse MirrorMaker 2 part on (drill-time config and a targeted
        update): returns once a probe record crossed from the standby into the old primary.
        `exactly_once` (active-active): its writes transactional."""
        try:
            return _switch().set_reverse(self.pair, True, exactly_once)
        except LocalEnvError as e:
            raise TargetError(f"starting the reverse MirrorMaker 2 failed: {e}") from None

    def stop_reverse_replication(self) -> float:
        """The reverse part off again (removed from the stack by a targeted update)."""
        try:
            return _switch().set_reverse(self.pair, False)
        except LocalEnvError as e:
            raise TargetError(f"stopping the reverse MirrorMaker 2 failed: {e}") from None

    def restart_reverse_replication(self) -> float:
        """The declared reverse part running again after its region returned (active-active:
        the region loss killed it); a targeted update that refreshes it first."""
        try:
            return _switch().restart_reverse(self.pair)
        except LocalEnvError as e:
            raise TargetError(f"restarting the reverse MirrorMaker 2 failed: {e}") from None

    def reverse_running(self) -> bool:
        return self.pair.replication.reverse_running()

    # --- backup and restore (components/local/backup.py, s3backup.py) ------------------

    def start_backup(self, topics: list[str], prefix: str, flush_interval_ms: int) -> float:
        """The stack's backup sink part on (drill-time config and a targeted update): returns
        once its consumer is assigned the primary's `topics`."""
        from components.local import backup

        settings = {
            "topics": sorted(topics),
            "prefix": prefix,
            "flushIntervalMs": flush_interval_ms,
        }
        try:
            return backup.set_backup(self.pair, settings)
        except LocalEnvError as e:
            raise TargetError(f"starting the backup sink failed: {e}") from None

    def stop_backup(self) -> dict:
        """The backup sink part off again; returns its last status (what it flushed)."""
        from components.local import backup

        last = backup.status(self.pair)
        try:
            backup.set_backup(self.pair, None)
        except LocalEnvError as e:
            raise TargetError(f"stopping the backup sink failed: {e}") from None
        return last

    def backup_status(self) -> dict:
        """The sink's status file (no secrets): assigned when, records and objects flushed."""
        from components.local import backup

        return backup.status(self.pair)

    def backup_running(self) -> bool:
        from components.local import backup

        return backup.running(self.pair)

    def backup_location(self, prefix: str) -> str:
        from components.local import backup

        return f"s3://{backup.data_bucket(self.pair)}/{prefix}/ ({self.standby}'s object store)"

    def restore_backup(self, prefix: str, topics: dict[str, str]):
        """Every backed-up record of each `topics` key produced into the standby topic it maps
        to (components/local/s3backup.py `restore`, run here: the standby's clients)."""
        from components.local import backup, s3backup

        return s3backup.restore(client_config(self.bootstrap(self.standby)),
                                backup.s3_settings(self.pair), prefix, topics)  # fmt: skip

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
        for b in self._region_outputs(self.standby)["buckets"]:
            if "evidence" in b:
                return b
        raise TargetError(
            f"the standby {self.standby} has no evidence bucket in the stack (a name with 'evidence')"
        )

    def upload_evidence(self, run_dir: Path) -> str:
        bucket = self.evidence_bucket()
        endpoint = self._region_outputs(self.standby)["s3_endpoint"]
        s3 = objectstore.client(endpoint, self.pair.standby.spec.aws_region)
        prefix = f"drills/{run_dir.name}"
        for f in sorted(run_dir.rglob("*")):
            if f.is_file():
                s3.upload_file(str(f), bucket, f"{prefix}/{f.relative_to(run_dir)}")
        return f"s3://{bucket}/{prefix}/"
