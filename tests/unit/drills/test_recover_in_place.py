"""`cutover.failover: false` with a detected fault (drills/scenarios/broker-kill.yaml): the
recover step clears the incident and the primary keeps serving; the evidence's `faults` says
the recover step cleared it, at that instant -- not its duration running out later."""

from __future__ import annotations

from drills.engine import clock
from tests.unit.drills.test_engine import PaperTarget, drill, phases, spec


class HealingTarget(PaperTarget):
    """Clearing the region loss brings the region back (as a broker restart does)."""

    def clear_fault(self, fault_id):
        super().clear_fault(fault_id)
        self.region_lost.clear()


def test_the_recover_step_clears_the_incident_and_says_so(tmp_path):
    target = HealingTarget()
    s = spec(**{"cutover.failover": False, "fault.duration_s": 5})
    d, _ = drill(s, target, tmp_path / "run")
    record = d.run()
    assert record.status == "completed", phases(tmp_path / "run")
    names = [p for p, _ in phases(tmp_path / "run")]
    assert "recover" in names and "cutover" not in names
    assert not record.failover and record.serving == "east"
    (inc,) = record.faults
    assert inc["cleared_by"] == "recover", inc
    assert inc["applied"] < inc["cleared"] <= record.instants["t_cut"] < clock()
    assert inc["cleared"] < inc["applied"] + 5, "cleared by the recover step, not its duration"
    assert target.faults == {}
