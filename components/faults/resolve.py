"""`resolve`: a fault checked against the registry and a stack, with its defaults filled in.

Every path to a fault goes through it — the CLI, a drill's target, the AWS stack
config — so a kind means the same everywhere: one region rule (a region-less
region kind acts on the stack's primary, or standby where its entry says so),
one link default (backbone), one set of parameter checks (the kind's model).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from components.faults.errors import FaultError
from components.faults.params import check_params
from components.faults.registry import StackFacts, get
from components.faults.spec import LINKS, FaultSpec

MAX_DURATION_S = 86_400.0


def resolve(
    spec: FaultSpec,
    *,
    regions: Sequence[str],
    primary: str,
    standby: str,
    target: str = "local",
    brokers: Mapping[str, int] | None = None,
) -> FaultSpec:
    """Check `spec` for a stack whose regions are `regions` on `target`; return it with
    region, link and parameter defaults filled in, or raise a one-line FaultError.

    Parameters may be strings (`--param percent=30`): they are converted by the kind's
    model. `brokers` (region -> broker count) enables the checks that need it."""
    kind = get(spec.kind, target)

    region = spec.region
    if kind.region == "none":
        if region is not None:
            raise FaultError(f"{kind.name} takes no --region (it acts between the regions)")
    else:
        region = region or (primary if kind.region == "primary" else standby)
        if region not in regions:
            raise FaultError(f"unknown region {region!r}; this stack has: {', '.join(regions)}")

    link = spec.link
    if kind.link:
        link = link or "backbone"
        if link not in LINKS:
            raise FaultError(f"unknown link {link!r}; links: {', '.join(LINKS)}")
    elif link is not None:
        raise FaultError(f"{kind.name} takes no --link")

    params = check_params(kind.name, kind.params, spec.params)

    d = spec.duration_s
    if d is not None and not 0 < d <= MAX_DURATION_S:
        raise FaultError(f"duration {d:g} s is out of range (0, {MAX_DURATION_S:g}]")

    out = FaultSpec(kind.name, region, link, params, d)
    if kind.check is not None:
        kind.check(out, StackFacts(tuple(regions), primary, standby, target, brokers))
    return out
