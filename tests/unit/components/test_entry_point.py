"""__main__.py, as `pulumi up` runs it: renders an AWS stack; the local stack is its fault switch."""

import json
import runpy
from pathlib import Path

import pulumi

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


def test_main_renders_the_local_pair_parts_and_the_fault_switch_from_the_drill_time_config():
    fault = {"kind": "region-loss", "region": "east", "params": {}}
    local = stack_config("local")
    local["local"] = {**local["local"], "namePrefix": "kt"}
    mocks = run_main({**local, "faults": {"s1": fault}}, "local")
    dynamic = {r.name: r for r in mocks.resources if r.typ == "pulumi-python:dynamic:Resource"}
    assert set(dynamic) == {
        "kt-east-region", "kt-east-kafka", "kt-east-s3",
        "kt-west-region", "kt-west-kafka", "kt-west-s3",
        "kt-replication-path", "kt-mirrormaker2", "kt-faults",
    }, "one resource per part, named from the pair's prefix"  # fmt: skip
    switch = dynamic["kt-faults"]
    assert switch.inputs["prefix"] == "kt"
    assert switch.inputs["faults"] == {"s1": fault}
    kafka = dynamic["kt-east-kafka"]
    assert kafka.inputs["region"] == "east" and kafka.inputs["stack"] == "local"
    assert "kdrill:faults" not in kafka.inputs["config"], "a fault never changes a part's inputs"
    assert kafka.inputs["config"]["kdrill:local"]["namePrefix"] == "kt"
    assert not any(r.typ.startswith("kdrill:aws") for r in mocks.resources)
