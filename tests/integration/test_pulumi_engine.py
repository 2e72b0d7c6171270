"""The real Pulumi engine on this machine, driven through the Automation API.

tools/setup-pulumi.sh builds (or finds) the `pulumi` CLI and the Python language host and
links them into .venv/bin; ./run puts .venv/bin first on PATH. This test runs the smoke
program in tests/integration/pulumi_smoke (one Python dynamic-provider resource: a file) on
a file backend in a temporary directory with a passphrase secrets provider, and checks that
`up` creates the file, a config change through `up` changes it, and `destroy` removes it.
No mocks: the CLI, the engine, the language host and the dynamic provider all really run.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import yaml
from pulumi import automation as auto
from pulumi._version import version as sdk_version

pytestmark = pytest.mark.integration

SMOKE = Path(__file__).resolve().parent / "pulumi_smoke"
PROJECT = "kdrill-smoke"
DYNAMIC_TYPE = "pulumi-python:dynamic:Resource"


def pulumi_command() -> auto.PulumiCommand:
    """The CLI the Automation API will run: `pulumi` on PATH, else the one in this venv."""
    found = shutil.which("pulumi") or str(Path(sys.prefix) / "bin" / "pulumi")
    if not Path(found).exists():
        pytest.fail("no pulumi CLI on PATH or in the venv: run tools/bootstrap.sh (./run tests)")
    # PulumiCommand(root) runs <root>/bin/pulumi and checks its version against the SDK's.
    return auto.PulumiCommand(root=str(Path(found).parent.parent), version=sdk_version)


@pytest.fixture
def stack(tmp_path: Path):
    work_dir = tmp_path / "project"
    shutil.copytree(SMOKE, work_dir)
    state = tmp_path / "state"
    state.mkdir()
    opts = auto.LocalWorkspaceOptions(
        pulumi_command=pulumi_command(),
        pulumi_home=str(tmp_path / "pulumi-home"),
        secrets_provider="passphrase",
        env_vars={
            "PULUMI_CONFIG_PASSPHRASE": "kdrill-smoke-passphrase",
            "PULUMI_SKIP_UPDATE_CHECK": "true",
        },
        # Saved over the copied Pulumi.yaml: file backend in the temp dir, this interpreter's venv.
        project_settings=auto.ProjectSettings(
            name=PROJECT,
            runtime=auto.ProjectRuntimeInfo(name="python", options={"virtualenv": sys.prefix}),
            backend=auto.ProjectBackend(url=state.as_uri()),
        ),
    )
    s = auto.create_or_select_stack("smoke", work_dir=str(work_dir), opts=opts)
    try:
        yield s
    finally:
        try:
            s.destroy(on_output=lambda _: None)
        finally:
            s.workspace.remove_stack("smoke")


def dynamic_resources(s: auto.Stack) -> list[dict]:
    deployment = s.export_stack().deployment or {}
    return [r for r in deployment.get("resources", []) if r["type"] == DYNAMIC_TYPE]


def test_engine_version_matches_sdk():
    cmd = pulumi_command()
    assert str(cmd.version) == str(sdk_version), f"CLI {cmd.version} != Python SDK {sdk_version}"


def test_up_change_destroy(stack: auto.Stack, tmp_path: Path):
    target = tmp_path / "managed" / "smoke.txt"
    stack.set_config(f"{PROJECT}:path", auto.ConfigValue(str(target)))
    stack.set_config(f"{PROJECT}:content", auto.ConfigValue("generation-1"))
    stack.set_config(f"{PROJECT}:token", auto.ConfigValue("s3cr3t-token", secret=True))

    # The secret was encrypted with the passphrase provider into the work dir's stack file.
    stack_file = Path(stack.workspace.work_dir) / "Pulumi.smoke.yaml"
    settings = yaml.safe_load(stack_file.read_text())
    assert "encryptionsalt" in settings
    assert "s3cr3t-token" not in stack_file.read_text()
    assert set(settings["config"][f"{PROJECT}:token"]) == {"secure"}

    # 1. up creates the file.
    assert not target.exists()
    up = stack.up(on_output=lambda _: None)
    assert up.summary.result == "succeeded"
    assert up.summary.resource_changes.get("create") == 2  # the stack and the file
    assert target.read_text() == "generation-1"
    assert up.outputs["content"].value == "generation-1"
    [res] = dynamic_resources(stack)
    assert res["id"] == str(target)
    assert res["outputs"]["content"] == "generation-1"
    assert res["outputs"]["__provider"], "dynamic provider not serialised into the state"

    # 2. A config change through up updates it in place.
    stack.set_config(f"{PROJECT}:content", auto.ConfigValue("generation-2"))
    preview = stack.preview(on_output=lambda _: None)
    assert preview.change_summary.get("update") == 1
    assert target.read_text() == "generation-1", "preview must not touch the file"
    up = stack.up(on_output=lambda _: None)
    assert up.summary.resource_changes.get("update") == 1
    assert "create" not in up.summary.resource_changes
    assert target.read_text() == "generation-2"
    [res] = dynamic_resources(stack)
    assert res["outputs"]["content"] == "generation-2"
    assert res["id"] == str(target)

    # 3. destroy removes it, from disk and from the state.
    destroyed = stack.destroy(on_output=lambda _: None)
    assert destroyed.summary.resource_changes.get("delete") == 2
    assert not target.exists()
    assert dynamic_resources(stack) == []
