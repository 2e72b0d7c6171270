"""kdrill CrossGuard policy pack: `pulumi preview --policy-pack policies`.

The validators live in validators.py (importable and unit-tested); the PolicyPack is only
constructed here, because constructing it starts the policy server and blocks.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # repo root: components, policies

from pulumi_policy import (  # noqa: E402
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyPack,
    ResourceValidationPolicy,
    StackValidationPolicy,
)

from policies import validators as v  # noqa: E402

MANDATORY = EnforcementLevel.MANDATORY

PolicyPack(
    name="kdrill",
    enforcement_level=MANDATORY,
    policies=[
        ResourceValidationPolicy(
            name="cost-tags",
            description="Every taggable AWS resource carries the kdrill cost tags.",
            validate=v.validate_cost_tags,
        ),
        ResourceValidationPolicy(
            name="ephemeral-expiry",
            description="Ephemeral stacks carry kdrill:expires-at within the maximum lifetime.",
            validate=v.validate_expiry,
            config_schema=PolicyConfigSchema(
                properties={"maxTtlHours": {"type": "number", "default": v.DEFAULT_MAX_TTL_HOURS}}
            ),
        ),
        StackValidationPolicy(
            name="bucket-hardening",
            description="Buckets are versioned, encrypted, not public, and replicated where required.",
            validate=v.validate_buckets,
        ),
        ResourceValidationPolicy(
            name="wal-volumes",
            description="Kafka log / AutoMQ WAL volumes are encrypted with at least the configured IOPS.",
            validate=v.validate_wal_volumes,
            config_schema=PolicyConfigSchema(
                properties={"minWalIops": {"type": "integer", "default": v.DEFAULT_MIN_WAL_IOPS}}
            ),
        ),
        ResourceValidationPolicy(
            name="no-public-kafka",
            description="No security group opens a Kafka port to 0.0.0.0/0 or ::/0.",
            validate=v.validate_no_public_kafka,
        ),
        ResourceValidationPolicy(
            name="msk-encryption-in-transit",
            description="MSK clusters use TLS between clients and brokers and inside the cluster.",
            validate=v.validate_msk_in_transit,
        ),
        StackValidationPolicy(
            name="standby-capacity",
            description="Standby broker capacity is not below the primary's.",
            validate=v.validate_standby_capacity,
        ),
    ],
)
