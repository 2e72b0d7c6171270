"""An AWS paired-region stack (stacks/Pulumi.<engine>-<pair>.yaml) as a drill target.

Regions are the stack's roles, `primary` and `standby`. What a drill needs from the stack
comes from its outputs (Pulumi Automation API, `stack.outputs()`, with the backend from
PULUMI_BACKEND_URL, default the local file backend `pulumi login --local` uses):
bootstrap servers and the evidence bucket per region. Faults are the `kdrill:faults` stack
config followed by `pulumi up` (components/aws/faults.py renders them), so applying one is
a stack update and clearing it restores the original graph. The Kafka-side methods
(topics, inventory, end offsets, checkpoints) are the local target's code (KafkaSide).

Verified here only under Pulumi's mocks: this machine has no AWS account and no AWS
provider plugin. `kdrill run --plan` shows what a drill's fault would change (the real
program rendered twice under mocks); a real run needs credentials and a stack that was
`pulumi up`-ed, and says so in one line when either is missing.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

from pydantic.alias_generators import to_camel

from components import faults as registry
from components.aws.config import (
    FAULT_PARAM_FIELDS,
    REGION_ROLES,
    ConfigError,
    StackConfig,
    parse_stack_config,
)
from components.faults import FaultSpec
from components.local import config as stack_files
from components.local.errors import LocalEnvError
from components.local.mirrormaker import checkpoints_topic
from drills.targets.base import Progress, TargetError, TargetFacts
from drills.targets.kafka_side import KafkaSide

REPO_ROOT = Path(__file__).resolve().parents[2]
REPLICATION_STOPPED = "replication-stopped"
MM2_SOURCE_ALIAS = "primary"  # components/kubernetes/mirrormaker2.py names the clusters so


def read_aws_stack(stack: str) -> tuple[str, dict[str, Any], StackConfig]:
    """(stack name, its `kdrill:*` keys without the namespace, the validated config)."""
    try:
        name, _, raw = stack_files.read_stack(stack)
    except LocalEnvError as e:
        raise TargetError(str(e)) from None
    keys = {k.split(":", 1)[1]: v for k, v in raw.items() if k.startswith("kdrill:")}
    try:
        return name, keys, parse_stack_config(keys)
    except ConfigError as e:
        raise TargetError(" ".join(str(e).split())) from None


def fault_entry(spec: FaultSpec) -> dict[str, Any]:
    """A resolved fault as one `kdrill:faults` entry (camelCase parameter keys)."""
    entry: dict[str, Any] = {"kind": spec.kind, "region": spec.region}
    for name, value in spec.params.items():
        if name in FAULT_PARAM_FIELDS:
            entry[to_camel(name)] = value
    return entry


def fault_id(entry: dict[str, Any]) -> str:
    return f"{entry['kind']}@{entry['region']}"


RESUME_CHECKPOINT_MSK = (
    "cutover.resume: checkpoint reads MirrorMaker 2's checkpoints topic, which MSK Replicator "
    "does not write; use resume: synced (the Replicator's group-offset sync) or reset"
)


def replicator_facts(cfg: StackConfig) -> list[str]:
    """What a drill relies on from the stack's MSK Replicator, in words (evidence, --plan)."""
    rep = cfg.replication
    start = (rep.starting_position or "earliest").upper()
    names = rep.topic_names or "identical"
    starts = {
        "EARLIEST": "a topic it picks up is copied from its first retained record",
        "LATEST": "a topic it picks up is copied from its end at that moment: records written "
        "before (e.g. while a new topic waits for the Replicator's periodic detection) never "
        "reach the standby and count as lost",
    }
    return [
        f"starting position {start}: {starts[start]}",
        "topic names "
        + (
            "IDENTICAL: the standby's replica of `orders` is `orders`"
            if names == "identical"
            else "PREFIXED_WITH_SOURCE_CLUSTER_ALIAS: the standby's replica of `orders` is "
            "`<sourceKafkaClusterAlias>.orders` (the alias AWS chose, a stack output)"
        ),
        f"group offsets synchronised for groups {', '.join(rep.groups)}: approximate (sampled "
        "offset mappings, biased to re-reads) and written into a standby group only while no "
        "consumer of it is active there",
    ]


def check_engine(engine: str, resume: str, facts: TargetFacts) -> None:
    """The spec's `replication.engine` against what the stack replicates with: one line
    naming both when they do not go together. Touches nothing."""
    have = facts.replication_engine
    if engine == "msk-replicator" and have != "msk-replicator":
        where = "the local pair runs MirrorMaker 2 only" if facts.kind != "aws" else (
            f"stack {facts.stack} replicates with {have} (kdrill:replication.kind; "
            "msk-replicator needs kdrill:engine msk)"
        )  # fmt: skip
        raise TargetError(
            f"replication.engine msk-replicator needs a stack replicated by MSK Replicator, but "
            f"{where}; use --stack msk-use1-usw2 or replication.engine: {have}"
        )
    if engine == "mirrormaker2" and have == "msk-replicator":
        raise TargetError(
            f"replication.engine mirrormaker2, but stack {facts.stack} replicates with MSK "
            "Replicator (kdrill:replication.kind msk-replicator); set replication.engine: "
            "msk-replicator"
        )
    if engine == "msk-replicator" and resume == "checkpoint":
        raise TargetError(RESUME_CHECKPOINT_MSK)
    if engine == "active-active" and facts.kind == "aws":
        # drills/activeactive.py needs replication the other way (the reverse flow started,
        # restarted after the region's return) and the forward one restarted in teardown: an
        # AWS target has neither, and the drill would stop in preflight on a TypeError.
        one_way = "msk-replicator" if have == "msk-replicator" else "mirrormaker2"
        raise TargetError(
            f"replication.engine active-active needs reverse replication, which AWS stack "
            f"{facts.stack} does not have yet; run it on the local pair (--stack local) or set "
            f"replication.engine: {one_way}"
        )


def backend_env() -> dict[str, str]:
    url = os.environ.get("PULUMI_BACKEND_URL") or f"file://{Path.home()}"
    env = {"PULUMI_BACKEND_URL": url}
    if "PULUMI_CONFIG_PASSPHRASE" in os.environ:
        env["PULUMI_CONFIG_PASSPHRASE"] = os.environ["PULUMI_CONFIG_PASSPHRASE"]
    return env


class AwsTarget(KafkaSide):
    """A paired-region AWS stack; `stack_ops` (tests) stands in for the Pulumi stack."""

    primary = "primary"
    standby = "standby"

    def __init__(self, stack: str, raw: dict[str, Any], cfg: StackConfig, stack_ops=None):
        self.stack = stack
        self.raw = raw
        self.cfg = cfg
        self._stack_ops = stack_ops
        self._outputs: dict[str, Any] | None = None

    @classmethod
    def for_stack(cls, stack: str) -> AwsTarget:
        """Reads the stack file only: nothing is contacted."""
        name, raw, cfg = read_aws_stack(stack)
        return cls(name, raw, cfg)

    # --- the environment --------------------------------------------------------------

    @property
    def policy(self) -> str:
        if self.cfg.replication.kind == "msk-replicator":  # TopicNameConfiguration
            return "prefixed" if self.cfg.replication.topic_names == "prefixed" else "identity"
        return "prefixed"  # MirrorMaker 2's DefaultReplicationPolicy

    def facts(self) -> TargetFacts:
        return TargetFacts(
            stack=self.stack,
            kind="aws",
            primary=self.primary,
            standby=self.standby,
            policy=self.policy,
            replication_engine=self.cfg.replication.kind,
            versions={"kafka": self.cfg.brokers.kafka_version, "engine": self.cfg.engine},
            notes=self.notes(),
        )

    def notes(self) -> dict[str, str]:
        """S3 replication's fate under region loss, from the stack output when the stack was
        read, else from the rendering rule (components/aws/faults.py)."""
        from components.aws.faults import S3_REPLICATION_UNDER_LOSS

        fate = None
        if self._outputs is not None:
            fate = (
                (self._outputs.get("regions") or {}).get(self.primary, {}).get("faults") or {}
            ).get("s3Replication")
        buckets = ", ".join(self.cfg.buckets.replicate) or "none"
        notes = {
            "s3ReplicationUnderRegionLoss": f"buckets replicated primary -> standby: {buckets}; "
            + (fate or S3_REPLICATION_UNDER_LOSS)
        }
        if self.cfg.replication.kind == "msk-replicator":
            notes["mskReplicator"] = "; ".join(replicator_facts(self.cfg))
        return notes

    def resolve_fault(self, fault: FaultSpec) -> FaultSpec:
        try:
            return registry.resolve(
                fault,
                regions=REGION_ROLES,
                primary=self.primary,
                standby=self.standby,
                target="aws",
            )
        except registry.FaultError as e:
            hint = ""
            if fault.region not in (None, *REGION_ROLES):
                hint = (
                    f" (stack {self.stack!r} is an AWS stack: its regions are primary and standby)"
                )
            raise TargetError(f"{e}{hint}") from None

    def _stack(self):
        if self._stack_ops is None:
            from pulumi import automation as auto

            try:
                self._stack_ops = auto.select_stack(
                    stack_name=self.stack,
                    work_dir=str(REPO_ROOT),
                    opts=auto.LocalWorkspaceOptions(env_vars=backend_env()),
                )
            except Exception as e:  # noqa: BLE001 - any engine failure is one line
                first = (str(e).strip().splitlines() or [type(e).__name__])[-1]
                raise TargetError(
                    f"stack {self.stack!r} is an AWS stack whose Pulumi state cannot be opened "
                    f"({first[:200]}): `pulumi up --stack {self.stack}` with AWS credentials first"
                ) from None
        return self._stack_ops

    def outputs(self) -> dict[str, Any]:
        if self._outputs is None:
            outs = {k: v.value for k, v in self._stack().outputs().items()}
            if not (outs.get("regions") or {}).get(self.standby, {}).get("bootstrapServers"):
                raise TargetError(
                    f"stack {self.stack!r} is an AWS stack without outputs (bootstrap servers, "
                    f"evidence bucket): `pulumi up --stack {self.stack}` with AWS credentials first"
                )
            self._outputs = outs
        return self._outputs

    def prepare(self, progress: Progress = lambda s: None) -> None:
        """An AWS stack is provisioned by `pulumi up`, never by a drill: check that we can
        reach it (credentials, outputs) and fail in one line when not."""
        if self._stack_ops is None:
            import boto3

            if boto3.session.Session().get_credentials() is None:
                raise TargetError(
                    f"stack {self.stack!r} is an AWS stack and there are no AWS credentials here "
                    f"(a real run needs them and a `pulumi up`-ed stack; `kdrill run SPEC --stack "
                    f"{self.stack} --plan` shows what the drill's fault would change)"
                )
        progress(f"reading outputs of {self.stack}")
        self.outputs()

    def release(self) -> None:
        """The stack outlives the drill (faults are cleared by the engine): only the Kafka
        clients kept for end offsets are closed."""
        self.close_clients()

    # --- clients ----------------------------------------------------------------------

    def _region(self, region: str) -> dict[str, Any]:
        if region not in REGION_ROLES:
            raise TargetError(f"AWS stack regions are primary and standby, not {region!r}")
        return self.outputs()["regions"][region]

    def bootstrap(self, region: str) -> str:
        return self._region(region)["bootstrapServers"]

    def replication_factor(self, region: str) -> int:
        return min(3, self.cfg.brokers.by_role(region).count)  # type: ignore[arg-type]

    def checkpoints_topic(self) -> str:
        if self.cfg.replication.kind == "msk-replicator":  # checkpoints() reads it first
            raise TargetError(RESUME_CHECKPOINT_MSK)
        return checkpoints_topic(MM2_SOURCE_ALIAS)

    def remote_topic(self, topic: str) -> str:
        if self.policy == "identity":
            return topic
        if self.cfg.replication.kind == "msk-replicator":
            return f"{self.replicator_alias()}.{topic}"
        return f"{MM2_SOURCE_ALIAS}.{topic}"

    def replicator_alias(self) -> str:
        """MSK Replicator's SourceKafkaClusterAlias (PREFIXED names replicas `<alias>.<topic>`):
        AWS chooses it at creation, so it comes from the stack's `replication` output."""
        alias = (self.outputs().get("replication") or {}).get("sourceClusterAlias")
        if not alias:
            raise TargetError(
                f"stack {self.stack!r} replicates with MSK Replicator under prefixed topic names "
                "but its outputs carry no replication.sourceClusterAlias: `pulumi refresh "
                f"--stack {self.stack}` (DescribeReplicator names it) or use topicNames: identical"
            )
        return alias

    def set_policy(self, policy: str) -> None:
        if policy != self.policy:
            raise TargetError(
                f"AWS stack {self.stack} replicates with the {self.policy} topic-name policy "
                f"(set by its replication config); a drill cannot switch it to {policy}"
            )

    # --- faults: kdrill:faults + pulumi up ----------------------------------------------

    def _faults(self) -> list[dict[str, Any]]:
        try:
            value = self._stack().get_config("kdrill:faults").value
        except Exception:  # noqa: BLE001 - not set
            return []
        data = json.loads(value) if isinstance(value, str) and value else []
        return list(data) if isinstance(data, list) else []

    def _set_faults(self, entries: list[dict[str, Any]]) -> float:
        from pulumi import automation as auto

        st = self._stack()
        if entries:
            st.set_config("kdrill:faults", auto.ConfigValue(json.dumps(entries)))
        else:
            with contextlib.suppress(Exception):  # already absent
                st.remove_config("kdrill:faults")
        st.up(on_output=lambda _line: None)
        self._outputs = None
        return time.monotonic()

    def apply_fault(self, spec: FaultSpec) -> tuple[str, float]:
        entry = fault_entry(self.resolve_fault(spec))
        current = [e for e in self._faults() if fault_id(e) != fault_id(entry)]
        return fault_id(entry), self._set_faults([*current, entry])

    def clear_fault(self, fault_id_: str) -> None:
        self.clear_faults([fault_id_])

    def clear_faults(self, fault_ids: list[str], final: bool = False) -> None:
        if REPLICATION_STOPPED in fault_ids and self._replication_stopped():
            self._set_replication_stopped(False)
        current = self._faults()
        kept = [e for e in current if fault_id(e) not in set(fault_ids)]
        if len(kept) != len(current):
            self._set_faults(kept)

    def fault_update(self, fault_id: str) -> dict:
        return {}

    def open_faults(self, applier_pid: int) -> list[str]:
        stopped = [REPLICATION_STOPPED] if self._replication_stopped() else []
        return [fault_id(e) for e in self._faults()] + stopped

    def recover(self) -> list[str]:
        current = self._faults()
        if current:
            self._set_faults([])
        lines = [f"{fault_id(e)}: kdrill:faults entry on {self.stack}" for e in current]
        if self._replication_stopped():
            self._set_replication_stopped(False)
            lines.append(f"{REPLICATION_STOPPED}: kdrill:replicationStopped on {self.stack}")
        return lines

    def _replication_stopped(self) -> bool:
        try:
            return json.loads(str(self._stack().get_config("kdrill:replicationStopped").value))
        except Exception:  # noqa: BLE001 - not set
            return False

    def _set_replication_stopped(self, stopped: bool) -> float:
        from pulumi import automation as auto

        st = self._stack()
        if stopped:
            st.set_config("kdrill:replicationStopped", auto.ConfigValue("true"))
        else:
            with contextlib.suppress(Exception):  # already absent
                st.remove_config("kdrill:replicationStopped")
        st.up(on_output=lambda _line: None)
        self._outputs = None
        return time.monotonic()

    def fence(self, region: str) -> tuple[str, float]:
        """Clients reach brokers through the region's private endpoints: block them."""
        return self.apply_fault(FaultSpec("blackhole", region=region))

    def stop_replication(self) -> tuple[str, float]:
        """`kdrill:replicationStopped` + up, cleared like a fault. MirrorMaker 2: its
        deployment scaled to 0. MSK Replicator (no pause API): every topic and group excluded,
        an in-place UpdateReplicationInfo (components/aws/replication.py); the instant is when
        the update returned, and the Replicator may copy in-flight batches after it, which the
        drill sees as late-replicated records above the end-offset snapshot."""
        if self.cfg.replication.kind not in ("mirrormaker2", "msk-replicator"):
            raise TargetError(
                f"stopping {self.cfg.replication.kind} is not a stack operation of {self.stack} "
                "(stop it by hand, or use MirrorMaker 2 or MSK Replicator)"
            )
        return REPLICATION_STOPPED, self._set_replication_stopped(True)

    # --- failback: not on AWS yet ------------------------------------------------------

    def _no_failback(self) -> TargetError:
        return TargetError(
            f"rollback: failback is not supported on AWS yet (stack {self.stack}); "
            "use rollback.rule: none, or run the failback drill on the local pair"
        )

    def reverse_topic(self, topic: str) -> str:
        raise self._no_failback()

    def rebuild_topics(
        self, region: str, topics: dict[str, int], reverse_state: bool = False
    ) -> None:
        raise self._no_failback()

    def start_reverse_replication(self) -> float:
        raise self._no_failback()

    def stop_reverse_replication(self) -> float:
        return time.monotonic()  # nothing was started

    def reverse_running(self) -> bool:
        return False

    # --- measurement and evidence -----------------------------------------------------

    def region_out_bytes(self) -> dict[str, int]:
        """Not measured on AWS yet (VPC flow logs / CloudWatch would be the source)."""
        return {}

    def cost_inventory(self):
        from drills.cost.model import inventory_aws

        return inventory_aws(self.stack, self.cfg, self._outputs)

    def upload_evidence(self, run_dir: Path) -> str:
        import boto3

        bucket = self._region(self.standby)["evidenceBucket"]
        region = self.cfg.regions.standby.region
        s3 = boto3.client("s3", region_name=region)
        prefix = f"drills/{run_dir.name}"
        for f in sorted(run_dir.rglob("*")):
            if f.is_file():
                s3.upload_file(str(f), bucket, f"{prefix}/{f.relative_to(run_dir)}")
        return f"s3://{bucket}/{prefix}/"


# --- kdrill run --plan --------------------------------------------------------------------------


def plan_lines(spec_path: str, stack: str | None) -> list[str]:
    """What the drill's fault adds, changes and removes in the AWS stack: the real program
    rendered under Pulumi's mocks without and with the fault in `kdrill:faults`."""
    from components.aws.mocks import diff, render
    from drills.spec import load_spec

    spec = load_spec(spec_path)
    try:
        _, _, raw_all = stack_files.read_stack(stack or spec.target.stack)
    except LocalEnvError as e:
        raise TargetError(str(e)) from None
    if raw_all.get("kdrill:pattern", "local") == "local":
        raise TargetError(
            "--plan shows what a fault changes in an AWS stack; the local pair applies faults "
            "directly (use --stack msk-use1-usw2, apache-use1-usw2 or automq-use1-usw2)"
        )
    name, raw, _ = read_aws_stack(stack or spec.target.stack)
    target = AwsTarget(name, raw, parse_stack_config(raw))
    check_engine(spec.replication.engine, spec.cutover.resume, target.facts())
    try:
        fault = target.resolve_fault(spec.fault.fault_spec())
    except TargetError as e:
        raise TargetError(f"fault: {e}") from None
    entry = fault_entry(fault)
    base = {k: v for k, v in raw.items() if k not in ("faults", "replicationStopped")}
    try:
        parse_stack_config({**base, "faults": [entry]})
    except ConfigError as e:
        raise TargetError(f"fault: {' '.join(str(e).split())}") from None
    before = render(base, name)
    d = diff(before, render({**base, "faults": [entry]}, name))
    lines = [
        f"plan: fault {fault.describe()} on AWS stack {name} (kdrill:faults = {json.dumps([entry])})",
        "  the real program rendered twice under Pulumi's mocks: no AWS call; whether a change",
        "  is an in-place update or a replacement is the provider's diff, unknown under mocks",
    ]
    lines += [f"  + {t} {n}" for t, n in d.added]
    lines += [
        f"  ~ {t} {n} ({', '.join(keys)}) [update or replace: unknown under mocks]"
        for t, n, keys in d.changed
    ]
    lines += [f"  - {t} {n}" for t, n in d.removed]
    lines.append(f"  {len(d.added)} to add, {len(d.changed)} to change, {len(d.removed)} to remove")
    if spec.replication.engine == "msk-replicator":  # check_engine: the stack runs one
        lines += replicator_plan(spec, target, base, before)
    return lines


def replicator_plan(spec, target: AwsTarget, base: dict[str, Any], before) -> list[str]:
    """The MSK Replicator a drill relies on, read from the rendered program, and what the
    cutover's stop changes in it (a second render with `kdrill:replicationStopped`)."""
    from components.aws.mocks import diff, render

    (rep,) = before.of("aws:msk/replicator:Replicator")
    info = rep.inputs["replicationInfoList"]
    (topics,) = info["topicReplications"]
    (groups,) = info["consumerGroupReplications"]
    after_stop = render({**base, "replicationStopped": True}, target.stack)
    stopped, after = diff(before, after_stop), _replicator_info(after_stop)
    moving = (
        [g.name for g in spec.workload.groups]
        if spec.cutover.groups == "all"
        else list(spec.cutover.groups)
    )
    lines = [
        f"plan: replication msk-replicator, aws:msk/replicator:Replicator {rep.name} "
        f"(in {target.cfg.regions.standby.region}, the standby's region)",
        f"  startingPosition {topics['startingPosition']['type']}, topicNameConfiguration "
        f"{topics['topicNameConfiguration']['type']} (policy {target.policy}: the standby "
        f"reads {', '.join(_remote_name(target, t.name) for t in spec.workload.topics)})",
        f"  consumerGroupReplication: groups {groups['consumerGroupsToReplicates']}, "
        f"synchroniseConsumerGroupOffsets {groups['synchroniseConsumerGroupOffsets']}",
    ]
    lines += [f"  - {fact}" for fact in replicator_facts(target.cfg)]
    lines.append(
        "  cutover: stop replication = kdrill:replicationStopped + up, which changes only:"
    )
    lines += [
        f"    ~ {t} {n} ({', '.join(keys)}): topicsToExcludes {_excl(after, 'topic')}, "
        f"consumerGroupsToExcludes {_excl(after, 'group')} [UpdateReplicationInfo, in place]"
        for t, n, keys in stopped.changed
    ]
    if spec.cutover.resume == "synced":
        lines.append(
            f"  groups {', '.join(moving) or '-'} resume from the Replicator's synced offsets: the "
            "drill's standby consumers join each group only at cutover, after the stop (warm "
            "standby clients connect without joining), so no consumer of ours is active in the "
            "standby while the Replicator syncs; a consumer of the same group running in the "
            "standby outside the drill stops the sync: stop it before the drill"
        )
    return lines


def _replicator_info(rendered) -> dict[str, Any]:
    (rep,) = rendered.of("aws:msk/replicator:Replicator")
    return rep.inputs["replicationInfoList"]


def _excl(info: dict[str, Any], kind: str) -> list[str]:
    if kind == "topic":
        return info["topicReplications"][0].get("topicsToExcludes") or []
    return info["consumerGroupReplications"][0].get("consumerGroupsToExcludes") or []


def _remote_name(target: AwsTarget, topic: str) -> str:
    if target.policy == "identity":
        return topic
    return f"<sourceKafkaClusterAlias>.{topic}"


def plan_command(spec_path: str, stack: str | None) -> int:
    """`kdrill run SPEC --stack S --plan`: print the plan; exit 2 with one line on errors."""
    from components.console import error, out
    from drills.spec import SpecError

    try:
        lines = plan_lines(spec_path, stack)
    except SpecError as e:
        error(f"kdrill: invalid drill spec: {e}")
        return 2
    except TargetError as e:
        error(f"kdrill: cannot plan {spec_path}: {e}")
        return 2
    for line in lines:
        out.print(line, markup=False, highlight=False, soft_wrap=True)
    return 0
