"""The kdrill Pulumi program: stack config -> components.

AWS stacks (stacks/Pulumi.<engine>-<pair>.yaml) render a PairedRegionKafka; the `local`
stack is the local runtime's (`kdrill local ...`) and has nothing for `pulumi up`.
"""

import pulumi

from components.aws.tags import tag_transform

if pulumi.Config("kdrill").get("pattern") == "local":
    raise pulumi.RunError("stack 'local' is run by `kdrill local`, not by `pulumi up`")

from components.aws.config import load_stack_config  # noqa: E402
from components.aws.program import build, cost_tags  # noqa: E402

config = load_stack_config()
# Safety net for resources created outside the components (the engine runs transforms;
# unit tests cover the transform itself).
pulumi.runtime.register_resource_transform(
    tag_transform(cost_tags(config, pulumi.get_stack()).as_dict())
)
build(config)
