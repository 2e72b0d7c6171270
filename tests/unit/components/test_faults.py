"""The fault switch (`kdrill:faults`): what each fault renders, and that clearing it
restores the original graph — every resource and every input identical."""

import copy

import pytest

from components.aws.config import FaultConfig
from components.aws.faults import ROUTE_TABLE_ACTION, TRANSIT_GATEWAY_ACTION, plan_faults
from tests.unit.components.harness import render, render_stack, stack_config

NACL_RULE = "aws:ec2/networkAclRule:NetworkAclRule"
STATE = "aws:ec2transitgateway/instanceState:InstanceState"


def with_faults(stack, faults):
    raw = copy.deepcopy(stack_config(stack))
    raw["faults"] = faults
    return render(raw, stack)


def deny_rules(rendered):
    return [r for r in rendered.of(NACL_RULE) if r.inputs["ruleAction"] == "deny"]


def diff(a, b):
    ga, gb = a.graph(), b.graph()
    added = sorted(set(gb) - set(ga))
    removed = sorted(set(ga) - set(gb))
    changed = sorted(k for k in set(ga) & set(gb) if ga[k] != gb[k])
    return added, removed, changed


def test_plan_faults_per_region():
    faults = [
        FaultConfig(kind="region-degraded", region="primary", az_index=1),
        FaultConfig(kind="blackhole", region="standby"),
        FaultConfig(kind="fis-cross-region", region="primary", duration="PT5M"),
    ]
    primary, standby = plan_faults(faults, "primary"), plan_faults(faults, "standby")
    assert primary.isolated_azs == (1,) and primary.stopped_azs == (1,)
    assert primary.fis_duration == "PT5M" and not primary.endpoint_blocked
    assert standby.endpoint_blocked and standby.isolated_azs == () and standby.fis_duration is None


def test_no_faults_no_deny_rules_and_brokers_running():
    clean = render_stack("apache-use1-usw2")
    assert not deny_rules(clean), [r.name for r in deny_rules(clean)]
    assert {s.inputs["state"] for s in clean.of(STATE)} == {"running"}


def test_region_loss_denies_every_primary_subnet_and_stops_its_brokers():
    lost = with_faults("apache-use1-usw2", [{"kind": "region-loss", "region": "primary"}])
    denies = deny_rules(lost)
    assert len(denies) == 6, [r.name for r in denies]  # 3 subnets x in/out
    for r in denies:
        assert r.name.startswith("kdrill-primary-"), f"{r.name}: fault leaked into the standby"
        assert r.inputs["cidrBlock"] == "0.0.0.0/0" and r.inputs["protocol"] == "-1", r.name
        assert r.inputs["ruleNumber"] < 100, f"{r.name} is evaluated after the allow rules"
    for s in lost.of(STATE):
        want = "stopped" if "-primary-" in s.name else "running"
        assert s.inputs["state"] == want, f"{s.name} is {s.inputs['state']}, expected {want}"


def test_region_loss_then_cleared_restores_the_graph_exactly():
    clean = render_stack("apache-use1-usw2")
    lost = with_faults("apache-use1-usw2", [{"kind": "region-loss", "region": "primary"}])
    cleared = with_faults("apache-use1-usw2", [])
    added, removed, changed = diff(clean, lost)
    assert {n for _, n in added} == {r.name for r in deny_rules(lost)}, added
    assert not removed, removed
    assert {n for _, n in changed} == {
        f"kdrill-primary-kafka-fleet-broker-{i}-state" for i in range(3)
    }, changed
    assert diff(clean, cleared) == ([], [], []), "clearing kdrill:faults did not restore the graph"


def test_msk_region_loss_is_isolation_only():
    lost = with_faults("msk-use1-usw2", [{"kind": "region-loss", "region": "primary"}])
    clean = render_stack("msk-use1-usw2")
    added, removed, changed = diff(clean, lost)
    assert all(t == NACL_RULE for t, _ in added), added
    assert not removed and not changed, (removed, changed)
    assert not lost.of(STATE), "MSK cannot be stopped; nothing should render an instance state"


def test_region_degraded_touches_one_az():
    degraded = with_faults(
        "automq-use1-usw2", [{"kind": "region-degraded", "region": "standby", "azIndex": 2}]
    )
    names = {r.name for r in deny_rules(degraded)}
    assert names == {
        "kdrill-standby-private-2-fault-deny-in",
        "kdrill-standby-private-2-fault-deny-out",
    }, names
    stopped = {s.name for s in degraded.of(STATE) if s.inputs["state"] == "stopped"}
    assert stopped == {"kdrill-standby-automq-fleet-broker-2-state"}, stopped


def test_blackhole_removes_principals_and_ingress():
    stack = "apache-use1-usw2"
    clean = render_stack(stack)
    blocked = with_faults(stack, [{"kind": "blackhole", "region": "primary"}])
    svc = blocked.named("kdrill-primary-privatelink-service")
    assert svc.inputs.get("allowedPrincipals") in (None, []), f"{svc.name} still allows principals"
    assert clean.named("kdrill-primary-privatelink-service").inputs["allowedPrincipals"]
    added, removed, changed = diff(clean, blocked)
    assert not added
    assert [n for _, n in removed] == ["kdrill-primary-privatelink-apps-use1-endpoint-ingress"], (
        removed
    )
    assert [n for _, n in changed] == ["kdrill-primary-privatelink-service"], changed


def test_blackhole_on_msk_empties_the_cluster_policy():
    blocked = with_faults("msk-use1-usw2", [{"kind": "blackhole", "region": "standby"}])
    policy = blocked.named("kdrill-standby-msk-connectivity-cluster-policy").inputs["policy"]
    assert '"Statement": []' in policy, policy
    assert (
        "111122223333"
        in blocked.named("kdrill-primary-msk-connectivity-cluster-policy").inputs["policy"]
    )


@pytest.mark.parametrize(
    "stack,action,target_type",
    [
        ("msk-use1-usw2", ROUTE_TABLE_ACTION, "aws:ec2:subnet"),
        ("apache-use1-usw2", TRANSIT_GATEWAY_ACTION, "aws:ec2:transit-gateway"),
    ],
)
def test_fis_template_rendered_and_exported(stack, action, target_type):
    rendered = with_faults(
        stack, [{"kind": "fis-cross-region", "region": "primary", "duration": "PT15M"}]
    )
    (template,) = rendered.of("aws:fis/experimentTemplate:ExperimentTemplate")
    (act,) = template.inputs["actions"]
    assert act["actionId"] == action, template.name
    params = {p["key"]: p["value"] for p in act["parameters"]}
    assert params == {"region": "us-west-2", "duration": "PT15M"}, params
    (target,) = template.inputs["targets"]
    assert target["resourceType"] == target_type
    tags = {t["key"]: t["value"] for t in target["resourceTags"]}
    assert tags == {"kdrill:stack": stack, "kdrill:region-role": "primary"}
    exported = rendered.outputs["regions"]["primary"]["faults"]["fisExperimentTemplateId"]
    assert exported == f"{template.name}-id"
    assert not render_stack(stack).of("aws:fis/experimentTemplate:ExperimentTemplate")
