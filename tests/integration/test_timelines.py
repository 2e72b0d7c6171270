"""Fault timelines and detection rules on the real local pair (the session's `pair`).

- A two-fault timeline, MirrorMaker 2 stopped and then the primary region lost: RPO must be
  exactly the records the primary acknowledged after MirrorMaker 2's last replicated record,
  counted here, before the loss, by this test's own reader of both clusters' logs (records
  compared by their producer / key / sequence payloads), not by the drill's checker.
- A partition of the replication path detected by the canary probe: the drill's producers
  see no delivery error (the partition is not on their path), the probe's replication round
  trip fails, and the evidence names the probe rule and what it crossed.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

import pyarrow.compute as pc

from drills.history import read_history
from drills.runner import run_drill
from drills.spec import load_spec, parse_spec
from drills.targets import LocalTarget
from drills.workload import decode
from tests.integration.conftest import read_log, wait_for
from tests.integration.test_drill import assert_pair_healthy

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "drills" / "scenarios"


def on_own_topic(data: dict, **changes) -> dict:
    """A spec (as a dict) on a topic of its own, shortened, with dotted-path changes."""
    topic = f"orders-{uuid.uuid4().hex[:6]}"
    data["workload"]["topics"] = [{"name": topic, "partitions": 3}]
    for g in data["workload"]["groups"]:
        g["topics"] = [topic]
    data["steady_state"]["duration_s"] = 5
    data["cutover"]["run_after_s"] = 3
    for path, value in changes.items():
        node = data
        *parents, last = path.split(".")
        for k in parents:
            node = node[k]
        node[last] = value
    return data


def log_ids(bootstrap: str, topic: str, producers: set[str]) -> set[tuple[str, str, int]]:
    """(producer, key, seq) of every record of `producers` in `topic`, read from offset 0 to
    the end offsets as they are now: the log itself, through the cluster's bootstrap."""
    out: set[tuple[str, str, int]] = set()
    for _, _, _, value in read_log(bootstrap, topic):
        ident = decode(value)
        if ident and ident[0] in producers:
            out.add((ident[0], ident[1], ident[2]))
    return out


def test_replication_stopped_then_region_loss_rpo_is_what_never_crossed(pair, tmp_path):
    data = on_own_topic(
        load_spec(SCENARIOS / "replication-stopped-then-region-loss.yaml").to_dict(),
        **{"objectives.max_rpo_records": None, "objectives.max_rpo_seconds": None},
    )
    s = parse_spec(data)
    assert [f.kind for f in s.faults] == ["replication-stop", "region-loss"]
    topic = s.workload.topics[0].name
    remote = pair.remote_topic(topic)
    seen: dict = {}

    def before(drill) -> None:
        """Right before the incident (MirrorMaker 2 stopped for ~3 s by now): the producers
        stop sending, then both logs are read and compared record by record."""
        for p in drill.producers:
            p.budget = 0
        wait_for(lambda: all(not p.pending for p in drill.producers), 30, "in-flight sends")
        mine = {p.pid for p in drill.producers}
        primary = log_ids(pair.primary.bootstrap, topic, mine)
        standby = log_ids(pair.standby.bootstrap, remote, mine)
        seen["primary"], seen["standby"] = len(primary), len(standby)
        seen["unreplicated"] = len(primary - standby)
        seen["standby_only"] = len(standby - primary)

    def after(drill) -> None:
        for p in drill.producers:
            p.budget = None  # these sends meet a lost region: indeterminate, not lost

    from drills.hooks import Callbacks

    out = run_drill(s, LocalTarget(pair), tmp_path / "run",
                    Callbacks(before_inject=before, after_inject=after))  # fmt: skip
    ev = json.loads((tmp_path / "run" / "evidence.json").read_text())
    assert ev["status"] == "completed", [
        (x["phase"], x["status"], x["error"]) for x in ev["journal"]["steps"]
    ]
    assert seen["standby_only"] == 0 and seen["standby"] > 0, seen
    # the stop was real: records were acknowledged after MirrorMaker 2's last replicated one
    assert seen["unreplicated"] > 50, seen
    assert ev["measurements"]["rpo"]["records"] == seen["unreplicated"], seen
    assert ev["measurements"]["rpo"]["split_brain"] == 0

    stop, loss = ev["faults"]
    assert (stop["kind"], stop["incident"]) == ("replication-stop", False)
    assert (loss["kind"], loss["incident"], loss["region"]) == (
        "region-loss",
        True,
        pair.primary.name,
    )
    assert loss["applied"] == ev["timeline"]["t_fault"]["monotonic"]
    assert stop["applied"] < loss["started"] < loss["applied"], "one stack update after the other"
    assert stop["stack_update"]["stack_version"] < loss["stack_update"]["stack_version"]
    assert loss["applied"] - stop["applied"] >= 3 - 0.05, "the incident struck before its at_s"
    assert (
        stop["cleared_by"] == loss["cleared_by"] == "teardown" and stop["cleared"] > loss["applied"]
    )
    # how close two faults on one stack can be: the second's update, start to T_fault
    print(
        f"\nfaults: replication-stop applied {stop['applied_since_incident_s']:+.3f}s "
        f"(update {stop['stack_update']['start_to_t_fault_s']:.3f}s to T, "
        f"{stop['stack_update']['t_fault_to_return_s']:.3f}s to return); region-loss late "
        f"{loss['late_s']:.3f}s, update {loss['stack_update']['start_to_t_fault_s']:.3f}s to T; "
        f"RPO {seen['unreplicated']} records (primary {seen['primary']}, standby {seen['standby']})"
    )
    assert out.exit_code in (0, 1)
    assert_pair_healthy(pair)


def test_a_partition_is_detected_by_the_probe_while_producers_see_no_error(pair, tmp_path):
    data = on_own_topic(
        load_spec(SCENARIOS / "region-loss.yaml").to_dict(),
        **{
            "fault": {"kind": "partition", "after_s": 0},
            "detection": {"rule": "any", "timeout_s": 30, "rules": [
                {"rule": "probe", "checks": ["primary", "replication"], "threshold": 3,
                 "interval_s": 0.5, "timeout_ms": 1500},
                {"rule": "delivery-errors", "threshold": 3},
            ]},
            "objectives.max_rpo_records": None,
            "objectives.max_rpo_seconds": None,
            "objectives.max_rto_seconds": None,
        },
    )  # fmt: skip
    out = run_drill(parse_spec(data), LocalTarget(pair), tmp_path / "run")
    ev = json.loads((tmp_path / "run" / "evidence.json").read_text())
    assert ev["status"] == "completed", [
        (x["phase"], x["status"], x["error"]) for x in ev["journal"]["steps"]
    ]
    det = ev["detection"]
    fired = det["fired"]
    assert fired is not None, det
    assert fired["rule"] == "any" and len(fired["parts"]) == 1
    probe = fired["parts"][0]
    assert probe["rule"] == "probe" and probe["path"] == "detection.rules[0]", probe
    assert probe["on"] == f"{pair.primary.name}->{pair.standby.name}", probe
    assert "canary round trips failed" in probe["observation"]
    # the primary's own round trip kept working: only the path between the regions failed
    assert any(o.get("probe") == "primary" and o["ok"] and o["t"] > ev["timeline"]["t_fault"]["monotonic"]
               for o in det["observations"]), det["observations"]  # fmt: skip
    assert det["watch_errors"] == []

    t_fault = ev["timeline"]["t_fault"]["monotonic"]
    t_detect = ev["timeline"]["t_detect"]["monotonic"]
    assert t_detect > t_fault
    # the drill's clients saw nothing: no delivery failure before detection, acks all along
    assert det["delivery_failures_before_detect"] == 0
    writes = read_history(tmp_path / "run" / "history").writes
    # (records in flight when cutover moved the producers are purged: the drill's doing,
    # after detection, not an error the fault caused)
    failed = [
        w for w in writes.filter(pc.is_valid(writes["error"])).to_pylist()
        if w["send_time"] >= t_fault and "Purged" not in w["error"]
        and w["send_time"] < t_detect
    ]  # fmt: skip
    assert failed == [], failed[:3]
    during = writes.filter(pc.and_(pc.greater(writes["ack_time"], t_fault),
                                   pc.less(writes["ack_time"], t_detect)))  # fmt: skip
    assert during.num_rows > 0 and set(during["cluster"].to_pylist()) == {pair.primary.name}
    print(f"\nprobe detected the partition {t_detect - t_fault:.2f}s after T_fault, "
          f"{during.num_rows} records acknowledged by the primary meanwhile")  # fmt: skip
    assert out.exit_code in (0, 1)
    assert_pair_healthy(pair)


def test_client_watch_reads_lag_through_bootstrap_and_probes_the_standby(pair, topic_name):
    """The lag readers and a standby probe against the real pair, without a drill:
    MirrorMaker 2 paused, 100 records produced, no group commits -- `all` of replication-lag
    and consumer-lag fires, each naming what it was on; the standby's canary keeps working."""
    from components.faults import FaultSpec
    from components.local import faults
    from drills.detection import CANARY_TOPIC, ClientWatch, Detector, Endpoints
    from drills.spec import Rule
    from tests.integration.conftest import produce_all

    target = LocalTarget(pair)
    p, s = pair.primary.name, pair.standby.name
    remote = pair.remote_topic(topic_name)
    target.create_topics(p, {topic_name: 2})
    target.create_topics(s, {CANARY_TOPIC: 1})
    wait_for(lambda: target.end_offsets(s, [remote]), 60, f"MirrorMaker 2 to create {remote}")
    rule = Rule(rule="any", rules=[
        {"rule": "all", "rules": [
            {"rule": "replication-lag", "max_records": 20, "interval_s": 0.2},
            {"rule": "consumer-lag", "max_records": 10, "group": "g", "interval_s": 0.2},
        ]},
        {"rule": "probe", "checks": ["standby"], "threshold": 1, "timeout_ms": 3000},
    ])  # fmt: skip
    det = Detector(rule)
    watch = ClientWatch(det, Endpoints(
        primary=p, standby=s, bootstrap={p: target.bootstrap(p), s: target.bootstrap(s)},
        topics={topic_name: remote}, groups={"g": f"g-{topic_name}"},
        canary={"primary": CANARY_TOPIC, "standby": CANARY_TOPIC,
                "replication": pair.remote_topic(CANARY_TOPIC)},
        run_id=topic_name,
    ))  # fmt: skip
    paused = faults.apply(pair, FaultSpec("replication-pause")).id
    try:
        watch.start()
        wait_for(det.probes_ready, 30, "the standby canary's first round trip")
        det.arm()
        det.since(time.monotonic())
        produce_all(pair.primary.bootstrap, [(b"k", b"v" * 50, [])] * 100, topic_name)
        wait_for(lambda: det.t_detect, 30, "the lag rules to fire")
    finally:
        watch.stop()
        faults.clear(pair, paused)
        target.close_clients()
    fired = det.report()["fired"]
    both = fired["parts"][0]
    assert both["rule"] == "all", fired
    repl, cons = both["parts"]
    assert (repl["rule"], repl["on"]) == ("replication-lag", f"{p}->{s}")
    lag = int(re.match(r"lag (\d+) records over the bound 20 records", repl["observation"])[1])
    assert 20 < lag <= 100, repl
    assert (cons["rule"], cons["on"]) == ("consumer-lag", "g")
    assert 10 < int(re.match(r"lag (\d+) records", cons["observation"])[1]) <= 100, cons
    obs = det.report()["observations"]
    assert any(o.get("probe") == "standby" and o["ok"] and o["on"] == s for o in obs), obs
    assert watch.errors == []
