"""Benchmark of a first `./run drill`: a fresh clone, every cache empty, timed end to end.

    sudo .venv/bin/python bench/first_run.py [--keep] [--workdir DIR]

Issue 22 item 4: the README's main command on a fresh machine, set-up included, under
8 minutes. "Fresh" here: this checkout's HEAD cloned into a temporary directory, with its own
empty kdrill cache (Kafka jars, the Pulumi engine and toxiproxy builds), Go build and module
caches, Maven repository (MAVEN_OPTS=-Dmaven.repo.local=...) and no pip cache, so every
download and every compile happens again. What it cannot make fresh: the Debian packages
(JDK, Maven, Go) already installed on this machine, and the kernel's page cache.

Printed: each output line of `./run drill` with the seconds since start; then the first run's
wall time, split into set-up (until the stack starts coming up) and the drill (the stack,
the drill, its teardown), the Pulumi engine build's own time (from its log line), the CPU
time of the whole process tree (user + sys: what load on the machine inflates far less than
wall time), the drill's verdict, whether the 8-minute target was met, and the machine at
start and end. The default stack's pair (prefix kd) is the one `./run drill` uses: the bench
refuses to start while it is up. The temporary directory is removed afterwards unless --keep.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import machine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 8 * 60
# Lines of ./run drill's output that mark where its phases end (tools/bootstrap.sh,
# drills/cli.py); a changed wording leaves the figure out rather than guessing it.
PULUMI_BUILD = re.compile(r"Pulumi engine v\S+ ready in .* \((\d+) s\)")
STACK_STARTS = re.compile(r"pulumi up -s local")
VERDICT = re.compile(r"verdict: (\w+)")


def fail(message: str) -> None:
    print(f"bench/first_run.py: {message}", file=sys.stderr)
    sys.exit(2)


def _children_cpu() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime, usage.ru_stime


def preconditions(checkout: Path) -> None:
    """One line naming what is wrong, before anything is cloned or started."""
    if os.geteuid() != 0:
        fail("needs root, as ./run drill does (namespaces, nftables): sudo .venv/bin/python ...")
    if not (checkout / "run").is_file() or not (checkout / ".git").exists():
        fail(f"{checkout} is not a kdrill git checkout (no ./run or .git); pass --checkout")
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    if any(line.startswith("kd-") for line in names.splitlines()):
        fail("the default stack's pair (prefix kd) is up; take it down first: kdrill local down")
    dirty = subprocess.run(
        ["git", "-C", str(checkout), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
    ).stdout
    if dirty.strip():
        print("note: uncommitted changes are not measured (the bench clones HEAD)", file=sys.stderr)


def fresh_environment(work: Path) -> dict[str, str]:
    """The environment of a machine that has built and downloaded nothing yet."""
    env = dict(os.environ)
    for name in ("GOFLAGS", "KDRILL_WITH_CDS", "KDRILL_WITH_FOCUS_VALIDATOR", "VIRTUAL_ENV"):
        env.pop(name, None)
    env.update(
        KDRILL_CACHE=str(work / "kdrill-cache"),
        GOCACHE=str(work / "go-build"),
        GOMODCACHE=str(work / "go-mod"),
        MAVEN_OPTS=f"-Dmaven.repo.local={work / 'm2'}",
        PIP_NO_CACHE_DIR="1",
    )
    return env


def run_drill(clone: Path, env: dict[str, str], log: Path) -> dict:
    """`./run drill` in the clone, its lines echoed with the seconds since start."""
    cpu0 = _children_cpu()
    started = time.perf_counter()
    marks: dict[str, float] = {}
    figures: dict = {}
    proc = subprocess.Popen(
        ["./run", "drill"],
        cwd=clone,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # an interrupt reaches the whole tree through its group
    )
    try:
        with log.open("wb") as out:
            for raw in proc.stdout:
                out.write(raw)
                line = re.sub(r"\x1b\[[0-9;]*m", "", raw.decode(errors="replace")).rstrip()
                now = time.perf_counter() - started
                print(f"{now:7.1f}s | {line}", flush=True)
                if (m := PULUMI_BUILD.search(line)) is not None:
                    figures["pulumi_build_seconds"] = int(m.group(1))
                if STACK_STARTS.search(line) and "stack" not in marks:
                    marks["stack"] = now
                if (m := VERDICT.search(line)) is not None:
                    figures["verdict"] = m.group(1)
        rc = proc.wait()
    except KeyboardInterrupt:
        # ./run drill clears what its drill applied on SIGINT; wait for it to finish doing so
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait()
        raise
    elapsed = time.perf_counter() - started
    cpu1 = _children_cpu()
    figures.update(
        exit_status=rc,
        seconds=elapsed,
        user_seconds=cpu1[0] - cpu0[0],
        sys_seconds=cpu1[1] - cpu0[1],
    )
    if "stack" in marks:
        figures["setup_seconds"] = marks["stack"]
        figures["drill_seconds"] = elapsed - marks["stack"]
    return figures


def _interrupted(signum, frame) -> None:
    raise KeyboardInterrupt  # the same path as Ctrl-C: ./run drill gets SIGINT and is waited for


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {seconds % 60:04.1f} s"


def report(figures: dict, before: str, after: str) -> None:
    print()
    print(f"machine at start: {before}")
    print(f"machine at end:   {after}")
    print(
        f"first ./run drill: {_minutes(figures['seconds'])} (exit status {figures['exit_status']})"
    )
    if "setup_seconds" in figures:
        print(
            f"  set-up {figures['setup_seconds']:.0f} s, then the drill "
            f"{figures['drill_seconds']:.0f} s (stack up, drill, teardown)"
        )
    if "pulumi_build_seconds" in figures:
        print(f"  the Pulumi engine build: {figures['pulumi_build_seconds']} s (in the background)")
    cpu = figures["user_seconds"] + figures["sys_seconds"]
    print(
        f"  CPU of the process tree: {cpu:.0f} s "
        f"({figures['user_seconds']:.0f} user + {figures['sys_seconds']:.0f} sys)"
    )
    print(f"  verdict: {figures.get('verdict', 'none printed')}")
    met = figures["exit_status"] == 0 and figures["seconds"] < TARGET_SECONDS
    print(
        f"target (a first ./run drill under {TARGET_SECONDS // 60} minutes): "
        f"{'met' if met else 'NOT met'} ({_minutes(figures['seconds'])})"
    )


def remove(work: Path) -> None:
    """Go's module cache is read-only by design: make it writable, then remove everything."""
    for path in (work / "go-mod").rglob("*") if (work / "go-mod").exists() else ():
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", type=Path, default=ROOT, help="the git checkout to clone")
    parser.add_argument(
        "--workdir", type=Path, help="where to clone and cache (default: a temp dir)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the clone, its caches and log")
    args = parser.parse_args()
    checkout = args.checkout.resolve()
    preconditions(checkout)
    work = Path(tempfile.mkdtemp(prefix="kdrill-first-run-", dir=args.workdir))
    clone = work / "checkout"
    subprocess.run(["git", "clone", "-q", str(checkout), str(clone)], check=True)
    before = machine()
    signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGHUP, _interrupted)
    try:
        figures = run_drill(clone, fresh_environment(work), work / "run-drill.log")
    except KeyboardInterrupt:
        print("bench/first_run.py: interrupted; ./run drill was stopped", file=sys.stderr)
        sys.exit(130)
    finally:
        if args.keep:
            print(f"kept {work} (the clone, its caches, run-drill.log)", file=sys.stderr)
        else:
            remove(work)
    report(figures, before, machine())
    sys.exit(0 if figures["exit_status"] == 0 else 1)


if __name__ == "__main__":
    main()
