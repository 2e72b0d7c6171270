"""The fault registry: one entry per kind is all the rest of kdrill needs.

A kind registered here, in this module alone, is accepted by the drill spec parser
and `resolve`, listed in the help, and applied / observed / cleared by the generic
local fault code against a small fake pair (files in tmp_path stand in for the
kernel), from the fault's spec and key alone. Also: the one region rule, one name (`blackhole`) across local and AWS,
and targets keeping AWS-only kinds off the local pair.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field, ValidationError

from components import faults
from components.aws.config import FaultConfig
from components.faults import FaultError, FaultKind, FaultSpec, Local, Params
from components.local import config
from components.local import faults as local_faults
from drills.spec import SpecError, parse_spec

CFG = config.load("local")  # east (primary, 1 broker), west (standby)
STACK = {"regions": ("east", "west"), "primary": "east", "standby": "west"}

MINIMAL = {
    "version": 1,
    "name": "tiny",
    "workload": {"topics": [{"name": "orders"}], "groups": [{"name": "billing"}]},
}


def drill(fault: dict[str, Any]) -> dict[str, Any]:
    return {**copy.deepcopy(MINIMAL), "fault": fault}


# --- a kind defined here, and nowhere else -------------------------------------------


class TouchParams(Params):
    name: str = Field("touched", description="file created in the pair's state dir")
    size: int = Field(1, ge=1, le=10, description="bytes written")


LOG: list[str] = []  # what the actions did, in order


def _path(pair: FakePair, f) -> Path:
    """Derived from the spec (and the pair), as every kind's facts are: nothing recorded."""
    return pair.dir / f"{f.spec.region}-{f.spec.params['name']}"


def _act(pair: FakePair, f) -> None:
    LOG.append(f"act {f.key}")
    _path(pair, f).write_text("x" * f.spec.params["size"])


def _clear(pair: FakePair, f) -> None:
    LOG.append(f"clear {f.key}")
    _path(pair, f).unlink(missing_ok=True)


def _present(pair: FakePair, f) -> bool:
    return _path(pair, f).exists()


def _observe(pair: FakePair, f) -> dict[str, Any]:
    p = _path(pair, f)
    return {"bytes": p.stat().st_size if p.exists() else None}


TOUCH = FaultKind(
    "touch-file",
    "create a file in the pair's state directory (a test kind)",
    params=TouchParams,
    local=Local(act=_act, clear=_clear, present=_present, observe=_observe),
)

RESTARTER = FaultKind(
    "touch-restart",
    "like touch-file, but clearing it 'starts processes again' (a test kind)",
    region="standby",
    params=TouchParams,
    local=Local(
        act=_act,
        clear=_clear,
        present=_present,
        restarts=True,
        teardown=lambda pair, f: LOG.append(f"teardown {f.key}"),
        rank=1,
    ),
)


def _half_done(pair: FakePair, e) -> None:
    _act(pair, e)
    raise RuntimeError("the second half failed")


BROKEN = FaultKind(
    "touch-broken",
    "creates its file, then fails (a test kind)",
    region="none",
    params=TouchParams,
    local=Local(act=_half_done, clear=_clear, present=_present),
)


class FakePair:
    """The members of LocalPair the generic fault code uses, and nothing else."""

    def __init__(self, state_dir: Path):
        self.cfg = CFG
        self.dir = state_dir

    def is_up(self) -> bool:
        return True


@pytest.fixture
def kinds():
    LOG.clear()
    with faults.registered(TOUCH), faults.registered(RESTARTER), faults.registered(BROKEN):
        yield
    assert "touch-file" not in faults.KINDS  # removed again


@pytest.fixture
def pair(tmp_path, kinds, monkeypatch) -> FakePair:
    # a direct fault's mark (an nft table named for its key) stands in the LOG here
    monkeypatch.setattr(local_faults.lifecycle, "_mark", lambda p, f: LOG.append(f"mark {f.key}"))
    monkeypatch.setattr(
        local_faults.lifecycle, "_unmark", lambda p, f: LOG.append(f"unmark {f.key}")
    )
    return FakePair(tmp_path)


def test_a_new_kind_is_accepted_by_the_drill_spec(kinds):
    s = parse_spec(drill({"kind": "touch-file", "params": {"size": 3}}))
    assert s.fault.kind == "touch-file" and s.fault.params == {"size": 3}
    with pytest.raises(SpecError, match=r"fault\.params\.size: must be in 1\.\.10 \(got 11\)"):
        parse_spec(drill({"kind": "touch-file", "params": {"size": 11}}))
    with pytest.raises(SpecError, match="touch-file has no parameter 'colour'"):
        parse_spec(drill({"kind": "touch-file", "params": {"colour": "red"}}))


def test_a_new_kind_is_resolved_with_its_defaults(kinds):
    s = faults.resolve(FaultSpec("touch-file", params={"size": "3"}), **STACK)
    assert s == FaultSpec("touch-file", "east", None, {"name": "touched", "size": 3})
    with pytest.raises(FaultError, match="touch-file: size=0 is out of range 1..10"):
        faults.resolve(FaultSpec("touch-file", params={"size": "0"}), **STACK)


def test_a_new_kind_is_in_the_help(kinds):
    text = faults.help_text()
    assert "touch-file" in text and "create a file in the pair's state directory" in text
    assert "size=int (1..10, default 1): bytes written" in text
    assert "region-degraded" not in text  # AWS-only
    assert "region-degraded" in faults.help_text(target="aws")


def test_generic_local_code_applies_observes_and_clears_a_new_kind(pair):
    e = local_faults.apply(pair, FaultSpec("touch-file", params={"size": "4"}))
    path = pair.dir / "east-touched"
    assert e.status == "applied" and e.t_fault is not None and path.read_text() == "xxxx"
    assert e.fault == FaultSpec("touch-file", "east", None, {"name": "touched", "size": 4})
    assert e.key.startswith(faults.DIRECT_PREFIX), "no key given: a direct fault"
    assert {e.key: e.placed} == local_faults.DIRECT, "kept in memory, not in a file"
    assert sorted(p.name for p in pair.dir.iterdir()) == ["east-touched"]
    assert local_faults.present(pair, e.placed)
    assert local_faults.observe(pair, e) == {"bytes": 4}
    assert local_faults.clear(pair, e.id) == e.placed and not path.exists()
    assert not local_faults.present(pair, e.placed)
    assert local_faults.clear(pair, e.placed) == e.placed  # idempotent, from (spec, key)
    assert local_faults.DIRECT == {}


def test_a_stack_fault_is_applied_under_its_key_and_cleared_from_spec_and_key(pair):
    e = local_faults.apply(pair, FaultSpec("touch-file", params={"name": "k"}), key="s7")
    assert e.key == "s7" and local_faults.DIRECT == {}, "the config entry is its record"
    assert "mark s7" not in LOG, "a stack fault's record is its config entry, not a mark"
    LOG.clear()
    placed = local_faults.place(pair, {"kind": "touch-file", "params": {"name": "k"}}, "s7")
    assert local_faults.present(pair, placed)
    local_faults.clear(pair, placed)
    assert LOG == ["clear s7"] and not (pair.dir / "east-k").exists()


def acts() -> list[str]:
    return [x for x in LOG if not x.startswith(("mark", "unmark"))]


def test_clear_order_and_teardown_come_from_the_entries(pair):
    restart = local_faults.apply(pair, FaultSpec("touch-restart", params={"name": "r"}))
    a = local_faults.apply(pair, FaultSpec("touch-file", params={"name": "a"}))
    b = local_faults.apply(pair, FaultSpec("touch-file", params={"name": "b"}))
    assert restart.fault.region == "west"  # its entry defaults to the standby
    LOG.clear()
    local_faults.clear_many(pair, [restart.id, a.id, b.id])
    # newest first, but the restarting kind (rank 1) after the rest
    assert [f"clear {b.id}", f"clear {a.id}", f"clear {restart.id}"] == acts()
    assert LOG[:2] == [f"clear {b.id}", f"unmark {b.id}"], "a direct fault's mark goes with it"

    again = local_faults.apply(pair, FaultSpec("touch-restart", params={"name": "r"}))
    other = local_faults.apply(pair, FaultSpec("touch-file", params={"name": "o"}))
    LOG.clear()
    local_faults.clear_many(pair, [again.id, other.id], teardown=True)
    assert [f"clear {other.id}", f"teardown {again.id}"] == acts()  # no restart when torn down
    assert f"unmark {again.id}" in LOG


def test_a_half_applied_fault_is_cleared_before_the_error(pair):
    with pytest.raises(RuntimeError, match="second half"):
        local_faults.apply(pair, FaultSpec("touch-broken"))
    key = LOG[0].split()[1]
    # marked on the pair before acting, cleared (mark and all) before the error is raised
    assert [f"mark {key}", f"act {key}", f"clear {key}", f"unmark {key}"] == LOG
    assert not (pair.dir / "None-touched").exists()
    assert local_faults.DIRECT == {}


def test_a_refused_check_touches_nothing(pair):
    def refuse(pair, f):
        raise FaultError("nothing to act on")

    kind = FaultKind(
        "touch-refused",
        "refuses",
        local=Local(check=refuse, act=_act, clear=_clear, present=_present),
    )
    with faults.registered(kind), pytest.raises(FaultError, match="nothing to act on"):
        local_faults.apply(pair, FaultSpec("touch-refused"))
    assert LOG == [] and local_faults.DIRECT == {}, "refused before its mark"


def test_registry_entries_are_checked():
    with pytest.raises(ValueError, match="already registered"):
        faults.register(faults.get("partition"))
    with pytest.raises(ValueError, match="iff it has `local`"):
        FaultKind("no-local", "runs locally without saying how")
    with pytest.raises(ValueError, match="targets"):
        FaultKind("nowhere", "runs nowhere", targets=frozenset({"mars"}))


# --- one region rule -------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["region-loss", "blackhole", "broker-pause", "packet-loss"])
def test_region_less_region_kinds_act_on_the_primary(kind):
    params = {"percent": 5} if kind == "packet-loss" else {}
    stack = {"regions": ("a", "b"), "primary": "b", "standby": "a"}
    assert faults.resolve(FaultSpec(kind, params=params), **stack).region == "b"
    spec = parse_spec(drill({"kind": kind, "params": params})).fault
    assert spec.region is None  # the drill spec leaves it to the stack...
    assert faults.resolve(spec.fault_spec(), **stack).region == "b"  # ...which says the primary


def test_between_region_kinds_take_no_region():
    with pytest.raises(FaultError, match="partition takes no --region"):
        faults.resolve(FaultSpec("partition", region="east"), **STACK)
    with pytest.raises(SpecError, match="partition acts between the regions and takes no region"):
        parse_spec(drill({"kind": "partition", "region": "east"}))
    with pytest.raises(FaultError, match="unknown region 'mars'; this stack has: east, west"):
        faults.resolve(FaultSpec("region-loss", region="mars"), **STACK)


def test_broker_check_needs_the_stack_broker_counts():
    spec = FaultSpec("broker-kill", params={"broker": 2})
    assert faults.resolve(spec, **STACK).params == {"broker": 2}  # counts unknown: not checked
    with pytest.raises(FaultError, match="region east has brokers 0..0, not 2"):
        faults.resolve(spec, **STACK, brokers={"east": 1, "west": 1})


# --- one name across local and AWS; targets ---------------------------------------------


def test_blackhole_on_aws_and_endpoint_blocked_renamed():
    assert FaultConfig(kind="blackhole", region="standby").region == "standby"
    with pytest.raises(ValidationError) as e:
        FaultConfig(kind="endpoint-blocked")
    (err,) = e.value.errors()
    assert "'endpoint-blocked' was renamed to blackhole" in err["msg"]
    assert "\n" not in err["msg"]
    with pytest.raises(SpecError, match="was renamed to blackhole"):
        parse_spec(drill({"kind": "endpoint-blocked"}))


@pytest.mark.parametrize(
    "spec", [FaultSpec("region-degraded", params={"az_index": 1}), FaultSpec("fis-cross-region")]
)
def test_aws_only_kinds_are_refused_on_the_local_target(spec):
    with pytest.raises(FaultError) as e:
        faults.resolve(spec, **STACK, target="local")
    msg = str(e.value)
    assert f"{spec.kind} does not run on the local target (only aws)" in msg
    assert "\n" not in msg and "local kinds: region-loss, partition" in msg
    assert faults.resolve(spec, regions=("primary", "standby"), primary="primary",
                          standby="standby", target="aws").region == "primary"  # fmt: skip


def test_unknown_kind_names_the_known_ones():
    with pytest.raises(FaultError) as e:
        faults.get("meteor")
    assert str(e.value).startswith("unknown fault kind 'meteor'; kinds: region-loss, partition")
