"""The timeline plot: matplotlib rendered to an inline SVG.

Three panels over seconds since T_fault: acknowledged writes/s per region with
failed and indeterminate sends; reads/s per consumer group; replication lag
(the steady-state samples -- older evidence: their maximum -- and the lag at
the fault, i.e. RPO seconds; after the fault the primary may be gone, so it is
not sampled). Vertical markers at every
instant and each group's first consume carry an SVG id (`marker-t_fault`,
`marker-consume-<group>`), and the figure carries its x calibration
(`data-t0`, `data-px0`, `data-t1`, `data-px1`), so a reader can map a marker
back to its instant.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow.compute as pc  # noqa: E402

from drills.record import INSTANTS  # noqa: E402
from drills.report.load import RunData  # noqa: E402

MAX_BINS = 240
LABELS = {
    "t_fault": "fault",
    "t_detect": "detect",
    "t_decide": "decide",
    "t_fence": "fence",
    "t_cut": "cut",
}


@dataclass
class Marker:
    id: str
    label: str
    at: float  # seconds since T_fault


def markers(run: RunData) -> list[Marker]:
    out = [Marker(f"marker-{n}", LABELS[n], run.instant(n)) for n in INSTANTS]
    by_group = (run.measurements.get("rto") or {}).get("by_group") or {}
    for group, at in sorted(by_group.items()):
        out.append(Marker(f"marker-consume-{_slug(group)}", f"consume {group}", at))
    return [m for m in out if m.at is not None]


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", s)


def _np(column) -> np.ndarray:
    return column.to_numpy(zero_copy_only=False)


def _rate(times: np.ndarray, edges: np.ndarray, width: float) -> np.ndarray:
    counts, _ = np.histogram(times, bins=edges)
    return counts / width


def render_svg(run: RunData) -> str | None:
    """The timeline as an SVG element (no XML prolog), or None without a history.

    Deterministic: the same run renders the same bytes (fixed SVG id salt, no date)."""
    with matplotlib.rc_context({"svg.hashsalt": "kdrill", "svg.fonttype": "path"}):
        return _render(run)


def _render(run: RunData) -> str | None:
    h = run.history
    if h is None:
        return None
    t0 = run.monotonic("t_fault")
    w = h.writes
    send = _np(w["send_time"])
    if t0 is None:
        t0 = float(send.min()) if len(send) else 0.0
    acked_mask = _np(pc.is_valid(w["ack_time"]))
    ack = _np(pc.fill_null(w["ack_time"], 0.0))
    cluster = _np(w["cluster"])
    failed_mask = _np(pc.is_valid(w["error"]))
    r = h.reads
    poll = _np(r["poll_time"])
    times = [send, poll]
    lo = min(float(a.min()) for a in times if len(a)) if any(len(a) for a in times) else t0
    hi = max(float(a.max()) for a in times if len(a)) if any(len(a) for a in times) else t0 + 1
    span = max(hi - lo, 1.0)
    width = max(0.25, round(span / MAX_BINS * 4) / 4)
    edges = np.arange(lo - t0, hi - t0 + width, width)
    mids = (edges[:-1] + edges[1:]) / 2

    fig, axes = plt.subplots(
        3, 1, figsize=(11, 7.2), dpi=72, sharex=True, height_ratios=[3, 2, 1.3]
    )
    ax_w, ax_r, ax_l = axes
    for name in sorted(set(cluster.tolist())):
        sel = acked_mask & (cluster == name)
        ax_w.plot(mids, _rate(ack[sel] - t0, edges, width), label=f"acknowledged writes/s ({name})")
    ax_w.plot(
        mids,
        _rate(send[failed_mask] - t0, edges, width),
        color="tab:red",
        linestyle="--",
        label="failed sends/s",
    )
    ax_w.plot(
        mids,
        _rate(send[~acked_mask] - t0, edges, width),
        color="tab:purple",
        linestyle=":",
        label="indeterminate sends/s",
    )
    ax_w.set_ylabel("writes/s")
    ax_w.legend(loc="upper right", fontsize=8)
    group = _np(r["group"])
    for name in sorted(set(group.tolist())):
        ax_r.plot(mids, _rate(poll[group == name] - t0, edges, width), label=f"reads/s ({name})")
    ax_r.set_ylabel("reads/s")
    if len(group):
        ax_r.legend(loc="upper right", fontsize=8)
    _lag_panel(ax_l, run, lo - t0)
    ax_l.set_xlabel("seconds since T_fault")
    for ax in axes:
        ax.grid(True, alpha=0.3)
    ax_w.set_xlim(edges[0], edges[-1])
    ms = markers(run)
    rows = _label_rows(ms, (edges[-1] - edges[0]) * 0.07)
    for i, m in enumerate(ms):
        color = "black" if m.id.startswith("marker-t_") else "tab:green"
        for k, ax in enumerate(axes):
            ax.axvline(
                m.at,
                color=color,
                linewidth=0.9,
                linestyle="-" if k == 0 else ":",
                gid=m.id if k == 0 else f"{m.id}-{k}",
            )
        ax_w.annotate(
            m.label,
            xy=(m.at, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(2, 2 + 9 * rows[i]),
            textcoords="offset points",
            fontsize=7,
            rotation=0,
            color=color,
        )
    fig.subplots_adjust(left=0.07, right=0.98, top=0.9, bottom=0.08, hspace=0.12)
    x0, x1 = ax_w.get_xlim()
    (px0, _), (px1, _) = ax_w.transData.transform([(x0, 0), (x1, 0)])
    buf = io.StringIO()
    fig.savefig(buf, format="svg", dpi=72, metadata={"Date": None, "Creator": None})
    plt.close(fig)
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)
    svg = re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", svg)  # inline in HTML: no namespace URLs
    svg = svg.replace("xlink:href", "href")
    cal = f'data-t0="{x0:.6f}" data-px0="{px0:.4f}" data-t1="{x1:.6f}" data-px1="{px1:.4f}"'
    return svg.replace("<svg", f'<svg id="timeline-svg" role="img" {cal}', 1)


def _label_rows(ms: list[Marker], gap: float) -> list[int]:
    """A text row per marker, so labels of close instants stack instead of overlapping."""
    last: list[float] = []  # per row: the time of its rightmost label
    rows = [0] * len(ms)
    for i in sorted(range(len(ms)), key=lambda i: ms[i].at):
        row = next((r for r, x in enumerate(last) if ms[i].at - x >= gap), len(last))
        if row == len(last):
            last.append(ms[i].at)
        last[row] = ms[i].at
        rows[i] = row
    return rows


def _lag_panel(ax, run: RunData, start: float) -> None:
    """Replication lag as sampled in the steady state (each sample: how long the standby took
    to reach the primary's end offsets of that instant; older evidence has only the maximum),
    then the lag at the fault (RPO seconds)."""
    steady = run.ev.get("steady_state") or {}
    bound = (run.spec.get("steady_state") or {}).get("max_replication_lag_s")
    lag = steady.get("max_replication_lag_s")
    series = steady.get("lag_series") or []
    t_fault = run.monotonic("t_fault")
    if series and t_fault is not None:
        xs = [t - t_fault for t, _ in series]
        ax.plot(xs, [v for _, v in series], color="tab:blue", linewidth=0.9,
                label="replication lag, steady state (s)")  # fmt: skip
    elif lag is not None:
        ax.hlines(lag, start, 0, color="tab:blue", label="steady-state max lag (s)")
    rpo = (run.measurements.get("rpo") or {}).get("seconds")
    if rpo is not None:
        ax.plot([0], [rpo], "o", color="tab:orange", label="lag at the fault = RPO (s)")
    if bound is not None:
        ax.axhline(bound, color="tab:red", linewidth=0.7, linestyle="--", label="lag bound (s)")
    ax.set_ylabel("repl. lag s")
    if lag is not None or rpo is not None or bound is not None:
        ax.legend(loc="upper right", fontsize=7)
