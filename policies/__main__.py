"""kdrill CrossGuard policy pack: `pulumi preview --policy-pack policies`.

The validators live in validators.py (importable and unit-tested); the PolicyPack is only
constructed here, because constructing it starts the policy server and blocks. The engine
runs this file through kdrill's Python language host (RunPlugin), in the repository's .venv
(PulumiPolicy.yaml). tests/unit/policies/test_pack_wiring.py checks that every validator the
unit tests exercise is a policy here; tests/integration/test_policy_engine.py runs the pack
under the real engine.
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
            name="ephemeral-stack-expiry",
            description="A stack tagged environment=ephemeral carries a kdrill:expires-at "
            "stack tag within the maximum lifetime.",
            validate=v.validate_stack_expiry,
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
            description="No security group rule opens a Kafka port to the internet.",
            validate=v.validate_no_public_kafka,
        ),
        StackValidationPolicy(
            name="no-public-kafka-sets",
            description="No set of rules on one security group together opens a Kafka port to "
            "the internet (e.g. 0.0.0.0/1 + 128.0.0.0/1).",
            validate=v.validate_no_public_kafka_sets,
        ),
        ResourceValidationPolicy(
            name="internal-load-balancers",
            description="No load balancer is internet-facing (brokers are reached privately).",
            validate=v.validate_internal_load_balancers,
        ),
        ResourceValidationPolicy(
            name="encrypted-root-volumes",
            description="Launch-template block devices and instance root volumes are encrypted.",
            validate=v.validate_encrypted_root_volumes,
        ),
        ResourceValidationPolicy(
            name="msk-encryption-in-transit",
            description="MSK clusters use TLS between clients and brokers and inside the cluster.",
            validate=v.validate_msk_in_transit,
        ),
        ResourceValidationPolicy(
            name="msk-authenticated",
            description="MSK clusters do not allow unauthenticated clients.",
            validate=v.validate_msk_authenticated,
        ),
        StackValidationPolicy(
            name="two-regions",
            description="Primary and standby are in two distinct AWS regions.",
            validate=v.validate_two_regions,
        ),
        StackValidationPolicy(
            name="deny-rules-first",
            description="Network-ACL deny rules (the fault switch) are numbered before the allows.",
            validate=v.validate_deny_rules_first,
        ),
        StackValidationPolicy(
            name="standby-capacity",
            description="Standby broker capacity is not below the primary's.",
            validate=v.validate_standby_capacity,
        ),
    ],
)
