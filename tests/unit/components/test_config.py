"""Typed stack config: every checked-in AWS stack parses; bad configs fail with the key named."""

import copy

import pytest

from components import faults
from components.aws.config import (
    FAULT_PARAM_FIELDS,
    ConfigError,
    FaultConfig,
    parse_stack_config,
)
from tests.unit.components.harness import AWS_STACKS, stack_config


@pytest.mark.parametrize("stack", AWS_STACKS)
def test_checked_in_stacks_parse(stack):
    cfg = parse_stack_config(stack_config(stack))
    assert cfg.engine == stack.split("-")[0]


def _broken(mutate):
    raw = copy.deepcopy(stack_config("apache-use1-usw2"))
    mutate(raw)
    with pytest.raises(ConfigError) as err:
        parse_stack_config(raw)
    return str(err.value)


def test_missing_key_is_named():
    assert "kdrill:owner: missing" in _broken(lambda r: r.pop("owner"))


def test_unknown_key_is_named():
    assert "kdrill:brokerz: unknown key" in _broken(lambda r: r.update(brokerz=3))


def test_nested_wrong_type_is_named():
    msg = _broken(lambda r: r["brokers"]["primary"].update(count="three"))
    assert "kdrill:brokers.primary.count" in msg


def test_broker_count_must_spread_over_three_azs():
    assert "multiple of 3" in _broken(lambda r: r["brokers"]["standby"].update(count=4))


def test_world_open_client_cidr_rejected():
    assert "opens Kafka to the world" in _broken(
        lambda r: r["clientCidrs"].update(anyone="0.0.0.0/0")
    )


def test_overlapping_vpcs_rejected():
    assert "overlap" in _broken(lambda r: r["regions"]["standby"].update(cidr="10.42.0.0/16"))


def test_ephemeral_needs_expiry():
    assert "expiresAt" in _broken(lambda r: r.update(environment="ephemeral"))


def test_replication_must_fit_engine():
    assert "does not apply to engine apache" in _broken(
        lambda r: r["replication"].update(kind="msk-replicator", kubernetes=None)
    )


def test_open_source_automq_cannot_use_ebs_wal():
    raw = copy.deepcopy(stack_config("automq-use1-usw2"))
    raw["automq"]["wal"] = "ebs"
    with pytest.raises(ConfigError, match="commercial"):
        parse_stack_config(raw)


def test_fault_fields_checked():
    assert "region-degraded needs azIndex" in _broken(
        lambda r: r.update(faults=[{"kind": "region-degraded"}])
    )
    assert "azIndex only applies to region-degraded, not region-loss" in _broken(
        lambda r: r.update(faults=[{"kind": "region-loss", "azIndex": 1}])
    )
    assert "listed twice" in _broken(
        lambda r: r.update(faults=[{"kind": "region-loss"}, {"kind": "region-loss"}])
    )
    assert "not an ISO 8601 time span" in _broken(
        lambda r: r.update(faults=[{"kind": "fis-cross-region", "duration": "10m"}])
    )


def test_fault_kinds_come_from_the_registry():
    assert "was renamed to blackhole" in _broken(
        lambda r: r.update(faults=[{"kind": "endpoint-blocked"}])
    )
    assert "partition does not run on the aws target" in _broken(
        lambda r: r.update(faults=[{"kind": "partition"}])
    )
    raw = copy.deepcopy(stack_config("apache-use1-usw2"))
    raw["faults"] = [{"kind": "blackhole"}, {"kind": "fis-cross-region", "region": "standby"}]
    cfg = parse_stack_config(raw)
    assert [(f.kind, f.region) for f in cfg.faults] == [
        ("blackhole", "primary"),  # a region-less fault acts on the primary
        ("fis-cross-region", "standby"),
    ]
    assert cfg.faults[1].duration == "PT10M"  # the registry's default


def test_fault_config_fields_are_the_aws_kinds_parameters():
    fields = set(FaultConfig.model_fields) - {"kind", "region"}
    assert fields == set(FAULT_PARAM_FIELDS)
    aws_only = {
        n for k in faults.kinds("aws") if k.targets == {"aws"} for n in k.params.model_fields
    }
    every = {n for k in faults.kinds("aws") for n in k.params.model_fields}
    assert aws_only <= fields <= every  # each AWS-only parameter has its stack-config key
