"""__main__.py, as `pulumi up` runs it: renders an AWS stack, refuses the local stack."""

import json
import runpy
from pathlib import Path

import pulumi
import pytest

from tests.unit.components.harness import REPO, RecordingMocks, stack_config

MAIN = str(Path(REPO) / "__main__.py")


def run_main(config: dict, stack: str) -> RecordingMocks:
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project="kdrill", stack=stack)
    pulumi.runtime.set_all_config(
        {f"kdrill:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    )

    @pulumi.runtime.test
    def run():
        runpy.run_path(MAIN, run_name="__main__")
        return pulumi.Output.from_input(True)

    run()
    return mocks


def test_main_renders_an_aws_stack():
    mocks = run_main(stack_config("msk-use1-usw2"), "msk-use1-usw2")
    assert any(r.typ == "kdrill:aws:PairedRegionKafka" for r in mocks.resources)


def test_main_refuses_the_local_stack():
    with pytest.raises(pulumi.RunError, match="kdrill local"):
        run_main({"pattern": "local"}, "local")
