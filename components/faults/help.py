"""The kinds and their parameters as text, for `kdrill local fault --help` and the like."""

from __future__ import annotations

from components.faults.registry import FaultKind, kinds


def _takes(k: FaultKind) -> str:
    if k.region == "none":
        return "between regions"
    where = "region" if k.region == "primary" else "region (default standby)"
    return f"{where}, link" if k.link else where


def help_text(target: str = "local") -> str:
    """Every kind that runs on `target`: what it does, where it acts, its parameters
    with type, range, default and help. Plain text, for an argparse description."""
    ks = kinds(target)
    kind_lines = [f"  {k.name:<18} {_takes(k):<16} {k.help}" for k in ks]
    param_lines = []
    for k in ks:
        for i, p in enumerate(k.param_list):
            param_lines.append(f"  {k.name if i == 0 else '':<18} {p.describe()}")
    return "\n".join(
        [
            "kinds (where: region = acts on --region; link = also takes --link):",
            *kind_lines,
            "",
            "parameters (--param name=value):",
            *param_lines,
        ]
    )
