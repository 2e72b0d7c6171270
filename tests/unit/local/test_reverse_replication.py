"""The failback's reverse MirrorMaker 2: the same config function, the flow reversed, and its
stack part declared only while the drill-time config asks for it."""

from __future__ import annotations

import pulumi
import pytest
import yaml

from components.local import config, mirrormaker
from components.local.parts import PROVIDERS, ReverseMirrorMakerProvider


def props(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def test_reverse_properties_swap_the_flow_and_keep_every_other_setting():
    cfg = config.load("local")
    src, dst = cfg.primary.name, cfg.standby.name
    fwd = props(mirrormaker.properties(cfg, "p:9093", "s:9092", "prefixed"))
    rev = props(mirrormaker.properties(cfg, "p:9092", "s:9093", "prefixed", reverse=True))
    assert fwd[f"{src}->{dst}.enabled"] == "true" and fwd[f"{dst}->{src}.enabled"] == "false"
    assert rev[f"{dst}->{src}.enabled"] == "true" and rev[f"{src}->{dst}.enabled"] == "false"
    assert rev[f"{src}->{dst}.emit.heartbeats.enabled"] == "false"  # none back into the standby
    # the old primary is written over its own address, the standby read over the backbone
    assert (rev[f"{src}.bootstrap.servers"], rev[f"{dst}.bootstrap.servers"]) == (
        "p:9092",
        "s:9093",
    )
    flow = {f"{src}->{dst}", f"{dst}->{src}"}
    same = {k: v for k, v in fwd.items()
            if not any(k.startswith(f) for f in flow) and not k.endswith("bootstrap.servers")
            and k != "clusters"}  # fmt: skip
    assert {k: rev[k] for k in same} == same  # timers, policy, factors: one function for both
    assert rev["clusters"] == f"{dst}, {src}"


def test_reverse_topic_names_follow_the_policy_from_the_standby():
    assert mirrormaker.remote_topic("orders", "west", "prefixed") == "west.orders"
    assert mirrormaker.remote_topic("orders", "west", "identity") == "orders"


class Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args):
        return f"{args.name}-id", args.inputs

    def call(self, args):
        return {}


@pytest.mark.parametrize("reverse", [False, True])
def test_the_reverse_part_is_declared_only_when_asked(monkeypatch, reverse):
    from components.local.parts import declare

    pulumi.runtime.set_mocks(Mocks(), preview=False)
    made: list[str] = []
    init = pulumi.dynamic.Resource.__init__

    def spy(self, provider, name, props_, opts=None, *a, **kw):
        made.append(name)
        return init(self, provider, name, props_, opts, *a, **kw)

    monkeypatch.setattr(pulumi.dynamic.Resource, "__init__", spy)
    cfg = yaml.safe_load(config.stack_file("local").read_text())["config"]
    declare("kx", "/tmp/kdrill-unit", "local", cfg, reverse=reverse)
    assert ("kx-mirrormaker2-reverse" in made) is reverse
    assert "kx-mirrormaker2" in made
    assert PROVIDERS["mirrormaker2-reverse"] is ReverseMirrorMakerProvider
