"""The policy pack under the real engine: `pulumi preview --policy-pack policies -s local`.

CrossGuard itself runs here -- the `pulumi` CLI loads policies/ (PulumiPolicy.yaml, runtime
python), asks kdrill's Python language host to start it (RunPlugin), hands it the stack's
tags (ConfigureStack) and every resource of the preview, and refuses the preview when a
mandatory policy reports a violation. The validators' own logic is unit-tested in
tests/unit/policies; this test proves the wiring the unit tests cannot.

The stack is `local` (the program's fault switch, config from stacks/Pulumi.local.yaml) in a
file backend under a temporary state directory, set up the way kdrill sets up the pair's
stack (components/local/stack.py: 0600 passphrase file, drill-time config file passed as
--config-file, nothing written into the repository). Previewing it needs neither root nor a
running pair: with no pair state the fault switch is a planned create, and preview does not
call the provider's create.

The rule shown refusing is `ephemeral-stack-expiry`: a stack tagged environment=ephemeral
(what `kdrill env create` will stamp, issue 19) must carry a kdrill:expires-at stack tag
within the pack's maxTtlHours (72).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from components.local.stack import ROOT, LocalStack

pytestmark = pytest.mark.integration

POLICY = "ephemeral-stack-expiry"


def pulumi_binary() -> str:
    found = shutil.which("pulumi") or str(Path(sys.prefix) / "bin" / "pulumi")
    if not Path(found).exists():
        pytest.fail("no pulumi CLI on PATH or in the venv: run tools/bootstrap.sh (./run tests)")
    return found


class Engine:
    """`pulumi ... -s local` on the temporary stack, with the caller's PATH (./run puts
    .venv/bin, where set-up links the language host, first)."""

    def __init__(self, tmp: Path):
        self.stack = LocalStack(tmp / "state" / "kd", stack="local")  # <state root>/<namePrefix>
        self.stack.ensure()  # backend, passphrase, `stack init`, drill-time config file
        env = {k: v for k, v in os.environ.items() if k != "PULUMI_CONFIG_PASSPHRASE"}
        env.setdefault("PATH", str(Path(sys.prefix) / "bin"))
        self.env = {**env, **self.stack.env(), "PULUMI_HOME": str(tmp / "pulumi-home")}

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [pulumi_binary(), *args, "--stack", "local", "--non-interactive"],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )

    def tag(self, name: str, value: str) -> None:
        r = self.run("stack", "tag", "set", name, value)
        assert r.returncode == 0, r.stderr

    def preview(self) -> tuple[int, str]:
        r = self.run(
            "preview", "--policy-pack", "policies", "--config-file", str(self.stack.config_file)
        )
        return r.returncode, r.stdout + r.stderr


def in_hours(hours: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_pack_runs_and_refuses_an_ephemeral_stack_without_a_valid_expiry(tmp_path: Path):
    engine = Engine(tmp_path)

    # 1. The pack loads and passes: a plain local stack violates nothing.
    code, out = engine.preview()
    assert code == 0, out
    assert "kdrill@" in out and "local: policies" in out, out  # the pack ran ("Policies:")
    assert "kd-faults" in out and "mandatory" not in out, out

    # 2. Tagged ephemeral without an expiry: the engine refuses, naming the rule and why.
    engine.tag("environment", "ephemeral")
    code, out = engine.preview()
    assert code != 0, out
    assert f"[mandatory]  {POLICY}" in out, out
    assert "is ephemeral but has no kdrill:expires-at tag" in out, out

    # 3. An expiry within maxTtlHours passes (so the pack read the tag's value; an expiry
    #    beyond the limit is the validator's logic, unit-tested in tests/unit/policies).
    engine.tag("kdrill:expires-at", in_hours(2))
    code, out = engine.preview()
    assert code == 0, out
    assert POLICY not in out and "kdrill@" in out, out

    # Preview changed nothing: no update recorded, the repository's stack file untouched.
    assert engine.stack.update_count() == 0
    assert "encryptionsalt" not in (ROOT / "stacks" / "Pulumi.local.yaml").read_text()
