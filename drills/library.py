"""The scenario library: the drills kdrill ships in drills/scenarios/, read and checked.

Each scenario is a drill spec (`*.yaml`) whose file starts with a comment header saying what
the drill proves and, on a line of its own, which situation of the domain text it stands for:

    # Seed situation: partial region degradation

The words after `Seed situation:` must contain one of `SEED_SITUATIONS`, phrases taken
verbatim from the seed text (the five layers, the "ambiguous middle states" and the decision
table), so a scenario is tied to a named requirement, not to a free-form label.

`library()` returns one `Scenario` per file, sorted by file name, never raising: a file that
does not validate (spec, fault against its target stack, header) carries its one-line
`error`, so `kdrill scenarios` lists a broken row beside the good ones and exits non-zero.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from drills.spec import DrillSpec, SpecError, load_spec
from drills.targets import TargetError, open_target

SCENARIOS_DIR = Path(__file__).resolve().parent / "scenarios"

# Situations of the seed text (/work/shared/seeds/, DESIGN.md "the domain text"), verbatim.
SEED_SITUATIONS = (
    "primary fully unavailable",
    "packet loss",
    "partial region degradation",
    "high replication lag",
    "a blocked private endpoint",
    "a consumer group that was already behind",
    "Standby region cannot absorb peak load",
    "explicit rollback window",
    "Replication lag is low, but consumers resume incorrectly",
    "Data is fresh, but cutover takes too long",
    "Decision authority",
    "topic coverage",
    "Broker replacement",
    "Recovery creates unacceptable duplicate or reordered events",
)

SEED_LINE = re.compile(r"^#\s*Seed situation:\s*(?P<what>.+)$", re.IGNORECASE)
SUMMARY_WIDTH = 120


@dataclass(frozen=True)
class Scenario:
    """One file of the library. `error` is None when the file is a usable scenario."""

    file: str  # the file name, e.g. region-loss.yaml
    name: str | None  # the spec's `name`
    summary: str  # one line: what it proves
    seed: str | None  # the words after `Seed situation:`
    stack: str | None  # the spec's target stack
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def header(text: str) -> list[str]:
    """The comment lines the file starts with (blank lines allowed), `#` kept."""
    lines = []
    for line in text.splitlines():
        if line.startswith("#"):
            lines.append(line.rstrip())
        elif line.strip():
            break
    return lines


def seed_situation(lines: list[str]) -> str | None:
    for line in lines:
        if m := SEED_LINE.match(line):
            return m.group("what").strip()
    return None


def known_situation(seed: str) -> str | None:
    """The SEED_SITUATIONS phrase `seed` names, if any (case-insensitive)."""
    low = seed.lower()
    return next((s for s in SEED_SITUATIONS if s.lower() in low), None)


def summary(spec: DrillSpec | None, lines: list[str]) -> str:
    """The spec's description's first sentence, else the header's first line; one line."""
    text = (spec.description if spec is not None else "") or ""
    first = re.split(r"(?<=\.)\s", " ".join(text.split()), maxsplit=1)[0] if text else ""
    if not first and lines:
        first = lines[0].lstrip("#").strip()
    return textwrap.shorten(first, SUMMARY_WIDTH, placeholder="...") if first else ""


def check_faults(spec: DrillSpec) -> None:
    """Every fault of the spec resolved against its target stack (files only, nothing is
    touched); raises TargetError naming the fault."""
    target = open_target(spec.target.stack)
    timeline = spec.faults or [spec.fault]
    for i, f in enumerate(timeline):
        try:
            target.resolve_fault(f.fault_spec())
        except TargetError as e:
            where = "fault" if len(timeline) < 2 else f"faults[{i}]"
            raise TargetError(f"{where}: {e}") from None


def load(path: Path) -> Scenario:
    """One scenario file, checked: spec, faults against the stack, header."""
    text = path.read_text(errors="replace") if path.is_file() else ""
    lines = header(text)
    seed = seed_situation(lines)
    spec: DrillSpec | None = None
    error: str | None = None
    try:
        spec = load_spec(path)
        check_faults(spec)
    except SpecError as e:
        error = str(e)
    except Exception as e:  # a target error, a stack file missing or unreadable: one line
        error = f"{path.name}: {' '.join(str(e).split())}"
    if error is None and seed is None:
        error = (
            f"{path.name}: no '# Seed situation: ...' line in the header comment; "
            "add one naming the seed situation the scenario stands for"
        )
    elif error is None and known_situation(seed or "") is None:
        error = (
            f"{path.name}: seed situation {seed!r} names none of the seed's situations; "
            f"use one of: {', '.join(SEED_SITUATIONS)}"
        )
    return Scenario(
        file=path.name,
        name=spec.name if spec is not None else None,
        summary=summary(spec, lines),
        seed=seed,
        stack=spec.target.stack if spec is not None else None,
        error=error,
    )


def library(directory: Path = SCENARIOS_DIR) -> list[Scenario]:
    return [load(p) for p in sorted(directory.glob("*.yaml"))]
