"""Benchmark of the drill report: render time and size over a synthetic 1M-record history.

    .venv/bin/python bench/report.py [--records 1000000] [--keys 10000]

The history is bench/checker.py's synthetic drill (4 producers, 12 partitions,
every anomaly kind). It is written to a run directory with an evidence.json
built from its check result around the recorded passing fixture's spec and
journal; then `write_report` runs in a fresh process (as `kdrill report`
does: read evidence and history, plot, layers, diagnosis, HTML, Markdown) and
the figures are printed. Targets (issue 13): under 10 s, under 5 MB.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

FIXTURE = ROOT / "tests/unit/report/fixtures/passing/evidence.json"


def prepare(run_dir: Path, records: int, keys: int) -> float:
    from checker import T_FAULT, synthesize

    from drills.evidence import measurements_of
    from drills.history import check, write_history
    from drills.history.cases import LOST_TAIL
    from drills.history.checker import CheckPolicy

    started = time.perf_counter()
    history = synthesize(records, keys)
    write_history(history, run_dir / "history")
    result = check(history, CheckPolicy(tolerate={LOST_TAIL}))
    ev = json.loads(FIXTURE.read_text())
    ins = history.meta.instants
    ev["timeline"] = {
        name: {
            "monotonic": getattr(ins, name),
            "since_fault_s": None if getattr(ins, name) is None else getattr(ins, name) - T_FAULT,
            "wall": None,
        }
        for name in ("t_fault", "t_detect", "t_decide", "t_fence", "t_cut")
    }
    ev["measurements"], ev["anomalies"] = measurements_of(result)
    (run_dir / "evidence.json").write_text(json.dumps(ev, indent=2, default=str))
    return time.perf_counter() - started


def measure(run_dir: str) -> dict:
    import resource

    t = time.perf_counter()
    from drills.report.build import write_report

    imported = time.perf_counter() - t
    t = time.perf_counter()
    rep, page, md = write_report(Path(run_dir))
    render = time.perf_counter() - t
    return {
        "import_s": round(imported, 2),
        "render_s": round(render, 2),
        "html_bytes": page.stat().st_size,
        "svg_bytes": len(rep.svg or ""),
        "md_bytes": md.stat().st_size,
        "writes_rows": rep.run.history.writes.num_rows,
        "reads_rows": rep.run.history.reads.num_rows,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rules_fired": [f.rule for f in rep.findings if f.fired],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: the fresh process
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp)
        prep = prepare(run_dir, args.records, args.keys)
        t = time.perf_counter()
        out = subprocess.run(
            [sys.executable, __file__, "--measure", str(run_dir)],
            check=True,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - t
        figures = json.loads(out.stdout.strip().splitlines()[-1])
    print(
        f"records produced         {args.records:,} (synthesized, written and checked in {prep:.1f} s)"
    )
    print(
        f"history rows             writes {figures['writes_rows']:,}, reads {figures['reads_rows']:,}"
    )
    print(
        f"report render            {figures['render_s']:.2f} s (+ {figures['import_s']:.2f} s imports; {wall:.2f} s process wall)"
    )
    print(
        f"report.html              {figures['html_bytes'] / 1e6:.3f} MB (timeline SVG {figures['svg_bytes'] / 1e3:.0f} kB)"
    )
    print(f"report.md                {figures['md_bytes']:,} bytes")
    print(f"peak RSS                 {figures['peak_rss_mb']} MB")
    print(f"rules fired              {', '.join(figures['rules_fired'])}")
    ok = figures["render_s"] + figures["import_s"] < 10 and figures["html_bytes"] < 5e6
    print(f"target (< 10 s, < 5 MB)  {'met' if ok else 'MISSED'}")


if __name__ == "__main__":
    main()
