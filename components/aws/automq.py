"""AutoMQCluster: AutoMQ on EC2 with separate S3 data and ops buckets and its WAL.

AutoMQ's documented settings are used: `s3.data.buckets`, `s3.ops.buckets` and
`s3.wal.path`. The open-source edition's WAL is on S3 (the data bucket); the commercial
editions also offer an EBS WAL, chosen with `kdrill:automq.wal: ebs` (one encrypted
io2/gp3 volume per broker, tagged `wal-volume`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi

from components.aws.apache import (
    LOG_DIR,
    ArtifactSource,
    bootstrap_servers,
    cluster_id,
    kraft_properties,
    render_properties,
    systemd_unit,
)
from components.aws.brokers import BrokerFleet, BrokerFleetArgs, BrokerSlot, broker_slots
from components.aws.config import (
    AutoMQConfig,
    BrokerCapacity,
    RegionConfig,
    RegionRole,
    VolumeConfig,
)
from components.aws.storage import ReplicationTarget, SecureBucket, SecureBucketArgs

WAL_DEVICE = "/dev/nvme1n1"


def s3_url(bucket_id: int, bucket: str, region: str) -> str:
    return f"{bucket_id}@s3://{bucket}?region={region}&endpoint=https://s3.{region}.amazonaws.com"


def automq_properties(
    slot: BrokerSlot,
    slots: Sequence[BrokerSlot],
    data_bucket: str,
    ops_bucket: str,
    region: str,
    wal: str,
    zone: str | None = None,
) -> dict[str, str]:
    props = kraft_properties(slot, slots, zone)
    props.update(
        {
            "s3.data.buckets": s3_url(0, data_bucket, region),
            "s3.ops.buckets": s3_url(1, ops_bucket, region),
            # Open source: WAL objects in the data bucket. Commercial: a raw EBS block device.
            "s3.wal.path": s3_url(0, data_bucket, region) if wal == "s3" else WAL_DEVICE,
            "elasticstream.enable": "true",
        }
    )
    return props


def user_data(
    slot: BrokerSlot,
    cfg: AutoMQConfig,
    kafka_version: str,
    props: Mapping[str, str],
    cid: str,
    source: ArtifactSource,
) -> str:
    """The release is `automq-<version>_kafka-<kafka version>.tgz`, the name AutoMQ's own
    release workflow downloads (AutoMQ/automq .github/workflows/docker-kafka-release.yaml),
    staged in the region's artifacts bucket (no internet route from the VPC)."""
    home = f"/opt/automq-{cfg.version}"
    # The EBS WAL is a raw block device: wait for it to attach, never format or mount it.
    wal_wait = f"for i in $(seq 60); do [ -b {WAL_DEVICE} ] && break; sleep 5; done\n"
    return (
        "#!/bin/bash\nset -euo pipefail\n"
        + (wal_wait if cfg.wal == "ebs" else "")
        + source.jdk_install()
        + f"id kafka || useradd -r -d /var/lib/kafka kafka\nmkdir -p {LOG_DIR} {home}\n"
        + source.fetch(cfg.artifact(kafka_version), home, strip=1)
        + f"cat > /etc/kafka.properties <<'PROPS'\n{render_properties(props)}PROPS\n"
        f"[ -f {LOG_DIR}/meta.properties ] || {home}/bin/kafka-storage.sh format -t {cid} "
        "-c /etc/kafka.properties\n"
        "chown -R kafka:kafka /var/lib/kafka\n"
        + systemd_unit(
            f"AutoMQ {cfg.version} node {slot.node_id}",
            f"{home}/bin/kafka-server-start.sh /etc/kafka.properties",
        )
    )


def bucket_access_policy(bucket_arns: Sequence[pulumi.Input[str]]) -> pulumi.Output[str]:
    resources = [r for arn in bucket_arns for r in (arn, pulumi.Output.concat(arn, "/*"))]
    return pulumi.Output.json_dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": [
                        "s3:ListBucket",
                        "s3:GetObject",
                        "s3:PutObject",
                        "s3:DeleteObject",
                        "s3:AbortMultipartUpload",
                        "s3:ListMultipartUploadParts",
                    ],
                    "Resource": resources,
                }
            ],
        }
    )


@dataclass
class AutoMQClusterArgs:
    """data_bucket_name/ops_bucket_name: the two AutoMQ buckets of this region.
    replicate_to: purpose (`data`/`ops`) -> the standby's bucket, for cross-region replication.
    wal_volume: the per-broker EBS WAL when `automq.wal` is `ebs`.
    """

    role: RegionRole
    region: RegionConfig
    cluster_seed: str
    automq: AutoMQConfig
    capacity: BrokerCapacity
    wal_volume: VolumeConfig
    image: str
    subnet_ids: Sequence[pulumi.Input[str]]
    subnet_cidrs: Sequence[str]
    security_group_id: pulumi.Input[str]
    tags: Mapping[str, str]
    kafka_version: str
    artifacts: ArtifactSource
    data_bucket_name: str
    ops_bucket_name: str
    noncurrent_days: int = 7
    replicate_to: Mapping[str, SecureBucket] = field(default_factory=dict)
    replication_required: Sequence[str] = ()
    force_destroy: bool = False
    stopped_azs: Sequence[int] = ()
    force_stop: bool = False
    zone: str | None = None
    data_opts: pulumi.ResourceOptions | None = None


class AutoMQCluster(pulumi.ComponentResource):
    bootstrap_servers: str
    buckets: dict[str, SecureBucket]

    def __init__(
        self, name: str, args: AutoMQClusterArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("kdrill:aws:AutoMQCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.buckets = {}
        for purpose, bucket_name in (
            ("data", args.data_bucket_name),
            ("ops", args.ops_bucket_name),
        ):
            target = args.replicate_to.get(purpose)
            self.buckets[purpose] = SecureBucket(
                f"{name}-{purpose}",
                SecureBucketArgs(
                    bucket_name=bucket_name,
                    purpose=f"automq-{purpose}",
                    tags=args.tags,
                    noncurrent_days=args.noncurrent_days,
                    # AutoMQ deletes its own objects; ops data (metrics, logs) ages out.
                    expire_days=None if purpose == "data" else 30,
                    replicate_to=ReplicationTarget(target) if target is not None else None,
                    replication_required=purpose in args.replication_required,
                    force_destroy=args.force_destroy,
                    keep=args.data_opts if purpose == "data" else None,
                ),
                opts=child,
            )
        cid = cluster_id(args.cluster_seed)
        slots = broker_slots(args.capacity.count, args.region, args.subnet_cidrs)

        def render(slot: BrokerSlot) -> str:
            props = automq_properties(
                slot,
                slots,
                args.data_bucket_name,
                args.ops_bucket_name,
                args.region.region,
                args.automq.wal,
                args.zone,
            )
            return user_data(slot, args.automq, args.kafka_version, props, cid, args.artifacts)

        self.fleet = BrokerFleet(
            f"{name}-fleet",
            BrokerFleetArgs(
                role=args.role,
                region=args.region,
                tags=args.tags,
                subnet_ids=args.subnet_ids,
                subnet_cidrs=args.subnet_cidrs,
                security_group_id=args.security_group_id,
                capacity=args.capacity,
                image=args.image,
                volume=args.wal_volume if args.automq.wal == "ebs" else None,
                volume_part="wal-volume",
                user_data=render,
                policy=bucket_access_policy([b.arn for b in self.buckets.values()]),
                artifacts_arn=args.artifacts.object_arn(),
                stopped_azs=args.stopped_azs,
                force_stop=args.force_stop,
                data_opts=args.data_opts,
            ),
            opts=child,
        )
        self.bootstrap_servers = bootstrap_servers(slots)
        self.cluster_id = cid
        self.register_outputs(
            {
                "bootstrapServers": self.bootstrap_servers,
                "clusterId": cid,
                "dataBucket": self.buckets["data"].bucket_name,
                "opsBucket": self.buckets["ops"].bucket_name,
                "instanceIds": self.fleet.instance_ids,
            }
        )
