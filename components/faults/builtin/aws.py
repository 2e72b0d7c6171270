"""Fault kinds only an AWS stack has: they exist as stack config (`kdrill:faults`) and
are rendered by components/aws/faults.py; the local pair has no AZs and no FIS."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from components.faults.params import Params
from components.faults.registry import FaultKind, register

AWS = frozenset({"aws"})
_SPAN = re.compile(r"^PT(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?$")
MAX_FIS_S = 12 * 3600  # FIS caps an action's duration at 12 hours


class RegionDegradedParams(Params):
    az_index: int = Field(ge=0, le=2, description="which AZ: 0, 1 or 2")


class FisParams(Params):
    duration: str = Field(
        "PT10M", description="how long FIS cuts the region off, ISO 8601 (PT10M), at most PT12H"
    )

    @field_validator("duration")
    @classmethod
    def _span(cls, v: str) -> str:
        m = _SPAN.match(v)
        if not m:
            raise ValueError(f"{v!r} is not an ISO 8601 time span like PT10M")
        h, mi, s = (int(x or 0) for x in m.groups())
        if not 0 < h * 3600 + mi * 60 + s <= MAX_FIS_S:
            raise ValueError(f"{v} is out of range: more than PT0S, at most PT12H")
        return v


register(
    FaultKind(
        "region-degraded",
        "one AZ of the region isolated (NACL deny rules) and its brokers stopped",
        params=RegionDegradedParams,
        targets=AWS,
    )
)

register(
    FaultKind(
        "fis-cross-region",
        "an AWS FIS experiment template cutting the region off from its peer for `duration`",
        params=FisParams,
        targets=AWS,
    )
)
