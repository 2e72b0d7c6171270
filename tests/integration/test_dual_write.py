"""Application dual-write on the real local pair: the shipped scenario, region lost mid-write.

The characteristic outcome, each figure recomputed here from the raw material, never taken
from the checker:
- the loss leaves records in one region only: this test's own reader of both regions' logs
  (east is back after the drill) counts the records present in exactly one log and the keys
  whose sequences differ, and the checker's figures must equal them; records acknowledged by
  one region only are counted from the raw history's writes;
- RPO = records east acknowledged (up to T_fence) that west's log lacks, recounted here;
- the survivor's groups delivered every record once: their delivery ledgers
  (history/deliveries.json) hold no key twice, deduplication removed > 0 (the 5 s rewind by
  time after the move re-reads what the groups had delivered in east) and exactly the
  re-handed records, and nothing of west's log below a group's last delivered offset was
  left undelivered.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter, defaultdict
from pathlib import Path

from drills.evidence import summary_lines
from drills.history import read_history
from drills.runner import run_drill
from drills.spec import load_spec, parse_spec
from drills.targets import LocalTarget
from drills.workload import decode
from tests.integration.conftest import read_log
from tests.integration.test_drill import assert_pair_healthy

SCENARIO = (
    Path(__file__).resolve().parents[2] / "drills" / "scenarios" / "dual-write-region-loss.yaml"
)


def log_records(bootstrap: str, topic: str, producers: set[str]) -> list[tuple[int, int, tuple]]:
    """(partition, offset, (producer, key, seq)) of every record of `producers` in `topic`,
    read from offset 0 to the end offsets as they are now."""
    out: list[tuple[int, int, tuple]] = []
    for partition, offset, _, value in read_log(bootstrap, topic):
        ident = decode(value)
        if ident and ident[0] in producers:
            out.append((partition, offset, ident[:3]))
    return out


def test_dual_write_region_loss_leaves_one_sided_records_and_groups_deliver_once(pair, tmp_path):
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
    assert ev["pattern"]["name"] == "dual-write"
    dw = ev["dual_write"]
    assert (dw["lost"], dw["survivor"]) == (east, west)

    # --- both logs, read by this test (east returned in the drill's verify) --------------
    history = read_history(run / "history")
    writes = history.writes.to_pylist()
    mine = {w["producer"] for w in writes}
    e_log = log_records(pair.primary.bootstrap, topic, mine)
    w_log = log_records(pair.standby.bootstrap, topic, mine)
    E, W = {i for *_, i in e_log}, {i for *_, i in w_log}
    assert E and W
    assert dw["logged"]["one_sided"] == {east: len(E - W), west: len(W - E)}, (len(E), len(W))
    assert dw["logged"]["one_sided_total"] == len(E ^ W)
    # the loss left records in west only: everything written between T_fault and the drop
    assert len(W - E) > 50, (len(E), len(W))
    assert dw["divergence"]["keys"] == len({i[:2] for i in E ^ W}) > 0

    # --- acknowledged by one region only, and RPO, from the raw writes ------------------
    acked: dict[tuple, dict[str, float]] = defaultdict(dict)
    for w in writes:
        if w["ack_time"] is not None:
            acked[(w["producer"], w["key"], w["seq"])][w["cluster"]] = w["ack_time"]
    only = {r: sum(1 for a in acked.values() if set(a) == {r}) for r in (east, west)}
    assert dw["acknowledged"]["one_sided"] == only
    assert only[west] > 50, only  # west kept acknowledging while east was gone
    t_fence = ev["timeline"]["t_fence"]["monotonic"]
    lost = [i for i, a in acked.items() if east in a and a[east] <= t_fence and i not in W]
    rpo = ev["measurements"]["rpo"]
    assert rpo["records"] == len(lost)
    assert rpo["split_brain"] == sum(1 for a in acked.values() if a.get(east, 0) > t_fence) == 0

    # --- the survivor's groups delivered every record once -----------------------------
    ledger = json.loads((run / "history" / "deliveries.json").read_text())
    reads = history.reads.to_pylist()
    by_group = defaultdict(list)
    for d in ledger:
        by_group[d["group"]].append(d)
    assert set(by_group) == {"billing", "analytics"}
    last_in_w: dict[tuple[str, int], int] = {}
    for g, rows in by_group.items():
        rows.sort(key=lambda d: d["poll_time"])
        delivered = Counter((d["producer"], d["key"], d["seq"]) for d in rows
                            if d["outcome"] == "delivered")  # fmt: skip
        assert max(delivered.values()) == 1, f"{g} delivered a record twice"
        handed = [r for r in reads if r["group"] == g]
        assert len(handed) == len(rows), "every handed record has a ledger entry"
        seen, again = set(), 0
        for r in sorted(handed, key=lambda r: r["poll_time"]):
            i = (r["producer"], r["key"], r["seq"])
            again += i in seen
            seen.add(i)
        removed = sum(1 for d in rows if d["outcome"] == "removed")
        assert removed == again > 0, (g, removed, again)
        assert any(d["cluster"] == west and d["outcome"] == "removed" for d in rows), g
        for d in rows:
            if d["cluster"] == west:
                k = (g, d["partition"])
                last_in_w[k] = max(last_in_w.get(k, -1), d["offset"])
        owed = [i for p, o, i in w_log if o <= last_in_w.get((g, p), -1) and i not in delivered]
        assert owed == [], f"{g} left {len(owed)} records of west undelivered, e.g. {owed[:3]}"
    mine_dedup = {d["group"]: d for d in dw["dedup"]}
    for g, rows in by_group.items():
        assert mine_dedup[g]["removed"] == sum(1 for d in rows if d["outcome"] == "removed")
    assert dw["dedup_removed"] > 0

    # --- the verdict, the summary and the report say which pattern ran ------------------
    checks = {c["objective"]: c for c in ev["verdict"]["checks"]}
    assert checks["dual-write: each record delivered once per group"]["met"]
    assert checks["dual-write: consumer ledger matches the checker's deduplication"]["met"]
    lines = summary_lines(ev)
    assert lines[1].startswith("pattern: application dual-write"), lines
    assert any(x.startswith("dual-write: ") for x in lines)
    assert "application dual-write" in (run / "report.md").read_text()
    rto = ev["measurements"]["rto"]
    assert (
        rto["seconds"] is not None
        and rto["detect"] >= spec.clients.message_timeout_ms / 1000 - 0.05
    )
    print(
        f"\ndual-write: east {len(E)} west {len(W)} records; one-sided logged {len(E ^ W)} "
        f"(west only {len(W - E)}), acked one-sided {only}; divergent keys "
        f"{dw['divergence']['keys']}; dedup removed {dw['dedup_removed']}; RPO {rpo['records']}; "
        f"RTO {rto['seconds']:.2f}s; exit {out.exit_code}"
    )
    assert out.exit_code == 0, ev["verdict"]
    assert_pair_healthy(pair)
