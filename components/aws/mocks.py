"""Render the AWS program under Pulumi's own mocks (`pulumi.runtime.set_mocks`): no AWS
call, no provider plugin. Used by the unit tests (tests/unit/components/harness.py) and by
`kdrill run --plan` to show what a fault changes in a stack.

What mocks prove and what they cannot: every resource the real program registers, with its
inputs and resource options, for a given config. They cannot say what AWS would accept,
whether an input change is an in-place update or a replacement (that is the provider's
diff), or any value AWS computes; the fake outputs below stand in for those.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pulumi


@dataclass
class Res:
    typ: str
    name: str
    inputs: dict[str, Any]
    provider: str | None
    opts: pulumi.ResourceOptions | None = None  # as registered (from a stack transformation)

    @property
    def tags(self) -> dict[str, str]:
        return self.inputs.get("tags") or {}


@dataclass
class Rendered:
    resources: list[Res] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    def of(self, typ: str) -> list[Res]:
        return [r for r in self.resources if r.typ == typ]

    def named(self, name: str) -> Res:
        found = [r for r in self.resources if r.name == name]
        assert len(found) == 1, f"expected one resource named {name}, found {len(found)}"
        return found[0]

    def graph(self) -> dict[tuple[str, str], dict[str, Any]]:
        return {(r.typ, r.name): r.inputs for r in self.resources}


def fake_outputs(typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """Deterministic stand-ins for the values AWS computes (ids, ARNs, DNS names)."""
    out = dict(inputs)
    out.setdefault("arn", f"arn:aws:mock:::{typ.split(':')[-1].lower()}/{name}")
    if typ == "aws:s3/bucket:Bucket":
        out["bucket"] = inputs.get("bucket", name)
        out["arn"] = f"arn:aws:s3:::{out['bucket']}"
    elif typ == "aws:msk/cluster:Cluster":
        out["arn"] = f"arn:aws:kafka:us-east-1:111122223333:cluster/{inputs['clusterName']}/uuid"
        out["bootstrapBrokersSaslIam"] = f"b-1.{inputs['clusterName']}.kafka:9098"
    elif typ == "aws:ec2/vpcEndpointService:VpcEndpointService":
        out["serviceName"] = f"com.amazonaws.vpce.mock.{name}"
    elif typ == "aws:ec2/vpcEndpoint:VpcEndpoint":
        out["dnsEntries"] = [{"dnsName": f"{name}.vpce.mock", "hostedZoneId": "ZMOCK"}]
    elif typ == "aws:route53/zone:Zone":
        out["zoneId"] = f"{name}-zone-id"
    elif typ == "aws:ec2/launchTemplate:LaunchTemplate":
        out["latestVersion"] = 1
    elif typ == "aws:ec2transitgateway/transitGateway:TransitGateway":
        out["associationDefaultRouteTableId"] = f"{name}-rtb"
    elif typ == "aws:iam/role:Role":
        out["name"] = name
    elif typ == "aws:msk/configuration:Configuration":
        out["latestRevision"] = 1
    elif typ.startswith("kubernetes:"):
        meta = dict(inputs.get("metadata") or {})
        meta.setdefault("name", name)
        out["metadata"] = meta
    return out


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[Res] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        self.resources.append(Res(args.typ, args.name, dict(args.inputs), args.provider))
        return f"{args.name}-id", fake_outputs(args.typ, args.name, dict(args.inputs))

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}


def render(config: dict[str, Any], stack: str, preview: bool = False) -> Rendered:
    """Run the real program (components.aws.program.build, config read through Pulumi's
    config like `pulumi up` does) under mocks. `config`: the `kdrill:*` keys without the
    namespace."""
    from components.aws.program import build

    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project="kdrill", stack=stack, preview=preview)
    pulumi.runtime.set_all_config(
        {f"kdrill:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    )
    result = Rendered(resources=mocks.resources)
    options: dict[tuple[str, str], pulumi.ResourceOptions] = {}

    def record(args: pulumi.ResourceTransformationArgs):
        options[(args.type_, args.name)] = args.opts
        return None

    @pulumi.runtime.test
    def run():
        pulumi.runtime.register_stack_transformation(record)
        pair = build(stack=stack)
        return pulumi.Output.from_input(
            {"regions": pair.regions, "replication": pair.replication}
        ).apply(lambda o: result.outputs.update(o))

    run()
    for r in result.resources:
        r.opts = options.get((r.typ, r.name))
    return result


@dataclass
class GraphDiff:
    """What a second render adds, changes (with the inputs that differ) and removes."""

    added: list[tuple[str, str]]
    changed: list[tuple[str, str, list[str]]]
    removed: list[tuple[str, str]]


def diff(before: Rendered, after: Rendered) -> GraphDiff:
    a, b = before.graph(), after.graph()
    changed = []
    for key in sorted(set(a) & set(b)):
        if a[key] != b[key]:
            keys = sorted(k for k in set(a[key]) | set(b[key]) if a[key].get(k) != b[key].get(k))
            changed.append((key[0], key[1], keys))
    return GraphDiff(sorted(set(b) - set(a)), changed, sorted(set(a) - set(b)))
