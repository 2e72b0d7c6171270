"""SecureBucket: an S3 bucket that is versioned, encrypted, never public, expires what it
should, and replicates to a bucket in the standby region when asked.

Used for AutoMQ's data and ops buckets (separate, as AutoMQ documents) and for every
pattern's drill-evidence bucket.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.iam import assume_role_policy
from components.aws.tags import with_tags

ENCRYPTION = "AES256"  # SSE-S3: replicates without per-region KMS key wiring


@dataclass
class ReplicationTarget:
    """Where a bucket replicates to: another SecureBucket, normally in the standby region."""

    bucket: SecureBucket
    storage_class: str = "STANDARD"


@dataclass
class SecureBucketArgs:
    """bucket_name: the global S3 name (deterministic so drills and policy can find it).
    purpose: evidence | data | ops (tagged as kdrill:part=<purpose>-bucket).
    expire_days: delete current objects after this many days; None keeps them (AutoMQ data).
    noncurrent_days: delete overwritten/deleted versions after this many days.
    replicate_to: cross-region replication target, or None.
    replication_required: tag the bucket so the policy pack insists on replication.
    force_destroy: allow `pulumi destroy` to empty the bucket (ephemeral stacks).
    """

    bucket_name: str
    purpose: str
    tags: Mapping[str, str]
    noncurrent_days: int = 30
    expire_days: int | None = None
    replicate_to: ReplicationTarget | None = None
    replication_required: bool = False
    force_destroy: bool = False
    keep: pulumi.ResourceOptions | None = None  # retain_on_delete / protect for the bucket


class SecureBucket(pulumi.ComponentResource):
    bucket_name: pulumi.Output[str]
    arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: SecureBucketArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("kdrill:aws:SecureBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        extra = {"part": f"{args.purpose}-bucket"}
        if args.replication_required:
            extra["replicate"] = "required"
        tags = with_tags(args.tags, **extra)

        bucket = aws.s3.Bucket(
            f"{name}-bucket",
            bucket=args.bucket_name,
            force_destroy=args.force_destroy,
            tags=tags,
            opts=pulumi.ResourceOptions.merge(child, args.keep),
        )
        self.bucket_name = bucket.bucket
        self.arn = bucket.arn
        self.versioning = aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=bucket.bucket,
            versioning_configuration={"status": "Enabled"},
            opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-sse",
            bucket=bucket.bucket,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": ENCRYPTION}}],
            opts=child,
        )
        aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access-block",
            bucket=bucket.bucket,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        rules: list[dict] = [
            {
                "id": "abort-incomplete-uploads",
                "status": "Enabled",
                "filter": {},
                "abort_incomplete_multipart_upload": {"days_after_initiation": 7},
            },
            {
                "id": "expire-noncurrent",
                "status": "Enabled",
                "filter": {},
                "noncurrent_version_expiration": {"noncurrent_days": args.noncurrent_days},
            },
        ]
        if args.expire_days is not None:
            rules.append(
                {
                    "id": "expire-current",
                    "status": "Enabled",
                    "filter": {},
                    "expiration": {"days": args.expire_days},
                }
            )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle", bucket=bucket.bucket, rules=rules, opts=child
        )

        self.replication_role_arn: pulumi.Output[str] | None = None
        if args.replicate_to is not None:
            self._replicate(name, bucket, args)

        self.register_outputs(
            {
                "bucketName": bucket.bucket,
                "arn": bucket.arn,
                "replicationRoleArn": self.replication_role_arn,
            }
        )

    def _replicate(self, name: str, bucket: aws.s3.Bucket, args: SecureBucketArgs) -> None:
        assert args.replicate_to is not None
        child = pulumi.ResourceOptions(parent=self)
        target = args.replicate_to.bucket
        role = aws.iam.Role(
            f"{name}-replication-role",
            assume_role_policy=assume_role_policy("s3.amazonaws.com"),
            tags=with_tags(args.tags, part="replication-role"),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-replication-policy",
            role=role.id,
            policy=replication_policy(bucket.arn, target.arn),
            opts=child,
        )
        aws.s3.BucketReplicationConfig(
            f"{name}-replication",
            bucket=bucket.bucket,
            role=role.arn,
            rules=[
                {
                    "id": "to-standby",
                    "status": "Enabled",
                    "filter": {},
                    "delete_marker_replication": {"status": "Enabled"},
                    "destination": {
                        "bucket": target.arn,
                        "storage_class": args.replicate_to.storage_class,
                    },
                }
            ],
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[self.versioning, target.versioning]
            ),
        )
        self.replication_role_arn = role.arn


def replication_policy(
    source_arn: pulumi.Input[str], target_arn: pulumi.Input[str]
) -> pulumi.Output[str]:
    """Least-privilege S3 replication permissions for one source -> destination pair."""
    return pulumi.Output.json_dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["s3:GetReplicationConfiguration", "s3:ListBucket"],
                    "Resource": [source_arn],
                },
                {
                    "Effect": "Allow",
                    "Action": [
                        "s3:GetObjectVersionForReplication",
                        "s3:GetObjectVersionAcl",
                        "s3:GetObjectVersionTagging",
                    ],
                    "Resource": [pulumi.Output.concat(source_arn, "/*")],
                },
                {
                    "Effect": "Allow",
                    "Action": ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"],
                    "Resource": [pulumi.Output.concat(target_arn, "/*")],
                },
            ],
        }
    )
