"""A kind's parameters: one pydantic model per kind, checked the same way wherever a fault
comes from.

Ranges, choices, defaults and help are Field metadata on the model, so the CLI help, the
drill spec, the AWS stack config and `resolve` all read one source. A failed check is a
`ParamError` that keeps its parts (which parameter, what is wrong, the bounds), so each
surface words it in its own vocabulary — `--param percent=...` on the CLI,
`fault.params.percent` in a drill spec, `azIndex` in stack config; `str()` is the CLI's.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from components.faults.errors import FaultError


class Params(BaseModel):
    """Base of every kind's parameter model: unknown parameters and non-finite numbers are
    errors. Declare each parameter with `Field(default?, ge=, le=, description=help)`;
    a `Literal[...]` annotation gives its choices."""

    model_config = ConfigDict(
        extra="forbid", allow_inf_nan=False, frozen=True, validate_default=True
    )


class NoParams(Params):
    """The parameters of a kind that takes none."""


@dataclass(frozen=True)
class ParamInfo:
    """One parameter as the help and the error messages describe it."""

    name: str
    type: str  # "float", "int" or "str"
    help: str
    required: bool
    default: Any
    low: float | None
    high: float | None
    choices: tuple[str, ...]

    @property
    def range(self) -> str:
        return range_text(self.low, self.high)

    def describe(self) -> str:
        """`percent=float 0.1..100, required: share of packets dropped, each direction`."""
        kind = "|".join(self.choices) if self.choices else self.type
        extra = [self.range] if self.range else []
        extra.append("required" if self.required else f"default {self.default}")
        text = f"{self.name}={kind} ({', '.join(extra)})"
        return f"{text}: {self.help}" if self.help else text


def range_text(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"{low:g}..{high:g}"
    if low is not None:
        return f">= {low:g}"
    if high is not None:
        return f"<= {high:g}"
    return ""


def param_info(model: type[Params]) -> list[ParamInfo]:
    """The parameters of `model`, in declaration order."""
    out = []
    for name, f in model.model_fields.items():
        tp, choices = f.annotation, ()
        if typing.get_origin(tp) is Literal:
            choices = tuple(str(c) for c in typing.get_args(tp))
            tp = str
        low = next((m.ge for m in f.metadata if hasattr(m, "ge")), None)
        low = next((m.gt for m in f.metadata if hasattr(m, "gt")), low)
        high = next((m.le for m in f.metadata if hasattr(m, "le")), None)
        high = next((m.lt for m in f.metadata if hasattr(m, "lt")), high)
        required = f.is_required()
        out.append(
            ParamInfo(
                name,
                getattr(tp, "__name__", str(tp)),
                f.description or "",
                required,
                None if required else f.default,
                low,
                high,
                choices,
            )
        )
    return out


Reason = Literal["unknown", "missing", "type", "choice", "range", "invalid"]


class ParamError(FaultError):
    """A parameter that does not fit its kind's model; `str()` is the CLI wording."""

    def __init__(
        self,
        kind: str,
        reason: Reason,
        name: str,
        *,
        value: Any = None,
        param: ParamInfo | None = None,
        allowed: tuple[str, ...] = (),
        detail: str = "",
    ):
        self.kind, self.reason, self.name, self.value = kind, reason, name, value
        self.param, self.allowed, self.detail = param, allowed, detail
        super().__init__(self._cli())

    def _cli(self) -> str:
        k, n, v, p = self.kind, self.name, self.value, self.param
        if self.reason == "unknown":
            return f"{k} has no parameter {n!r}; parameters: {', '.join(self.allowed) or 'none'}"
        if self.reason == "missing" and p is not None:
            return f"{k} needs --param {n}=<{p.type}>" + (f" ({p.help})" if p.help else "")
        if self.reason == "type" and p is not None:
            return f"{k}: {n}={v!r} is not {_a(p.type)}"
        if self.reason == "choice" and p is not None:
            return f"{k}: {n}={v!r} must be one of: {', '.join(p.choices)}"
        if self.reason == "range" and p is not None:
            return f"{k}: {n}={v} is out of range {p.range}"
        return f"{k}: {n}={v!r}: {self.detail}" if n else f"{k}: {self.detail}"


def _a(word: str) -> str:
    return f"an {word}" if word[:1] in "aeiou" else f"a {word}"


_TYPE_ERRORS = {
    "float_parsing", "float_type", "int_parsing", "int_type", "int_from_float",
    "string_type", "finite_number", "bool_parsing", "bool_type",
}  # fmt: skip
_RANGE_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}


def check_params(
    kind: str, model: type[Params], raw: Mapping[str, Any], *, strict: bool = False
) -> dict[str, Any]:
    """`raw` validated by `model`; returns every parameter with defaults filled in.

    `strict=False` converts strings ("30" from `--param percent=30`); `strict=True` takes
    values as typed (a drill spec's YAML), so `percent: "30"` is a mistake there."""
    try:
        return model.model_validate(dict(raw), strict=strict).model_dump()
    except ValidationError as e:
        errors = e.errors(include_url=False)
    # unknown names first: a misspelt parameter also shows up as a missing one
    err = next((x for x in errors if x["type"] == "extra_forbidden"), errors[0])
    infos = {p.name: p for p in param_info(model)}
    name = str(err["loc"][0]) if err["loc"] else ""
    typ, value, param = err["type"], raw.get(name), infos.get(name)
    if typ == "extra_forbidden":
        raise ParamError(kind, "unknown", name, value=value, allowed=tuple(infos))
    if typ == "missing":
        raise ParamError(kind, "missing", name, param=param)
    if typ == "literal_error":
        raise ParamError(kind, "choice", name, value=value, param=param)
    if typ in _RANGE_ERRORS:
        raise ParamError(kind, "range", name, value=value, param=param)
    if typ in _TYPE_ERRORS:
        raise ParamError(kind, "type", name, value=value, param=param)
    ctx_error = (err.get("ctx") or {}).get("error")
    detail = str(ctx_error) if ctx_error is not None else err["msg"]
    raise ParamError(kind, "invalid", name, value=value, param=param, detail=detail)
