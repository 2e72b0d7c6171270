"""CrossGuard validators for kdrill stacks: plain functions, importable and testable
without constructing a PolicyPack (which blocks, waiting for the engine).

Resource validators take (ResourceValidationArgs, report_violation); stack validators take
(StackValidationArgs, report_violation). Every message names the resource.
Property names are the engine's (camelCase), as CrossGuard sees them.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from components.aws.tags import (
    COST_TAG_KEYS,
    ENVIRONMENT_TAG,
    EXPIRES_AT_TAG,
    PART_TAG,
    REPLICATE_TAG,
    ROLE_TAG,
    is_taggable,
)

Report = Callable[..., None]

KAFKA_PORTS: tuple[tuple[int, int], ...] = ((9092, 9098), (9192, 9198), (2181, 2182))
WORLD = {"0.0.0.0/0", "::/0"}
SSE_ALGORITHMS = {"AES256", "aws:kms", "aws:kms:dsse"}
WAL_PARTS = {"log-volume", "wal-volume"}
DEFAULT_MIN_WAL_IOPS = 3000
DEFAULT_MAX_TTL_HOURS = 72

BUCKET = "aws:s3/bucket:Bucket"
BUCKETS = {BUCKET, "aws:s3/bucketV2:BucketV2"}  # BucketV2: the deprecated name, same resource
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
VERSIONINGS = {VERSIONING, "aws:s3/bucketVersioningV2:BucketVersioningV2"}
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
SSES = {
    SSE,
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
}
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
REPLICATION = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
VOLUME = "aws:ebs/volume:Volume"
MSK_CLUSTER = "aws:msk/cluster:Cluster"
INSTANCE = "aws:ec2/instance:Instance"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
SG_INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
LOAD_BALANCERS = {"aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer"}
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
NACL_RULE = "aws:ec2/networkAclRule:NetworkAclRule"
AWS_PROVIDER = "pulumi:providers:aws"


def _config(args: Any) -> Mapping[str, Any]:
    try:
        return args.get_config() or {}
    except Exception:  # no config schema / not configured
        return {}


# --- cost tags ---------------------------------------------------------------------------


def missing_cost_tags(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """Cost tag keys a taggable resource lacks (empty values count as missing)."""
    if not is_taggable(resource_type):
        return []
    tags = props.get("tags") or {}
    required = list(COST_TAG_KEYS)
    if tags.get(ENVIRONMENT_TAG) == "ephemeral":
        required.append(EXPIRES_AT_TAG)
    return [k for k in required if not tags.get(k)]


def validate_cost_tags(args: Any, report_violation: Report) -> None:
    missing = missing_cost_tags(args.resource_type, args.props)
    if missing:
        report_violation(
            f"{args.name} ({args.resource_type}) lacks cost tags: {', '.join(missing)}"
        )


# --- expiry of ephemeral stacks --------------------------------------------------------------


def expiry_problem(tags: Mapping[str, str], now: datetime, max_ttl: timedelta) -> str | None:
    if tags.get(ENVIRONMENT_TAG) != "ephemeral":
        return None
    raw = tags.get(EXPIRES_AT_TAG)
    if not raw:
        return f"is ephemeral but has no {EXPIRES_AT_TAG} tag"
    try:
        expires = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return f"{EXPIRES_AT_TAG}={raw!r} is not an ISO 8601 time"
    if expires.tzinfo is None:
        return f"{EXPIRES_AT_TAG}={raw!r} has no time zone"
    if expires > now + max_ttl:
        return f"{EXPIRES_AT_TAG}={raw} is more than {max_ttl} from now (ephemeral stacks must be reaped)"
    return None


def validate_expiry(args: Any, report_violation: Report) -> None:
    if not is_taggable(args.resource_type):
        return
    hours = float(_config(args).get("maxTtlHours", DEFAULT_MAX_TTL_HOURS))
    problem = expiry_problem(
        args.props.get("tags") or {}, datetime.now(UTC), timedelta(hours=hours)
    )
    if problem:
        report_violation(f"{args.name} ({args.resource_type}) {problem}")


def validate_stack_expiry(args: Any, report_violation: Report) -> None:
    """Stack-level expiry: the stack's own tags (`pulumi stack tag set`, what `kdrill env
    create` stamps), which the engine hands the pack whatever the stack's resources are --
    so it applies to the local stack, whose only resource (the fault switch) has no tags.
    A stack tagged environment=ephemeral must carry a kdrill:expires-at stack tag, an ISO
    8601 time with a zone, within maxTtlHours from now."""
    hours = float(_config(args).get("maxTtlHours", DEFAULT_MAX_TTL_HOURS))
    tags = dict(getattr(args, "stack_tags", None) or {})
    problem = expiry_problem(tags, datetime.now(UTC), timedelta(hours=hours))
    if problem:
        report_violation(f"this stack (its stack tags) {problem}")


# --- buckets ---------------------------------------------------------------------------------


def _by_bucket(resources: Iterable[Any], types: set[str]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for r in resources:
        if r.resource_type in types and r.props.get("bucket"):
            out.setdefault(r.props["bucket"], []).append(r)
    return out


def bucket_problems(resources: list[Any]) -> list[tuple[str, str]]:
    """(bucket resource name, problem) for every bucket that is not versioned, encrypted,
    private, or replicated when tagged `kdrill:replicate=required`."""
    versioning = _by_bucket(resources, VERSIONINGS)
    sse = _by_bucket(resources, SSES)
    pab = _by_bucket(resources, {PUBLIC_ACCESS_BLOCK})
    replication = _by_bucket(resources, {REPLICATION})
    problems = []
    for b in resources:
        if b.resource_type not in BUCKETS:
            continue
        name = b.props.get("bucket")
        if not name:
            problems.append(
                (b.name, "has no explicit bucket name, so its settings cannot be verified")
            )
            continue
        if not any(
            (v.props.get("versioningConfiguration") or {}).get("status") == "Enabled"
            for v in versioning.get(name, [])
        ):
            problems.append((b.name, f"bucket {name} is not versioned"))
        algorithms = {
            ((rule.get("applyServerSideEncryptionByDefault") or {}).get("sseAlgorithm"))
            for s in sse.get(name, [])
            for rule in s.props.get("rules") or []
        }
        if not algorithms & SSE_ALGORITHMS:
            problems.append((b.name, f"bucket {name} has no default encryption"))
        flags = (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        )
        if not any(all(p.props.get(f) is True for f in flags) for p in pab.get(name, [])):
            problems.append((b.name, f"bucket {name} does not block all public access"))
        if (b.props.get("tags") or {}).get(REPLICATE_TAG) == "required" and not any(
            any(rule.get("status") == "Enabled" for rule in r.props.get("rules") or [])
            for r in replication.get(name, [])
        ):
            problems.append(
                (
                    b.name,
                    f"bucket {name} must replicate to the standby but has no enabled replication rule",
                )
            )
    return problems


def validate_buckets(args: Any, report_violation: Report) -> None:
    for name, problem in bucket_problems(list(args.resources)):
        report_violation(f"{name}: {problem}")


# --- WAL / log volumes --------------------------------------------------------------------------


def validate_wal_volumes(args: Any, report_violation: Report) -> None:
    if args.resource_type != VOLUME:
        return
    part = (args.props.get("tags") or {}).get(PART_TAG)
    if part not in WAL_PARTS:
        return
    if args.props.get("encrypted") is not True:
        report_violation(f"{args.name} ({part}) is not encrypted")
    minimum = int(_config(args).get("minWalIops", DEFAULT_MIN_WAL_IOPS))
    iops = args.props.get("iops")
    if iops is None or int(iops) < minimum:
        report_violation(f"{args.name} ({part}) has iops={iops}, below the required {minimum}")


# --- Kafka ports never open to the world ---------------------------------------------------------


def covers_world(cidrs: Iterable[str]) -> bool:
    """True when the CIDRs together cover every IPv4 or every IPv6 address
    (0.0.0.0/0, or e.g. 0.0.0.0/1 + 128.0.0.0/1)."""
    nets = []
    for c in cidrs:
        try:
            nets.append(ipaddress.ip_network(c, strict=False))
        except (TypeError, ValueError):
            continue
    for version, world in ((4, "0.0.0.0/0"), (6, "::/0")):
        same = [n for n in nets if n.version == version]
        if same and [str(n) for n in ipaddress.collapse_addresses(same)] == [world]:  # type: ignore[arg-type]
            return True
    return False


def _touches_kafka(protocol: Any, from_port: Any, to_port: Any) -> bool:
    if str(protocol) in ("-1", "all"):
        return True
    if from_port is None or to_port is None:
        return False
    lo, hi = int(from_port), int(to_port)
    return any(lo <= k_hi and hi >= k_lo for k_lo, k_hi in KAFKA_PORTS)


def public_kafka_ingress(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """Descriptions of ingress entries that open a Kafka port to 0.0.0.0/0 or ::/0."""
    found = []
    if resource_type == SECURITY_GROUP:
        kafka_cidrs: set[str] = set()
        for rule in props.get("ingress") or []:
            cidrs = set(rule.get("cidrBlocks") or []) | set(rule.get("ipv6CidrBlocks") or [])
            if _touches_kafka(rule.get("protocol"), rule.get("fromPort"), rule.get("toPort")):
                kafka_cidrs |= cidrs
                if covers_world(cidrs):
                    found.append(
                        f"inline ingress {rule.get('fromPort')}-{rule.get('toPort')} from {sorted(cidrs)}"
                    )
        if not found and covers_world(kafka_cidrs):
            found.append(f"inline ingress rules together cover the internet: {sorted(kafka_cidrs)}")
    elif resource_type == SG_INGRESS_RULE:
        cidrs = {c for c in (props.get("cidrIpv4"), props.get("cidrIpv6")) if c}
        if covers_world(cidrs) and _touches_kafka(
            props.get("ipProtocol"), props.get("fromPort"), props.get("toPort")
        ):
            found.append(
                f"ingress {props.get('fromPort')}-{props.get('toPort')} from {sorted(cidrs)}"
            )
    elif resource_type == SG_RULE and props.get("type") == "ingress":
        cidrs = set(props.get("cidrBlocks") or []) | set(props.get("ipv6CidrBlocks") or [])
        if covers_world(cidrs) and _touches_kafka(
            props.get("protocol"), props.get("fromPort"), props.get("toPort")
        ):
            found.append(
                f"ingress {props.get('fromPort')}-{props.get('toPort')} from {sorted(cidrs)}"
            )
    return found


def validate_no_public_kafka(args: Any, report_violation: Report) -> None:
    for what in public_kafka_ingress(args.resource_type, args.props):
        report_violation(f"{args.name} opens a Kafka port to the internet: {what}")


def _private(cidr: str) -> bool:
    try:
        return ipaddress.ip_network(cidr, strict=False).is_private
    except ValueError:
        return False


def public_kafka_rule_sets(resources: Iterable[Any]) -> list[tuple[str, list[str]]]:
    """(security group, its rules) where separate ingress rules on Kafka ports together
    cover the internet (each alone may look private, e.g. 0.0.0.0/1 and 128.0.0.0/1)."""
    by_group: dict[str, list[tuple[str, set[str]]]] = {}
    for r in resources:
        p = r.props
        if r.resource_type == SG_INGRESS_RULE:
            proto, cidrs = p.get("ipProtocol"), {p.get("cidrIpv4"), p.get("cidrIpv6")} - {None}
        elif r.resource_type == SG_RULE and p.get("type") == "ingress":
            proto = p.get("protocol")
            cidrs = set(p.get("cidrBlocks") or []) | set(p.get("ipv6CidrBlocks") or [])
        else:
            continue
        if cidrs and _touches_kafka(proto, p.get("fromPort"), p.get("toPort")):
            by_group.setdefault(str(p.get("securityGroupId")), []).append((r.name, cidrs))
    out = []
    for group, rules in by_group.items():
        every = {c for _, cidrs in rules for c in cidrs}
        if covers_world(every) and not any(covers_world(c) for _, c in rules):
            public = [n for n, cidrs in rules if not all(_private(c) for c in cidrs)]
            out.append((group, sorted(public)))
    return out


def validate_no_public_kafka_sets(args: Any, report_violation: Report) -> None:
    for group, names in public_kafka_rule_sets(args.resources):
        report_violation(
            f"{', '.join(names)}: together open a Kafka port of {group} to the internet"
        )


# --- load balancers, launch templates ------------------------------------------------------------


def validate_internal_load_balancers(args: Any, report_violation: Report) -> None:
    """Brokers are reached privately (PrivateLink): no internet-facing load balancer."""
    if args.resource_type in LOAD_BALANCERS and args.props.get("internal") is not True:
        report_violation(
            f"{args.name}: load balancer is internet-facing (internal={args.props.get('internal')!r})"
        )


def _true(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def validate_encrypted_root_volumes(args: Any, report_violation: Report) -> None:
    """Launch templates' block devices (the brokers' root volumes) and instances' root
    block devices are encrypted."""
    if args.resource_type == LAUNCH_TEMPLATE:
        for m in args.props.get("blockDeviceMappings") or []:
            ebs = m.get("ebs") or {}
            if ebs and not _true(ebs.get("encrypted")):
                report_violation(
                    f"{args.name}: block device {m.get('deviceName')} is not encrypted"
                )
    elif args.resource_type == INSTANCE:
        root = args.props.get("rootBlockDevice") or {}
        if root and "encrypted" in root and not _true(root.get("encrypted")):
            report_violation(f"{args.name}: root volume is not encrypted")


# --- MSK ----------------------------------------------------------------------------------------------


def validate_msk_in_transit(args: Any, report_violation: Report) -> None:
    if args.resource_type != MSK_CLUSTER:
        return
    transit = (args.props.get("encryptionInfo") or {}).get("encryptionInTransit") or {}
    if transit.get("clientBroker") != "TLS":
        report_violation(
            f"{args.name}: MSK clientBroker encryption is {transit.get('clientBroker')!r}, must be 'TLS'"
        )
    if transit.get("inCluster") is False:
        report_violation(f"{args.name}: MSK in-cluster encryption is disabled")


def validate_msk_authenticated(args: Any, report_violation: Report) -> None:
    if args.resource_type != MSK_CLUSTER:
        return
    auth = args.props.get("clientAuthentication") or {}
    if auth.get("unauthenticated") is True:
        report_violation(f"{args.name}: MSK allows unauthenticated clients")


# --- regions and the fault switch -------------------------------------------------------------------


def validate_two_regions(args: Any, report_violation: Report) -> None:
    """A paired-region stack's AWS providers name two distinct regions."""
    regions = {
        r.props.get("region")
        for r in args.resources
        if r.resource_type == AWS_PROVIDER and r.props.get("region")
    }
    tagged = any((r.props.get("tags") or {}).get(ROLE_TAG) for r in args.resources)
    if tagged and len(regions) < 2:
        report_violation(
            f"primary and standby must be in two distinct regions; AWS providers name {sorted(regions)}"
        )


def validate_deny_rules_first(args: Any, report_violation: Report) -> None:
    """A network-ACL deny rule (the fault switch) must be evaluated before every allow rule
    of its ACL and direction: NACLs apply the lowest-numbered matching rule."""
    lowest_allow: dict[tuple[str, bool], int] = {}
    denies = []
    for r in args.resources:
        if r.resource_type != NACL_RULE:
            continue
        key = (str(r.props.get("networkAclId")), bool(r.props.get("egress")))
        number = int(r.props.get("ruleNumber") or 0)
        if r.props.get("ruleAction") == "allow":
            lowest_allow[key] = min(lowest_allow.get(key, number), number)
        elif r.props.get("ruleAction") == "deny":
            denies.append((r.name, key, number))
    for name, key, number in denies:
        allow = lowest_allow.get(key)
        if allow is not None and number >= allow:
            report_violation(
                f"{name}: deny rule {number} comes after allow rule {allow} of the same ACL, "
                "so it never applies"
            )


# --- standby capacity -------------------------------------------------------------------------------------

_SIZES = {
    "nano": 0.125,
    "micro": 0.25,
    "small": 0.5,
    "medium": 1,
    "large": 2,
    "xlarge": 4,
    "metal": 128,
}


def instance_units(instance_type: str) -> float | None:
    """Rough vCPU units of an instance size (`kafka.` prefix ignored): large=2, 4xlarge=16."""
    size = instance_type.removeprefix("kafka.").rsplit(".", 1)[-1]
    m = re.fullmatch(r"(\d+)xlarge", size)
    if m:
        return 4 * int(m.group(1))
    return _SIZES.get(size)


def capacity_by_role(resources: Iterable[Any]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for r in resources:
        role = (r.props.get("tags") or {}).get(ROLE_TAG)
        if role is None:
            continue
        if r.resource_type == MSK_CLUSTER:
            units = instance_units(
                (r.props.get("brokerNodeGroupInfo") or {}).get("instanceType", "")
            )
            count = int(r.props.get("numberOfBrokerNodes") or 0)
        elif r.resource_type == INSTANCE and (r.props.get("tags") or {}).get(PART_TAG) == "broker":
            units, count = instance_units(r.props.get("instanceType") or ""), 1
        else:
            continue
        totals[role] = totals.get(role, 0) + (units or 0) * count
    return totals


def validate_standby_capacity(args: Any, report_violation: Report) -> None:
    totals = capacity_by_role(args.resources)
    primary, standby = totals.get("primary", 0), totals.get("standby", 0)
    if primary and standby < primary:
        report_violation(
            f"standby broker capacity {standby:g} units is below the primary's {primary:g}: "
            "the standby cannot absorb peak load after failover"
        )
