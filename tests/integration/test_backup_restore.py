"""Backup and restore on the real local pair: the shipped scenario, region lost, restored from
the standby's bucket.

Each figure recomputed here from the raw material, never taken from the checker:
- RPO = the records east acknowledged (up to T_fence, from the raw history's writes) whose
  identity this test's own reader does not find in west's restored topic;
- the duplicates of the resume by timestamp: per group and partition, the records the group
  was handed in the restored topic whose position in east's log (read by this test once east
  is back) is below the offset the group last committed in east before the fault;
- the restore's rate (records/s, MB/s, seconds per GB), printed.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from pathlib import Path

from components.local import backup
from drills.evidence import summary_lines
from drills.history import read_history
from drills.runner import run_drill
from drills.spec import load_spec, parse_spec
from drills.targets import LocalTarget
from drills.workload import decode
from tests.integration.conftest import read_log
from tests.integration.test_drill import assert_pair_healthy

SCENARIO = (
    Path(__file__).resolve().parents[2] / "drills" / "scenarios" / "backup-restore-region-loss.yaml"
)


def identities(bootstrap: str, topic: str, producers: set[str]) -> dict[tuple[int, int], tuple]:
    """(partition, offset) -> (producer, gseq) of every record of `producers` in `topic`."""
    out = {}
    for partition, offset, _, value in read_log(bootstrap, topic):
        ident = decode(value)
        if ident and ident[0] in producers:
            out[(partition, offset)] = (ident[0], ident[3])
    return out


def test_backup_restore_region_loss_measures_what_the_restore_lacks(pair, tmp_path):
    data = load_spec(SCENARIO).to_dict()
    topic = f"orders-{uuid.uuid4().hex[:6]}"
    data["workload"]["topics"] = [{"name": topic, "partitions": 3}]
    for g in data["workload"]["groups"]:
        g["topics"] = [topic]
    spec = parse_spec(data)
    east, west = pair.primary.name, pair.standby.name

    out = run_drill(spec, LocalTarget(pair), tmp_path / "run")
    run = tmp_path / "run"
    ev = json.loads((run / "evidence.json").read_text())
    assert ev["status"] == "completed", [
        (x["phase"], x["status"], x["error"]) for x in ev["journal"]["steps"]
    ]
    assert ev["pattern"]["name"] == "backup-restore"
    br = ev["backup_restore"]
    assert (br["primary"], br["standby"]) == (east, west)
    assert not LocalTarget(pair).backup_running(), "the backup sink is still running"

    # --- RPO: acknowledged by east, absent from the restored topic (this test's reader) ---
    history = read_history(run / "history")
    writes = history.writes.to_pylist()
    mine = {w["producer"] for w in writes}
    restored = identities(pair.standby.bootstrap, f"restored.{topic}", mine)
    found = set(restored.values())
    t_fence = ev["timeline"]["t_fence"]["monotonic"]
    acked = [(w["producer"], w["gseq"]) for w in writes
             if w["cluster"] == east and w["ack_time"] is not None and w["ack_time"] <= t_fence]  # fmt: skip
    missing = [i for i in acked if i not in found]
    rpo = ev["measurements"]["rpo"]
    assert rpo["records"] == len(missing) == br["missing"], (rpo, len(missing))
    assert len(found) > 0.5 * len(acked), "the restore brought back little of what was acknowledged"
    assert br["restore"]["records"] == len(restored), "the restore's count is not what west holds"
    assert br["restored_twice"] == 0

    # --- duplicates of the resume by timestamp (east's log read once it is back) ----------
    east_log = identities(pair.primary.bootstrap, topic, mine)
    t_fault = ev["timeline"]["t_fault"]["monotonic"]
    committed: dict[tuple[str, int], tuple[float, int]] = {}
    for c in history.commits.to_pylist():
        if c["cluster"] == east and c["topic"] == topic and c["commit_time"] < t_fault:
            k = (c["group"], c["partition"])
            if k not in committed or c["commit_time"] >= committed[k][0]:
                committed[k] = (c["commit_time"], c["offset"])
    below = defaultdict(set)  # (group, partition) -> identities the group had committed in east
    for (g, p), (_, off) in committed.items():
        below[(g, p)] = {i for (pp, o), i in east_log.items() if pp == p and o < off}
    mine_dups: dict[str, int] = defaultdict(int)
    for r in history.reads.to_pylist():
        if r["cluster"] == west and r["topic"] == f"restored.{topic}":
            mine_dups[r["group"]] += (r["producer"], r["gseq"]) in below[
                (r["group"], r["partition"])
            ]
    checker = defaultdict(int)
    for c in ev["measurements"]["continuity"]:
        if c["topic"] == f"restored.{topic}":
            assert c["resume_source"] in ("timestamp", "reset"), c
            checker[c["group"]] += c["duplicates"]
    assert dict(checker) == {g: mine_dups.get(g, 0) for g in checker}, (checker, mine_dups)
    assert sum(mine_dups.values()) > 0, "resuming by timestamp re-read nothing"

    # --- the verdict lines, the summary and the report ----------------------------------
    checks = {c["objective"]: c for c in ev["verdict"]["checks"]}
    assert checks["backup-restore RPO recomputed from the restored log"]["met"]
    assert checks["backup-restore records restored twice"]["met"]
    lines = summary_lines(ev)
    assert lines[1].startswith("pattern: backup and restore"), lines
    assert any(x.startswith("backup-restore: restored ") for x in lines)
    assert "backup and restore" in (run / "report.md").read_text()
    r, rto = br["restore"], ev["measurements"]["rto"]
    assert r["records"] > 0 and r["bytes"] > 0 and r["seconds"] > 0
    assert rto["seconds"] is not None and rto["cutover"] >= r["seconds"]  # the restore is inside
    print(
        f"\nbackup-restore: restored {r['records']} records / {r['bytes']} B from "
        f"{r['objects']} objects in {r['seconds']:.2f}s = {r['records_per_s']} records/s, "
        f"{r['mb_per_s']} MB/s, {r['seconds_per_gb']} s/GB; RPO {rpo['records']} of "
        f"{len(acked)} acknowledged ({rpo['seconds']}s); duplicates {dict(mine_dups)}; "
        f"RTO {rto['seconds']:.2f}s (cutover {rto['cutover']:.2f}s); exit {out.exit_code}"
    )
    assert out.exit_code == 0, ev["verdict"]
    assert_pair_healthy(pair)
    # the sink is gone, and its config with it (it held the SASL password and the S3 keys)
    assert not backup.running(pair) and not backup.config_file(pair).exists()
