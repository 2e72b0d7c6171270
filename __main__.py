"""The kdrill Pulumi program: stack config -> components.

AWS stacks (stacks/Pulumi.<engine>-<pair>.yaml) render a PairedRegionKafka. The `local`
stack holds the pair's fault switch (components/local/faultswitch.py): its faults are the
drill-time config's `kdrill:faults`, kept in the state directory with the rest of the
engine's files (components/local/stack.py); the pair itself is built by `kdrill local up`.
"""

import os

import pulumi


def local() -> None:
    from components.local.faultswitch import FaultSwitch

    cfg = pulumi.Config("kdrill")
    prefix = (cfg.get_object("local") or {}).get("namePrefix", "kd")
    switch = FaultSwitch(
        f"{prefix}-faults",
        prefix=prefix,
        state_root=os.environ.get("KDRILL_STATE_DIR", "/var/tmp/kdrill"),
        faults=cfg.get_object("faults") or {},
    )
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
