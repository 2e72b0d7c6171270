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


def test_stack_config_dir_cli_honours_it_local_workspace_does_not(tmp_path: Path):
    """Pins the finding the README's developer notes rely on (pulumi/pulumi issue #10305).

    With `stackConfigDir: stacks` in Pulumi.yaml, everything the Automation API does through
    the CLI (stack init, config get/set, up) uses stacks/Pulumi.<stack>.yaml, while
    LocalWorkspace.stack_settings()/save_stack_settings() only look in the work dir, and
    LocalWorkspaceOptions(project_settings=...) rewrites Pulumi.yaml without stackConfigDir.
    If a Pulumi upgrade fixes this, this test fails: update the README then.
    """
    proj = tmp_path / "proj"
    (proj / "stacks").mkdir(parents=True)
    (proj / "Pulumi.yaml").write_text(
        "name: scd\nruntime:\n  name: python\n  options:\n"
        f"    virtualenv: {sys.prefix}\nstackConfigDir: stacks\n"
    )
    (proj / "__main__.py").write_text(
        "import pulumi\npulumi.export('greeting', pulumi.Config().get('greeting'))\n"
    )
    in_stacks = proj / "stacks" / "Pulumi.dev.yaml"
    in_work_dir = proj / "Pulumi.dev.yaml"
    in_stacks.write_text("config:\n  scd:greeting: from-stacks-dir\n")
    (tmp_path / "state").mkdir()
    env = {
        "PULUMI_BACKEND_URL": (tmp_path / "state").as_uri(),
        "PULUMI_CONFIG_PASSPHRASE": "scd",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_HOME": str(tmp_path / "pulumi-home"),
    }
    opts = auto.LocalWorkspaceOptions(
        pulumi_command=pulumi_command(), env_vars=env, secrets_provider="passphrase"
    )
    stack = auto.create_or_select_stack("dev", work_dir=str(proj), opts=opts)
    ws = stack.workspace

    # Through the CLI: stacks/ is used.
    assert "encryptionsalt" in yaml.safe_load(in_stacks.read_text())
    assert ws.get_config("dev", "scd:greeting").value == "from-stacks-dir"
    stack.set_config("scd:extra", auto.ConfigValue("x"))
    assert yaml.safe_load(in_stacks.read_text())["config"]["scd:extra"] == "x"
    assert not in_work_dir.exists()
    assert stack.up(on_output=lambda _: None).outputs["greeting"].value == "from-stacks-dir"

    # LocalWorkspace's own file access: the work dir only.
    with pytest.raises(FileNotFoundError):
        ws.stack_settings("dev")
    ws.save_stack_settings("dev", auto.StackSettings(config={"scd:greeting": "shadow"}))
    assert in_work_dir.exists(), "save_stack_settings wrote beside Pulumi.yaml"
    assert ws.get_config("dev", "scd:greeting").value == "from-stacks-dir", "CLI ignores it"
    # ... unless the file is named explicitly, which up/preview/refresh/destroy allow.
    shadow = stack.up(on_output=lambda _: None, config_file=str(in_work_dir))
    assert shadow.outputs["greeting"].value == "shadow"

    # project_settings(): stackConfigDir is not part of the Python model and gets lost.
    assert "stackConfigDir" not in ws.project_settings().to_dict()
    stack.destroy(on_output=lambda _: None)
    ws.remove_stack("dev")


def test_program_without_config(tmp_path: Path):
    """A stack with no config at all (the language host must still hand Python a config map)."""
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "__main__.py").write_text("import pulumi\npulumi.export('answer', 42)\n")
    (tmp_path / "state").mkdir()
    opts = auto.LocalWorkspaceOptions(
        pulumi_command=pulumi_command(),
        pulumi_home=str(tmp_path / "pulumi-home"),
        env_vars={"PULUMI_CONFIG_PASSPHRASE": "none", "PULUMI_SKIP_UPDATE_CHECK": "true"},
        project_settings=auto.ProjectSettings(
            name="noconfig",
            runtime=auto.ProjectRuntimeInfo(name="python", options={"virtualenv": sys.prefix}),
            backend=auto.ProjectBackend(url=(tmp_path / "state").as_uri()),
        ),
    )
    stack = auto.create_or_select_stack("bare", work_dir=str(proj), opts=opts)
    assert stack.up(on_output=lambda _: None).outputs["answer"].value == 42
