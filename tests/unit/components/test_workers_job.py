"""components/kubernetes/workers.py under Pulumi's mocks: the workload workers as one
Indexed Job -- N pods, the local worker's command, bootstrap and shard bucket from the
drill stack's outputs, credentials only through secretKeyRef, a deadline, the image as
required config."""

from __future__ import annotations

import json

import pulumi
import pytest

from components.aws.mocks import RecordingMocks
from components.kubernetes.workers import (
    WorkersConfigError,
    WorkloadWorkers,
    WorkloadWorkersArgs,
    worker_command,
)

OUTPUTS = {
    "regions": {
        "primary": {"bootstrapServers": "b-1.east.kafka:9096", "evidenceBucket": "ev-east"},
        "standby": {"bootstrapServers": "b-1.west.kafka:9096", "evidenceBucket": "ev-west"},
    }
}


class Mocks(RecordingMocks):
    """Records every resource; a StackReference reads the drill stack's outputs above."""

    def __init__(self) -> None:
        super().__init__()
        self.stacks: list[str] = []

    def new_resource(self, args):
        if args.typ == "pulumi:pulumi:StackReference":
            self.stacks.append(args.inputs.get("name"))
            return f"{args.name}-id", {"name": args.inputs.get("name"), "outputs": OUTPUTS}
        return super().new_resource(args)


def _config(**workers):
    pulumi.runtime.set_all_config({"kdrill:workers": json.dumps(workers)})
    return pulumi.Config("kdrill")


def _render(**workers):
    mocks = Mocks()
    pulumi.runtime.set_mocks(mocks, project="kdrill", stack="drill", preview=False)
    args = WorkloadWorkersArgs.from_config(
        _config(**workers), stack="org/kdrill/msk-use1-usw2", engine="10.0.0.5:7001",
        run="20261202-region-loss", labels={"kdrill:drill-id": "abc"},
    )  # fmt: skip
    got = {}

    @pulumi.runtime.test
    def run():
        w = WorkloadWorkers("drill-workers", args)
        return w.job_name.apply(lambda n: got.setdefault("job", n))

    run()
    assert mocks.stacks == ["org/kdrill/msk-use1-usw2"], "the drill stack's outputs are read"
    jobs = [r for r in mocks.resources if r.typ == "kubernetes:batch/v1:Job"]
    assert len(jobs) == 1, [r.typ for r in mocks.resources]
    assert jobs[0].inputs["metadata"]["namespace"] == "kdrill"
    return jobs[0].inputs


CONF = {"image": "registry.example/kdrill:1.0", "workers": 4, "context": "eks-use1",
        "namespace": "kdrill", "secret": "kdrill-workers", "activeDeadlineSeconds": 900}  # fmt: skip


def test_the_job_is_indexed_with_one_pod_per_worker_and_a_deadline():
    spec = _render(**CONF)["spec"]
    assert spec["completionMode"] == "Indexed", "drill-workers-job: completion mode"
    assert spec["completions"] == spec["parallelism"] == 4, "drill-workers-job: pod count"
    assert spec["backoffLimit"] == 0, "drill-workers-job: a dead worker is not restarted"
    assert spec["activeDeadlineSeconds"] == 900, "drill-workers-job: activeDeadlineSeconds"
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    (c,) = pod["containers"]
    assert c["image"] == "registry.example/kdrill:1.0"
    # the local worker's command, the completion index as the worker index
    assert c["command"] == worker_command("10.0.0.5:7001")
    assert (
        c["command"][:2] == ["kdrill", "worker"] and c["command"][-1] == "$(JOB_COMPLETION_INDEX)"
    )


def test_bootstrap_and_shards_from_stack_outputs_and_credentials_only_from_the_secret():
    c = _render(**CONF)["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in c["env"]}
    assert env["KDRILL_BOOTSTRAP_PRIMARY"]["value"] == "b-1.east.kafka:9096"
    assert env["KDRILL_BOOTSTRAP_STANDBY"]["value"] == "b-1.west.kafka:9096"
    assert env["KDRILL_SHARD_URL"]["value"] == (
        "s3://ev-west/drills/20261202-region-loss/history/shards"
    )
    idx = env["JOB_COMPLETION_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"]
    assert "job-completion-index" in idx
    for var, key in (("KDRILL_WORKER_TOKEN", "token"), ("KDRILL_SASL_USERNAME", "sasl-username"),
                     ("KDRILL_SASL_PASSWORD", "sasl-password")):  # fmt: skip
        ref = env[var]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == "kdrill-workers" and ref["key"] == key, var
        assert "value" not in env[var], f"{var}: a literal credential in the Job"
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["optional"] is True
    assert "password" not in json.dumps(c["command"])


@pytest.mark.parametrize(
    "change,message",
    [
        ({"image": None}, "kdrill:workers.image is required"),
        ({"workers": 0}, "kdrill:workers.workers must be 1..1000"),
        ({"activeDeadlineSeconds": 0}, "activeDeadlineSeconds must be > 0"),
    ],
)
def test_bad_config_is_one_line(change, message):
    conf = {k: v for k, v in {**CONF, **change}.items() if v is not None}
    with pytest.raises(WorkersConfigError) as exc:
        WorkloadWorkersArgs.from_config(_config(**conf), stack="s", engine="e:1", run="r")
    assert message in str(exc.value) and len(str(exc.value).splitlines()) == 1
