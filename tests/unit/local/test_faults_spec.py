"""Fault specs are validated against a local stack before anything is touched; there is no
fault file: a fault's key names what it puts on the pair. (The registry itself:
tests/unit/test_fault_registry.py.)"""

import pytest

from components import faults as registry
from components.local import config, kernel
from components.local import faults as local_faults
from components.local.faults import FaultError, FaultSpec, parse_params, validate

CFG = config.load("local")


@pytest.mark.parametrize(
    "spec,expect",
    [
        (FaultSpec("meteor"), "unknown fault kind 'meteor'; kinds: region-loss, partition"),
        (FaultSpec("packet-loss", params={"percent": 150}), "percent=150 is out of range 0.1..100"),
        (FaultSpec("packet-loss"), "packet-loss needs --param percent=<float>"),
        (
            FaultSpec("packet-loss", link="wan", params={"percent": 5}),
            "unknown link 'wan'; links: client, backbone",
        ),
        (FaultSpec("packet-loss", params={"percent": "lots"}), "percent='lots' is not a float"),
        (
            FaultSpec("broker-kill", region="east", params={"broker": "x"}),
            "broker-kill: broker='x' is not an int",
        ),
        (
            FaultSpec("bandwidth", params={"mbit": 1, "rate": 2}),
            "bandwidth has no parameter 'rate'; parameters: mbit, burst_kb",
        ),
        (
            FaultSpec("region-degraded", params={"az_index": 1}),
            "region-degraded does not run on the local target (only aws)",
        ),
        (
            FaultSpec("region-loss", region="mars"),
            "unknown region 'mars'; this stack has: east, west",
        ),
        (FaultSpec("partition", region="east"), "partition takes no --region"),
        (FaultSpec("latency", link="client", params={"ms": 5}), "latency takes no --link"),
        (
            FaultSpec("blackhole", region="east", params={"endpoint": "dns"}),
            "endpoint='dns' must be one of: kafka, s3",
        ),
        (
            FaultSpec("broker-kill", region="east", params={"broker": 2}),
            "region east has brokers 0..0, not 2",
        ),
        (
            FaultSpec("cpu-squeeze", region="west", params={"cores": 0}),
            "cores=0 is out of range 0.01..64",
        ),
        (FaultSpec("partition", duration_s=-1), "duration -1 s is out of range"),
    ],
)
def test_bad_specs_are_one_clear_line(spec, expect):
    with pytest.raises(FaultError) as e:
        validate(spec, CFG)
    assert expect in str(e.value)
    assert "\n" not in str(e.value)


def test_validation_fills_defaults_and_converts_types():
    s = validate(FaultSpec("bandwidth", params={"mbit": "1.5"}), CFG)
    assert s.region == "east" and s.link == "backbone"  # the replication path of the primary
    assert s.params == {"mbit": 1.5, "burst_kb": 32}
    assert validate(FaultSpec("latency", params={"ms": "200"}), CFG).params == {
        "ms": 200.0,
        "jitter_ms": 0.0,
    }


def test_region_kinds_default_to_the_primary():
    for kind in ("region-loss", "blackhole", "broker-kill", "cpu-squeeze"):
        params = {"cores": 1} if kind == "cpu-squeeze" else {}
        assert validate(FaultSpec(kind, params=params), CFG).region == CFG.primary.name, kind
    assert validate(FaultSpec("region-loss", region="west"), CFG).region == "west"
    assert validate(FaultSpec("partition"), CFG).region is None


def test_every_local_kind_has_local_behaviour():
    local = registry.kinds("local")
    assert local and all(k.local is not None for k in local)


def test_param_pairs_parse_or_fail_clearly():
    assert parse_params(["percent=30", "jitter_ms=5"]) == {"percent": "30", "jitter_ms": "5"}
    with pytest.raises(FaultError, match="write it as name=value"):
        parse_params(["percent"])


def test_apply_rejects_bad_input_before_touching_anything_and_writes_no_file(tmp_path):
    from components.local.env import LocalPair

    pair = LocalPair(CFG, state_root=tmp_path)
    with pytest.raises(FaultError):
        local_faults.apply(pair, FaultSpec("packet-loss", params={"percent": 150}))
    assert local_faults.DIRECT == {}
    assert not (pair.dir / "faults.json").exists()
    assert not pair.dir.exists() or list(pair.dir.iterdir()) == []


def test_tables_are_named_for_the_fault_key_and_direct_ones_stand_apart():
    assert kernel.table_name("s3") == "kdrill_s3"
    f = FaultSpec("blackhole", region="east", params={"endpoint": "kafka"})
    key = local_faults.lifecycle.direct_key(f)
    assert key.startswith(registry.DIRECT_PREFIX + "blackhole-")
    assert kernel.table_name(key).startswith("kdrill_direct_blackhole_")
    assert registry.Placed(f, key).direct and not registry.Placed(f, "s3").direct
    assert kernel.table_name(key) != kernel.table_name(local_faults.lifecycle.direct_key(f))


def test_clear_order_is_newest_first_then_by_rank():
    P = registry.Placed
    faults = [
        P(FaultSpec("region-loss", region="east"), "s1"),
        P(FaultSpec("blackhole", region="east", params={"endpoint": "kafka"}), "direct-b"),
        P(FaultSpec("replication-stop"), "direct-r"),
        P(FaultSpec("partition"), "s2"),
    ]
    order = [f.key for f in local_faults.clear_order(faults)]
    assert order == ["s2", "direct-b", "s1", "direct-r"]


def test_a_key_alone_is_enough_only_for_direct_faults_of_this_process(tmp_path):
    from components.local.env import LocalPair

    pair = LocalPair(CFG, state_root=tmp_path)
    with pytest.raises(local_faults.FaultError.__mro__[1], match="no fault 'direct-x'"):
        local_faults.clear(pair, "direct-x")
