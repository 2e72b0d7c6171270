"""Bench: the default drill end to end, and what instrumentation costs a producer.

Prints:
- wall time of `kdrill run drills/scenarios/region-loss.yaml` from a pair that
  is not up (bring-up, the drill, teardown), and the drill's own phases;
- over `--runs` default drills: the recovery time after detection (decide + cutover +
  first consume = RTO - detect), min / median / max, its median parts, each run's figure;
- with `--detector probe`: the same drill detecting with a canary probe of the primary
  (`rule: probe`, `checks: [primary]`, `timeout_ms` 1000 by default) instead of the spec's
  own rule, and RTO itself over the runs, min / median / max with its median parts (detect,
  decide, cutover, first consume), and the probe's round trips before the fault;
- `--part probe-steady`: the same canary probe on an up pair with no fault for
  `--probe-seconds`, a producer writing beside it: how many round trips failed (each one a
  false detection at threshold 1) and the round trips' tail;
- records/s acknowledged for the drill's instrumented producer (identity in
  every value, every ack recorded) vs a plain confluent-kafka producer with the
  same settings on the same cluster, alternating `--rounds` times, their medians
  and ratio (and each round's ratio: the machine is shared, figures are noisy).

Everything runs on the bench's own local pair (prefix kb, 10.81.0.0/16, written to a
temporary stack file; KDRILL_TEST_PAIR="<prefix> <network>" moves it), never on `kd`
(the default stack) or `kt` (the integration tests).

Targets: default drill under 90 s; ratio at least 0.8; after detection at most 0.5 s median;
with the probe detector at a 1 s probe timeout, RTO at most 2 s median.

    sudo .venv/bin/python bench/drill.py [--runs 5] [--seconds 10] [--rounds 3]
                                         [--part all|drill|throughput|overhead|probe-steady]
                                         [--detector spec|probe] [--probe-interval 0.1]
                                         [--probe-threshold 1] [--probe-timeout-ms 1000]
                                         [--probe-seconds 120]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import yaml
from confluent_kafka import Producer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from components.clientconf import client_config  # noqa: E402
from components.local import config, kafka, security  # noqa: E402
from components.local.env import LocalPair  # noqa: E402
from components.wait import wait_until  # noqa: E402
from drills.detection import CANARY_TOPIC, ClientWatch, Endpoints  # noqa: E402
from drills.spec import SpecError, parse_spec  # noqa: E402
from drills.workload import (  # noqa: E402
    LOG,
    Detector,
    InstrumentedProducer,
    Placement,
    ProducerConfig,
    Recorder,
)

SIZE = 200
# The bench's own pair; KDRILL_TEST_PAIR="<prefix> <network>" moves it (engineers sharing a
# machine each bench on their own prefix), as it moves the integration tests' pair.
PREFIX, NETWORK = os.environ.get("KDRILL_TEST_PAIR", "kb 10.81.0.0/16").split()
CONF = {"enable.idempotence": True, "acks": "all", "linger.ms": 5}


def bench_stack(directory: Path) -> Path:
    """The local stack with the bench's own names and network (prefix kb, 10.81.0.0/16),
    so the bench never touches a pair someone else runs (kd: the default, kt: tests)."""
    raw = yaml.safe_load(config.stack_file("local").read_text())
    raw["config"]["kdrill:local"].update(namePrefix=PREFIX, network=NETWORK)
    path = directory / "Pulumi.bench.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


SPEC = "drills/scenarios/region-loss.yaml"


@dataclass(frozen=True)
class ProbeChoice:
    """The probe detector the bench drills with (`--detector probe`).

    interval 0.1 s: a fault waits at most that long for the next canary, so detection is
    the 1 s timeout plus 0-0.1 s; threshold 1: one canary not read back in its timeout
    declares (a second would add a whole timeout, rounds being sequential: ~2.05 s to
    detect, over the 2 s RTO on its own). The false positives that threshold 1 risks are
    what `--part probe-steady` counts."""

    interval_s: float = 0.1
    threshold: int = 1
    timeout_ms: int = 1000

    def rule(self, timeout_s: float) -> dict:
        return {"rule": "probe", "checks": ["primary"], "timeout_ms": self.timeout_ms,
                "interval_s": self.interval_s, "threshold": self.threshold,
                "timeout_s": timeout_s}  # fmt: skip


def probe_spec(path: str | Path, probe: ProbeChoice) -> dict:
    """The drill at `path` with its detection replaced by `probe`, validated as a spec
    (raises SpecError, one line, for a value the spec refuses, e.g. timeout_ms under 100).
    Everything else -- workload, client timeouts, fault, cutover, objectives, and the
    detection's own `timeout_s` -- stays the file's."""
    data = yaml.safe_load(Path(path).read_text())
    if not isinstance(data, dict):
        raise SpecError(f"{Path(path).name}: not a drill spec (a mapping of keys)")
    timeout_s = (data.get("detection") or {}).get("timeout_s", 60)
    data["detection"] = probe.rule(timeout_s)
    parse_spec(data, f"{Path(path).name} with the probe detector")
    return data


def default_drill(stack: Path, spec: str = SPEC, required: bool = True) -> tuple[float, dict]:
    """Wall time and evidence of one drill. A drill that wrote no evidence (it could not
    run, e.g. a broker that did not start) ends the bench when `required`, else gives {}."""
    with tempfile.TemporaryDirectory() as out:
        t0 = time.monotonic()
        p = subprocess.run(
            [sys.executable, "-m", "drills.cli", "run", spec, "--stack", str(stack), "--out", out],
            cwd=ROOT, capture_output=True, text=True,
        )  # fmt: skip
        wall = time.monotonic() - t0
        ev = next(Path(out).glob("*/evidence.json"), None)
        if ev is None:
            print(p.stdout[-2000:], p.stderr[-2000:], file=sys.stderr)
            if required:
                raise SystemExit("the default drill wrote no evidence")
            print("  (a drill that could not run is left out)", file=sys.stderr)
            return wall, {}
        got = json.loads(ev.read_text())
        if got.get("status") != "completed":  # e.g. aborted: a steady-state bound missed
            why = [f"{st['phase']}: {st['error']}" for st in (got.get("journal") or {}).get(
                "steps", []) if st.get("error")]  # fmt: skip
            print(f"  a drill {got.get('status')}: {'; '.join(why) or 'no step error'}",
                  file=sys.stderr)  # fmt: skip
        return wall, got


def plain_rate(bootstrap: str, topic: str, seconds: float) -> float:
    p = Producer(client_config(bootstrap, CONF), logger=LOG)
    acked = [0]

    def done(err, msg):
        if err is None:
            acked[0] += 1

    value = b"x" * SIZE
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        try:
            p.produce(topic, value, key=f"k{i % 32}", on_delivery=done)
        except BufferError:
            p.poll(0.01)
        p.poll(0)
        i += 1
    p.flush(30)
    return acked[0] / seconds


def in_thread(fn, *args):
    """Run `fn` in a thread, as the drill's producers run: same conditions for both figures
    (on 2 cores, a producer loop in the main thread measured ~1.5x faster than in a thread)."""
    out = []
    t = threading.Thread(target=lambda: out.append(fn(*args)))
    t.start()
    t.join()
    return out[0]


def instrumented_rate(bootstrap: str, region: str, topic: str, seconds: float) -> float:
    rec = Recorder()
    timeouts = {"message_timeout_ms": 30000, "request_timeout_ms": 10000,
                "socket_connection_setup_timeout_ms": 10000, "metadata_max_age_ms": 60000}  # fmt: skip
    cfg = ProducerConfig(
        rate=1e9, keys=32, record_bytes=SIZE, acks="all", idempotence=True, timeouts=timeouts
    )
    prod = InstrumentedProducer("bench", cfg, Placement(region, bootstrap, {topic: topic}), rec,
                                Detector("delivery-errors", 3, 2))  # fmt: skip
    prod.start()
    time.sleep(seconds)
    prod.stop_flag.set()
    prod.join(60)
    return rec.ack_count() / seconds


def measured_rtos(evs: list[dict]) -> list[dict]:
    """The evidence's RTO sections of the drills that measured one (with its detect part)."""
    rtos = [(e.get("measurements") or {}).get("rto") or {} for e in evs]
    return [r for r in rtos if r.get("seconds") is not None and r.get("detect") is not None]


def after_detection(stack: Path, spec: str, first: dict | None, runs: int) -> list[dict]:
    """RTO - detect over `runs` default drills (the first may be the end-to-end one);
    their evidence, for what else the caller prints."""
    evs = ([first] if first else []) + [
        default_drill(stack, spec, required=False)[1]
        for _ in range(max(0, runs - (1 if first else 0)))
    ]
    if not all(evs):
        print(f"  drills that could not run (left out): {sum(not e for e in evs)}")
    rtos = measured_rtos(evs)
    if not rtos:
        print("after detection: no drill measured an RTO")
        return evs
    after = sorted(r["seconds"] - r["detect"] for r in rtos)
    parts = {
        k: statistics.median(r[k] for r in rtos) for k in ("decide", "cutover", "first_consume")
    }
    print(f"after detection over {len(after)} drills: min {after[0]:.3f} s  median "
          f"{statistics.median(after):.3f} s  max {after[-1]:.3f} s   (target median <= 0.5 s)")  # fmt: skip
    print("  median parts: " + ", ".join(f"{k} {v:.3f}s" for k, v in parts.items()))
    print("  each: " + ", ".join(f"{a:.3f}" for a in after))
    return evs


RTO_PARTS = ("detect", "decide", "cutover", "first_consume")
ROUND_TRIP = re.compile(r"round trip (\d+) ms")


def rto_figures(evs: list[dict]) -> dict | None:
    """RTO over the drills that measured one: sorted values, min / median / max, each
    part's median (the parts of one drill add up to its RTO; medians of parts need not)."""
    rtos = measured_rtos(evs)
    if not rtos:
        return None
    each = sorted(r["seconds"] for r in rtos)
    return {"each": each, "min": each[0], "median": statistics.median(each), "max": each[-1],
            "parts": {k: statistics.median(r[k] or 0.0 for r in rtos) for k in RTO_PARTS}}  # fmt: skip


def probe_before_fault(evs: list[dict]) -> tuple[list[float], int]:
    """The canary round trips (ms) the evidence kept from before T_fault (the detector keeps
    its last observations), and how many of those failed."""
    ms, failed = [], 0
    for e in evs:
        t_fault = (((e.get("timeline") or {}).get("t_fault")) or {}).get("monotonic")
        for o in (e.get("detection") or {}).get("observations") or []:
            if "probe" not in o or t_fault is None or o["t"] >= t_fault:
                continue
            if not o["ok"]:
                failed += 1
            elif m := ROUND_TRIP.search(o.get("detail", "")):
                ms.append(float(m.group(1)))
    return ms, failed


def update_tails(evs: list[dict]) -> list[float]:
    """Per drill that measured an RTO: how long the incident's stack update ran on after
    T_fault (the engine's inject step returns with it, so a detection before that waits)."""
    out = []
    for e in evs:
        if ((e.get("measurements") or {}).get("rto") or {}).get("seconds") is None:
            continue
        for st in (e.get("journal") or {}).get("steps", []):
            tail = ((st.get("output") or {}).get("stack_update") or {}).get("t_fault_to_return_s")
            if st.get("phase") == "inject" and tail is not None:
                out.append(float(tail))
    return out


def print_rto(evs: list[dict], probe: ProbeChoice) -> None:
    """RTO with the probe detector: min / median / max, median parts, where detect went."""
    fig = rto_figures(evs)
    if fig is None:
        print("RTO with the probe detector: no drill measured an RTO")
        return
    print(f"RTO with the probe detector (checks [primary], timeout_ms {probe.timeout_ms}, "
          f"interval_s {probe.interval_s}, threshold {probe.threshold}) over {len(fig['each'])} "
          f"drills: min {fig['min']:.3f} s  median {fig['median']:.3f} s  max {fig['max']:.3f} s"
          f"   (target median <= 2 s)")  # fmt: skip
    print("  median parts: " + ", ".join(f"{k} {v:.3f}s" for k, v in fig["parts"].items()))
    print("  each: " + ", ".join(f"{a:.3f}" for a in fig["each"]))
    tails = update_tails(evs)
    if tails:
        print(f"  the incident's stack update, T_fault -> return (the engine decides no sooner): "
              f"median {statistics.median(tails):.3f} s, each: "
              + ", ".join(f"{t:.3f}" for t in tails))  # fmt: skip
    fired = [((e.get("detection") or {}).get("fired") or {}).get("observation") for e in evs]
    for f in dict.fromkeys(x for x in fired if x):
        print(f"  fired on: {f}")
    ms, failed = probe_before_fault(evs)
    if ms:
        print(f"  canary round trips kept from before the fault: {len(ms)} ok (max {max(ms):.0f} "
              f"ms, median {statistics.median(ms):.0f} ms), {failed} failed")  # fmt: skip


class RoundTrips:
    """What the steady-state probe saw: every canary round trip, stood in for the detector
    `ClientWatch` reports into (it reads `probes`, `lags` and calls `round_trip`)."""

    def __init__(self, probe: ProbeChoice):
        from drills.detection import Probe

        self.probes = [Probe("detection", probe.threshold, None, ("primary",),
                             probe.interval_s, probe.timeout_ms)]  # fmt: skip
        self.lags: list = []
        self.seen: list[tuple[float, bool, float | None, str]] = []  # t, ok, ms, detail
        self.lock = threading.Lock()

    def round_trip(self, check: str, on: str, t: float, ok: bool, detail: str) -> None:
        m = ROUND_TRIP.search(detail) if ok else None
        with self.lock:
            self.seen.append((t, ok, float(m.group(1)) if m else None, detail))

    def lag(self, *a) -> None:
        pass


def false_detections(seen: list[tuple[float, bool, float | None, str]], threshold: int) -> int:
    """How many times a probe rule with `threshold` consecutive failures would have declared
    over `seen` (a declaration, then counting again from the next failure)."""
    fired, run = 0, 0
    for _t, ok, _ms, _d in seen:
        run = 0 if ok else run + 1
        if run == threshold:
            fired += 1
    return fired


def probe_steady(stack: Path, probe: ProbeChoice, seconds: float) -> None:
    """The probe on a healthy pair for `seconds` beside a 200 records/s instrumented producer
    (the default drill's workload): failed round trips are false detections."""
    pair = LocalPair.from_stack("bench", stack)
    pair.down()
    try:
        pair.up()
        kafka.create_topics(pair.primary.bootstrap, {"bench-steady": 3, CANARY_TOPIC: 1}, 1)
        if pair.secure:
            kafka.create_acls(pair.primary.bootstrap, security.bindings(
                [("TOPIC", "bench-steady", "LITERAL", f"User:{security.PRODUCER}", "WRITE")]))  # fmt: skip
        rec = Recorder()
        timeouts = {"message_timeout_ms": 5000, "request_timeout_ms": 3000,
                    "socket_connection_setup_timeout_ms": 3000, "metadata_max_age_ms": 5000}  # fmt: skip
        prod = InstrumentedProducer(
            "steady", ProducerConfig(200, 32, SIZE, "all", True, timeouts),
            Placement(pair.primary.name, pair.primary.bootstrap, {"bench-steady": "bench-steady"}),
            rec, Detector("delivery-errors", 3, 2),
        )  # fmt: skip
        seen = RoundTrips(probe)
        watch = ClientWatch(seen, Endpoints(  # type: ignore[arg-type]
            primary=pair.primary.name, standby=pair.standby.name,
            bootstrap={r.name: r.bootstrap for r in (pair.primary, pair.standby)},
            topics={}, groups={}, canary={"primary": CANARY_TOPIC}, run_id=f"steady{os.getpid()}",
        ))  # fmt: skip
        prod.start()
        watch.start()
        try:
            wait_until(lambda: any(ok for _t, ok, _m, _d in seen.seen), 60,
                       "the canary's first round trip")  # fmt: skip
            first = len(seen.seen)
            t0 = time.monotonic()
            load0 = os.getloadavg()[0]
            prod.stop_flag.wait(seconds)
            load1 = os.getloadavg()[0]
            got = seen.seen[first:]
            elapsed = time.monotonic() - t0
        finally:
            watch.stop()
            prod.stop_flag.set()
            prod.join(30)
    finally:
        pair.down()
    ms = sorted(m for _t, ok, m, _d in got if ok and m is not None)
    failed = [d for _t, ok, _m, d in got if not ok]
    print(f"probe in steady state ({elapsed:.0f} s, no fault, 200 records/s beside it, load "
          f"average {load0:.1f} -> {load1:.1f}): {len(got)} round trips, {len(failed)} failed "
          f"(timeout {probe.timeout_ms} ms)")  # fmt: skip
    if ms:
        q = statistics.quantiles(ms, n=1000) if len(ms) > 1 else ms * 999
        print(f"  round trip ms: median {statistics.median(ms):.0f}, p99 {q[989]:.0f}, "
              f"p99.9 {q[998]:.0f}, max {ms[-1]:.0f}; over 500 ms: {sum(m > 500 for m in ms)}")  # fmt: skip
    print("  false detections it would have made: " + ", ".join(
        f"threshold {k}: {false_detections(got, k)}" for k in (1, 2, 3)))  # fmt: skip
    for d in failed[:5]:
        print(f"  failed: {d}")


def throughput(stack: Path, seconds: float, rounds: int) -> None:
    """Plain vs instrumented, alternating, `rounds` times each on one pair; medians."""
    pair = LocalPair.from_stack("bench", stack)
    pair.down()
    rates: dict[str, list[float]] = {"plain": [], "instrumented": []}
    cpus: dict[str, list[float]] = {"plain": [], "instrumented": []}
    try:
        pair.up()
        kafka.create_topics(pair.primary.bootstrap, {"bench-plain": 3, "bench-instr": 3}, 1)
        if pair.secure:  # the instrumented producer writes as the workload's producer principal
            kafka.create_acls(pair.primary.bootstrap, security.bindings(
                [("TOPIC", "bench-instr", "LITERAL", f"User:{security.PRODUCER}", "WRITE")]))  # fmt: skip
        for _ in range(rounds):
            for name, run in (
                ("plain", lambda: in_thread(plain_rate, pair.primary.bootstrap, "bench-plain", seconds)),
                ("instrumented", lambda: instrumented_rate(pair.primary.bootstrap, pair.primary.name,
                                                           "bench-instr", seconds)),
            ):  # fmt: skip
                cpu = time.process_time()
                rates[name].append(run())
                # this process's CPU (the producer thread and librdkafka's) per acknowledged record
                cpus[name].append((time.process_time() - cpu) / (rates[name][-1] * seconds) * 1e6)
    finally:
        pair.down()
    plain, instr = (statistics.median(rates[k]) for k in ("plain", "instrumented"))
    cpu_p, cpu_i = (statistics.median(cpus[k]) for k in ("plain", "instrumented"))
    ratios = sorted(i / p for p, i in zip(rates["plain"], rates["instrumented"], strict=True))
    print(f"plain producer:        {plain:9.0f} records/s acknowledged ({SIZE} B, acks=all, "
          f"idempotent; median of {rounds}), {cpu_p:.2f} us client CPU per record")  # fmt: skip
    print(f"instrumented producer: {instr:9.0f} records/s acknowledged (every ack recorded), "
          f"{cpu_i:.2f} us client CPU per record")  # fmt: skip
    print(f"ratio:                 {instr / plain:9.2f}   (target >= 0.8)   per round: "
          f"{', '.join(f'{r:.2f}' for r in ratios)}   [{os.cpu_count()} cores]")  # fmt: skip


class StandIn:
    """librdkafka replaced: produce() queues the delivery callback, poll() answers every
    queued send with a success report carrying one real confluent-kafka Message. What is
    left is the Python each producer spends per record, free of broker and machine noise."""

    def __init__(self, conf=None, logger=None):
        from confluent_kafka import Message

        self.queue: list = []
        self.msg = Message(topic="t", partition=0, offset=0, key=b"k", value=b"v")

    def produce(self, topic, value=None, key=None, partition=-1, on_delivery=None):
        self.queue.append(on_delivery)

    def poll(self, timeout=None):
        served, self.queue = self.queue, []
        for cb in served:
            cb(None, self.msg)
        return len(served)

    def flush(self, timeout=None):
        self.poll()
        return 0

    def purge(self, **kw):
        pass

    def list_topics(self, *a, **kw):
        pass


def overhead(seconds: float, rounds: int) -> None:
    """Python CPU per record, plain loop vs instrumented producer, on the stand-in."""
    import drills.workload as workload

    def plain() -> float:
        p, acked, value = StandIn(), [0], b"x" * SIZE

        def done(err, msg):
            if err is None:
                acked[0] += 1

        end, i, cpu = time.monotonic() + seconds, 0, time.thread_time()
        while time.monotonic() < end:  # as plain_rate
            p.produce("t", value, key=f"k{i % 32}", on_delivery=done)
            p.poll(0)
            i += 1
        p.flush()
        return (time.thread_time() - cpu) / acked[0] * 1e6

    def instrumented() -> float:
        rec, out = Recorder(), {}
        timeouts = {"message_timeout_ms": 1000, "request_timeout_ms": 1000,
                    "socket_connection_setup_timeout_ms": 1000, "metadata_max_age_ms": 5000}  # fmt: skip
        cfg = ProducerConfig(1e9, 32, SIZE, "all", True, timeouts)
        prod = InstrumentedProducer("bench", cfg, Placement("r", "r:9092", {"t": "t"}), rec,
                                    Detector("delivery-errors", 3, 2))  # fmt: skip
        run = prod._run

        def timed() -> None:
            cpu = time.thread_time()
            run()
            out["cpu"] = time.thread_time() - cpu

        prod._run = timed
        prod.start()
        time.sleep(seconds)
        prod.stop_flag.set()
        prod.join(60)
        return out["cpu"] / rec.ack_count() * 1e6

    real, workload.Producer = workload.Producer, StandIn
    try:
        got: dict[str, list[float]] = {"plain": [], "instrumented": []}
        for _ in range(rounds):
            got["plain"].append(in_thread(plain))
            got["instrumented"].append(instrumented())
    finally:
        workload.Producer = real
    p, i = (statistics.median(got[k]) for k in ("plain", "instrumented"))
    print(f"Python per record, librdkafka replaced by a stand-in (median of {rounds}): "
          f"plain {p:.2f} us, instrumented {i:.2f} us (+{i - p:.2f} us)")  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--seconds", type=float, default=10, help="length of each throughput run (default 10)"
    )
    ap.add_argument(
        "--rounds", type=int, default=3, help="plain/instrumented throughput rounds (default 3)"
    )
    ap.add_argument(
        "--runs",
        type=int,
        default=5,
        help="default drills for the after-detection figure (default 5)",
    )
    ap.add_argument(
        "--part",
        choices=("all", "drill", "throughput", "overhead", "probe-steady"),
        default="all",
        help="drill: the default drill and the after-detection runs; throughput: the producers "
        "on a real broker; overhead: their Python per record on a stand-in (no pair needed); "
        "probe-steady: the probe detector on a healthy pair (false detections; not in all)",
    )
    ap.add_argument(
        "--detector",
        choices=("spec", "probe"),
        default="spec",
        help="spec: the drill's own detection (the default drill: 3 failed deliveries after "
        "its 5 s message timeout); probe: a canary probe of the primary instead (below), and "
        "RTO printed over the runs",
    )
    dp = ProbeChoice()
    ap.add_argument("--probe-interval", type=float, default=dp.interval_s,
                    help=f"probe: seconds between canary round trips (default {dp.interval_s})")  # fmt: skip
    ap.add_argument("--probe-threshold", type=int, default=dp.threshold,
                    help=f"probe: consecutive failed round trips that declare (default {dp.threshold})")  # fmt: skip
    ap.add_argument("--probe-timeout-ms", type=int, default=dp.timeout_ms,
                    help=f"probe: a round trip not complete in this long fails (default {dp.timeout_ms})")  # fmt: skip
    ap.add_argument("--probe-seconds", type=float, default=120,
                    help="probe-steady: how long the probe runs on the healthy pair (default 120)")  # fmt: skip
    ap.add_argument(
        "--spec",
        default=str(ROOT / SPEC),
        help="the drill to run (default: the default drill; e.g. a copy with "
        "cutover.warm_standby: false for the cold cutover)",
    )
    args = ap.parse_args()
    spec = str(Path(args.spec).resolve())
    probe = ProbeChoice(args.probe_interval, args.probe_threshold, args.probe_timeout_ms)

    with tempfile.TemporaryDirectory() as d:
        stack = bench_stack(Path(d))
        if args.detector == "probe" or args.part == "probe-steady":
            try:
                built = probe_spec(spec, probe)
            except SpecError as e:
                raise SystemExit(f"bench/drill.py: {e}") from None
            if args.detector == "probe":
                spec = str(Path(d) / f"{Path(spec).stem}-probe.yaml")
                Path(spec).write_text(yaml.safe_dump(built, sort_keys=False))
        if args.part == "probe-steady":
            probe_steady(stack, probe, args.probe_seconds)
            return 0
        if args.part in ("all", "drill"):
            if LocalPair.from_stack("bench", stack).is_up():
                raise SystemExit(
                    f"the bench pair ({PREFIX}) is up; `kdrill local down --stack <its file>` "
                    "first so the drill's wall time includes bring-up"
                )
            wall, ev = default_drill(stack, spec)
            phases: dict[str, float] = {}
            for s in ev["journal"]["steps"]:
                phases[s["phase"]] = phases.get(s["phase"], 0) + (s["duration"] or 0)
            verdict = "PASS" if ev["verdict"] and ev["verdict"]["passed"] else ev["status"]
            print(f"default drill, end to end (up + drill + down): {wall:6.1f} s   "
                  f"(target < 90 s)   verdict: {verdict}")  # fmt: skip
            print("  phases: " + ", ".join(f"{k} {v:.1f}s" for k, v in phases.items()))
            m = ev.get("measurements") or {}
            print(f"  RTO {(m.get('rto') or {}).get('seconds')}  "
                  f"RPO {(m.get('rpo') or {}).get('records')}")  # fmt: skip
            evs = after_detection(stack, spec, ev, args.runs)
            if args.detector == "probe":
                print_rto(evs, probe)
        if args.part in ("all", "throughput"):
            throughput(stack, args.seconds, args.rounds)
        if args.part in ("all", "overhead"):
            overhead(min(args.seconds, 2.0), max(args.rounds, 3))
    return 0


if __name__ == "__main__":
    sys.exit(main())
