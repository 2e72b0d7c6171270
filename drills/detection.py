"""Detection: when the drill declares the primary unhealthy, from client-side observations only.

A drill's detection rule (drills/spec.py `Detection`) is a tree: leaves observe, `any` /
`all` combine. The leaves:

- `delivery-errors`: `threshold` consecutive failed deliveries of the workload's producers
  (librdkafka reports them only after message.timeout.ms, so detection is bounded below
  by it);
- `no-acks`: no acknowledgement for `window_s` while sends are outstanding;
- `probe`: a canary producer and consumer per region, with their own short timeouts, make
  a round trip every `interval_s` (`primary`, `standby`: produce to and consume from the
  region; `replication`: produce to the primary, consume from the standby's replica of the
  canary topic, MirrorMaker 2's path end to end); `threshold` consecutive failed round trips
  (or failing for `for_s`, or `failed_share` of the last `of_last` failed: partial loss) declare. A check that never once succeeded does not declare: a
  probe that cannot work is a broken probe, not a detected region;
- `replication-lag`: the standby behind the primary (end offsets read through both
  clusters' bootstrap, records or seconds as the steady state measures) over its bound for
  `for_s`;
- `consumer-lag`: a group's committed offsets behind the primary's end offsets by more
  than `max_records` for `for_s`.

Each leaf latches its first firing once the detector is armed and the incident has struck
(`since(T_fault)`: what clients saw before the incident, e.g. a stack update's CPU burst or
an earlier fault of the timeline, does not count). `any` fires at its earliest child's
firing, `all` once every child has fired (at the last one's instant). The firing says which
rule fired (its spec path), on what (a region, the replication path, a group, the clients)
and the observation.

The detector sees only what clients see: this module and `ClientWatch` (the canary and
offset readers) import no target, stack, local-pair or fault module
(tests/unit/test_imports.py holds that line).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_END, Consumer, Producer, TopicPartition

from components.clientconf import client_config

clock = time.monotonic
COMBINATIONS = ("any", "all")
CANARY_TOPIC = "kdrill-canary"


@dataclass(frozen=True)
class Firing:
    """A rule that fired: which (its kind and spec path), on what, what was observed, when."""

    rule: str
    path: str
    on: str
    observation: str
    t: float
    parts: tuple[Firing, ...] = ()  # an `all` / `any`: the firings of its children

    def describe(self) -> str:
        if self.parts:
            return f"{self.rule}: " + "; ".join(p.describe() for p in self.parts)
        return f"{self.rule} on {self.on}: {self.observation}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rule": self.rule, "path": self.path, "on": self.on,
                               "observation": self.observation, "t": self.t}  # fmt: skip
        if self.parts:
            out["parts"] = [p.to_dict() for p in self.parts]
        return out


# --- the rule tree --------------------------------------------------------------------


class Node:
    """A rule: `firing()` is its latched firing (None until it fires)."""

    kind = ""

    def __init__(self, path: str):
        self.path = path
        self.fired: Firing | None = None

    def leaves(self) -> list[Node]:
        return [self]

    def firing(self) -> Firing | None:
        return self.fired

    def reset(self, t: float) -> None:
        """From `t` on only: earlier firings and state are forgotten."""
        if self.fired is not None and self.fired.t < t:
            self.fired = None

    def _fire(self, t: float, on: str, observation: str) -> None:
        if self.fired is None:
            self.fired = Firing(self.kind, self.path, on, observation, t)


class DeliveryErrors(Node):
    kind = "delivery-errors"

    def __init__(self, path: str, threshold: int):
        super().__init__(path)
        self.threshold = threshold

    def failure(self, t: float, consecutive: int, error: str) -> None:
        if consecutive >= self.threshold:
            self._fire(t, "clients", f"{consecutive} consecutive delivery failures, last: {error}")


class NoAcks(Node):
    kind = "no-acks"

    def __init__(self, path: str, window_s: float):
        super().__init__(path)
        self.window_s = window_s

    def tick(self, now: float, quiet: float, outstanding: int) -> None:
        if outstanding and quiet >= self.window_s:
            self._fire(now, "clients",
                       f"no acknowledgement for {quiet:.1f}s with {outstanding} in flight")  # fmt: skip


@dataclass
class _CheckState:
    consecutive: int = 0
    failing_since: float | None = None
    ever_ok: bool = False
    last: str = ""
    recent: deque[bool] = field(default_factory=deque)  # latest round trips, True = failed


class Probe(Node):
    kind = "probe"

    def __init__(self, path: str, threshold: int, for_s: float | None, checks: tuple[str, ...],
                 interval_s: float = 0.5, timeout_ms: int = 1000,
                 failed_share: float | None = None, of_last: int = 20):  # fmt: skip
        super().__init__(path)
        self.threshold, self.for_s, self.checks = threshold, for_s, checks
        self.interval_s, self.timeout_ms = interval_s, timeout_ms
        self.failed_share, self.of_last = failed_share, of_last
        self.state: dict[str, _CheckState] = {}
        self.worked: set[str] = set()  # checks that made a round trip at least once

    def round_trip(self, check: str, on: str, t: float, ok: bool, detail: str) -> None:
        if check not in self.checks:
            return
        st = self.state.setdefault(on, _CheckState())
        st.last = detail
        if st.ever_ok or ok:
            st.recent.append(not ok)
            if len(st.recent) > self.of_last:
                st.recent.popleft()
        if ok:
            st.consecutive, st.failing_since, st.ever_ok = 0, None, True
            self.worked.add(check)
            return
        st.consecutive += 1
        if st.failing_since is None:
            st.failing_since = t
        if not st.ever_ok:
            return  # never worked: a broken probe, not a detected failure
        long = self.for_s is not None and t - st.failing_since >= self.for_s
        if st.consecutive >= self.threshold or long:
            failing = t - st.failing_since
            self._fire(t, on, f"{st.consecutive} consecutive canary round trips failed "
                              f"({failing:.1f}s), last: {detail}")  # fmt: skip
            return
        failed = sum(st.recent)
        if self.failed_share is not None and failed >= self.failed_share * self.of_last:
            self._fire(t, on, f"{failed} of the last {self.of_last} canary round trips "
                              f"failed, last: {detail}")  # fmt: skip

    def reset(self, t: float) -> None:
        super().reset(t)
        for st in self.state.values():
            st.consecutive = 0
            st.recent.clear()  # only round trips since the incident count towards the share
            if st.failing_since is not None:
                st.failing_since = max(st.failing_since, t)


class Lag(Node):
    """replication-lag (records or seconds) or consumer-lag (records), over a bound for `for_s`."""

    def __init__(self, path: str, kind: str, bound: float, unit: str, for_s: float,
                 group: str | None = None, interval_s: float = 0.5, timeout_ms: int = 1000):  # fmt: skip
        super().__init__(path)
        self.kind, self.bound, self.unit, self.for_s, self.group = kind, bound, unit, for_s, group
        self.interval_s, self.timeout_ms = interval_s, timeout_ms
        self.over_since: dict[str, float] = {}

    def lag(self, kind: str, on: str, t: float, value: float, unit: str) -> None:
        if kind != self.kind or unit != self.unit or (self.group and on != self.group):
            return
        if value <= self.bound:
            self.over_since.pop(on, None)
            return
        since = self.over_since.setdefault(on, t)
        if t - since >= self.for_s:
            u = "s" if unit == "seconds" else " records"
            self._fire(t, on, f"lag {value:g}{u} over the bound {self.bound:g}{u} "
                              f"for {t - since:.1f}s")  # fmt: skip

    def reset(self, t: float) -> None:
        super().reset(t)
        self.over_since = {k: max(v, t) for k, v in self.over_since.items()}


class Combination(Node):
    def __init__(self, path: str, kind: str, children: list[Node]):
        super().__init__(path)
        self.kind, self.children = kind, children

    def leaves(self) -> list[Node]:
        return [x for c in self.children for x in c.leaves()]

    def firing(self) -> Firing | None:
        got = [c.firing() for c in self.children]
        fired = [f for f in got if f is not None]
        if not fired or (self.kind == "all" and len(fired) < len(got)):
            return None
        if self.kind == "any":
            first = min(fired, key=lambda f: f.t)
            return Firing("any", self.path, first.on, first.observation, first.t, (first,))
        last = max(fired, key=lambda f: f.t)
        on = ", ".join(dict.fromkeys(f.on for f in fired))
        return Firing("all", self.path, on, "every rule fired", last.t, tuple(fired))

    def reset(self, t: float) -> None:
        for c in self.children:
            c.reset(t)


def build(rule: Any, path: str = "detection") -> Node:
    """The rule tree of a spec's `Detection` (or any object with its fields: `rule`,
    `threshold`, `window_s`, `for_s`, `interval_s`, `timeout_ms`, `checks`, `max_lag_s`,
    `max_records`, `group`, `rules`)."""
    kind = rule.rule
    if kind in COMBINATIONS:
        kids = [build(r, f"{path}.rules[{i}]") for i, r in enumerate(rule.rules or [])]
        return Combination(path, kind, kids)
    if kind == "delivery-errors":
        return DeliveryErrors(path, rule.threshold)
    if kind == "no-acks":
        return NoAcks(path, rule.window_s)
    if kind == "probe":
        return Probe(path, rule.threshold, rule.for_s, tuple(rule.checks), rule.interval_s,
                     rule.timeout_ms, getattr(rule, "failed_share", None),
                     getattr(rule, "of_last", 20))  # fmt: skip
    if kind == "replication-lag":
        seconds = rule.max_lag_s is not None
        return Lag(path, kind, rule.max_lag_s if seconds else rule.max_records,
                   "seconds" if seconds else "records", rule.for_s or 0.0, None,
                   rule.interval_s, rule.timeout_ms)  # fmt: skip
    if kind == "consumer-lag":
        return Lag(path, kind, rule.max_records, "records", rule.for_s or 0.0, rule.group,
                   rule.interval_s, rule.timeout_ms)  # fmt: skip
    raise ValueError(f"unknown detection rule {kind!r}")


@dataclass
class _Leaf:
    """A leaf rule given as plain values (the old `Detector(rule, threshold, window_s)`)."""

    rule: str
    threshold: int = 3
    window_s: float = 2.0
    for_s: float | None = None
    interval_s: float = 0.5
    timeout_ms: int = 1000
    checks: list[str] = field(default_factory=lambda: ["primary"])
    max_lag_s: float | None = None
    max_records: int | None = None
    group: str | None = None
    rules: list | None = None


# --- the detector ---------------------------------------------------------------------


class Detector:
    """Declares the primary unhealthy from what clients see, never from the fault record.

    `Detector("delivery-errors", threshold, window_s)` or `Detector(spec.detection)` (a
    rule tree). Observations come in from the workload's delivery reports (`success`,
    `failure`), the engine's ticks (`tick`, for silence) and `ClientWatch` (`round_trip`,
    `lag`); the first time the tree fires while armed, `t_detect`, `evidence` and `fired`
    are set and `declared` is set.
    """

    def __init__(self, rule: Any = "delivery-errors", threshold: int = 3, window_s: float = 2.0):
        if isinstance(rule, str):
            rule = _Leaf(rule, threshold, window_s)
        self.rule = rule.rule
        self.root = build(rule)
        self.threshold, self.window_s = threshold, window_s
        leaves = self.root.leaves()
        self._delivery = [x for x in leaves if isinstance(x, DeliveryErrors)]
        self._silence = [x for x in leaves if isinstance(x, NoAcks)]
        self.probes = [x for x in leaves if isinstance(x, Probe)]
        self.lags = [x for x in leaves if isinstance(x, Lag)]
        self.lock = threading.Lock()
        self.consecutive = 0
        self.failures = 0  # failed deliveries counted since T_fault (before any declaration)
        self.last_ack: float | None = None
        self.armed = False
        self.not_before: float | None = None
        self.t_detect: float | None = None
        self.fired: Firing | None = None
        self.declared = threading.Event()  # set with t_detect: the engine decides at once
        self.evidence = ""
        self.observations: list[dict] = []  # the last probe / lag observations, for evidence

    def arm(self) -> None:
        with self.lock:
            self.armed, self.consecutive, self.last_ack = True, 0, clock()

    def since(self, t: float) -> None:
        """Count only what clients see from `t` (T_fault) on: a declaration before it is
        dropped, failures so far are forgotten and a quiet spell or a failing check starts
        at `t` at the earliest. (Armed before the fault is applied, the detector would
        otherwise count stalls the applying itself causes, e.g. a stack update's CPU burst.)"""
        with self.lock:
            self.not_before = t
            self.root.reset(t)
            if self.t_detect is not None and self.t_detect < t:
                self.t_detect, self.evidence, self.fired = None, "", None
                self.declared.clear()
            self.consecutive, self.failures = 0, 0
            if self.last_ack is None or self.last_ack < t:
                self.last_ack = t

    def disarm(self) -> None:
        with self.lock:
            self.armed = False

    def _counts(self, t: float) -> bool:
        return self.armed and (self.not_before is None or t >= self.not_before)

    # --- observations -----------------------------------------------------------------

    def success(self, t: float) -> None:
        # the hot path: plain assignments (atomic under the GIL), no lock
        self.consecutive = 0
        self.last_ack = t

    def failure(self, t: float, error: str) -> None:
        with self.lock:
            if self.not_before is not None and t < self.not_before:
                return
            self.consecutive += 1
            if self.t_detect is None:
                self.failures += 1
            if self._counts(t):
                for leaf in self._delivery:
                    leaf.failure(t, self.consecutive, error)
                self._evaluate()

    def tick(self, now: float, outstanding: int) -> None:
        with self.lock:
            quiet = now - self.last_ack if self.last_ack is not None else 0.0
            if self._counts(now):
                for leaf in self._silence:
                    leaf.tick(now, quiet, outstanding)
                self._evaluate()

    def round_trip(self, check: str, on: str, t: float, ok: bool, detail: str) -> None:
        """A canary round trip: `check` primary | standby | replication, `on` what it crossed."""
        with self.lock:
            self._observed({"probe": check, "on": on, "t": round(t, 4), "ok": ok, "detail": detail})
            if self.not_before is not None and t < self.not_before:
                for leaf in self.probes:  # still tracked: a check must have worked once
                    if ok and check in leaf.checks:
                        leaf.state.setdefault(on, _CheckState()).ever_ok = True
                        leaf.worked.add(check)
                return
            for leaf in self.probes:
                if ok or self._counts(t):
                    leaf.round_trip(check, on, t, ok, detail)
            self._evaluate()

    def lag(self, kind: str, on: str, t: float, value: float, unit: str) -> None:
        """A lag sample: `kind` replication-lag | consumer-lag, `on` the path or the group."""
        with self.lock:
            self._observed({"lag": kind, "on": on, "t": round(t, 4), "value": value, "unit": unit})
            if not self._counts(t):
                return
            for leaf in self.lags:
                leaf.lag(kind, on, t, value, unit)
            self._evaluate()

    def probes_ready(self) -> bool:
        """Every check of every probe rule has made a round trip: the probe works (part of
        the steady state a drill needs before it may strike)."""
        return all(set(p.checks) <= p.worked for p in self.probes)

    def _observed(self, obs: dict) -> None:
        self.observations.append(obs)
        del self.observations[:-40]

    def _evaluate(self) -> None:
        if self.t_detect is not None:
            return
        f = self.root.firing()
        if f is not None and self._counts(f.t):
            self.t_detect, self.evidence, self.fired = f.t, f.describe(), f
            self.declared.set()

    def report(self) -> dict[str, Any]:
        """What the evidence keeps of detection: the rule, what fired on what, the delivery
        failures clients saw before it, the last observations of the probe and lag readers."""
        with self.lock:
            return {
                "rule": self.rule,
                "t_detect": self.t_detect,
                "fired": self.fired.to_dict() if self.fired else None,
                "delivery_failures_before_detect": self.failures,
                "observations": list(self.observations[-20:]),
            }


# --- the client-side readers: canary round trips and offsets --------------------------


@dataclass(frozen=True)
class Endpoints:
    """What the readers may know: the regions' names and bootstrap addresses, topic names in
    each, the groups' Kafka ids. Plain values the engine hands over; nothing else."""

    primary: str
    standby: str
    bootstrap: dict[str, str]
    topics: dict[str, str]  # workload topic in the primary -> its replica in the standby
    groups: dict[str, str]  # group name -> its Kafka group.id
    canary: dict[str, str]  # "primary" / "standby": canary topic there; "replication": replica
    run_id: str


class ClientWatch:
    """The threads that observe for the probe and lag rules, each with its own clients and
    short timeouts, reporting into a `Detector`. `stop()` ends them without waiting for an
    unreachable cluster (their clients are closed on threads of their own)."""

    def __init__(self, detector: Detector, ends: Endpoints):
        self.det, self.ends = detector, ends
        self.stop_flag = threading.Event()
        self.threads: list[threading.Thread] = []
        self.errors: list[str] = []

    @staticmethod
    def needed(detector: Detector) -> bool:
        return bool(detector.probes or detector.lags)

    def start(self) -> None:
        probes = self.det.probes
        if probes:
            checks = {c for p in probes for c in p.checks}
            interval = min(p.interval_s for p in probes)
            timeout = min(p.timeout_ms for p in probes)
            if checks & {"primary", "replication"}:
                self._spawn(self._probe, "primary", checks, interval, timeout)
            if "standby" in checks:
                self._spawn(self._probe, "standby", checks, interval, timeout)
        if self.det.lags:
            interval = min(x.interval_s for x in self.det.lags)
            timeout = min(x.timeout_ms for x in self.det.lags)
            self._spawn(self._lags, interval, timeout)

    def stop(self, wait: float = 2.0) -> None:
        self.stop_flag.set()
        deadline = clock() + wait
        for th in self.threads:
            th.join(max(0.0, deadline - clock()))

    def _spawn(self, fn: Callable, *args) -> None:
        def run() -> None:
            try:
                fn(*args)
            except Exception as e:  # a reader that broke observes nothing; the evidence says so
                self.errors.append(f"{fn.__name__.strip('_')}: {type(e).__name__}: {e}")

        th = threading.Thread(target=run, name=f"watch-{fn.__name__.strip('_')}", daemon=True)
        th.start()
        self.threads.append(th)

    # --- the canary -------------------------------------------------------------------

    def _conf(self, region: str, timeout_ms: int) -> dict:
        return client_config(self.ends.bootstrap[region], {
            "socket.connection.setup.timeout.ms": max(1000, timeout_ms),
            "topic.metadata.refresh.interval.ms": 1000,
        })  # fmt: skip

    def _reader(self, region: str, topic: str, timeout_ms: int) -> Consumer:
        c = Consumer({**self._conf(region, timeout_ms), "group.id": f"kdrill-canary-{self.ends.run_id}",
                      "enable.auto.commit": False, "fetch.wait.max.ms": 20,
                      "enable.partition.eof": False})  # fmt: skip
        c.assign([TopicPartition(topic, 0, OFFSET_END)])
        return c

    def _probe(self, role: str, checks: set[str], interval: float, timeout_ms: int) -> None:
        """One region's canary: produce a record, read it back there (and, from the primary,
        from the standby's replica), every `interval` seconds."""
        e = self.ends
        region = e.primary if role == "primary" else e.standby
        producer = Producer({**self._conf(region, timeout_ms), "acks": "all", "linger.ms": 0,
                             "enable.idempotence": False, "message.timeout.ms": timeout_ms,
                             "request.timeout.ms": timeout_ms})  # fmt: skip
        readers: dict[str, tuple[str, Consumer]] = {}  # check -> (what it crosses, reader)
        if role in checks:
            readers[role] = (region, self._reader(region, e.canary[role], timeout_ms))
        if role == "primary" and "replication" in checks:
            readers["replication"] = (f"{e.primary}->{e.standby}",
                                      self._reader(e.standby, e.canary["replication"], timeout_ms))  # fmt: skip
        n = 0
        try:
            while not self.stop_flag.is_set():
                start = clock()
                n += 1
                value = f"kdrill-canary|{e.run_id}|{region}|{n}|{int(start * 1e9)}".encode()
                acked: list = []
                producer.produce(e.canary[role], value, partition=0,
                                 on_delivery=lambda err, _m, got=acked: got.append(err))  # fmt: skip
                seen: dict[str, float] = {}
                deadline = start + timeout_ms / 1000
                while (
                    clock() < deadline and len(seen) < len(readers) and not self.stop_flag.is_set()
                ):
                    producer.poll(0)
                    for check, (_on, c) in readers.items():
                        if check in seen:
                            continue
                        for m in c.consume(num_messages=50, timeout=0.01):
                            if m.error() is None and m.value() == value:
                                seen[check] = clock()
                producer.poll(0)
                if self.stop_flag.is_set():
                    break
                now = clock()
                ack = ("acknowledged" if acked and acked[0] is None
                       else f"not acknowledged: {acked[0]}" if acked
                       else f"no acknowledgement from {region} in {timeout_ms} ms")  # fmt: skip
                for check, (on, _c) in readers.items():
                    if check in seen:
                        self.det.round_trip(check, on, now, True,
                                            f"round trip {1000 * (seen[check] - start):.0f} ms")  # fmt: skip
                    else:
                        self.det.round_trip(check, on, now, False,
                                            f"canary {n} not read back from {on} in {timeout_ms} ms ({ack})")  # fmt: skip
                self.stop_flag.wait(max(0.0, start + interval - clock()))
        finally:
            producer.purge()
            _close_aside([c for _on, c in readers.values()])

    # --- offsets ----------------------------------------------------------------------

    def _lags(self, interval: float, timeout_ms: int) -> None:
        """End offsets of the workload topics in both regions and the groups' committed
        offsets in the primary, every `interval` seconds, through the clusters' bootstrap."""
        e = self.ends
        timeout = timeout_ms / 1000
        readers = {r: Consumer({**self._conf(r, timeout_ms), "group.id": f"kdrill-lag-{e.run_id}",
                                "enable.auto.commit": False}) for r in (e.primary, e.standby)}  # fmt: skip
        group_readers = {
            g: Consumer({**self._conf(e.primary, timeout_ms), "group.id": gid, "enable.auto.commit": False})
            for g, gid in e.groups.items()
        }  # fmt: skip
        want_replication = any(x.kind == "replication-lag" for x in self.det.lags)
        want_groups = any(x.kind == "consumer-lag" for x in self.det.lags)
        samples: list[tuple[float, dict]] = []  # primary end offsets not yet reached by the standby
        parts: dict[tuple[str, str], list[int]] = {}
        on = f"{e.primary}->{e.standby}"

        def ends(region: str, topics: list[str]) -> dict[tuple[str, int], int] | None:
            c = readers[region]
            out = {}
            try:
                for t in topics:
                    if (region, t) not in parts:
                        md = c.list_topics(t, timeout=timeout).topics.get(t)
                        if md is None or md.error is not None:
                            return None
                        parts[(region, t)] = sorted(md.partitions)
                    for p in parts[(region, t)]:
                        out[(t, p)] = c.get_watermark_offsets(TopicPartition(t, p), timeout=timeout,
                                                              cached=False)[1]  # fmt: skip
            except Exception:  # unreachable or timed out: no observation this round
                return None
            return out

        try:
            while not self.stop_flag.is_set():
                start = clock()
                prim = ends(e.primary, list(e.topics))
                if prim is not None and want_replication:
                    stby = ends(e.standby, list(e.topics.values()))
                    if stby is not None:
                        now = clock()
                        behind = sum(
                            max(0, off - stby.get((e.topics[t], p), 0))
                            for (t, p), off in prim.items()
                        )
                        samples.append((start, prim))
                        samples[:] = [(t0, s) for t0, s in samples
                                      if not all(stby.get((e.topics[t], p), 0) >= off for (t, p), off in s.items())]  # fmt: skip
                        secs = round(now - samples[0][0], 3) if samples else 0.0
                        self.det.lag("replication-lag", on, now, behind, "records")
                        self.det.lag("replication-lag", on, now, secs, "seconds")
                if prim is not None and want_groups:
                    for g, c in group_readers.items():
                        try:
                            got = c.committed(
                                [TopicPartition(t, p) for (t, p) in prim], timeout=timeout
                            )
                        except Exception:
                            continue
                        lag = sum(prim[(tp.topic, tp.partition)] - max(0, tp.offset) for tp in got)
                        self.det.lag("consumer-lag", g, clock(), lag, "records")
                self.stop_flag.wait(max(0.0, start + interval - clock()))
        finally:
            _close_aside([*readers.values(), *group_readers.values()])


def _close_aside(clients: list) -> None:
    """Close clients on a thread of their own: against an unreachable cluster close() can
    block for its timeouts, and the recovery path must not wait for it."""

    def close() -> None:
        for c in clients:
            with contextlib.suppress(Exception):
                c.close()

    threading.Thread(target=close, name="watch-close", daemon=True).start()
