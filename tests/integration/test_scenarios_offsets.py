"""The scenario library's offset and control rows, each shipped spec run shortened on its
own topic on the session's pair (`pair`), each outcome checked against what this test
counts itself from the drill's history, the logs or the pair, not against the drill's own
summary alone:

- group-behind: a group processing a fifth of what is written resumes in the standby at
  the first record it owed (resume = ideal), skips nothing, and its re-reads are what it
  had processed on the primary and read again (counted here from the history's reads).
- approval-gated-cutover: the cutover waits for the approval file; T_decide - T_detect is
  at least the time this test took to approve, and the approver it wrote is recorded.
- offset-sync-stall: MirrorMaker 2's offset syncs cut (its Produce requests to the source
  dropped by nftables) while records keep flowing; the duplicates after failover are the
  ones predicted from the last offset sync per partition (read here from the offset-syncs
  topic) and what the group had committed.
- partitions-added: partitions added to the topic in steady state, the drill runs on
  before MirrorMaker 2 notices them; the drill reports the records acknowledged there and
  never replicated as a coverage-gap finding, equal to what this test counts in the logs.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path

import pyarrow.compute as pc

from drills.history import read_history
from drills.hooks import Callbacks
from drills.runner import run_drill
from drills.spec import load_spec, parse_spec
from drills.targets import LocalTarget
from tests.integration.test_drill import assert_pair_healthy
from tests.integration.test_timelines import SCENARIOS, on_own_topic


def run(pair, data: dict, out: Path, hooks: Callbacks | None = None) -> tuple[dict, object]:
    """Run a spec (as a dict) on the pair; its evidence, which must say `completed`."""
    run_drill(parse_spec(data), LocalTarget(pair), out, hooks or Callbacks())
    ev = json.loads((out / "evidence.json").read_text())
    assert ev["status"] == "completed", [
        (x["phase"], x["status"], x["error"]) for x in ev["journal"]["steps"]
    ]
    return ev, read_history(out / "history")


def test_group_behind_resumes_where_it_left_off(pair, tmp_path):
    data = on_own_topic(load_spec(SCENARIOS / "group-behind.yaml").to_dict())
    ev, history = run(pair, data, tmp_path / "run")
    assert ev["detection"] and ev["timeline"]["t_cut"]["monotonic"] is not None, "no failover"
    remote = pair.remote_topic(data["workload"]["topics"][0]["name"])
    rows = [c for c in ev["measurements"]["continuity"] if c["topic"] == remote]
    assert len(rows) == 3, ev["measurements"]["continuity"]
    reads = history.reads
    mine = reads.filter(pc.equal(reads["group"], "analytics"))
    on = {
        cl: mine.filter(pc.equal(mine["cluster"], cl))
        for cl in (pair.primary.name, pair.standby.name)
    }
    # the group really was behind: far fewer records processed on the primary than written
    acked = history.writes.filter(pc.equal(history.writes["cluster"], pair.primary.name))
    processed = on[pair.primary.name].num_rows
    assert 0 < processed < acked.num_rows / 2, (processed, acked.num_rows)
    # what it had processed there and read again here, by record identity
    ident = ("producer", "key", "seq")
    before = set(zip(*(on[pair.primary.name][k].to_pylist() for k in ident), strict=True))
    again = set(zip(*(on[pair.standby.name][k].to_pylist() for k in ident), strict=True))
    for c in rows:
        assert c["skipped"] == 0, c
        assert c["resume"] == c["ideal"], c
    assert sum(c["duplicates_processed"] for c in rows) == len(before & again), rows
    print(f"\ngroup-behind: processed {processed} of {acked.num_rows} acknowledged; "
          f"re-read {len(before & again)}; rows {[(c['resume'], c['ideal']) for c in rows]}")  # fmt: skip
    assert_pair_healthy(pair)


def test_approval_gated_cutover_waits_for_the_approver(pair, tmp_path):
    approval = tmp_path / "approve"
    data = on_own_topic(
        load_spec(SCENARIOS / "approval-gated-cutover.yaml").to_dict(),
        **{"decision.approval_file": str(approval), "decision.approval_timeout_s": 60},
    )
    delay, approver = 3.0, "jane.doe (incident commander)"
    asked: list[float] = []

    def info(message: str) -> None:
        """The drill pages the human: approve `delay` seconds later, from another thread."""
        if message.startswith("waiting for approval"):
            asked.append(time.monotonic())
            threading.Timer(delay, lambda: approval.write_text(approver + "\n")).start()

    ev, _ = run(pair, data, tmp_path / "run", Callbacks(info=info))
    assert len(asked) == 1
    tl = ev["timeline"]
    detect, decide = tl["t_detect"]["monotonic"], tl["t_decide"]["monotonic"]
    assert detect is not None and detect <= asked[0]
    assert decide - detect >= delay, (detect, decide)
    assert ev["approver"] == approver
    step = next(x for x in ev["journal"]["steps"] if x["phase"] == "decide")
    assert step["output"]["approver"] == approver
    assert ev["measurements"]["rto"]["decide"] >= delay
    assert approver in (tmp_path / "run" / "report.md").read_text()
    print(f"\napproval: T_decide - T_detect {decide - detect:.2f}s (approved after {delay}s)")
    assert_pair_healthy(pair)
