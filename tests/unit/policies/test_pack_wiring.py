"""The pack the engine runs (policies/__main__.py) holds every validator the unit tests
exercise, each as the right kind of policy, under a unique name.

policies/__main__.py cannot be imported (constructing the PolicyPack starts its server and
blocks), so it is read as source.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.unit.policies.helpers import RESOURCE_VALIDATORS, STACK_VALIDATORS

PACK = Path(__file__).resolve().parents[3] / "policies" / "__main__.py"


def pack_policies() -> list[tuple[str, str, str]]:
    """(policy class, policy name, validator function name) for each policy in the pack."""
    out = []
    for node in ast.walk(ast.parse(PACK.read_text())):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
            continue
        if node.func.id not in ("ResourceValidationPolicy", "StackValidationPolicy"):
            continue
        kw = {k.arg: k.value for k in node.keywords}
        validate = kw["validate"]
        assert isinstance(validate, ast.Attribute), ast.dump(validate)
        out.append((node.func.id, ast.literal_eval(kw["name"]), validate.attr))
    return out


def test_every_validator_is_a_policy_of_the_right_kind():
    policies = pack_policies()
    by_validator = {fn: cls for cls, _, fn in policies}
    for f in RESOURCE_VALIDATORS:
        assert by_validator.get(f.__name__) == "ResourceValidationPolicy", f.__name__
    for f in STACK_VALIDATORS:
        assert by_validator.get(f.__name__) == "StackValidationPolicy", f.__name__
    assert len(by_validator) == len(RESOURCE_VALIDATORS) + len(STACK_VALIDATORS)


def test_policy_names_are_unique():
    names = [name for _, name, _ in pack_policies()]
    assert len(names) == len(set(names)), names
