"""Bench: one region-loss drill per recovery pattern, side by side through `kdrill compare`.

The patterns are the shipped scenarios' `replication.engine` values (drills/scenarios/*.yaml,
read each time, never a list kept here): for each engine, its region-loss scenario -- one
fault, kind region-loss, `rollback.rule: none`; the file named `<engine>-region-loss.yaml`
or `region-loss.yaml` first, else the shortest name. An engine the local pair cannot run
(msk-replicator: AWS stacks only) is listed as skipped with the one-line reason.

Each scenario runs as shipped except for its topic, renamed to one of its own per run (a
drill leaves records behind; tests/integration/test_drill.py `on_own_topic` does the same),
on the bench's own local pair: the local stack with the prefix and network of
KDRILL_TEST_PAIR (default `kb 10.81.0.0/16`) in a temporary stack file, as bench/drill.py
does, brought up once and torn down at the end (unless --keep). Then it prints the date and
the machine (cores, memory, load) and `kdrill compare` of the runs: pattern, RTO and its
parts, RPO records / seconds, duplicates, conflicts, drill cost, standby monthly cost
(drills/report/compare.py says how each is read). The first column, the baseline, is
MirrorMaker 2 active-passive.

    sudo .venv/bin/python bench/patterns.py [--out DIR] [--keep] [--only ENGINE[,ENGINE]]
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.machine import machine  # noqa: E402
from components.local import config  # noqa: E402
from components.local.env import LocalPair  # noqa: E402
from drills import cli  # noqa: E402
from drills.library import SCENARIOS_DIR  # noqa: E402
from drills.runner import run_drill  # noqa: E402
from drills.spec import DrillSpec, SpecError, load_spec, parse_spec  # noqa: E402
from drills.targets import LocalTarget, TargetError  # noqa: E402
from drills.targets.aws import check_engine  # noqa: E402

PREFIX, NETWORK = os.environ.get("KDRILL_TEST_PAIR", "kb 10.81.0.0/16").split()


@dataclass
class Pick:
    engine: str
    path: Path
    spec: DrillSpec


def region_loss_scenarios(directory: Path = SCENARIOS_DIR) -> tuple[list[Pick], list[str]]:
    """One region-loss scenario per engine found among the scenario files, and a line per
    engine that has none (or a file that does not parse)."""
    by_engine: dict[str, list[tuple[Path, DrillSpec]]] = {}
    notes = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            spec = load_spec(path)
        except SpecError as e:
            notes.append(f"{path.name}: not a valid spec ({e}); left out")
            continue
        by_engine.setdefault(spec.replication.engine, []).append((path, spec))
    picks = []
    # MirrorMaker 2 active-passive first: `kdrill compare` takes the first run as baseline
    for engine, found in sorted(by_engine.items(), key=lambda kv: (kv[0] != "mirrormaker2", kv[0])):
        fit = [
            (p, s)
            for p, s in found
            if s.fault.kind == "region-loss"
            and len(s.faults or [s.fault]) == 1
            and s.rollback.rule == "none"
        ]
        if not fit:
            notes.append(f"{engine}: no single-fault region-loss scenario among {len(found)}")
            continue
        named = {f"{engine}-region-loss.yaml", "region-loss.yaml"}
        path, spec = min(fit, key=lambda ps: (ps[0].name not in named, len(ps[0].name)))
        picks.append(Pick(engine, path, spec))
    return picks, notes


def on_own_topic(spec: DrillSpec) -> DrillSpec:
    """The scenario as shipped, on a topic of its own (groups read it)."""
    data = spec.to_dict()
    topic = f"orders-{uuid.uuid4().hex[:6]}"
    parts = data["workload"]["topics"][0]["partitions"]
    data["workload"]["topics"] = [{"name": topic, "partitions": parts}]
    for g in data["workload"]["groups"]:
        g["topics"] = [topic]
    return parse_spec(data)


def bench_stack(directory: Path) -> Path:
    """The local stack with the bench's prefix and network (bench/drill.py's rule)."""
    raw = yaml.safe_load(config.stack_file("local").read_text())
    raw["config"]["kdrill:local"].update(namePrefix=PREFIX, network=NETWORK)
    path = directory / "Pulumi.bench.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "evidence" / "patterns"),
                    help="where the run directories go (default evidence/patterns)")  # fmt: skip
    ap.add_argument("--keep", action="store_true", help="reuse a pair that is up; leave it up")
    ap.add_argument("--only", default="", help="engines to run, comma-separated (default all)")
    args = ap.parse_args()
    picks, notes = region_loss_scenarios()
    only = {x for x in args.only.split(",") if x}
    picks = [p for p in picks if not only or p.engine in only]
    out = Path(args.out) / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    started = datetime.datetime.now(datetime.UTC)
    dirs: list[str] = []
    with tempfile.TemporaryDirectory() as d:
        pair = LocalPair.from_stack("bench", bench_stack(Path(d)))
        target = LocalTarget(pair)
        try:
            runnable = []
            for p in picks:
                try:
                    check_engine(p.engine, p.spec.cutover.resume, target.facts())
                    runnable.append(p)
                except TargetError as e:
                    notes.append(f"{p.engine} ({p.path.name}): skipped: {e}")
            if runnable and not (args.keep and pair.is_up()):
                pair.down()
                t0 = time.monotonic()
                pair.up()
                print(f"pair {PREFIX} ({NETWORK}) up in {time.monotonic() - t0:.1f}s", flush=True)
            # The baseline (MirrorMaker 2) runs last and is compared first, so the other
            # patterns run on a fresh pair (an MM2 drill's teardown restarts replication).
            base = [p for p in runnable if p.engine == "mirrormaker2"]
            for p in [*(p for p in runnable if p not in base), *base]:
                name = p.spec.name if p.engine in p.spec.name else f"{p.engine}-{p.spec.name}"
                run_dir = out / name
                t0 = time.monotonic()
                outcome = run_drill(on_own_topic(p.spec), target, run_dir)
                print(f"{p.engine}: {p.path.name} exit {outcome.exit_code} in "
                      f"{time.monotonic() - t0:.1f}s -> {run_dir}", flush=True)  # fmt: skip
                if (run_dir / "evidence.json").exists():
                    dirs.insert(0 if p in base else len(dirs), str(run_dir))
                else:
                    notes.append(f"{p.engine}: the drill wrote no evidence; left out")
        finally:
            if not args.keep:
                pair.down()
    print()
    print(f"patterns compared {started:%Y-%m-%d %H:%M} UTC on {machine()}")
    print(f"pair {PREFIX} ({NETWORK}); scenarios: "
          + ", ".join(f"{p.engine} = {p.path.name}" for p in picks))  # fmt: skip
    for n in notes:
        print(f"  {n}")
    if not dirs:
        print("no run to compare")
        return 2
    code = cli.main(["compare", *dirs, "--threshold", "", "--html", str(out / "compare.html")])
    return 0 if code in (0, 1) else code


if __name__ == "__main__":
    raise SystemExit(main())
