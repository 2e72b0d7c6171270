"""The registry of fault kinds: what each kind is, takes and does, in one place.

    from components import faults
    spec = faults.resolve(faults.FaultSpec("packet-loss", params={"percent": "30"}),
                          regions=["east", "west"], primary="east", standby="west")
    # FaultSpec(kind='packet-loss', region='east', link='backbone', params={'percent': 30.0})

One vocabulary for the local pair, drill specs and AWS stack config: `get(name)`
is the kind's entry (`FaultKind`), `resolve` checks a `FaultSpec` against it and a
stack, `help_text()` lists the kinds. The built-in kinds are registered from
`components/faults/builtin/`; a new kind is one `register(FaultKind(...))` call
(see README "Adding a fault kind"). Applying local faults is
`components.local.faults`' job, driven by each entry's `local` behaviour.
"""

from components.faults import builtin  # registers the built-in kinds
from components.faults.errors import FaultError
from components.faults.help import help_text
from components.faults.params import NoParams, ParamError, ParamInfo, Params, check_params
from components.faults.registry import (
    DIRECT_PREFIX,
    KINDS,
    RENAMED,
    TARGETS,
    FaultKind,
    Local,
    Placed,
    StackFacts,
    get,
    kinds,
    names,
    register,
    registered,
    unregister,
)
from components.faults.resolve import resolve
from components.faults.spec import LINKS, FaultSpec, parse_params

__all__ = [
    "DIRECT_PREFIX",
    "KINDS",
    "LINKS",
    "RENAMED",
    "TARGETS",
    "FaultError",
    "FaultKind",
    "FaultSpec",
    "Local",
    "NoParams",
    "ParamError",
    "ParamInfo",
    "Params",
    "Placed",
    "StackFacts",
    "builtin",
    "check_params",
    "get",
    "help_text",
    "kinds",
    "names",
    "parse_params",
    "register",
    "registered",
    "resolve",
    "unregister",
]
