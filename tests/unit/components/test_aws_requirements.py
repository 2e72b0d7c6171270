"""The AWS programs against AWS's and AutoMQ's documented requirements (issue 20): each test
names the requirement and fails on a program that misses it. Sources are cited where the
requirement is implemented (components/aws/*)."""

import base64
import copy
import json
import re

import pytest

from components.aws.config import ConfigError, parse_stack_config
from components.aws.replication import REPLICATOR_CLUSTER_ACTIONS
from tests.unit.components.harness import render, render_stack, stack_config

INSTANCE = "aws:ec2/instance:Instance"


def user_data(instance) -> str:
    return base64.b64decode(instance.inputs["userDataBase64"]).decode()


def props(script: str) -> dict[str, str]:
    body = script.split("<<'PROPS'\n", 1)[1].split("PROPS\n", 1)[0]
    return dict(line.split("=", 1) for line in body.splitlines() if line)


# --- item 1: MSK cross-region replication ----------------------------------------------------


def test_msk_replicator_source_has_multi_vpc_iam_and_a_service_principal_policy():
    rendered = render_stack("msk-use1-usw2")
    source = rendered.named("kdrill-primary-msk-cluster")
    vpc = source.inputs["brokerNodeGroupInfo"]["connectivityInfo"]["vpcConnectivity"]
    assert vpc["clientAuthentication"]["sasl"]["iam"] is True
    assert source.inputs["clientAuthentication"]["unauthenticated"] is False
    policy = json.loads(
        rendered.named("kdrill-primary-msk-connectivity-cluster-policy").inputs["policy"]
    )
    service = [
        s for s in policy["Statement"] if s["Principal"] == {"Service": "kafka.amazonaws.com"}
    ]
    assert len(service) == 1, policy
    assert {
        "kafka:CreateVpcConnection",
        "kafka:GetBootstrapBrokers",
        "kafka:DescribeClusterV2",
    } <= set(service[0]["Action"])
    assert service[0]["Resource"].startswith("arn:aws:kafka:us-east-1:"), service


def test_msk_replicator_role_mirrors_the_managed_policy():
    rendered = render_stack("msk-use1-usw2")
    policy = json.loads(rendered.named("kdrill-replicator-policy").inputs["policy"])
    cluster = next(s for s in policy["Statement"] if s.get("Sid") == "ClusterPermissions")
    assert "kafka-cluster:WriteDataIdempotently" in cluster["Action"]
    assert set(REPLICATOR_CLUSTER_ACTIONS) <= set(cluster["Action"])
    assert len(cluster["Resource"]) == 2  # scoped to the two clusters, not cluster/*


def test_msk_replicator_starting_position_and_topic_names_are_explicit():
    (replicator,) = render_stack("msk-use1-usw2").of("aws:msk/replicator:Replicator")
    (topics,) = replicator.inputs["replicationInfoList"]["topicReplications"]
    assert topics["startingPosition"] == {"type": "EARLIEST"}
    assert topics["topicNameConfiguration"] == {"type": "IDENTICAL"}


# --- item 2: no internet egress ----------------------------------------------------------------


@pytest.mark.parametrize("stack", ["apache-use1-usw2", "automq-use1-usw2"])
def test_user_data_fetches_only_through_the_s3_gateway_endpoint(stack):
    rendered = render_stack(stack)
    assert not rendered.of("aws:ec2/natGateway:NatGateway")
    assert not rendered.of("aws:ec2/internetGateway:InternetGateway")
    for instance in rendered.of(INSTANCE):
        region = "us-east-1" if "-primary-" in instance.name else "us-west-2"
        script = user_data(instance)
        assert not re.search(r"\b(dnf|yum|curl|wget|pip)\b", script), instance.name
        urls = set(re.findall(r"https?://[^\s&'\"]+", script))
        assert urls == {f"https://s3.{region}.amazonaws.com"}, (instance.name, urls)
        buckets = set(re.findall(r"s3://([^/?\s]+)", script))
        allowed = {f"kdrill-artifacts-{region}"} | {
            b for b in buckets if b.startswith(f"kdrill-{stack}-{region}-automq-")
        }
        assert buckets <= allowed and f"kdrill-artifacts-{region}" in buckets, buckets
    endpoints = [
        e
        for e in rendered.of("aws:ec2/vpcEndpoint:VpcEndpoint")
        if e.inputs["vpcEndpointType"] == "Gateway"
    ]
    assert sorted(e.inputs["serviceName"] for e in endpoints) == [
        "com.amazonaws.us-east-1.s3",
        "com.amazonaws.us-west-2.s3",
    ]
    role_policies = [
        json.loads(p.inputs["policy"])
        for p in rendered.of("aws:iam/rolePolicy:RolePolicy")
        if p.name.endswith("-artifacts-policy")
    ]
    assert len(role_policies) == 2
    for p in role_policies:
        assert p["Statement"][0]["Resource"][0].startswith("arn:aws:s3:::kdrill-artifacts-")


# --- item 3: AutoMQ artifacts and WAL ----------------------------------------------------------


def test_automq_release_artifact_names_the_kafka_version():
    rendered = render_stack("automq-use1-usw2")
    script = user_data(rendered.named("kdrill-primary-automq-fleet-broker-0"))
    kafka = stack_config("automq-use1-usw2")["brokers"]["kafkaVersion"]
    assert f"/kdrill/automq-1.5.0_kafka-{kafka}.tgz" in script, script


def test_automq_block_wal_needs_the_commercial_edition_modelled():
    raw = copy.deepcopy(stack_config("automq-use1-usw2"))
    raw["automq"] = {"version": "1.5.0", "wal": "ebs"}
    with pytest.raises(ConfigError, match="open-source AutoMQ no longer supports"):
        parse_stack_config(raw)
    raw["automq"]["edition"] = "commercial"
    with pytest.raises(ConfigError, match="commercialArtifact"):
        parse_stack_config(raw)
    raw["automq"]["commercialArtifact"] = "automq-enterprise-5.0.tgz"
    rendered = render(raw, "automq-use1-usw2")
    script = user_data(rendered.named("kdrill-primary-automq-fleet-broker-0"))
    assert "/kdrill/automq-enterprise-5.0.tgz" in script and "s3.wal.path=/dev/nvme1n1" in script


# --- item 4: PrivateLink, one address per broker ----------------------------------------------


@pytest.mark.parametrize("stack", ["apache-use1-usw2", "automq-use1-usw2"])
def test_each_broker_is_reachable_at_the_address_it_advertises(stack):
    raw = copy.deepcopy(stack_config(stack))
    raw.setdefault("privateLink", {})["clientVpcs"] = [
        {"name": "apps", "regionRole": "primary", "vpcId": "vpc-apps", "subnetIds": ["subnet-a"],
         "cidr": "10.60.0.0/16"}
    ]  # fmt: skip
    rendered = render(raw, stack)
    zone = rendered.named("kdrill-primary-privatelink-apps-zone")
    assert zone.inputs["vpcs"] == [{"vpcId": "vpc-apps", "vpcRegion": "us-east-1"}]
    endpoint = rendered.named("kdrill-primary-privatelink-apps-endpoint")
    records = {r.inputs["name"]: r.inputs for r in rendered.of("aws:route53/record:Record")}
    listeners = {
        li.inputs["port"]: li.inputs["defaultActions"][0]["targetGroupArn"]
        for li in rendered.of("aws:lb/listener:Listener")
        if "-primary-" in li.name
    }
    attachments = {
        a.inputs["targetGroupArn"]: a.inputs
        for a in rendered.of("aws:lb/targetGroupAttachment:TargetGroupAttachment")
    }
    brokers = [i for i in rendered.of(INSTANCE) if "-primary-" in i.name]
    assert brokers
    for instance in brokers:
        p = props(user_data(instance))
        node = int(p["node.id"])
        (advertised,) = [
            a for a in p["advertised.listeners"].split(",") if a.startswith("PRIVATELINK://")
        ]
        host, port = advertised.removeprefix("PRIVATELINK://").rsplit(":", 1)
        # advertised host -> zone record -> the client VPC's endpoint
        assert host.endswith("." + zone.inputs["name"]), (host, zone.inputs["name"])
        record = records[host]
        assert record["zoneId"] == f"{zone.name}-zone-id"
        assert record["records"] == [f"{endpoint.name}.vpce.mock"]
        # NLB port -> target group -> this broker, on the port its PRIVATELINK listener binds
        target = attachments[listeners[int(port)]]
        assert target["targetId"] == f"{instance.name}-id", (node, target)
        (bound,) = [x for x in p["listeners"].split(",") if x.startswith("PRIVATELINK://")]
        assert int(bound.rsplit(":", 1)[1]) == target["port"]


# --- item 7: replacements and data ---------------------------------------------------------------


def test_a_new_drill_id_does_not_touch_launch_templates():
    raw = copy.deepcopy(stack_config("apache-use1-usw2"))
    a = render({**raw, "drillId": "drill-a"}, "apache-use1-usw2")
    b = render({**raw, "drillId": "drill-b"}, "apache-use1-usw2")
    lt = "aws:ec2/launchTemplate:LaunchTemplate"
    specs_b = {t.name: t.inputs["tagSpecifications"] for t in b.of(lt)}
    assert len(specs_b) == 2
    for t in a.of(lt):
        assert t.inputs["tagSpecifications"] == specs_b[t.name], t.name
    for i in a.of(INSTANCE):
        assert i.opts.delete_before_replace is True, f"{i.name}: fixed IP, delete first"
        assert "launchTemplate" in (i.opts.ignore_changes or []), i.name


@pytest.mark.parametrize(
    "stack,environment,protect",
    [
        ("apache-use1-usw2", "staging", False),
        ("msk-use1-usw2", "production", True),
        ("automq-use1-usw2", "production", True),
    ],
)
def test_data_is_kept_outside_ephemeral_stacks(stack, environment, protect):
    raw = {**copy.deepcopy(stack_config(stack)), "environment": environment}
    rendered = render_stack(stack) if environment == "staging" else render(raw, stack)
    data = (
        rendered.of("aws:ebs/volume:Volume")
        + rendered.of("aws:msk/cluster:Cluster")
        + [b for b in rendered.of("aws:s3/bucket:Bucket") if "automq-data" in b.name]
    )
    assert len(data) >= 2
    for r in data:
        assert r.opts.retain_on_delete is True, r.name
        assert bool(r.opts.protect) is protect, r.name
    for c in render_stack("msk-use1-usw2").of("aws:msk/cluster:Cluster"):
        assert c.opts.custom_timeouts.create == "120m", c.name


def test_ephemeral_stacks_keep_nothing():
    raw = copy.deepcopy(stack_config("automq-use1-usw2"))
    raw.update(environment="ephemeral", expiresAt="2099-01-01T00:00:00Z")
    for b in render(raw, "automq-use1-usw2").of("aws:s3/bucket:Bucket"):
        assert not b.opts.retain_on_delete and not b.opts.protect, b.name


# --- item 8: the replication path --------------------------------------------------------------


@pytest.mark.parametrize("stack", ["apache-use1-usw2", "automq-use1-usw2"])
def test_mirrormaker2_reaches_the_brokers_over_the_stacks_link(stack):
    rendered = render_stack(stack)
    net = stack_config(stack)["replication"]["kubernetes"]["network"]
    attachment = rendered.named("kdrill-link-mirrormaker2-vpc-attachment")
    assert attachment.inputs["vpcId"] == net["vpcId"]
    assert attachment.inputs["transitGatewayId"] == "kdrill-link-standby-tgw-id"
    routes = [
        r
        for r in rendered.of("aws:ec2/route:Route")
        if r.inputs["routeTableId"] in net["routeTableIds"]
    ]
    cfg = parse_stack_config(stack_config(stack))
    assert {r.inputs["destinationCidrBlock"] for r in routes} == {
        cfg.regions.primary.cidr,
        cfg.regions.standby.cidr,
    }
    back = rendered.named("kdrill-link-primary-to-mirrormaker2")
    assert back.inputs["destinationCidrBlock"] == net["cidr"]
    assert back.inputs["transitGatewayAttachmentId"] == "kdrill-link-tgw-peering-id"
    for role in ("primary", "standby"):  # replies from the brokers' VPCs
        vpc_route = rendered.named(f"kdrill-link-{role}-vpc-to-mirrormaker2")
        assert vpc_route.inputs["destinationCidrBlock"] == net["cidr"]
        assert vpc_route.inputs["transitGatewayId"] == f"kdrill-link-{role}-tgw-id"
    for role in ("primary", "standby"):
        rule = rendered.named(f"kdrill-{role}-kafka-from-mirrormaker2")
        assert rule.inputs["cidrIpv4"] == net["cidr"] and rule.inputs["fromPort"] == 9092
        acl = rendered.named(f"kdrill-{role}-private-0-allow-mirrormaker2-in")
        assert acl.inputs["cidrBlock"] == net["cidr"]


def test_mirrormaker2_config_is_refused_where_it_could_not_replicate():
    raw = copy.deepcopy(stack_config("apache-use1-usw2"))
    raw["interRegion"] = "vpc-peering"
    with pytest.raises(ConfigError, match="peering is not transitive"):
        parse_stack_config(raw)
    raw = copy.deepcopy(stack_config("apache-use1-usw2"))
    del raw["replication"]["kubernetes"]["network"]
    with pytest.raises(ConfigError, match="kubernetes.network"):
        parse_stack_config(raw)
    raw = copy.deepcopy(stack_config("msk-use1-usw2"))
    raw["interRegion"] = "transit-gateway"
    raw["replication"] = copy.deepcopy(stack_config("apache-use1-usw2")["replication"])
    with pytest.raises(ConfigError, match="aws-msk-iam-auth"):
        parse_stack_config(raw)
    raw["replication"]["kubernetes"]["imageHasMskIamAuth"] = True
    parse_stack_config(raw)


def test_ssm_endpoints_give_operators_access_without_internet():
    raw = {**copy.deepcopy(stack_config("apache-use1-usw2")), "ssmEndpoints": True}
    rendered = render(raw, "apache-use1-usw2")
    interface = {
        e.inputs["serviceName"]
        for e in rendered.of("aws:ec2/vpcEndpoint:VpcEndpoint")
        if e.inputs["vpcEndpointType"] == "Interface" and e.inputs.get("privateDnsEnabled")
    }
    for region in ("us-east-1", "us-west-2"):
        for service in ("ssm", "ssmmessages", "ec2messages"):
            assert f"com.amazonaws.{region}.{service}" in interface
    https = rendered.named("kdrill-primary-ssm-https-from-vpc")
    assert (https.inputs["fromPort"], https.inputs["cidrIpv4"]) == (443, "10.42.0.0/16")


def test_replication_stopped_scales_mirrormaker2_to_zero():
    raw = {**copy.deepcopy(stack_config("automq-use1-usw2")), "replicationStopped": True}
    (dep,) = render(raw, "automq-use1-usw2").of("kubernetes:apps/v1:Deployment")
    assert dep.inputs["spec"]["replicas"] == 0
    (dep,) = render_stack("automq-use1-usw2").of("kubernetes:apps/v1:Deployment")
    assert dep.inputs["spec"]["replicas"] == 1


def test_more_brokers_than_nlb_listeners_is_refused():
    raw = copy.deepcopy(stack_config("apache-use1-usw2"))
    raw["brokers"]["standby"] = {"count": 51, "instanceType": "m7g.xlarge"}
    with pytest.raises(ConfigError, match="a Network Load Balancer has at most 50"):
        parse_stack_config(raw)
