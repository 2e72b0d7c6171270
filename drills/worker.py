"""The workload as worker processes: `kdrill worker` runs producers and groups for a run.

Contract. With `workload.workers: N` (N > 1; 1, the default, keeps the workload as
threads in the drill process, drills/workload.py), the engine starts N processes of
`kdrill worker --connect HOST:PORT --index I --engine-pid P` and coordinates them over
one TCP connection each (the *control channel*, JSON lines). Each worker runs the very
same `InstrumentedProducer` / `GroupConsumer` threads for its share of the producers and
groups (round robin), records into its own `Recorder`, and at the end writes its rows as
a history *shard* (drills/history/storage.py) into the run's history directory
(`history/shards/worker-I/`, uploaded with the evidence to the run's object storage). The
engine writes its own shard (the log read back, the end offsets) and the run's meta.json
listing them; `read_history` merges them, so the checker sees one history.

The channel, engine -> worker: `start` (the worker's producers, groups, placements,
client timeouts, the rate shape, the cluster credentials -- never in argv), `ping`,
`anchor` (T_fault, for a shape relative to the fault), `pause` / `resume` / `move` of a
producer, `move` of a group (with its resume rule), `stop`. Worker -> engine: `hello`
(a token from the environment, its boot id), `pong`, `events` every EVENT_S (ack times per
cluster, the delivery outcomes the detector needs, in-flight counts, the offered-rate
samples, client timings, errors), `stopped`. The engine's side keeps proxies with the
attributes of the threads it drives (`pending`, `paused`, `move_to`, `offered`, ...), so
its phases drive processes as they drive threads; the detector gets each worker's
outcomes in order, up to EVENT_S after they happened (the one cost of a worker on the
detection path).

A worker that loses the channel (EOF, an error, or no message for SILENCE_S while the
engine pings every PING_S) stops its producers at once, writes its shard and exits. The
engine kills its workers on every exit path (`WorkerPool.stop`, called when the workload
stops, and at interpreter exit); a worker whose engine died is found by `kdrill recover`
(`reap_leftovers`: its argv names the engine's pid).

Clocks. Each ping's round trip gives an NTP-style estimate of the worker's clock offset
(worker minus engine) = ((t1 - t0) + (t2 - t3)) / 2, within +-(round trip)/2; the
estimate of the fastest round trip is kept and recorded per worker in the evidence
(`workers`). A worker on the engine's machine (same boot id) shares its monotonic clock:
its offset is applied as 0 and the estimate only recorded. A worker elsewhere has its
times moved onto the engine's clock by the estimate (live events and its shard), so every
instant of RTO is off by at most that worker's estimate error: see README, "Workers".
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from components.clientconf import PRODUCER_ROLE, group_role, register, role_settings, settings_for
from drills.history import DrillMeta, ResumeSource, read_history, write_history
from drills.history.storage import SHARDS, write_sharded
from drills.shapes import RateSchedule, Shape
from drills.workload import (
    ACK_WIDTH,
    GroupConfig,
    GroupConsumer,
    InstrumentedProducer,
    Placement,
    ProducerConfig,
    Recorder,
    clock,
    synced_position,
)

TOKEN_ENV = "KDRILL_WORKER_TOKEN"
# A worker run as a Kubernetes pod (components/kubernetes/workers.py) gets these instead of
# being told: its clusters' addresses (stack outputs), credentials (a Secret), where its
# shard goes (the run's evidence prefix in S3).
BOOTSTRAP_ENV = ("KDRILL_BOOTSTRAP_PRIMARY", "KDRILL_BOOTSTRAP_STANDBY")
USER_ENV, PASSWORD_ENV = "KDRILL_SASL_USERNAME", "KDRILL_SASL_PASSWORD"
PROTOCOL_ENV, MECHANISM_ENV = "KDRILL_SECURITY_PROTOCOL", "KDRILL_SASL_MECHANISM"
SHARD_URL_ENV = "KDRILL_SHARD_URL"
EVENT_S = 0.05  # how often a worker sends what its clients saw
PING_S = 0.5  # how often the engine pings each worker
SILENCE_S = 10.0  # a worker that hears nothing for this long has lost the channel
CONNECT_S = 60.0  # how long the engine waits for its workers to say hello
WORKER_ARGV = ("drills.cli", "worker")  # how reap_leftovers recognises a worker


class WorkerError(RuntimeError):
    """A worker could not start, said something wrong, or died before its shard."""


def boot_id() -> str:
    """This machine's boot id: two processes with the same one share CLOCK_MONOTONIC."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return f"{socket.gethostname()}-unknown"


# --- the channel: JSON lines ----------------------------------------------------------


class Channel:
    """One end of a control channel: JSON lines over a socket, sends under a lock."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.file = sock.makefile("rb")
        self.lock = threading.Lock()
        self.closed = False

    def send(self, msg: dict) -> bool:
        data = (json.dumps(msg, separators=(",", ":")) + "\n").encode()
        with self.lock:
            if self.closed:
                return False
            try:
                self.sock.sendall(data)
                return True
            except OSError:
                self.closed = True
                return False

    def recv(self) -> dict | None:
        """The next message, or None once the channel is gone."""
        try:
            line = self.file.readline()
        except (OSError, ValueError):
            line = b""
        if not line:
            self.closed = True
            return None
        return json.loads(line)

    def finish_sending(self) -> None:
        """No more messages from this end; the peer reads everything sent, then EOF. (A
        socket closed with unread incoming data resets the connection, and the peer loses
        what it had not read yet: so the reading side stays open until the peer closes.)"""
        with self.lock:
            self.closed = True
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.closed = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.sock.close()


def _place(p: Placement | dict | None) -> dict | Placement | None:
    if p is None:
        return None
    if isinstance(p, Placement):
        return {"cluster": p.cluster, "bootstrap": p.bootstrap, "topics": p.topics}
    return Placement(p["cluster"], p["bootstrap"], dict(p["topics"]))


# --- the worker process ------------------------------------------------------------------


class _Outcomes:
    """What the detector needs from this worker's producers, in order: each failure, and
    the last success of each run of successes (a success only resets the failure count
    and moves the last-ack time, so the run's last one stands for it)."""

    def __init__(self) -> None:
        self.events: list[list] = []  # [time, error or None]

    def success(self, t: float) -> None:
        ev = self.events
        if ev and ev[-1][1] is None:
            ev[-1] = [t, None]
        else:
            ev.append([t, None])

    def failure(self, t: float, error: str) -> None:
        self.events.append([t, error])

    def take(self) -> list[list]:
        n = len(self.events)
        out = self.events[:n]
        del self.events[:n]
        return out


def _resume_rule(mode: str, translated: dict[tuple[str, str, int], int]):
    if mode == "synced":
        return synced_position
    if mode == "checkpoint":

        def from_checkpoint(group_id, consumer, tps):
            offs = [translated.get((group_id, tp.topic, tp.partition)) for tp in tps]
            return [(o, ResumeSource.CHECKPOINT.value) if o is not None
                    else (None, ResumeSource.RESET.value) for o in offs]  # fmt: skip

        return from_checkpoint
    return lambda group_id, consumer, tps: [(None, ResumeSource.RESET.value)] * len(tps)


class Worker:
    """The worker's side: runs its clients as the engine says, streams what they see."""

    def __init__(self, chan: Channel, index: int):
        self.chan, self.index = chan, index
        self.rec = Recorder()
        self.outcomes = _Outcomes()
        self.producers: list[InstrumentedProducer] = []
        self.groups: list[GroupConsumer] = []
        self.anchor: float | None = None
        self.lost = threading.Event()  # the channel is gone: stop producing
        self.stop = threading.Event()
        self.last_heard = clock()
        self.sent_acks = 0
        self.sent_offered: dict[str, int] = {}
        self.errors_sent: set[str] = set()
        self.shard_dir: Path | None = None
        self.meta: DrillMeta | None = None

    def start(self, msg: dict) -> None:
        for bootstrap, creds in (msg.get("credentials") or {}).items():
            register(bootstrap, creds["settings"], creds.get("roles") or {})
        self.meta = DrillMeta.from_dict(msg["meta"])
        self.shard_dir = Path(msg["shard_dir"])
        offset = float(msg.get("clock_offset", 0.0))  # this clock minus the engine's
        relative = msg["relative_to"]
        started = float(msg["started"]) + offset
        anchor = (lambda: self.anchor) if relative == "fault" else (lambda: started)
        schedule = RateSchedule(msg["rate"], Shape(**msg["shape"]), anchor)
        pids = set(msg["all_producers"])
        for p in msg["producers"]:
            cfg = ProducerConfig(**{**p["cfg"], "schedule": schedule})
            th = InstrumentedProducer(p["pid"], cfg, _place(p["place"]), self.rec, self.outcomes,
                                      standby=_place(p["standby"]))  # fmt: skip
            self.producers.append(th)
        for g in msg["groups"]:
            th = GroupConsumer(GroupConfig(**g["cfg"]), _place(g["place"]), self.rec,
                               standby=_place(g["standby"]))  # fmt: skip
            th.producers = pids
            self.groups.append(th)
        for th in [*self.groups, *self.producers]:
            th.start()

    def handle(self, msg: dict) -> None:
        op = msg["op"]
        by_pid = {p.pid: p for p in self.producers}
        by_group = {g.cfg.name: g for g in self.groups}
        if op == "ping":
            t1 = clock()
            self.chan.send({"op": "pong", "t0": msg["t0"], "t1": t1, "t2": clock()})
        elif op == "start":
            self.start(msg)
        elif op == "anchor":
            self.anchor = float(msg["t"])
        elif op == "pause":
            by_pid[msg["pid"]].paused.set()
        elif op == "resume":
            by_pid[msg["pid"]].paused.clear()
        elif op == "move":
            p = by_pid[msg["pid"]]
            p.move_to(_place(msg["place"]))
            p.budget = None
        elif op == "move_group":
            translated = {(a, b, int(c)): int(d) for a, b, c, d in msg.get("translated", [])}
            by_group[msg["name"]].move_to(_place(msg["place"]), msg["topics"],
                                          _resume_rule(msg["resume"], translated))  # fmt: skip
        elif op == "stop":
            self.stop.set()

    def events(self) -> dict:
        a = self.rec.acks[:]  # whole acks only (extend is atomic)
        new = a[self.sent_acks * ACK_WIDTH :]
        self.sent_acks += len(new) // ACK_WIDTH
        acks: dict[str, list[float]] = {}
        for c, t in zip(new[4::ACK_WIDTH], new[ACK_WIDTH - 1 :: ACK_WIDTH], strict=True):
            acks.setdefault(c, []).append(round(t, 6))
        offered = {}
        for p in self.producers:
            k = self.sent_offered.get(p.pid, 0)
            got = p.offered[k:]
            self.sent_offered[p.pid] = k + len(got)
            offered[p.pid] = got
        clients = {}
        for th in [*self.producers, *self.groups]:
            facts: dict[str, Any] = {"timings": dict(th.timings), "moved_warm": th.moved_warm}
            if isinstance(th, InstrumentedProducer):
                facts["pending"] = len(th.pending)
            else:
                facts["consumed"] = th.consumed
            if th.error is not None and th.name not in self.errors_sent:
                facts["error"] = f"{type(th.error).__name__}: {th.error}"
                self.errors_sent.add(th.name)
            clients[th.name] = facts
        return {"op": "events", "acks": acks, "outcomes": self.outcomes.take(),
                "offered": offered, "clients": clients}  # fmt: skip

    def finish(self) -> dict:
        """Stop every client (producers first: no new sends), then write the shard."""
        for th in self.producers:
            th.stop_flag.set()
        for th in self.groups:
            th.stop_flag.set()
        for th in [*self.producers, *self.groups]:
            if th.is_alive():
                th.join()
        if self.producers or self.groups:
            self.chan.send(self.events())  # the last acks (the flush's), before build drains them
        out: dict[str, Any] = {"op": "stopped", "index": self.index}
        if self.meta is not None and self.shard_dir is not None:
            history = self.rec.build(self.meta)
            url = os.environ.get(SHARD_URL_ENV)
            if url:  # a pod: the engine's directory is not here; the shard goes to S3
                import tempfile

                with tempfile.TemporaryDirectory() as tmp:
                    local = write_history(history, Path(tmp) / self.shard_dir.name)
                    out["uploaded_to"] = upload_shard(local, url)
            else:
                write_history(history, self.shard_dir)
            out["rows"] = {"writes": history.writes.num_rows, "reads": history.reads.num_rows}
        return out


def register_env_credentials(env: Mapping[str, str]) -> list[str]:
    """A pod's credentials (from its Secret) for the clusters its environment names;
    returns those bootstraps. The settings stay in process memory (clientconf)."""
    user, password = env.get(USER_ENV), env.get(PASSWORD_ENV)
    bootstraps = [env[k] for k in BOOTSTRAP_ENV if env.get(k)]
    if not (user and password):
        return []
    settings = {"security.protocol": env.get(PROTOCOL_ENV, "SASL_SSL"),
                "sasl.mechanism": env.get(MECHANISM_ENV, "SCRAM-SHA-512"),
                "sasl.username": user, "sasl.password": password}  # fmt: skip
    for b in bootstraps:
        register(b, settings)
    return bootstraps


def upload_shard(directory: Path, url: str) -> str:
    """Copy a shard directory to `url` (s3://bucket/prefix, the run's shards prefix);
    returns where it went. boto3 finds credentials and endpoint as it always does."""
    import boto3

    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    s3 = boto3.client("s3")
    where = f"{prefix.rstrip('/')}/{directory.name}"
    for f in sorted(directory.iterdir()):
        if f.is_file():
            s3.upload_file(str(f), bucket, f"{where}/{f.name}")
    return f"s3://{bucket}/{where}/"


def run_worker(connect: str, index: int, engine_pid: int = 0) -> int:
    """`kdrill worker`: connect to the engine, run what it says, write the shard."""
    token = os.environ.pop(TOKEN_ENV, "")
    register_env_credentials(os.environ)
    for key in (USER_ENV, PASSWORD_ENV):
        os.environ.pop(key, None)  # registered; no child process inherits them
    host, _, port = connect.rpartition(":")
    try:
        sock = socket.create_connection((host or "127.0.0.1", int(port)), timeout=10)
    except (OSError, ValueError) as e:
        print(f"kdrill worker: cannot reach the engine at {connect}: {e}", file=sys.stderr)
        return 2
    sock.settimeout(None)
    chan = Channel(sock)
    w = Worker(chan, index)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: w.stop.set())
    chan.send({"op": "hello", "index": index, "token": token, "pid": os.getpid(),
               "boot_id": boot_id(), "host": socket.gethostname()})  # fmt: skip

    def read() -> None:
        while True:
            msg = chan.recv()
            if msg is None:
                break
            w.last_heard = clock()
            try:
                w.handle(msg)
            except Exception as e:  # a bad message: said, and the run goes on
                chan.send({"op": "error", "error": f"{msg.get('op')}: {type(e).__name__}: {e}"})
        w.lost.set()

    reader = threading.Thread(target=read, name="channel", daemon=True)
    reader.start()
    while not w.stop.is_set() and not w.lost.is_set():
        if clock() - w.last_heard > SILENCE_S:
            w.lost.set()
            break
        if w.producers or w.groups:
            chan.send(w.events())
        w.stop.wait(EVENT_S)
    if w.lost.is_set() and not w.stop.is_set():
        # The engine is gone or silent: nobody coordinates these clients any more.
        for p in w.producers:
            p.stop_flag.set()
    try:
        done = w.finish()
    except Exception as e:
        done = {"op": "stopped", "index": index, "error": f"{type(e).__name__}: {e}"}
    chan.send(done)
    chan.finish_sending()
    reader.join(10)  # until the engine has read everything and closed its end
    chan.close()
    return 0 if "error" not in done else 1


# --- the engine's side ---------------------------------------------------------------


class _Flag(threading.Event):
    """An Event whose set / clear also tell the worker (a producer's `paused`)."""

    def __init__(self, on_set, on_clear):
        super().__init__()
        self._on_set, self._on_clear = on_set, on_clear

    def set(self) -> None:
        super().set()
        self._on_set()

    def clear(self) -> None:
        super().clear()
        self._on_clear()


class _Sized:
    """`len()` of a count the worker reports (a producer's records in flight)."""

    def __init__(self) -> None:
        self.n = 0

    def __len__(self) -> int:
        return self.n


class _Proxy:
    """The engine's handle on one client running in a worker: the attributes the engine
    reads and the calls it makes on a workload thread."""

    def __init__(self, pool: WorkerPool, handle: _Handle, name: str):
        self.pool, self.handle, self.name = pool, handle, name
        self.stop_flag = threading.Event()
        self.failed: str | None = None  # what the client itself raised, as its worker said
        self.timings: dict[str, float] = {}
        self.moved_warm: bool | None = None

    @property
    def error(self) -> str | None:
        """The client's failure, or its worker's (exited, channel broken): what the engine's
        thread check raises on."""
        h = self.handle
        if self.failed:
            return self.failed
        if self.pool.running and h.proc.poll() is not None and h.stopped is None:
            return f"worker {h.index} exited with {h.proc.returncode}"
        return f"worker {h.index}: {h.errors[0]}" if h.errors else None

    def is_alive(self) -> bool:
        return self.pool.running

    def join(self, timeout: float | None = None) -> None:
        self.pool.stop(timeout)


class ProducerProxy(_Proxy):
    def __init__(self, pool, handle, pid: str, cfg: ProducerConfig, place: Placement):
        super().__init__(pool, handle, f"producer-{pid}")
        self.pid, self.cfg, self.place = pid, cfg, place
        self.pending = _Sized()
        self.offered: list[tuple[float, int]] = []
        self.budget: int | None = None
        self.paused = _Flag(lambda: handle.send({"op": "pause", "pid": pid}),
                            lambda: handle.send({"op": "resume", "pid": pid}))  # fmt: skip

    def move_to(self, place: Placement) -> None:
        self.place = place
        self.handle.send({"op": "move", "pid": self.pid, "place": _place(place)})


class GroupProxy(_Proxy):
    def __init__(self, pool, handle, cfg: GroupConfig, place: Placement):
        super().__init__(pool, handle, f"group-{cfg.name}")
        self.cfg, self.place = cfg, place
        self.consumed = 0
        self.producers: set[str] | None = None

    def move_to(self, place: Placement, topics: list[str], position) -> None:
        self.place = place
        translated = getattr(position, "translated", None)
        if position is synced_position:
            mode = "synced"
        elif translated is not None:
            mode = "checkpoint"
        else:
            mode = "reset"
        rows = [[g, t, p, o] for (g, t, p), o in (translated or {}).items()]
        self.handle.send({"op": "move_group", "name": self.cfg.name, "place": _place(place),
                          "topics": topics, "resume": mode, "translated": rows})  # fmt: skip


@dataclass
class _Handle:
    """One worker process and its channel, on the engine's side."""

    index: int
    proc: subprocess.Popen
    chan: Channel | None = None
    pid: int | None = None
    boot_id: str = ""
    host: str = ""
    same_clock: bool = True
    offset: float = 0.0  # applied: worker clock minus engine clock (0 on one machine)
    samples: list[tuple[float, float]] = field(default_factory=list)  # (offset, round trip)
    stopped: dict | None = None
    errors: list[str] = field(default_factory=list)

    def send(self, msg: dict) -> bool:
        return self.chan is not None and self.chan.send(msg)

    def estimate(self) -> tuple[float, float] | None:
        """(offset, round trip) of the fastest round trip so far."""
        return min(self.samples, key=lambda s: s[1]) if self.samples else None


class PooledRecorder(Recorder):
    """The engine's recorder when the workload runs in workers: the acks are streamed
    ones (ack time and cluster only, for the live figures), and `build` merges the shards.

    The engine records its own rows (end offsets, the log read back) as usual; `build`
    writes them as the `engine` shard, lists every shard in the history's meta.json and
    returns the merged history (`read_history`, as the checker reads any run)."""

    sharded = True

    def __init__(self, history_dir: Path):
        super().__init__()
        self.history_dir = history_dir
        self.shards: list[str] = []
        self.offsets: dict[str, float] = {}

    def streamed(self, cluster: str, times: list[float]) -> None:
        row = [None] * ACK_WIDTH
        row[4] = cluster
        flat: list = []
        for t in times:
            row[ACK_WIDTH - 1] = t
            flat.extend(row)
        self.acks.extend(flat)

    def build(self, meta: DrillMeta):
        with self.lock:
            del self.acks[:], self.unacked[:]  # live copies; the shards hold the rows
            engine = self.builder.build(meta)
        write_history(engine, self.history_dir / SHARDS / "engine")
        names = [*self.shards, "engine"]
        write_sharded(meta, self.history_dir, names, {**self.offsets, "engine": 0.0})
        return read_history(self.history_dir)


class WorkerPool:
    """N worker processes running a drill's workload, and the engine's side of them."""

    def __init__(self, n: int, history_dir: Path, rec: PooledRecorder | None = None):
        self.n = n
        self.history_dir = history_dir
        self.rec = rec or PooledRecorder(history_dir)
        self.token = secrets.token_hex(16)
        self.handles: list[_Handle] = []
        self.proxies: dict[str, _Proxy] = {}
        self.producers: list[ProducerProxy] = []
        self.groups: list[GroupProxy] = []
        self.detector = None
        self.running = False
        self._stopped = False
        self._anchor_sent = False
        self.anchor = lambda: None  # the engine's T_fault once known, for the workers' shapes
        self._server: socket.socket | None = None
        self.sections: dict | None = None  # the run record's sections: `workers` goes there
        self._readers: list[threading.Thread] = []
        self._lock = threading.Lock()

    # -- start ----------------------------------------------------------------------

    def spawn(self, host: str = "127.0.0.1") -> None:
        """Start the processes and wait for each one's hello (CONNECT_S at most)."""
        srv = socket.create_server((host, 0))
        srv.settimeout(1.0)
        self._server = srv
        port = srv.getsockname()[1]
        atexit.register(self.kill)
        # the drills package this process runs, whatever the installed one is
        root = str(Path(__file__).resolve().parents[1])
        path = os.pathsep.join(x for x in (root, os.environ.get("PYTHONPATH")) if x)
        env = {**os.environ, TOKEN_ENV: self.token, "PYTHONPATH": path}
        for i in range(self.n):
            argv = [sys.executable, "-m", *WORKER_ARGV, "--connect", f"{host}:{port}",
                    "--index", str(i), "--engine-pid", str(os.getpid())]  # fmt: skip
            log = open(self.history_dir.parent / f"worker-{i}.log", "ab")  # noqa: SIM115
            proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=log, start_new_session=True, cwd=os.getcwd())  # fmt: skip
            log.close()
            self.handles.append(_Handle(i, proc))
        self.running = True
        deadline = clock() + CONNECT_S
        waiting = {h.index for h in self.handles}
        while waiting:
            if clock() > deadline:
                raise WorkerError(f"workers {sorted(waiting)} did not connect in {CONNECT_S:g}s")
            for h in self.handles:
                if h.index in waiting and h.proc.poll() is not None:
                    raise WorkerError(
                        f"worker {h.index} exited with {h.proc.returncode} before connecting "
                        f"(its log: {self.history_dir.parent / f'worker-{h.index}.log'})"
                    )
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            conn.settimeout(10)
            chan = Channel(conn)
            hello = chan.recv()
            conn.settimeout(None)
            if (
                not hello
                or hello.get("op") != "hello"
                or not secrets.compare_digest(str(hello.get("token", "")), self.token)
            ):
                chan.close()  # not one of ours
                continue
            h = self.handles[int(hello["index"])]
            h.chan, h.pid = chan, hello.get("pid")
            h.boot_id, h.host = hello.get("boot_id", ""), hello.get("host", "")
            h.same_clock = h.boot_id == boot_id()
            waiting.discard(h.index)
        for h in self.handles:
            th = threading.Thread(target=self._read, args=(h,), name=f"worker-{h.index}",
                                  daemon=True)  # fmt: skip
            th.start()
            self._readers.append(th)
        for _ in range(5):  # the first offset estimate, before any time crosses the channel
            for h in self.handles:
                h.send({"op": "ping", "t0": clock()})
            time.sleep(0.02)
        wait_for = clock() + 5
        while clock() < wait_for and not all(len(h.samples) >= 3 for h in self.handles):
            time.sleep(0.01)
        for h in self.handles:
            est = h.estimate()
            h.offset = 0.0 if h.same_clock or est is None else est[0]
        pinger = threading.Thread(target=self._ping, name="worker-pings", daemon=True)
        pinger.start()

    def start(self, plan: dict, producers: list[dict], groups: list[dict]) -> None:
        """Give each worker its share (round robin) and start them. `plan`: what every
        worker gets (meta, rate, shape, credentials, ...); producers / groups: one dict
        each ({"pid", "cfg", "place", "standby"} / {"cfg", "place", "standby"})."""
        for h in self.handles:
            mine_p = producers[h.index :: self.n]
            mine_g = groups[h.index :: self.n]
            for p in mine_p:
                proxy = ProducerProxy(self, h, p["pid"], p["cfg_obj"], p["place_obj"])
                self.producers.append(proxy)
                self.proxies[proxy.name] = proxy
            for g in mine_g:
                proxy = GroupProxy(self, h, g["cfg_obj"], g["place_obj"])
                self.groups.append(proxy)
                self.proxies[proxy.name] = proxy
            shard = f"worker-{h.index}"
            self.rec.shards.append(shard)
            self.rec.offsets[shard] = h.offset
            strip = lambda d: {k: v for k, v in d.items() if not k.endswith("_obj")}  # noqa: E731
            h.send({**plan, "op": "start", "clock_offset": h.offset,
                    "shard_dir": str(self.history_dir / SHARDS / shard),
                    "producers": [strip(p) for p in mine_p],
                    "groups": [strip(g) for g in mine_g]})  # fmt: skip
        self.producers.sort(key=lambda p: p.pid)  # the engine indexes them (cutover.producers)

    # -- while it runs ---------------------------------------------------------------

    def _ping(self) -> None:
        while self.running:
            for h in self.handles:
                h.send({"op": "ping", "t0": clock()})
            if not self._anchor_sent and (t := self.anchor()) is not None:
                for h in self.handles:
                    h.send({"op": "anchor", "t": t + h.offset})
                self._anchor_sent = True
            time.sleep(PING_S)

    def _read(self, h: _Handle) -> None:
        while True:
            msg = h.chan.recv() if h.chan else None
            if msg is None:
                if self.running and h.stopped is None:
                    h.errors.append("the control channel closed before the worker stopped")
                return
            try:
                self._handle(h, msg)
            except Exception as e:  # said, never a silently dead reader losing events
                h.errors.append(f"bad message {msg.get('op')!r}: {type(e).__name__}: {e}")

    def _handle(self, h: _Handle, msg: dict) -> None:
        op = msg.get("op")
        if op == "pong":
            t3 = clock()
            t0, t1, t2 = msg["t0"], msg["t1"], msg["t2"]
            h.samples.append((((t1 - t0) + (t2 - t3)) / 2, (t3 - t0) - (t2 - t1)))
            del h.samples[:-200]
        elif op == "events":
            self._events(h, msg)
        elif op == "error":
            h.errors.append(msg["error"])
        elif op == "stopped":
            h.stopped = msg
            if "error" in msg:
                h.errors.append(msg["error"])

    def _events(self, h: _Handle, msg: dict) -> None:
        off = h.offset
        for cluster, times in msg["acks"].items():
            self.rec.streamed(cluster, [t - off for t in times])
        det = self.detector
        if det is not None:
            for t, err in msg["outcomes"]:
                if err is None:
                    det.success(t - off)
                else:
                    det.failure(t - off, err)
        for pid, samples in msg["offered"].items():
            proxy = self.proxies.get(f"producer-{pid}")
            if proxy is not None:
                proxy.offered.extend((t - off, n) for t, n in samples)
        for name, facts in msg["clients"].items():
            proxy = self.proxies.get(name)
            if proxy is None:
                continue
            proxy.timings = {k: v - off for k, v in facts["timings"].items()}
            proxy.moved_warm = facts["moved_warm"]
            if "pending" in facts:
                proxy.pending.n = facts["pending"]
            if "consumed" in facts:
                proxy.consumed = facts["consumed"]
            if "error" in facts:
                proxy.failed = facts["error"]

    # -- stop ------------------------------------------------------------------------

    def stop(self, timeout: float | None = None) -> None:
        """Stop every worker (they flush, write their shards, say `stopped`), then make sure
        none is left: one still running after `timeout` is killed. A second call (clean-up
        after an interrupted first one) kills what is left at once."""
        with self._lock:
            if not self._stopped:
                self._stopped = True
                for h in self.handles:
                    h.send({"op": "stop"})
                deadline = clock() + (timeout if timeout is not None else 60)
                # every event read: a worker ends its sending after `stopped`, and its
                # channel's reader ends at that EOF (it may lag behind under load)
                for th in self._readers:
                    th.join(max(0.1, deadline - clock()))
                for h in self.handles:
                    if h.chan is not None:
                        h.chan.close()  # the worker's reader sees EOF: it exits
                for h in self.handles:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        h.proc.wait(max(0.1, deadline - clock()))
            self.running = False
            self.kill()

    def kill(self) -> None:
        """Kill whatever worker is still running (every exit path ends here)."""
        for h in self.handles:
            if h.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(h.proc.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    h.proc.wait(5)
            if h.chan is not None:
                h.chan.close()
        if self._server is not None:
            with contextlib.suppress(OSError):
                self._server.close()
        self.running = False
        if self.sections is not None:
            self.sections["workers"] = self.facts()

    def facts(self) -> list[dict]:
        """Per worker, for the evidence: its process, its clock offset estimate, its rows."""
        out = []
        for h in self.handles:
            est = h.estimate()
            out.append({
                "index": h.index, "pid": h.pid, "host": h.host, "same_clock": h.same_clock,
                "clock_offset_s": None if est is None else round(est[0], 6),
                "clock_offset_error_s": None if est is None else round(est[1] / 2, 6),
                "clock_offset_applied_s": round(h.offset, 6),
                "round_trips": len(h.samples),
                "clients": sorted(n for n, p in self.proxies.items() if p.handle is h),
                "rows": (h.stopped or {}).get("rows"), "exit_code": h.proc.poll(),
                "errors": h.errors[:5],
            })  # fmt: skip
        return out


# --- the engine's hook -----------------------------------------------------------------


def credentials(bootstraps: list[str], roles: list[str]) -> dict:
    """What a worker must register to reach these clusters (process memory to process
    memory over the channel: never argv, logs or evidence)."""
    out = {}
    for b in bootstraps:
        settings = settings_for(b)
        if settings:
            out[b] = {"settings": settings,
                      "roles": {r: s for r in roles if (s := role_settings(b, r)) is not None}}  # fmt: skip
    return out


def producer_entry(pid: str, cfg: ProducerConfig, place: Placement,
                   standby: Placement | None) -> dict:  # fmt: skip
    """One producer as `WorkerPool.start` takes it."""
    return {"pid": pid, "cfg": {k: v for k, v in asdict(cfg).items() if k != "schedule"},
            "place": _place(place), "standby": _place(standby), "cfg_obj": cfg,
            "place_obj": place}  # fmt: skip


def group_entry(cfg: GroupConfig, place: Placement, standby: Placement | None) -> dict:
    """One consumer group as `WorkerPool.start` takes it."""
    return {"cfg": asdict(cfg), "place": _place(place), "standby": _place(standby),
            "cfg_obj": cfg, "place_obj": place}  # fmt: skip


def plan(meta: DrillMeta, schedule: RateSchedule, relative_to: str, started: float,
         pids: list[str], bootstraps: list[str], roles: list[str]) -> dict:  # fmt: skip
    """What every worker of a run is told at `start`, besides its own clients."""
    return {
        "meta": meta.to_dict(), "rate": schedule.rate, "relative_to": relative_to,
        "shape": asdict(schedule.shape), "started": started, "all_producers": pids,
        "credentials": credentials(bootstraps, roles),
    }  # fmt: skip


def start_pool(drill, pcfg: ProducerConfig, place: Placement, standby: Placement | None,
               pids: list[str]) -> None:  # fmt: skip
    """drills/engine.py `_workload` with `workload.workers` > 1: the same producers and
    groups, in `workers` processes; the drill's producers / groups become their proxies
    and its recorder the pool's."""
    w, c, cut = drill.spec.workload, drill.spec.clients, drill.spec.cutover
    pool = WorkerPool(w.workers, drill.dir / "history")
    drill.rec = pool.rec
    drill.pool = pool
    pool.detector = drill.detector
    pool.anchor = lambda: drill.instants["t_fault"]
    pool.sections = drill.record.sections
    try:
        pool.spawn()
        producers = [
            producer_entry(pid, pcfg, place,
                           standby if cut.producers == "all" or i in cut.producers else None)
            for i, pid in enumerate(pids)
        ]  # fmt: skip
        groups = []
        for g in w.groups:
            topics = g.topics or [x.name for x in w.topics]
            cfg = GroupConfig(g.name, f"kdrill-{drill.run_id}-{g.name}", topics, g.process_rate,
                              g.commit_interval_ms, c.session_timeout_ms, c.fetch_wait_max_ms)  # fmt: skip
            moves = cut.groups == "all" or g.name in cut.groups
            groups.append(group_entry(cfg, place, standby if moves else None))
        t = drill.target
        meta = DrillMeta(primary=t.primary, standby=t.standby,
                         topics=tuple(x.name for x in w.topics),
                         groups=tuple(g.name for g in w.groups), drill_id=drill.run_id)  # fmt: skip
        roles = [PRODUCER_ROLE, *(group_role(g.name) for g in w.groups)]
        pool.start(plan(meta, drill.schedule, w.shape.relative_to, drill.workload_started, pids,
                        [t.bootstrap(t.primary), t.bootstrap(t.standby)], roles),
                   producers, groups)  # fmt: skip
    except BaseException:
        pool.kill()  # none outlives a start that failed
        raise
    finally:
        drill.producers, drill.groups = pool.producers, pool.groups
    for g in pool.groups:
        g.producers = set(pids)


# --- leftovers --------------------------------------------------------------------------


def leftovers() -> list[tuple[int, int]]:
    """(worker pid, engine pid) of every `kdrill worker` whose engine is gone."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in argv if a]
        if not any(args[i : i + 2] == list(WORKER_ARGV) for i in range(len(args))):
            continue
        if "--engine-pid" not in args:
            continue
        try:
            engine = int(args[args.index("--engine-pid") + 1])
        except (IndexError, ValueError):
            continue
        if engine > 0 and not Path(f"/proc/{engine}").exists():
            found.append((int(entry.name), engine))
    return found


def reap_leftovers() -> list[str]:
    """Kill every worker whose engine is gone (`kdrill recover`); one line per worker."""
    done = []
    for pid, engine in leftovers():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            done.append(f"killed worker {pid} left by drill process {engine}")
    return done
