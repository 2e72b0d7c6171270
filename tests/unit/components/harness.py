"""Render a kdrill stack under Pulumi's mocks and keep every resource it registers.

`render(config, stack)` returns a `Rendered` with the resources (type, name, inputs,
provider) and the stack outputs. Mock ids and outputs are deterministic, so two renders
of the same config are comparable input for input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml

REPO = Path(__file__).resolve().parents[3]
STACKS = REPO / "stacks"
AWS_STACKS = ("msk-use1-usw2", "apache-use1-usw2", "automq-use1-usw2")


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


def _fake_outputs(typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
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
        return f"{args.name}-id", _fake_outputs(args.typ, args.name, dict(args.inputs))

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}


def stack_config(stack: str) -> dict[str, Any]:
    """The `kdrill:*` keys of stacks/Pulumi.<stack>.yaml, namespace stripped."""
    data = yaml.safe_load((STACKS / f"Pulumi.{stack}.yaml").read_text())
    return {k.split(":", 1)[1]: v for k, v in data["config"].items() if k.startswith("kdrill:")}


def render(config: dict[str, Any], stack: str = "test", preview: bool = False) -> Rendered:
    """Run the real program (components.aws.program.build via config loading) under mocks."""
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project="kdrill", stack=stack, preview=preview)
    pulumi.runtime.set_all_config(
        {f"kdrill:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    )
    from components.aws.program import build

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


_CACHE: dict[str, Rendered] = {}


def render_stack(stack: str) -> Rendered:
    """A checked-in stack file, rendered once per test session."""
    if stack not in _CACHE:
        _CACHE[stack] = render(stack_config(stack), stack)
    return _CACHE[stack]
