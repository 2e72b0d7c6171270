"""Writing a run's report files, and the hook that does it at the end of every drill."""

from __future__ import annotations

import hashlib
from pathlib import Path

from drills.hooks import Hooks
from drills.record import RunRecord
from drills.report import html, markdown
from drills.report.load import ReportError, load_run
from drills.report.manifest import write_manifest
from drills.report.model import Report, build

__all__ = ["ReportError", "ReportHooks", "write_report"]


def write_report(run_dir: str | Path, generated: str | None = None) -> tuple[Report, Path, Path]:
    """report.html and report.md from evidence.json and the history in run_dir."""
    run_dir = Path(run_dir)
    rep = build(load_run(run_dir), generated)
    page, md = run_dir / "report.html", run_dir / "report.md"
    _atomic(page, html.render(rep))
    _atomic(md, markdown.render(rep))
    return rep, page, md


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


class ReportHooks(Hooks):
    """After the evidence: the report before the upload, the signed manifest last.

    `finishing` runs after EvidenceHooks.finishing (so evidence.json exists) and before
    the engine uploads the run directory; `finished` runs after the evidence is rewritten
    with the upload's outcome, and rebuilds the report and the manifest if it changed.
    """

    def __init__(self) -> None:
        self.report: Path | None = None
        self.error: str | None = None
        self._evidence: str | None = None

    def _write(self, record: RunRecord) -> None:
        try:
            _, self.report, _ = write_report(record.run_dir)
            self.error = None
        except Exception as e:  # the manifest is still written: evidence must stay provable
            self.error = f"{type(e).__name__}: {e}"
        write_manifest(record.run_dir, record.run_id)
        self._evidence = _digest(record.run_dir / "evidence.json")

    def finishing(self, record: RunRecord) -> None:
        self._write(record)

    def finished(self, record: RunRecord) -> None:
        if _digest(record.run_dir / "evidence.json") != self._evidence:
            self._write(record)
