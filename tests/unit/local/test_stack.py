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


class FakeLedger:
    def __init__(self, entries):
        self.entries = entries

    def open_entries(self):
        return [e for e in self.entries if e.status == "applied"]


def fake_pair(monkeypatch, entries):
    from components.local.faults import lifecycle

    led = FakeLedger(entries)
    calls = []

    def apply(pair, spec, tag=None):
        e = SimpleNamespace(
            id=f"f{len(led.entries) + 1}",
            tag=tag,
            status="applied",
            t_fault=100.0 + len(calls),
            t_fault_wall=1e9,
        )
        led.entries.append(e)
        calls.append(("apply", spec.kind, tag))
        return e

    def clear_many(pair, ids, teardown=False):
        for e in led.entries:
            if e.id in ids:
                e.status = "cleared"
        calls.append(("clear", sorted(ids)))

    monkeypatch.setattr(faultswitch, "_pair", lambda props: object())
    monkeypatch.setattr(lifecycle, "ledger", lambda pair: led)
    monkeypatch.setattr(lifecycle, "apply", apply)
    monkeypatch.setattr(lifecycle, "clear_many", clear_many)
    return calls


PROPS = {"prefix": "kt", "state_root": "/nowhere"}


def test_switch_applies_what_is_wanted_and_not_live_and_clears_the_rest(monkeypatch):
    # f1 (s1) is live and still wanted; f2 (s2) is live but no longer wanted; s3 is new.
    entries = [
        SimpleNamespace(id="f1", tag="s1", status="applied", t_fault=5.0, t_fault_wall=1.0),
        SimpleNamespace(id="f2", tag="s2", status="applied", t_fault=6.0, t_fault_wall=2.0),
        SimpleNamespace(id="f3", tag=None, status="applied", t_fault=7.0, t_fault_wall=3.0),
    ]
    calls = fake_pair(monkeypatch, entries)
    wanted = {"s1": {"kind": "partition"}, "s3": {"kind": "region-loss", "region": "east"}}
    applied = faultswitch.sync({**PROPS, "faults": wanted})
    assert calls == [("clear", ["f2"]), ("apply", "region-loss", "s3")]
    assert set(applied) == {"s1", "s3"}
    assert applied["s1"]["t_fault"] == 5.0, "a live fault is not applied again"
    assert applied["s3"]["id"] == "f4"
    # f3 is a direct fault (a fence): not the switch's to clear
    assert entries[2].status == "applied"


def test_switch_works_from_the_live_pair_not_from_old_outputs(monkeypatch):
    """After a killed CLI the old outputs say nothing is applied; the pair says s1 is."""
    entries = [SimpleNamespace(id="f1", tag="s1", status="applied", t_fault=5.0, t_fault_wall=1.0)]
    calls = fake_pair(monkeypatch, entries)
    p = faultswitch.FaultSwitchProvider()
    news = {**PROPS, "faults": {"s1": {"kind": "partition"}}}
    olds = {**news, "applied": {}}
    assert p.update("kt-faults", olds, news).outs["applied"]["s1"]["id"] == "f1"
    assert calls == [], "already applied: nothing done"
    # diff against the live pair: removing the entry is a change even if olds agree
    assert p.diff("kt-faults", {**PROPS, "faults": {}}, {**PROPS, "faults": {}}).changes
    p.delete("kt-faults", news)
    assert calls == [("clear", ["f1"])]
    assert not p.diff("kt-faults", {**PROPS, "faults": {}}, {**PROPS, "faults": {}}).changes


def test_read_reports_the_faults_applied_live(monkeypatch):
    entries = [SimpleNamespace(id="f1", tag="s1", status="applied", t_fault=5.0, t_fault_wall=1.0)]
    fake_pair(monkeypatch, entries)
    p = faultswitch.FaultSwitchProvider()
    got = p.read(
        "kt-faults", {**PROPS, "faults": {"s1": {"kind": "partition"}, "s2": {"kind": "x"}}}
    )
    assert got.outs["faults"] == {"s1": {"kind": "partition"}}
    assert set(got.outs["applied"]) == {"s1"}


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
