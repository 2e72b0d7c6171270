"""Hand-built CrossGuard arguments, and a runner that applies the whole pack's validators
to a stack rendered under mocks."""

from __future__ import annotations

from typing import Any

from pulumi_policy import PolicyResource, ResourceValidationArgs, StackValidationArgs
from pulumi_policy.policy import PolicyCustomTimeouts, PolicyResourceOptions

from policies import validators as v

RESOURCE_VALIDATORS = [
    v.validate_cost_tags,
    v.validate_expiry,
    v.validate_wal_volumes,
    v.validate_no_public_kafka,
    v.validate_msk_in_transit,
    v.validate_internal_load_balancers,
    v.validate_encrypted_root_volumes,
    v.validate_msk_authenticated,
]
STACK_VALIDATORS = [
    v.validate_buckets,
    v.validate_standby_capacity,
    v.validate_no_public_kafka_sets,
    v.validate_two_regions,
    v.validate_deny_rules_first,
    v.validate_stack_expiry,
]


def _opts() -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def urn(typ: str, name: str) -> str:
    return f"urn:pulumi:test::kdrill::{typ}::{name}"


def resource_args(
    typ: str, props: dict[str, Any], name: str = "r", config=None
) -> ResourceValidationArgs:
    return ResourceValidationArgs(typ, props, urn(typ, name), name, _opts(), None, config)


def policy_resource(typ: str, props: dict[str, Any], name: str) -> PolicyResource:
    return PolicyResource(typ, props, urn(typ, name), name, _opts(), None, None, [], {})


def stack_args(
    resources: list[tuple[str, str, dict[str, Any]]], config=None, stack_tags=None
) -> StackValidationArgs:
    return StackValidationArgs(
        [policy_resource(t, p, n) for t, n, p in resources], config, stack_tags
    )


def violations(validator, args) -> list[str]:
    found: list[str] = []
    validator(args, lambda message, urn=None: found.append(message))
    return found


def run_pack(resources: list[tuple[str, str, dict[str, Any]]]) -> list[str]:
    """Every violation the pack's validators report for these (type, name, props)."""
    found: list[str] = []
    for typ, name, props in resources:
        for validator in RESOURCE_VALIDATORS:
            found += violations(validator, resource_args(typ, props, name))
    for validator in STACK_VALIDATORS:
        found += violations(validator, stack_args(resources))
    return found
