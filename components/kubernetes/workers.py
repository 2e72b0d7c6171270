"""WorkloadWorkers: the drill's workload workers (`kdrill worker`) as a Kubernetes Job.

For a drill at production rates the producers and groups run as N pods of one Indexed
Job (completion index = worker index), each running the same command as a local worker,
`kdrill worker --connect ENGINE --index I`, dialling the drill process's control channel
(drills/worker.py). The Job, per the issue:

- `completionMode: Indexed`, `completions` = `parallelism` = N, `backoffLimit: 0` (a worker
  that died is the drill's error, not something to restart behind its back) and
  `activeDeadlineSeconds` (a forgotten Job stops costing), `restartPolicy: Never`, and
  a TTL after it finishes;
- the bootstrap addresses come from the drill stack's outputs (`regions.<role>.
  bootstrapServers`, read through a StackReference), and the shards go to the standby's
  evidence bucket (`regions.standby.evidenceBucket`), under `drills/<run>/history/shards/`,
  where the evidence of the run goes;
- credentials come from a Kubernetes Secret through `secretKeyRef` (the channel token, the
  SASL user and password, optional AWS keys): never in the Job's spec, argv or logs;
- the image is required config (`kdrill:workers.image`): there is no default image that
  would silently run some other kdrill.

components never imports drills: the env names below are the worker's contract
(drills/worker.py reads them), repeated here on purpose.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.kubernetes.mirrormaker2 import k8s_labels

# The worker's environment (drills/worker.py).
ENV_TOKEN = "KDRILL_WORKER_TOKEN"
ENV_USER, ENV_PASSWORD = "KDRILL_SASL_USERNAME", "KDRILL_SASL_PASSWORD"
ENV_PROTOCOL, ENV_MECHANISM = "KDRILL_SECURITY_PROTOCOL", "KDRILL_SASL_MECHANISM"
ENV_BOOTSTRAP = {"primary": "KDRILL_BOOTSTRAP_PRIMARY", "standby": "KDRILL_BOOTSTRAP_STANDBY"}
ENV_SHARDS = "KDRILL_SHARD_URL"
ENV_INDEX = "JOB_COMPLETION_INDEX"
INDEX_ANNOTATION = "metadata.annotations['batch.kubernetes.io/job-completion-index']"


class WorkersConfigError(ValueError):
    """The `kdrill:workers` config is missing or wrong (one line saying what to set)."""


@dataclass
class WorkloadWorkersArgs:
    """context/kubeconfig: the existing cluster the pods run in. stack: the drill stack
    whose outputs give the bootstrap addresses and the evidence bucket. engine: HOST:PORT
    of the drill process's control channel, reachable from the pods. run: the drill run's
    name (its evidence prefix). secret: the Secret holding the keys in `secret_keys`."""

    context: str
    namespace: str
    image: str
    workers: int
    stack: str
    engine: pulumi.Input[str]
    run: str
    secret: str
    active_deadline_s: int = 3600
    labels: Mapping[str, str] = field(default_factory=dict)
    kubeconfig: str | None = None
    security_protocol: str = "SASL_SSL"
    sasl_mechanism: str = "SCRAM-SHA-512"
    # env var -> key in the Secret (AWS keys optional: a pod identity may give them instead)
    secret_keys: Mapping[str, str] = field(
        default_factory=lambda: {
            ENV_TOKEN: "token",
            ENV_USER: "sasl-username",
            ENV_PASSWORD: "sasl-password",
            "AWS_ACCESS_KEY_ID": "aws-access-key-id",
            "AWS_SECRET_ACCESS_KEY": "aws-secret-access-key",
        }
    )
    cpu: str = "1"
    memory: str = "1Gi"

    @classmethod
    def from_config(cls, config: pulumi.Config | None = None, **given: Any) -> WorkloadWorkersArgs:
        """From `kdrill:workers` (an object): image (required), workers, context, namespace,
        activeDeadlineSeconds, secret; `given` fills or overrides (stack, engine, run)."""
        raw = (config or pulumi.Config("kdrill")).get_object("workers") or {}
        image = raw.get("image") or given.pop("image", None)
        if not image:
            raise WorkersConfigError(
                "kdrill:workers.image is required: the container image with this kdrill "
                "installed (e.g. `pulumi config set --path kdrill:workers.image "
                "registry.example/kdrill:1.2.3`)"
            )
        workers = int(raw.get("workers", given.pop("workers", 1)))
        if not 1 <= workers <= 1000:
            raise WorkersConfigError(f"kdrill:workers.workers must be 1..1000 (got {workers})")
        deadline = int(raw.get("activeDeadlineSeconds", given.pop("active_deadline_s", 3600)))
        if deadline <= 0:
            raise WorkersConfigError(
                f"kdrill:workers.activeDeadlineSeconds must be > 0 (got {deadline})"
            )
        for key in ("context", "namespace", "secret"):
            if key in raw:
                given[key] = raw[key]
        missing = [k for k in ("context", "namespace", "secret", "stack", "engine", "run")
                   if not given.get(k)]  # fmt: skip
        if missing:
            raise WorkersConfigError(f"kdrill:workers needs {', '.join(missing)}")
        return cls(image=image, workers=workers, active_deadline_s=deadline, **given)


def worker_command(engine: str, index_var: str = ENV_INDEX) -> list[str]:
    """The local worker's command, the engine's address and the pod's completion index
    filled by Kubernetes (`$(VAR)` expansion of the container's env)."""
    return ["kdrill", "worker", "--connect", engine, "--index", f"$({index_var})"]


def shard_url(bucket: str, run: str) -> str:
    """Where the workers put their shards: the run's evidence prefix (LocalTarget and the
    AWS target upload a run's evidence under drills/<run>/)."""
    return f"s3://{bucket}/drills/{run}/history/shards"


class WorkloadWorkers(pulumi.ComponentResource):
    """The Indexed Job of `args.workers` worker pods (see the module docstring)."""

    def __init__(
        self, name: str, args: WorkloadWorkersArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("kdrill:kubernetes:WorkloadWorkers", name, None, opts)
        provider = k8s.Provider(
            f"{name}-k8s",
            context=args.context,
            kubeconfig=args.kubeconfig,
            opts=pulumi.ResourceOptions(parent=self),
        )
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        stack = pulumi.StackReference(f"{name}-stack", stack_name=args.stack,
                                      opts=pulumi.ResourceOptions(parent=self))  # fmt: skip
        regions = stack.get_output("regions")
        labels = {**k8s_labels(args.labels), "app.kubernetes.io/name": "kdrill-worker",
                  "kdrill.run": args.run[:63]}  # fmt: skip
        env: list[dict[str, Any]] = [
            {"name": ENV_INDEX, "value_from": {"field_ref": {"field_path": INDEX_ANNOTATION}}},
            *({"name": var, "value": regions.apply(lambda r, role=role: r[role]["bootstrapServers"])}
              for role, var in ENV_BOOTSTRAP.items()),
            {"name": ENV_SHARDS,
             "value": regions.apply(lambda r: shard_url(r["standby"]["evidenceBucket"], args.run))},
            {"name": ENV_PROTOCOL, "value": args.security_protocol},
            {"name": ENV_MECHANISM, "value": args.sasl_mechanism},
            *({"name": var, "value_from": {"secret_key_ref": {
                "name": args.secret, "key": key, "optional": var.startswith("AWS_")}}}
              for var, key in args.secret_keys.items()),
        ]  # fmt: skip
        job = k8s.batch.v1.Job(
            f"{name}-job",
            metadata={"namespace": args.namespace, "labels": labels},
            spec={
                "completion_mode": "Indexed",
                "completions": args.workers,
                "parallelism": args.workers,
                "backoff_limit": 0,
                "active_deadline_seconds": args.active_deadline_s,
                "ttl_seconds_after_finished": 3600,
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "restart_policy": "Never",
                        "containers": [
                            {
                                "name": "worker",
                                "image": args.image,
                                "command": pulumi.Output.from_input(args.engine).apply(
                                    worker_command
                                ),
                                "env": env,
                                "resources": {
                                    "requests": {"cpu": args.cpu, "memory": args.memory},
                                    "limits": {"memory": args.memory},
                                },
                            }
                        ],
                    },
                },
            },
            opts=child,
        )
        self.job_name = job.metadata["name"]
        self.namespace = args.namespace
        self.register_outputs({"job": self.job_name, "namespace": self.namespace})
