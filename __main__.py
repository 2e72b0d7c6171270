"""The kdrill Pulumi program: stack config -> components.

AWS stacks (stacks/Pulumi.<engine>-<pair>.yaml) render a PairedRegionKafka. The `local`
stack renders the pair's parts (components/local/parts.py: per region its namespace and
links, Kafka cluster and S3 endpoint; the replication path and MirrorMaker 2) and its
fault switch (components/local/faultswitch.py), whose faults are the drill-time config's
`kdrill:faults`, kept in the state directory with the rest of the engine's files
(components/local/stack.py).
"""

import os

import pulumi

# The local stack's config keys a part is built from (`kdrill:faults` is the switch's).
LOCAL_KEYS = ("pattern", "regions", "topics", "replication", "local", "security")


def local() -> None:
    from components.local.faultswitch import FaultSwitch
    from components.local.parts import declare

    cfg = pulumi.Config("kdrill")
    raw = {f"kdrill:{k}": v for k in LOCAL_KEYS[1:] if (v := cfg.get_object(k)) is not None}
    raw["kdrill:pattern"] = "local"
    prefix = (raw.get("kdrill:local") or {}).get("namePrefix", "kd")
    state_root = os.environ.get("KDRILL_STATE_DIR", "/var/tmp/kdrill")
    reverse = bool(cfg.get_bool("reverseReplication"))  # a failback's, drill-time
    backup = cfg.get_object("backup")  # a backup-and-restore drill's sink, drill-time
    # active-active's: the reverse flow transactional, so a region loss re-copies nothing
    exactly_once = bool(cfg.get_bool("reverseExactlyOnce"))
    # the stack's credentials (a secret: encrypted in the state, plain only to the providers)
    credentials = cfg.get_secret("credentials")
    pair = declare(
        prefix, state_root, pulumi.get_stack(), raw, credentials, reverse,
        backup=backup, exactly_once=exactly_once,
    )  # fmt: skip
    switch = FaultSwitch(
        f"{prefix}-faults",
        prefix=prefix,
        state_root=state_root,
        faults=cfg.get_object("faults") or {},
        opts=pulumi.ResourceOptions(depends_on=pair["parts"]),
    )
    for key, value in pair["outputs"].items():
        pulumi.export(key, value)
    pulumi.export("faults_applied", switch.applied)
    pulumi.export("faults_synced_at", switch.t_synced)


def aws() -> None:
    from components.aws.config import load_stack_config
    from components.aws.program import build, cost_tags
    from components.aws.tags import tag_transform

    config = load_stack_config()
    # Safety net for resources created outside the components (the engine runs transforms;
    # unit tests cover the transform itself).
    pulumi.runtime.register_resource_transform(
        tag_transform(cost_tags(config, pulumi.get_stack()).as_dict())
    )
    build(config)


if pulumi.Config("kdrill").get("pattern") == "local":
    local()
else:
    aws()
