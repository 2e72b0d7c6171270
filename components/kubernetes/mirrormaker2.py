"""MirrorMaker2: MirrorMaker 2 in dedicated mode as a Kubernetes Deployment.

It runs in an existing cluster named by `kdrill:replication.kubernetes.context` (kdrill
does not create the cluster) and replicates primary -> standby with checkpoints and
group-offset sync, so consumers can resume in the standby from translated offsets.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

MM2_CLASS = "org.apache.kafka.connect.mirror.MirrorMaker"


def mm2_properties(
    primary_bootstrap: str,
    standby_bootstrap: str,
    topics: Sequence[str],
    groups: Sequence[str],
    security: Mapping[str, str] | None = None,
) -> str:
    """mm2.properties for a one-way primary -> standby flow (names: `primary`, `standby`)."""
    props = {
        "clusters": "primary, standby",
        "primary.bootstrap.servers": primary_bootstrap,
        "standby.bootstrap.servers": standby_bootstrap,
        "primary->standby.enabled": "true",
        "standby->primary.enabled": "false",
        "standby->primary.emit.heartbeats.enabled": "false",
        "primary->standby.topics": "|".join(topics),
        "primary->standby.groups": "|".join(groups),
        "primary->standby.emit.checkpoints.enabled": "true",
        "primary->standby.sync.group.offsets.enabled": "true",
        "primary->standby.emit.checkpoints.interval.seconds": "5",
        "primary->standby.sync.group.offsets.interval.seconds": "5",
        "replication.policy.class": "org.apache.kafka.connect.mirror.DefaultReplicationPolicy",
        "replication.factor": "3",
        "checkpoints.topic.replication.factor": "3",
        "heartbeats.topic.replication.factor": "3",
        "offset-syncs.topic.replication.factor": "3",
        "offset.storage.replication.factor": "3",
        "status.storage.replication.factor": "3",
        "config.storage.replication.factor": "3",
    }
    for cluster in ("primary", "standby"):
        for k, v in (security or {}).items():
            props[f"{cluster}.{k}"] = v
    return "".join(f"{k}={v}\n" for k, v in props.items())


@dataclass
class MirrorMaker2Args:
    """context/kubeconfig: the existing cluster. bootstrap servers: both regions' Kafka.
    image: an Apache Kafka image that ships connect-mirror (e.g. apache/kafka:4.1.0).
    """

    context: str
    namespace: str
    image: str
    replicas: int
    primary_bootstrap: pulumi.Input[str]
    standby_bootstrap: pulumi.Input[str]
    topics: Sequence[str]
    groups: Sequence[str]
    labels: Mapping[str, str]
    kubeconfig: str | None = None
    security: Mapping[str, str] | None = None


def k8s_labels(tags: Mapping[str, str]) -> dict[str, str]:
    """Cost tags as Kubernetes labels (`:` is not allowed in label names)."""
    return {k.replace(":", "."): v.replace(":", "-")[:63] for k, v in tags.items()}


class MirrorMaker2(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: MirrorMaker2Args, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("kdrill:kubernetes:MirrorMaker2", name, None, opts)
        provider = k8s.Provider(
            f"{name}-k8s",
            context=args.context,
            kubeconfig=args.kubeconfig,
            opts=pulumi.ResourceOptions(parent=self),
        )
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        labels = {**k8s_labels(args.labels), "app.kubernetes.io/name": "mirrormaker2"}
        ns = k8s.core.v1.Namespace(
            f"{name}-ns", metadata={"name": args.namespace, "labels": labels}, opts=child
        )
        props = pulumi.Output.all(args.primary_bootstrap, args.standby_bootstrap).apply(
            lambda b: mm2_properties(b[0], b[1], args.topics, args.groups, args.security)
        )
        config = k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata={"namespace": ns.metadata["name"], "labels": labels},
            data={"mm2.properties": props},
            opts=child,
        )
        # Roll the pods when the properties change.
        checksum = props.apply(lambda p: hashlib.sha256(p.encode()).hexdigest()[:16])
        deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata={"namespace": ns.metadata["name"], "labels": labels},
            spec={
                "replicas": args.replicas,
                "selector": {"match_labels": {"app.kubernetes.io/name": "mirrormaker2"}},
                "template": {
                    "metadata": {"labels": labels, "annotations": {"kdrill/config-sha": checksum}},
                    "spec": {
                        "containers": [
                            {
                                "name": "mirrormaker2",
                                "image": args.image,
                                "command": [
                                    "/opt/kafka/bin/connect-mirror-maker.sh",
                                    "/etc/mm2/mm2.properties",
                                    "--clusters",
                                    "standby",
                                ],
                                "volume_mounts": [{"name": "config", "mount_path": "/etc/mm2"}],
                                "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}},
                            }
                        ],
                        "volumes": [
                            {"name": "config", "config_map": {"name": config.metadata["name"]}}
                        ],
                    },
                },
            },
            opts=child,
        )
        self.deployment_name = deployment.metadata["name"]
        self.namespace = ns.metadata["name"]
        self.register_outputs({"namespace": self.namespace, "deployment": self.deployment_name})
