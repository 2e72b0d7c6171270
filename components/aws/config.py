"""Typed stack configuration for the AWS patterns (stacks/Pulumi.<engine>-<pair>.yaml).

Every key lives in the `kdrill` namespace. `parse_stack_config` takes the plain mapping
(`{"engine": "msk", "regions": {...}, ...}`) so it can be tested without Pulumi;
`load_stack_config` reads the running stack's config and reports unknown or missing keys
by their full `kdrill:<key>` name.
"""

from __future__ import annotations

import ipaddress
import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from components import faults as registry

NAMESPACE = "kdrill"

Engine = Literal["msk", "apache", "automq"]
RegionRole = Literal["primary", "standby"]
REGION_ROLES: tuple[RegionRole, RegionRole] = ("primary", "standby")
NLB_LISTENERS = 50


class ConfigError(ValueError):
    """The stack config is missing a key, has an unknown key, or a value of the wrong shape."""


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True
    )


class RegionConfig(_Model):
    """One side of the pair: an AWS region, its VPC CIDR and exactly three AZs."""

    region: str
    cidr: str
    azs: list[str] = Field(min_length=3, max_length=3)

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, v: str) -> str:
        net = ipaddress.ip_network(v)
        if net.prefixlen > 20:
            raise ValueError(f"{v} is too small for three /22 private subnets (use /20 or larger)")
        return v

    @model_validator(mode="after")
    def _azs_in_region(self) -> RegionConfig:
        bad = [az for az in self.azs if not az.startswith(self.region)]
        if bad:
            raise ValueError(f"availability zones {bad} are not in region {self.region}")
        return self


class RegionsConfig(_Model):
    primary: RegionConfig
    standby: RegionConfig

    @model_validator(mode="after")
    def _distinct(self) -> RegionsConfig:
        if self.primary.region == self.standby.region:
            raise ValueError("primary and standby must be different regions")
        a, b = (ipaddress.ip_network(r.cidr) for r in (self.primary, self.standby))
        if a.overlaps(b):
            raise ValueError(f"VPC CIDRs overlap ({a} and {b}); peering needs disjoint ranges")
        return self

    def by_role(self, role: RegionRole) -> RegionConfig:
        return self.primary if role == "primary" else self.standby


class BrokerCapacity(_Model):
    """Broker count and size of one region. MSK instance types carry the `kafka.` prefix."""

    count: int = Field(ge=1)
    instance_type: str

    @model_validator(mode="after")
    def _multiple_of_azs(self) -> BrokerCapacity:
        if self.count % 3:
            raise ValueError(
                f"count={self.count}: brokers are spread over 3 AZs, use a multiple of 3"
            )
        return self


class BrokersConfig(_Model):
    kafka_version: str
    primary: BrokerCapacity
    standby: BrokerCapacity
    # EC2 engines only: the AMI, as an id or a launch-template `resolve:ssm:` reference.
    image: str = "resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"

    def by_role(self, role: RegionRole) -> BrokerCapacity:
        return self.primary if role == "primary" else self.standby


class VolumeConfig(_Model):
    """Per-broker EBS log (apache), WAL (automq with wal=ebs) or MSK broker storage."""

    type: Literal["gp3", "io2"] = "gp3"
    size_gib: int = Field(ge=10, le=16384)
    iops: int = Field(ge=3000)
    throughput_mibps: int | None = Field(default=None, ge=125, le=1000)

    @model_validator(mode="after")
    def _type_rules(self) -> VolumeConfig:
        if self.type == "io2" and self.throughput_mibps is not None:
            raise ValueError("io2 volumes have no throughput setting; remove throughputMibps")
        if self.type == "gp3" and self.iops > 16000:
            raise ValueError(f"gp3 iops={self.iops} exceeds 16000; use io2")
        return self


class BucketsConfig(_Model):
    """S3 naming, lifecycle and which buckets replicate primary -> standby."""

    prefix: str | None = None  # default: kdrill-<stack>
    noncurrent_days: int = Field(default=30, ge=1)
    evidence_days: int = Field(default=365, ge=1)
    replicate: list[Literal["evidence", "data", "ops"]] = Field(
        default_factory=lambda: ["evidence"]
    )


class AutoMQConfig(_Model):
    """AutoMQ release and WAL. Open-source releases are `automq-<version>_kafka-<kafka
    version>.tgz` (the Kafka version is `kdrill:brokers.kafkaVersion`); their block-device
    WAL is deprecated (AutoMQ/automq#2516, see issue #3037), so only the S3 WAL is offered.
    A block-device (EBS) WAL needs `edition: commercial` and the vendor's artifact name."""

    version: str = "1.5.0"
    wal: Literal["s3", "ebs"] = "s3"
    edition: Literal["open-source", "commercial"] = "open-source"
    # edition=commercial: the tarball AutoMQ supplies, staged in the artifacts bucket.
    commercial_artifact: str | None = None

    @model_validator(mode="after")
    def _wal_edition(self) -> AutoMQConfig:
        if self.wal == "ebs" and self.edition != "commercial":
            raise ValueError(
                "wal=ebs is a block-device WAL, which open-source AutoMQ no longer supports "
                "(its WAL is on S3: use wal=s3), or set edition=commercial"
            )
        if self.edition == "commercial" and not self.commercial_artifact:
            raise ValueError(
                "edition=commercial needs commercialArtifact (the tarball AutoMQ supplies; "
                "open-source releases are not the commercial edition)"
            )
        return self

    def artifact(self, kafka_version: str) -> str:
        if self.edition == "commercial":
            assert self.commercial_artifact is not None
            return self.commercial_artifact
        return f"automq-{self.version}_kafka-{kafka_version}.tgz"


class ArtifactsConfig(_Model):
    """Where brokers get their software: the VPCs have no internet route (no NAT, no internet
    gateway), so Kafka/AutoMQ and the JDK are staged in a bucket in each region and fetched
    through the VPC's S3 gateway endpoint (gateway endpoints serve same-region buckets only).
    `bucket` may contain `{region}`."""

    bucket: str = "kdrill-artifacts-{region}"
    prefix: str = "kdrill"
    jdk: str = "amazon-corretto-21-aarch64-linux-jdk.tar.gz"

    def bucket_for(self, region: str) -> str:
        return self.bucket.format(region=region)


class KubernetesNetwork(_Model):
    """Where the Kubernetes cluster's nodes are: a VPC in one of the pair's regions, attached
    to that region's transit gateway, so MirrorMaker 2 reaches the primary over the stack's
    inter-region link (and the cross-region fault cuts it)."""

    region_role: RegionRole = "standby"
    vpc_id: str
    cidr: str
    subnet_ids: list[str] = Field(min_length=1)
    route_table_ids: list[str] = Field(min_length=1)


class KubernetesTarget(_Model):
    """An existing cluster MirrorMaker 2 runs in; kdrill does not create it."""

    context: str
    namespace: str = "kdrill-mm2"
    kubeconfig: str | None = None  # default: the usual ~/.kube/config
    image: str = "apache/kafka:4.1.0"
    replicas: int = Field(default=1, ge=1)
    network: KubernetesNetwork | None = None
    # MSK IAM auth needs the aws-msk-iam-auth library on MirrorMaker 2's classpath; the
    # apache/kafka image does not ship it. Say so when the image carries it.
    image_has_msk_iam_auth: bool = False


class ReplicationConfig(_Model):
    kind: Literal["mirrormaker2", "msk-replicator", "automq-linking", "none"]
    topics: list[str] = Field(default_factory=lambda: [".*"])
    groups: list[str] = Field(default_factory=lambda: [".*"])
    kubernetes: KubernetesTarget | None = None
    # MSK Replicator only (components/aws/replication.py): the Replicator's
    # TopicReplication.StartingPosition and TopicNameConfiguration, both fixed at creation
    # (changing either replaces the Replicator). Unset: earliest, identical.
    starting_position: Literal["earliest", "latest"] | None = None
    topic_names: Literal["identical", "prefixed"] | None = None

    @model_validator(mode="after")
    def _replicator_only(self) -> ReplicationConfig:
        given = [k for k in ("starting_position", "topic_names") if getattr(self, k) is not None]
        if given and self.kind != "msk-replicator":
            keys = " and ".join(to_camel(k) for k in given)
            raise ValueError(
                f"replication.{keys} only apply to kind msk-replicator (MirrorMaker 2 names "
                f"topics by its replication policy), not {self.kind}; remove them"
            )
        return self


class ClientVpc(_Model):
    """A consumer VPC that gets an interface endpoint to the brokers' endpoint service."""

    name: str
    region_role: RegionRole
    vpc_id: str
    subnet_ids: list[str] = Field(min_length=1)
    cidr: str
    # The network ACL of the endpoint subnets: the `blackhole` fault adds deny rules to it.
    network_acl_id: str | None = None


class PrivateLinkConfig(_Model):
    allowed_principals: list[str] = Field(default_factory=list)
    client_vpcs: list[ClientVpc] = Field(default_factory=list)
    # Private hosted zone (in each client VPC) naming the brokers: <role>.<zone>
    zone: str = "kafka.kdrill.internal"


FAULT_PARAM_FIELDS = ("az_index", "duration")
"""FaultConfig's parameter fields: the AWS kinds' registry parameters it renders."""


class FaultConfig(_Model):
    """One entry of `kdrill:faults`: a fault kind from the registry (components/faults) that
    runs on AWS, checked there. Clearing the list restores the original graph.

    The parameter fields below are the parameters AWS renders, under camelCase keys
    (tests/unit/components/test_config.py checks they stay in step with the registry);
    `blackhole` takes none here: on AWS it blocks the Kafka (PrivateLink) endpoint."""

    kind: str
    region: RegionRole | None = None  # filled in by the registry's region rule (the primary)
    az_index: int | None = None  # region-degraded: which AZ (0, 1 or 2)
    duration: str | None = None  # fis-cross-region: ISO 8601, at most PT12H (default PT10M)

    @model_validator(mode="before")
    @classmethod
    def _against_registry(cls, data: Any) -> Any:
        """Check the entry with the registry and fill in its defaults (region, duration)
        before the fields are validated, so `FaultConfig(...)` and YAML get the same."""
        if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
            return data  # not a mapping / no kind: the field checks report it
        out = dict(data)
        given = {}
        for name in FAULT_PARAM_FIELDS:
            for key in {name, to_camel(name)} & set(out):
                if out[key] is not None:
                    given[name] = out.pop(key)
        try:
            spec = registry.resolve(
                registry.FaultSpec(out["kind"], out.get("region"), params=given),
                regions=REGION_ROLES,
                primary="primary",
                standby="standby",
                target="aws",
            )
        except registry.ParamError as e:
            raise ValueError(_param_message(e)) from None
        except registry.FaultError as e:
            raise ValueError(str(e)) from None
        out["region"] = spec.region
        out.update({n: v for n, v in spec.params.items() if n in FAULT_PARAM_FIELDS})
        return out


def _param_message(e: registry.ParamError) -> str:
    """A registry parameter error in stack-config words (`azIndex`, not `--param az_index`)."""
    key, p = to_camel(e.name), e.param
    if e.reason == "unknown":
        takes = [k.name for k in registry.kinds("aws") if e.name in k.params.model_fields]
        return f"{key} only applies to {' and '.join(takes) or 'no fault kind'}, not {e.kind}"
    if p is None:
        return str(e)
    if e.reason == "missing":
        return f"{e.kind} needs {key} ({p.help})"
    if e.reason == "range":
        return f"{e.kind}: {key}={e.value} is out of range {p.range}"
    if e.reason == "type":
        return f"{e.kind}: {key}={e.value!r} is not a {p.type}"
    return f"{e.kind}: {key}: {e.detail}"


class StackConfig(_Model):
    """Everything a paired-region AWS stack is made of."""

    pattern: str | None = None  # informational; `local` is the local runtime's stack, not this
    engine: Engine
    owner: str
    cost_center: str
    environment: Literal["production", "staging", "ephemeral"]
    drill_id: str = "none"
    expires_at: datetime | None = None
    # Stamped by `kdrill env create` (components/local/envs.py) on an ephemeral env's stack.
    env_id: str | None = None
    created_at: datetime | None = None
    regions: RegionsConfig
    inter_region: Literal["vpc-peering", "transit-gateway"] = "vpc-peering"
    client_cidrs: dict[str, str] = Field(default_factory=dict)
    brokers: BrokersConfig
    storage: VolumeConfig
    buckets: BucketsConfig = Field(default_factory=BucketsConfig)
    artifacts: ArtifactsConfig = Field(default_factory=ArtifactsConfig)
    # Session Manager access to brokers without an internet route: ssm, ssmmessages and
    # ec2messages interface endpoints in each region (billed per endpoint-hour and GB).
    ssm_endpoints: bool = False
    # Set by a drill at cutover (AwsTarget.stop_replication): MirrorMaker 2 scaled to 0, or
    # MSK Replicator excluding every topic and group (UpdateReplicationInfo, in place).
    replication_stopped: bool = False
    automq: AutoMQConfig | None = None
    replication: ReplicationConfig
    private_link: PrivateLinkConfig = Field(default_factory=PrivateLinkConfig)
    faults: list[FaultConfig] = Field(default_factory=list)

    @field_validator("client_cidrs")
    @classmethod
    def _named_cidrs(cls, v: dict[str, str]) -> dict[str, str]:
        for name, cidr in v.items():
            net = ipaddress.ip_network(cidr)
            if net.prefixlen == 0:
                raise ValueError(f"client CIDR {name}={cidr} opens Kafka to the world")
        return v

    @model_validator(mode="after")
    def _cross_field(self) -> StackConfig:
        if self.environment == "ephemeral" and self.expires_at is None:
            raise ValueError("environment=ephemeral needs expiresAt (ISO 8601 with time zone)")
        if self.expires_at is not None and self.expires_at.tzinfo is None:
            raise ValueError("expiresAt needs a time zone, e.g. 2025-01-31T18:00:00Z")
        allowed = {
            "msk": {"msk-replicator", "mirrormaker2", "none"},
            "apache": {"mirrormaker2", "none"},
            "automq": {"mirrormaker2", "automq-linking", "none"},
        }[self.engine]
        if self.replication.kind not in allowed:
            raise ValueError(
                f"replication {self.replication.kind} does not apply to engine {self.engine}; "
                f"choose one of {sorted(allowed)}"
            )
        if self.replication.kind == "mirrormaker2":
            k8s = self.replication.kubernetes
            if k8s is None:
                raise ValueError(
                    "replication kind mirrormaker2 needs replication.kubernetes.context"
                )
            if k8s.network is None:
                raise ValueError(
                    "replication kind mirrormaker2 needs replication.kubernetes.network (the "
                    "VPC its nodes run in) so it can reach the brokers over the stack's link"
                )
            if self.inter_region != "transit-gateway":
                raise ValueError(
                    "replication kind mirrormaker2 needs interRegion transit-gateway: VPC "
                    "peering is not transitive, so the Kubernetes VPC could not reach the "
                    "primary over the stack's inter-region link"
                )
            if self.engine == "msk" and not k8s.image_has_msk_iam_auth:
                raise ValueError(
                    "MirrorMaker 2 against MSK uses IAM auth: give replication.kubernetes.image "
                    "an image with aws-msk-iam-auth on its classpath and set imageHasMskIamAuth"
                )
        if self.engine == "automq" and self.automq is None:
            raise ValueError("engine automq needs the kdrill:automq block")
        if self.engine != "automq" and self.automq is not None:
            raise ValueError(f"kdrill:automq only applies to engine automq, not {self.engine}")
        if self.engine == "msk":
            bad = [
                r
                for r in REGION_ROLES
                if not self.brokers.by_role(r).instance_type.startswith("kafka.")
            ]
            if bad:
                raise ValueError(f"MSK instance types start with 'kafka.' ({', '.join(bad)})")
        # One NLB listener per broker (PrivateLink); listeners per NLB: 50, not adjustable
        # (https://docs.aws.amazon.com/elasticloadbalancing/latest/network/load-balancer-limits.html)
        big = [r for r in REGION_ROLES if self.brokers.by_role(r).count > NLB_LISTENERS]
        if self.engine != "msk" and big:
            raise ValueError(
                f"{', '.join(big)}: more than {NLB_LISTENERS} brokers, but PrivateLink gives each "
                f"broker its own NLB listener and a Network Load Balancer has at most {NLB_LISTENERS}"
            )
        if {"data", "ops"} & set(self.buckets.replicate) and self.engine != "automq":
            raise ValueError("buckets.replicate data/ops only exist for engine automq")
        if self.replication_stopped and self.replication.kind not in (
            "mirrormaker2",
            "msk-replicator",
        ):
            raise ValueError(
                "replicationStopped scales MirrorMaker 2 to 0 or excludes every topic and group "
                f"from MSK Replicator; replication {self.replication.kind} cannot be stopped "
                "through the stack"
            )
        for f in self.faults:
            if f.kind != "blackhole":
                continue
            clients = [c for c in self.private_link.client_vpcs if c.region_role == f.region]
            if not clients:
                raise ValueError(
                    f"blackhole on AWS blocks the client VPCs' private endpoints; the {f.region} "
                    "region has none (privateLink.clientVpcs)"
                )
            bare = [c.name for c in clients if c.network_acl_id is None]
            if bare:
                raise ValueError(
                    f"blackhole denies traffic on the endpoint subnets' network ACL: set "
                    f"privateLink.clientVpcs[].networkAclId for {', '.join(bare)}"
                )
        seen: set[tuple[str, str]] = set()
        for f in self.faults:
            key = (f.kind, f.region)
            if key in seen:
                raise ValueError(f"fault {f.kind} on {f.region} is listed twice")
            seen.add(key)
        return self

    def bucket_prefix(self, stack: str) -> str:
        return self.buckets.prefix or f"kdrill-{stack}"

    def faults_for(self, role: RegionRole) -> list[FaultConfig]:
        return [f for f in self.faults if f.region == role]


def _format_errors(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        where = f"{NAMESPACE}:" + ".".join(str(p) for p in e["loc"]) if e["loc"] else NAMESPACE
        if e["type"] == "missing":
            lines.append(f"{where}: missing (required)")
        elif e["type"] == "extra_forbidden":
            lines.append(f"{where}: unknown key")
        else:
            lines.append(f"{where}: {e['msg']}")
    return "invalid stack config:\n  " + "\n  ".join(lines)


def parse_stack_config(raw: dict[str, Any]) -> StackConfig:
    """Validate the `kdrill:*` keys (without the namespace) into a StackConfig."""
    try:
        return StackConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format_errors(err)) from None


def _decode(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value  # plain strings are stored unquoted


def load_stack_config() -> StackConfig:
    """Read every `kdrill:*` key of the running stack and validate it."""
    from pulumi.runtime.config import CONFIG, get_config_env

    everything = {**get_config_env(), **CONFIG.get()}
    raw = {
        key.split(":", 1)[1]: _decode(value)
        for key, value in everything.items()
        if key.startswith(f"{NAMESPACE}:")
    }
    return parse_stack_config(raw)
