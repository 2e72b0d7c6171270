"""The timeline SVG: parsed, and every marker mapped back to its instant within 50 ms."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from drills.report.load import load_run
from drills.report.plot import render_svg

from .conftest import FIXTURES, evidence


def _marker_x(svg: ET.Element, marker_id: str) -> float:
    g = svg.find(f".//*[@id='{marker_id}']")
    assert g is not None, f"no element {marker_id}"
    path = g if g.tag == "path" else g.find(".//path")
    return float(re.match(r"M\s*([-\d.]+)", path.get("d")).group(1))


def test_markers_map_back_to_their_instants():
    svg_text = render_svg(load_run(FIXTURES / "passing"))
    svg = ET.fromstring(svg_text)
    t0, t1 = float(svg.get("data-t0")), float(svg.get("data-t1"))
    px0, px1 = float(svg.get("data-px0")), float(svg.get("data-px1"))

    def at(x: float) -> float:
        return t0 + (x - px0) / (px1 - px0) * (t1 - t0)

    ev = evidence("passing")
    for name, inst in ev["timeline"].items():
        assert abs(at(_marker_x(svg, f"marker-{name}")) - inst["since_fault_s"]) < 0.05, name
    for group, t in ev["measurements"]["rto"]["by_group"].items():
        assert abs(at(_marker_x(svg, f"marker-consume-{group}")) - t) < 0.05, group


def test_plot_has_the_series_and_no_urls():
    svg_text = render_svg(load_run(FIXTURES / "passing"))
    for label in (
        "acknowledged writes/s (east)",
        "acknowledged writes/s (west)",
        "failed sends/s",
        "indeterminate sends/s",
        "reads/s (analytics)",
        "reads/s (billing)",
        "steady-state max lag (s)",
    ):
        assert label in svg_text or label.replace("(", "").replace(")", "") in svg_text, label
    assert "http" not in svg_text


def test_no_history_no_plot():
    assert render_svg(load_run(FIXTURES / "interrupted")) is None


def test_the_steady_state_lag_series_is_drawn(tmp_path):
    """Evidence that carries the steady-state lag samples gets a lag line, not the maximum."""
    import json
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(FIXTURES / "passing", run_dir)
    ev = json.loads((run_dir / "evidence.json").read_text())
    t_fault = ev["timeline"]["t_fault"]["monotonic"]
    ev["steady_state"]["lag_series"] = [
        [t_fault - 8 + i * 0.25, 0.1 + (i % 5) * 0.05] for i in range(30)
    ]
    (run_dir / "evidence.json").write_text(json.dumps(ev))
    svg_text = render_svg(load_run(run_dir))
    assert "replication lag, steady state (s)" in svg_text
    assert "steady-state max lag (s)" not in svg_text
