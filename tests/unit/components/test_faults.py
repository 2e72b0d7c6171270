"""The fault switch (`kdrill:faults`): what each fault renders, and that clearing it
restores the original graph — every resource and every input identical."""

import copy
import json

import pytest

from components.aws.config import ConfigError, FaultConfig, parse_stack_config
from components.aws.faults import (
    DISRUPT_CONNECTIVITY_ACTION,
    FIS_LOGGING_ACTIONS,
    FIS_NACL_ACTIONS,
    ROUTE_TABLE_ACTION,
    S3_REPLICATION_UNDER_LOSS,
    TRANSIT_GATEWAY_ACTION,
    plan_faults,
)
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


def test_blackhole_is_a_nacl_deny_on_the_endpoint_subnets():
    """Issue 20 item 6: stateless NACL denies (they cut open connections); principals and
    security-group rules, which leave tracked flows alive, are not what the fault changes."""
    stack = "apache-use1-usw2"
    clean = render_stack(stack)
    blocked = with_faults(stack, [{"kind": "blackhole", "region": "primary"}])
    added, removed, changed = diff(clean, blocked)
    assert not removed and not changed, (removed, changed)
    rules = [blocked.named(n) for _, n in added]
    assert {r.typ for r in rules} == {NACL_RULE}, added
    nacl = stack_config(stack)["privateLink"]["clientVpcs"][0]["networkAclId"]
    by_dir = {r.inputs["egress"]: r.inputs for r in rules}
    assert set(by_dir) == {True, False}, added
    for inputs in by_dir.values():
        assert inputs["networkAclId"] == nacl and inputs["ruleAction"] == "deny"
        assert inputs["ruleNumber"] < 100  # before the client NACL's allow rules
        assert inputs["cidrBlock"] == "10.60.0.0/16"
    ingress = by_dir[False]
    assert (ingress["fromPort"], ingress["toPort"]) == (9100, 9102), ingress
    assert blocked.named("kdrill-primary-privatelink-service").inputs["allowedPrincipals"]


def test_blackhole_needs_client_vpcs_with_their_nacl():
    raw = copy.deepcopy(stack_config("msk-use1-usw2"))
    raw["faults"] = [{"kind": "blackhole", "region": "standby"}]
    with pytest.raises(ConfigError, match="standby region has none"):
        parse_stack_config(raw)
    raw = copy.deepcopy(stack_config("apache-use1-usw2"))
    del raw["privateLink"]["clientVpcs"][0]["networkAclId"]
    raw["faults"] = [{"kind": "blackhole"}]
    with pytest.raises(ConfigError, match="networkAclId for apps-use1"):
        parse_stack_config(raw)


def test_msk_cluster_policy_never_has_an_empty_statement():
    """AWS rejects `"Statement": []`: no statement, no ClusterPolicy resource."""
    raw = copy.deepcopy(stack_config("msk-use1-usw2"))
    raw["privateLink"] = {"allowedPrincipals": []}
    rendered = render(raw, "msk-use1-usw2")
    policies = rendered.of("aws:msk/clusterPolicy:ClusterPolicy")
    assert [p.name for p in policies] == ["kdrill-primary-msk-connectivity-cluster-policy"]
    for p in policies:
        assert json.loads(p.inputs["policy"])["Statement"], p.name
    raw["replication"] = {"kind": "none"}
    assert not render(raw, "msk-use1-usw2").of("aws:msk/clusterPolicy:ClusterPolicy")


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
    template = rendered.named("kdrill-primary-fis-template")
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


def test_fis_templates_have_documented_permissions_stop_conditions_and_logging():
    """Issue 20 item 5."""
    rendered = with_faults(
        "msk-use1-usw2", [{"kind": "fis-cross-region", "region": "primary", "duration": "PT5M"}]
    )
    policy = json.loads(rendered.named("kdrill-primary-fis-policy").inputs["policy"])
    actions = {a for st in policy["Statement"] for a in st["Action"]}
    documented = {
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeManagedPrefixLists",
        "ec2:GetManagedPrefixListEntries",
        "ec2:DescribeVpcPeeringConnections",
        "ec2:ModifyVpcEndpoint",
        *FIS_NACL_ACTIONS,
        *FIS_LOGGING_ACTIONS,
    }
    assert documented <= actions, sorted(documented - actions)
    templates = rendered.of("aws:fis/experimentTemplate:ExperimentTemplate")
    assert len(templates) == 2
    rendered.named("kdrill-primary-fis-abort")  # the stop condition's alarm exists
    for t in templates:
        (stop,) = t.inputs["stopConditions"]
        assert stop["source"] == "aws:cloudwatch:alarm", stop
        assert stop["value"].endswith("kdrill-primary-fis-abort"), stop
        logs = t.inputs["logConfiguration"]
        assert logs["logSchemaVersion"] == 2
        assert logs["cloudwatchLogsConfiguration"]["logGroupArn"].endswith(":*")
    nacl = rendered.named("kdrill-primary-fis-disrupt-connectivity")
    (act,) = nacl.inputs["actions"]
    assert act["actionId"] == DISRUPT_CONNECTIVITY_ACTION
    assert {p["key"]: p["value"] for p in act["parameters"]} == {"scope": "all", "duration": "PT5M"}
    faults = rendered.outputs["regions"]["primary"]["faults"]
    assert faults["fisDisruptConnectivityTemplateId"] == f"{nacl.name}-id"


def test_region_loss_forces_the_stops_and_states_s3_replication():
    """Issue 20 item 9: a lost region does not shut down cleanly; S3 CRR keeps running."""
    lost = with_faults("automq-use1-usw2", [{"kind": "region-loss", "region": "primary"}])
    for s in lost.of(STATE):
        primary = "-primary-" in s.name
        assert s.inputs.get("force", False) is primary, s.name
    faults = lost.outputs["regions"]["primary"]["faults"]
    assert faults["forcedStop"] is True and faults["s3Replication"] == S3_REPLICATION_UNDER_LOSS
    assert lost.outputs["regions"]["standby"]["faults"]["s3Replication"] is None
    degraded = with_faults(
        "automq-use1-usw2", [{"kind": "region-degraded", "region": "primary", "azIndex": 0}]
    )
    assert not any(s.inputs.get("force") for s in degraded.of(STATE))
