"""The local pair's parts as Pulumi resources, on the session's pair (tests/integration/conftest.py).

- a broker killed outside Pulumi: `pulumi refresh --preview-only` reports exactly its
  cluster, and nothing once it runs again (a restart with a new pid is no drift);
- `pulumi up` returns while a daemon a provider started runs on (the daemon holds none of
  the provider's pipes);
- a control run: a no-op update of the fault switch while a producer runs keeps the
  steady state (no failed delivery, no long gap between acks, the detector silent).
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
import urllib.request

from components.local import faultswitch, kafka, objectstore
from components.wait import wait_until
from drills.workload import Detector
from tests.integration.conftest import producer

CHANGED = re.compile(r"^\s*~\s+[\w-]+:\S+\s+(\S+)\s+update\b")  # "~  <type> <name> update"


def drifted(pair) -> list[str]:
    """Resource names `pulumi refresh --preview-only` would update (live != state)."""
    r = pair.stack.refresh(preview_only=True)
    assert r.returncode == 0, r.stderr[-500:]
    return sorted({m.group(1) for line in r.stdout.splitlines() if (m := CHANGED.match(line))})


def test_refresh_reports_exactly_the_broker_killed_outside_pulumi(pair):
    assert drifted(pair) == [], "a pair just up matches its stack"
    region = pair.primary.name
    broker = pair.find("broker", region, 0)
    os.kill(broker.pid, signal.SIGKILL)
    wait_until(lambda: pair.brokers_running(region) == [], 10, "the killed broker to exit")
    try:
        assert drifted(pair) == [f"{pair.cfg.prefix}-{region}-kafka"]
    finally:
        pair.restore_region(region)
    assert drifted(pair) == [], "restarted (a new pid): no drift"


def test_pulumi_up_returns_soon_after_a_provider_starts_a_daemon(pair):
    """Kill the standby's S3 endpoint, let refresh record it, and have `pulumi up` heal it:
    the provider starts moto; the engine must return while moto runs on. A daemon holding the
    provider's pipes makes the engine wait for the daemon to exit (forever); the bound is
    generous because the engine's own wind-down (checkpoint, plugin shutdown) took 5.6 s on
    a loaded 2-core CI machine."""
    region = pair.standby.name
    url = objectstore.endpoint(pair.standby.client_ip) + "/moto-api/"
    s3 = pair.find("s3", region)
    os.kill(s3.pid, signal.SIGKILL)
    wait_until(lambda: not pair.registry.running("s3", region), 10, "moto to exit")
    assert pair.stack.refresh().returncode == 0
    answered: list[float] = []

    def watch() -> None:
        while not answered:
            try:
                urllib.request.urlopen(url, timeout=0.5).close()
                answered.append(time.monotonic())
            except OSError:
                time.sleep(0.05)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    up = pair.stack.up(targets=[pair.stack.urn(faultswitch.TYPE, f"{pair.cfg.prefix}-{region}-s3")])
    returned = time.monotonic()
    t.join(timeout=1)
    assert answered, f"moto never answered: {up.stdout[-400:]}"
    assert returned - answered[0] < 30.0, f"pulumi up returned {returned - answered[0]:.1f}s late"
    assert pair.registry.running("s3", region)
    assert drifted(pair) == []


def test_control_run_a_no_op_stack_update_keeps_the_steady_state(pair, topic_name):
    """What a drill's inject costs by itself: the update's CPU burst must not look like a
    fault to clients (the bounds a drill's steady state holds: no failed delivery, acks
    keep coming, the detector stays silent)."""
    kafka.create_topics(pair.primary.bootstrap, {topic_name: 1}, 1)
    p = producer(pair.primary.bootstrap, **{"message.timeout.ms": 5000})
    detector = Detector("no-acks", threshold=3, window_s=2.0)  # stricter than a drill's default
    detector.arm()
    acks: list[float] = []
    failed: list[str] = []
    stop = threading.Event()

    def on_delivery(err, _msg) -> None:
        if err is None:
            acks.append(time.monotonic())
            detector.success(time.monotonic())
        else:
            failed.append(str(err))
            detector.failure(time.monotonic(), str(err))

    def produce() -> None:
        while not stop.is_set():
            p.produce(topic_name, b"x", on_delivery=on_delivery)
            p.poll(0.002)
            detector.tick(time.monotonic(), len(p))
        p.flush(10)

    t = threading.Thread(target=produce, daemon=True)
    t.start()
    try:
        wait_until(lambda: len(acks) > 100, 30, "the producer to be acknowledged")
        t0 = time.monotonic()
        r = pair.stack.up(targets=[faultswitch.switch_urn(pair)])  # nothing changes: a no-op
        t1 = time.monotonic()
        time.sleep(1.0)  # acks after the update ended, so a stall at its end shows as a gap
    finally:
        stop.set()
        t.join(timeout=15)
    window = [a for a in acks if t0 - 0.5 <= a <= t1 + 1.0]
    gaps = [b - a for a, b in zip(window, window[1:], strict=False)]
    assert "unchanged" in r.stdout or "0 changes" in r.stdout or "no changes" in r.stdout.lower()
    assert failed == [], f"deliveries failed during a no-op update: {failed[:3]}"
    assert window and max(gaps, default=0) < 1.0, f"acks stalled {max(gaps):.2f}s"
    assert detector.t_detect is None, "the detector fired on a no-op update"
