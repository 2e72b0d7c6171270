"""`replication.engine: backup-restore`: its spec rules (one line each), the refusals before
anything is touched, its stack part declared only when the drill asks, and the resume by
timestamp (drills/backup.py)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pulumi
import pytest
import yaml

from components.local import config
from components.local.parts import PROVIDERS, BackupSinkProvider
from drills import backup
from drills.journal import DrillRefused
from drills.spec import SpecError, load_spec, parse_spec

SCENARIO = (
    Path(__file__).resolve().parents[3] / "drills" / "scenarios" / "backup-restore-region-loss.yaml"
)


def raw() -> dict:
    return yaml.safe_load(SCENARIO.read_text())


def test_the_shipped_scenario_names_its_pattern():
    s = load_spec(SCENARIO)
    assert s.replication.engine == "backup-restore"
    assert s.fault.kind == "region-loss" and s.rollback.rule == "none" and s.cutover.failover


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rollback": {"rule": "failback"}},
         "rollback.rule: backup-restore has no replication to fail back; set rollback.rule: none"),
        ({"fault": {"kind": "partition"}},
         "fault.kind: replication.engine backup-restore drills a region-loss incident (got "
         "'partition'); use kind: region-loss or engine: mirrormaker2"),
        ({"cutover": {"failover": False}},
         "cutover.failover: backup-restore restores into the standby and moves there; set "
         "cutover.failover: true"),
    ],
)  # fmt: skip
def test_a_bad_backup_restore_spec_is_one_line(change, message):
    data = raw()
    for k, v in change.items():
        data[k] = {**data[k], **v} if k != "fault" else v
    with pytest.raises(SpecError) as e:
        parse_spec(data)
    assert str(e.value).splitlines() == [f"<spec>: {message}"], str(e.value)


class _Target:
    policy = "prefixed"

    def facts(self):
        return SimpleNamespace(stack="local")


def test_a_target_without_a_backup_sink_or_under_identity_is_refused():
    drill = SimpleNamespace(spec=load_spec(SCENARIO), target=_Target())
    with pytest.raises(DrillRefused, match="not supported on _Target yet"):
        backup.validate(drill)
    t = _Target()
    t.start_backup = lambda *a: 0.0
    t.policy = "identity"
    with pytest.raises(DrillRefused, match="needs the prefixed policy"):
        backup.validate(SimpleNamespace(spec=load_spec(SCENARIO), target=t))


class _Consumer:
    """offsets_for_times over one partition whose records have these timestamps."""

    def __init__(self, stamps: list[int]):
        self.stamps = stamps

    def offsets_for_times(self, tps, timeout):
        tp = tps[0]
        tp.offset = next((i for i, s in enumerate(self.stamps) if s >= tp.offset), -1)
        return [tp]

    def get_watermark_offsets(self, tp, timeout):
        return 0, len(self.stamps)


def test_resume_by_timestamp_seeks_the_last_committed_record():
    from confluent_kafka import TopicPartition

    # primary offsets 0..4 backed up with timestamps; the group committed 3 (records 0..2 done)
    stamps = {("orders", 0): {0: 100, 1: 110, 2: 110, 3: 120, 4: 130}}
    pos = backup._by_timestamp(None, "g", {("g", "orders", 0): 3}, stamps)
    tps = [TopicPartition("restored.orders", 0), TopicPartition("orders", 0),
           TopicPartition("restored.orders", 1)]  # fmt: skip
    got = pos("kdrill-x-g", _Consumer([100, 110, 110, 120, 130]), tps)
    # record 2's timestamp is 110: the first restored record at 110 is offset 1 (a duplicate)
    assert got == [(1, "timestamp"), (None, "reset"), (None, "reset")]


class Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args):
        return f"{args.name}-id", args.inputs

    def call(self, args):
        return {}


@pytest.mark.parametrize("wanted", [None, {"topics": ["orders"], "prefix": "backup/x"}])
def test_the_backup_part_is_declared_only_when_asked(monkeypatch, wanted):
    from components.local.parts import declare

    pulumi.runtime.set_mocks(Mocks(), preview=False)
    made: list[str] = []
    init = pulumi.dynamic.Resource.__init__

    def spy(self, provider, name, props_, opts=None, *a, **kw):
        made.append(name)
        return init(self, provider, name, props_, opts, *a, **kw)

    monkeypatch.setattr(pulumi.dynamic.Resource, "__init__", spy)
    cfg = yaml.safe_load(config.stack_file("local").read_text())["config"]
    declare("kx", "/tmp/kdrill-unit", "local", cfg, backup=wanted)
    assert ("kx-backup-sink" in made) is (wanted is not None)
    assert PROVIDERS["backup-sink"] is BackupSinkProvider
