"""The local stack's engine plumbing and fault switch, without the engine: the passphrase
file, the engine's environment, the drill-time config, and the switch's reconciliation."""

from __future__ import annotations

import stat
from pathlib import Path
from types import SimpleNamespace

import yaml

from components.local import faultswitch
from components.local.stack import LocalStack

TRACKED = {"kdrill:pattern": "local", "kdrill:local": {"namePrefix": "kt"}}


def make(tmp_path: Path) -> LocalStack:
    tracked = tmp_path / "Pulumi.kt.yaml"
    tracked.write_text(yaml.safe_dump({"config": TRACKED}))
    return LocalStack(tmp_path / "state" / "kt", stack="kt", stack_file=tracked)


def test_passphrase_is_generated_once_0600_and_passed_by_path_only(tmp_path, monkeypatch):
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "inherited")
    s = make(tmp_path)
    f = s.ensure_passphrase()
    secret = f.read_text()
    assert len(secret) >= 32
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert s.ensure_passphrase().read_text() == secret, "never regenerated"
    env = s._full_env()
    assert secret not in "".join(env.values())
    assert "PULUMI_CONFIG_PASSPHRASE" not in env, "an inherited passphrase is dropped"
    assert env["PULUMI_CONFIG_PASSPHRASE_FILE"] == str(f.resolve())
    assert env["PULUMI_BACKEND_URL"] == (s.dir / "pulumi").resolve().as_uri()


def test_drill_time_config_lives_in_the_state_dir_and_holds_the_faults(tmp_path):
    s = make(tmp_path)
    before = s.stack_file.read_text()
    s._write_config("salt-1")
    assert s.config_file.parent == s.dir
    data = yaml.safe_load(s.config_file.read_text())
    assert data["encryptionsalt"] == "salt-1"
    assert data["config"]["kdrill:local"] == {"namePrefix": "kt"}
    s.add_fault("s1", {"kind": "partition"})
    s.add_fault("s2", {"kind": "latency", "params": {"ms": 100}})
    assert list(s.faults()) == ["s1", "s2"]
    s.remove_fault("s1")
    assert s.faults() == {"s2": {"kind": "latency", "params": {"ms": 100}}}
    s._write_config("salt-1", keep_faults=True)  # re-read of the tracked file keeps faults
    assert list(s.faults()) == ["s2"]
    assert s.stack_file.read_text() == before, "the tracked stack file is never written"


def test_config_mapping_given_directly_wins_over_the_file(tmp_path):
    s = LocalStack(tmp_path / "kt", stack="kt", stack_file=tmp_path / "absent.yaml", config=TRACKED)
    s._write_config(None)
    assert yaml.safe_load(s.config_file.read_text())["config"]["kdrill:pattern"] == "local"


def test_urn_names_the_project_from_pulumi_yaml(tmp_path):
    s = make(tmp_path)
    assert s.urn(faultswitch.TYPE, "kt-faults") == (
        "urn:pulumi:kt::kdrill::pulumi-python:dynamic:Resource::kt-faults"
    )


def fake_pair(monkeypatch, live: set[str]):
    """A pair on which the keys in `live` are in effect; records sweeps and applies."""
    from components.faults import Placed
    from components.local import faults

    calls = []

    def sweep(pair, keep, keep_direct=True, restart=True):
        gone = sorted(k for k in live if k not in {f.key for f in keep})
        live.difference_update(gone)
        calls.append(("sweep", sorted(f.key for f in keep), keep_direct, restart))
        return [f"cleared {k}" for k in gone]

    def apply(pair, spec, key=None):
        live.add(key)
        calls.append(("apply", spec.kind, key))
        return SimpleNamespace(key=key, t_fault=100.0 + len(calls), t_fault_wall=1e9)

    monkeypatch.setattr(faultswitch, "_pair", lambda props: object())
    monkeypatch.setattr(
        faults, "place", lambda pair, spec, key: Placed(faults.FaultSpec.from_dict(spec), key)
    )
    monkeypatch.setattr(faults, "present", lambda pair, f: f.key in live)
    monkeypatch.setattr(faults, "sweep", sweep)
    monkeypatch.setattr(faults, "apply", apply)
    return calls


PROPS = {"prefix": "kt", "state_root": "/nowhere"}


def test_switch_sweeps_what_is_not_wanted_and_applies_what_is_wanted_and_not_live(monkeypatch):
    # s1 is live and still wanted; s2 is live but no longer wanted; s3 is new.
    live = {"s1", "s2"}
    calls = fake_pair(monkeypatch, live)
    wanted = {"s1": {"kind": "partition"}, "s3": {"kind": "region-loss", "region": "east"}}
    before = {"s1": {"t_fault": 5.0, "t_fault_wall": 1.0}, "s2": {"t_fault": 6.0}}
    applied = faultswitch.sync({**PROPS, "faults": wanted}, before=before)
    assert calls == [("sweep", ["s1", "s3"], True, True), ("apply", "region-loss", "s3")]
    assert live == {"s1", "s3"}
    assert set(applied) == {"s1", "s3"}
    assert applied["s1"]["t_fault"] == 5.0, "a live fault is not applied again"
    assert applied["s3"]["t_fault"] == 102.0
    assert "id" not in applied["s3"], "no ledger id: the key is the record"


def test_switch_works_from_the_live_pair_not_from_old_outputs(monkeypatch):
    """After a killed CLI the old outputs say nothing is applied; the pair says s1 is."""
    live = {"s1"}
    calls = fake_pair(monkeypatch, live)
    p = faultswitch.FaultSwitchProvider()
    news = {**PROPS, "faults": {"s1": {"kind": "partition"}}}
    olds = {**news, "applied": {}}
    assert p.update("kt-faults", olds, news).outs["applied"] == {}
    assert [c for c in calls if c[0] == "apply"] == [], "already applied: nothing done"
    # diff against the live pair: removing the entry is a change even if olds agree
    assert p.diff("kt-faults", {**PROPS, "faults": {}}, {**PROPS, "faults": {}}).changes is False
    assert p.diff("kt-faults", news, news).changes is False
    live.clear()
    assert p.diff("kt-faults", news, news).changes, "wanted but not in effect: a change"
    live.add("s1")
    calls.clear()
    p.delete("kt-faults", news)
    assert calls == [("sweep", [], True, False)], "delete sweeps everything, starts nothing"
    assert live == set()


def test_read_reports_the_faults_applied_live(monkeypatch):
    fake_pair(monkeypatch, {"s1"})
    p = faultswitch.FaultSwitchProvider()
    got = p.read(
        "kt-faults",
        {**PROPS, "faults": {"s1": {"kind": "partition"}, "s2": {"kind": "latency"}},
         "applied": {"s1": {"t_fault": 5.0}, "s2": {"t_fault": 6.0}}, "t_synced": 7.0},
    )  # fmt: skip
    assert got.outs["faults"] == {"s1": {"kind": "partition"}}
    assert got.outs["applied"] == {"s1": {"t_fault": 5.0}}
    assert got.outs["t_synced"] == 7.0
    # the inputs follow the live pair, so a refresh's diff (inputs vs the pair) settles
    assert got.inputs == {**PROPS, "faults": {"s1": {"kind": "partition"}}}


def test_switch_without_a_pair_and_nothing_wanted_does_nothing(monkeypatch):
    def no_pair(props):
        raise RuntimeError("no state")

    monkeypatch.setattr(faultswitch, "_pair", no_pair)
    assert faultswitch.sync({**PROPS, "faults": {}}) == {}
    assert faultswitch.live({**PROPS, "faults": {"s1": {"kind": "partition"}}}) == set()


def test_resource_urns_read_from_the_file_backend_checkpoint(tmp_path):
    import json

    s = make(tmp_path)
    assert s.resource_urns() == []
    f = s.backend_dir / ".pulumi" / "stacks" / "kdrill" / "kt.json"
    f.parent.mkdir(parents=True)
    urn = s.urn(faultswitch.TYPE, "kt-faults")
    f.write_text(
        json.dumps({"version": 3, "checkpoint": {"latest": {"resources": [{"urn": urn}]}}})
    )
    assert s.resource_urns() == [urn]
    assert s.exists()
