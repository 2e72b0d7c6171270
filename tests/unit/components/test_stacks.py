"""Every checked-in AWS stack, rendered under Pulumi's mocks: its graph per engine and
region, cost tags on every taggable resource, encryption, exposure and replication wiring."""

import ipaddress
from collections import Counter

import pytest

from components.aws.brokers import VOLATILE_TAGS
from components.aws.config import parse_stack_config
from components.aws.tags import COST_TAG_KEYS, PART_TAG, ROLE_TAG, is_taggable
from tests.unit.components.harness import AWS_STACKS, render_stack, stack_config

ROLES = ("primary", "standby")


def per_role(rendered, typ):
    return Counter(r.tags.get(ROLE_TAG) for r in rendered.of(typ))


# --- graph per engine -----------------------------------------------------------------------------------

EXPECTED_PER_REGION = {
    "msk-use1-usw2": {
        "aws:ec2/vpc:Vpc": 1,
        "aws:ec2/subnet:Subnet": 3,
        "aws:ec2/networkAcl:NetworkAcl": 3,
        "aws:msk/cluster:Cluster": 1,
        "aws:kms/key:Key": 1,
        "aws:ec2/vpcEndpoint:VpcEndpoint": 1,  # S3 gateway
        "aws:s3/bucket:Bucket": 1,  # evidence
        "aws:ec2/instance:Instance": 0,
        "aws:ebs/volume:Volume": 0,
    },
    "apache-use1-usw2": {
        "aws:ec2/vpc:Vpc": 1,
        "aws:ec2/subnet:Subnet": 3,
        "aws:ec2/networkAcl:NetworkAcl": 3,
        "aws:ec2/instance:Instance": 3,
        "aws:ebs/volume:Volume": 3,
        "aws:ec2/launchTemplate:LaunchTemplate": 1,
        "aws:lb/loadBalancer:LoadBalancer": 1,
        "aws:ec2/vpcEndpointService:VpcEndpointService": 1,
        "aws:ec2transitgateway/transitGateway:TransitGateway": 1,
        "aws:s3/bucket:Bucket": 1,
        "aws:msk/cluster:Cluster": 0,
    },
    "automq-use1-usw2": {
        "aws:ec2/vpc:Vpc": 1,
        "aws:ec2/instance:Instance": 3,
        "aws:ebs/volume:Volume": 0,  # open-source AutoMQ: WAL on S3
        "aws:s3/bucket:Bucket": 3,  # data, ops, evidence
        "aws:ec2/vpcEndpointService:VpcEndpointService": 1,
    },
}


@pytest.mark.parametrize("stack", AWS_STACKS)
def test_resource_graph_per_region(stack):
    rendered = render_stack(stack)
    for typ, want in EXPECTED_PER_REGION[stack].items():
        got = per_role(rendered, typ)
        for role in ROLES:
            assert got[role] == want, f"{stack}: {role} has {got[role]} x {typ}, expected {want}"


@pytest.mark.parametrize("stack", AWS_STACKS)
def test_children_are_named_from_their_component(stack):
    rendered = render_stack(stack)
    stray = [
        r.name
        for r in rendered.resources
        if not r.typ.startswith("pulumi:providers:")
        and not r.name.startswith("kdrill-")
        and r.name != "kdrill"
    ]
    assert not stray, f"resources not named from their component: {stray}"


def test_replication_wiring_msk_replicator():
    rendered = render_stack("msk-use1-usw2")
    (replicator,) = rendered.of("aws:msk/replicator:Replicator")
    info = replicator.inputs["replicationInfoList"]
    assert "msk-use1-usw2-primary" in info["sourceKafkaClusterArn"], replicator.name
    assert "msk-use1-usw2-standby" in info["targetKafkaClusterArn"], replicator.name
    assert info["consumerGroupReplications"][0]["synchroniseConsumerGroupOffsets"] is True
    assert replicator.provider and "aws-standby" in replicator.provider, (
        "replicator runs in the standby region"
    )
    for cluster in rendered.of("aws:msk/cluster:Cluster"):
        auth = cluster.inputs["clientAuthentication"]
        assert auth["sasl"]["iam"] is True, f"{cluster.name}: MSK Replicator needs IAM auth"


@pytest.mark.parametrize("stack", ["apache-use1-usw2", "automq-use1-usw2"])
def test_replication_wiring_mirrormaker2(stack):
    rendered = render_stack(stack)
    (cm,) = rendered.of("kubernetes:core/v1:ConfigMap")
    props = cm.inputs["data"]["mm2.properties"]
    regions = rendered.outputs["regions"]
    assert f"primary.bootstrap.servers={regions['primary']['bootstrapServers']}" in props
    assert f"standby.bootstrap.servers={regions['standby']['bootstrapServers']}" in props
    assert "primary->standby.sync.group.offsets.enabled=true" in props
    assert "standby->primary.enabled=false" in props
    (dep,) = rendered.of("kubernetes:apps/v1:Deployment")
    provider = rendered.named("kdrill-mm2-k8s")
    assert provider.inputs["context"] == stack_config(stack)["replication"]["kubernetes"]["context"]
    assert dep.provider and "kdrill-mm2-k8s" in dep.provider


@pytest.mark.parametrize("stack", AWS_STACKS)
def test_bucket_replication_targets_the_standby(stack):
    rendered = render_stack(stack)
    repl = rendered.of("aws:s3/bucketReplicationConfig:BucketReplicationConfig")
    assert repl, f"{stack}: no bucket replication rendered"
    standby_region = parse_stack_config(stack_config(stack)).regions.standby.region
    for r in repl:
        assert "us-east-1" in r.inputs["bucket"], f"{r.name} replicates from a non-primary bucket"
        dest = r.inputs["rules"][0]["destination"]["bucket"]
        assert dest.startswith("arn:aws:s3:::") and standby_region in dest, (
            f"{r.name} replicates to {dest}, not the standby"
        )
        assert r.provider and "aws-primary" in r.provider, (
            f"{r.name} is not managed in the primary region"
        )


def test_automq_settings_follow_its_documentation():
    rendered = render_stack("automq-use1-usw2")
    import base64

    instance = rendered.named("kdrill-primary-automq-fleet-broker-0")
    script = base64.b64decode(instance.inputs["userDataBase64"]).decode()
    assert (
        "s3.data.buckets=0@s3://kdrill-automq-use1-usw2-us-east-1-automq-data?region=us-east-1"
        in script
    )
    assert (
        "s3.ops.buckets=1@s3://kdrill-automq-use1-usw2-us-east-1-automq-ops?region=us-east-1"
        in script
    )
    assert "s3.wal.path=0@s3://kdrill-automq-use1-usw2-us-east-1-automq-data" in script


# --- tags ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", AWS_STACKS)
def test_cost_tags_on_every_taggable_resource(stack):
    rendered = render_stack(stack)
    checked = 0
    for r in rendered.resources:
        if not is_taggable(r.typ):
            continue
        checked += 1
        missing = [k for k in COST_TAG_KEYS if not r.tags.get(k)]
        assert not missing, f"{r.typ} {r.name} lacks cost tags {missing}"
        assert r.tags["kdrill:stack"] == stack, (
            f"{r.name} tagged with stack {r.tags['kdrill:stack']}"
        )
    assert checked > 30, f"{stack}: only {checked} taggable resources walked"


@pytest.mark.parametrize("stack", AWS_STACKS)
def test_launch_templates_tag_what_they_launch(stack):
    """Tag specs carry the stable cost tags; per-drill / per-environment ones (a new
    template version would replace fixed-IP brokers) are on the instances themselves."""
    rendered = render_stack(stack)
    stable = [k for k in COST_TAG_KEYS if k not in VOLATILE_TAGS]
    for lt in rendered.of("aws:ec2/launchTemplate:LaunchTemplate"):
        for spec in lt.inputs["tagSpecifications"]:
            missing = [k for k in stable if k not in spec["tags"]]
            assert not missing, f"{lt.name} {spec['resourceType']} tag spec lacks {missing}"
    for i in rendered.of("aws:ec2/instance:Instance"):
        missing = [k for k in COST_TAG_KEYS if k not in i.inputs["rootBlockDevice"]["tags"]]
        assert not missing, f"{i.name} root volume lacks {missing}"


# --- encryption, exposure ----------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", AWS_STACKS)
def test_every_bucket_versioned_encrypted_private(stack):
    rendered = render_stack(stack)
    buckets = {b.inputs["bucket"]: b.name for b in rendered.of("aws:s3/bucket:Bucket")}

    def covered(typ, ok):
        return {r.inputs["bucket"] for r in rendered.of(typ) if ok(r.inputs)}

    versioned = covered(
        "aws:s3/bucketVersioning:BucketVersioning",
        lambda i: i["versioningConfiguration"]["status"] == "Enabled",
    )
    encrypted = covered(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        lambda i: (
            i["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"]
            in ("AES256", "aws:kms")
        ),
    )
    private = covered(
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        lambda i: all(
            i[k]
            for k in (
                "blockPublicAcls",
                "blockPublicPolicy",
                "ignorePublicAcls",
                "restrictPublicBuckets",
            )
        ),
    )
    lifecycle = covered(
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", lambda i: i["rules"]
    )
    for bucket, name in buckets.items():
        assert bucket in versioned, f"{name} ({bucket}) is not versioned"
        assert bucket in encrypted, f"{name} ({bucket}) is not encrypted"
        assert bucket in private, f"{name} ({bucket}) does not block public access"
        assert bucket in lifecycle, f"{name} ({bucket}) has no lifecycle rules"


@pytest.mark.parametrize("stack", ["apache-use1-usw2"])
def test_log_volumes_encrypted_sized_and_attached(stack):
    rendered = render_stack(stack)
    storage = stack_config(stack)["storage"]
    attached = {
        a.inputs["volumeId"] for a in rendered.of("aws:ec2/volumeAttachment:VolumeAttachment")
    }
    for v in rendered.of("aws:ebs/volume:Volume"):
        assert v.inputs["encrypted"] is True, f"{v.name} is not encrypted"
        assert v.inputs["iops"] == storage["iops"], f"{v.name} iops {v.inputs['iops']}"
        assert v.inputs["throughput"] == storage["throughputMibps"], f"{v.name} throughput"
        assert v.inputs["type"] == storage["type"], f"{v.name} type"
        assert v.tags[PART_TAG] == "log-volume", v.name
        assert f"{v.name}-id" in attached, f"{v.name} is not attached to a broker"


def test_msk_encryption_and_auth():
    for c in render_stack("msk-use1-usw2").of("aws:msk/cluster:Cluster"):
        enc = c.inputs["encryptionInfo"]
        assert enc["encryptionInTransit"] == {"clientBroker": "TLS", "inCluster": True}, c.name
        assert enc["encryptionAtRestKmsKeyArn"], f"{c.name} has no KMS key at rest"
        assert c.inputs["clientAuthentication"]["unauthenticated"] is False, c.name


@pytest.mark.parametrize("stack", AWS_STACKS)
def test_kafka_ports_open_only_to_named_cidrs(stack):
    rendered = render_stack(stack)
    raw = stack_config(stack)
    cfg = parse_stack_config(raw)
    named = {cfg.regions.primary.cidr, cfg.regions.standby.cidr, *cfg.client_cidrs.values()}
    named |= {c.cidr for c in cfg.private_link.client_vpcs}
    if cfg.replication.kubernetes and cfg.replication.kubernetes.network:
        named.add(cfg.replication.kubernetes.network.cidr)
    for rule in rendered.of("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"):
        cidr = rule.inputs.get("cidrIpv4")
        if cidr is None:
            assert rule.inputs.get("referencedSecurityGroupId"), f"{rule.name} has no source"
            continue
        assert ipaddress.ip_network(cidr).prefixlen > 0, f"{rule.name} is open to {cidr}"
        assert cidr in named, f"{rule.name} opens ports to unnamed CIDR {cidr}"
    controller = [
        r
        for r in rendered.of("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r.inputs.get("fromPort") == 9093
    ]
    for r in controller:
        assert r.inputs["cidrIpv4"] in (cfg.regions.primary.cidr, cfg.regions.standby.cidr), (
            f"{r.name}: the KRaft controller port is reachable from outside its own VPC"
        )
        assert r.name.endswith("-from-vpc"), r.name


@pytest.mark.parametrize("stack", AWS_STACKS)
def test_exports_what_drills_and_cost_need(stack):
    regions = render_stack(stack).outputs["regions"]
    for role in ROLES:
        out = regions[role]
        for key in (
            "region",
            "bootstrapServers",
            "evidenceBucket",
            "vpcId",
            "networkAclIds",
            "brokerCount",
        ):
            assert out.get(key), f"{stack}: regions.{role}.{key} not exported"
        if not stack.startswith("msk"):
            assert out.get("endpointServiceName"), f"{stack}: {role} endpoint service not exported"
            assert len(out["instanceIds"]) == out["brokerCount"]
        else:
            assert out.get("clusterArn")
