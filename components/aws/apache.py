"""ApacheKafkaCluster: self-managed Apache Kafka (KRaft) on EC2 with EBS log volumes.

The first three brokers (one per AZ) are combined broker+controller nodes; the rest are
brokers. Addresses are fixed (see network.broker_ip), so quorum voters and bootstrap
servers are plain strings rendered into user data — nothing is created in an `.apply`.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi

from components.aws.brokers import BrokerFleet, BrokerFleetArgs, BrokerSlot, broker_slots
from components.aws.config import BrokerCapacity, RegionConfig, RegionRole, VolumeConfig
from components.aws.network import PortRange
from components.aws.privatelink import PRIVATELINK_PORT, broker_endpoint

CLIENT_PORT = PortRange("kafka", 9092, 9092)
CONTROLLER_PORT = PortRange("kraft-controller", 9093, 9093)
CONTROLLERS = 3
LOG_DIR = "/var/lib/kafka/data"
JAVA_HOME = "/opt/java"
PRIVATELINK = PortRange("kafka-privatelink", PRIVATELINK_PORT, PRIVATELINK_PORT)


@dataclass(frozen=True)
class ArtifactSource:
    """The region's artifacts bucket, read through the VPC's S3 gateway endpoint: the VPCs
    have no NAT or internet gateway, so user data downloads nothing from the internet. A
    gateway endpoint serves the regional S3 endpoint for buckets in its own region
    (https://docs.aws.amazon.com/vpc/latest/privatelink/vpc-endpoints-s3.html); the AWS CLI
    ships with Amazon Linux 2023."""

    region: str
    bucket: str
    prefix: str
    jdk: str

    @property
    def endpoint(self) -> str:
        return f"https://s3.{self.region}.amazonaws.com"

    def fetch(self, name: str, into: str, strip: int = 0) -> str:
        """A shell line unpacking artifact `name` (a .tgz) into `into`."""
        flags = f" --strip-components={strip}" if strip else ""
        return (
            f"mkdir -p {into}\naws s3 cp --region {self.region} --endpoint-url {self.endpoint} "
            f"s3://{self.bucket}/{self.prefix}/{name} - | tar -xz -C {into}{flags}\n"
        )

    def object_arn(self) -> str:
        return f"arn:aws:s3:::{self.bucket}/{self.prefix}/*"

    def jdk_install(self) -> str:
        return self.fetch(self.jdk, JAVA_HOME, strip=1) + f"export JAVA_HOME={JAVA_HOME}\n"


def cluster_id(seed: str) -> str:
    """A stable KRaft cluster id (base64url UUID, 22 chars) derived from the stack + region."""
    raw = uuid.uuid5(uuid.NAMESPACE_URL, f"kdrill:{seed}").bytes
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def quorum_voters(slots: Sequence[BrokerSlot]) -> str:
    return ",".join(f"{s.node_id}@{s.ip}:{CONTROLLER_PORT.from_port}" for s in slots[:CONTROLLERS])


def bootstrap_servers(slots: Sequence[BrokerSlot]) -> str:
    return ",".join(f"{s.ip}:{CLIENT_PORT.from_port}" for s in slots)


def kraft_properties(
    slot: BrokerSlot, slots: Sequence[BrokerSlot], zone: str | None = None
) -> dict[str, str]:
    """server.properties of one node (KRaft; combined mode for the first three). With a
    PrivateLink `zone`, a PRIVATELINK listener advertises the broker's own NLB port."""
    controller = slot.node_id < CONTROLLERS
    listeners = [f"PLAINTEXT://{slot.ip}:{CLIENT_PORT.from_port}"]
    advertised = [f"PLAINTEXT://{slot.ip}:{CLIENT_PORT.from_port}"]
    protocols = ["PLAINTEXT:PLAINTEXT", "CONTROLLER:PLAINTEXT"]
    if zone is not None:
        host, port = broker_endpoint(slot.node_id, zone)
        listeners.append(f"PRIVATELINK://{slot.ip}:{PRIVATELINK_PORT}")
        advertised.append(f"PRIVATELINK://{host}:{port}")
        protocols.append("PRIVATELINK:PLAINTEXT")
    if controller:
        listeners.append(f"CONTROLLER://{slot.ip}:{CONTROLLER_PORT.from_port}")
    return {
        "process.roles": "broker,controller" if controller else "broker",
        "node.id": str(slot.node_id),
        "controller.quorum.voters": quorum_voters(slots),
        "controller.listener.names": "CONTROLLER",
        "listeners": ",".join(listeners),
        "advertised.listeners": ",".join(advertised),
        "listener.security.protocol.map": ",".join(protocols),
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": LOG_DIR,
        "broker.rack": slot.az,
        "default.replication.factor": "3",
        "min.insync.replicas": "2",
        "offsets.topic.replication.factor": "3",
        "transaction.state.log.replication.factor": "3",
        "transaction.state.log.min.isr": "2",
        "unclean.leader.election.enable": "false",
        "auto.create.topics.enable": "false",
    }


def render_properties(props: Mapping[str, str]) -> str:
    return "".join(f"{k}={v}\n" for k, v in props.items())


def mount_script(device: str = "/dev/nvme1n1", mountpoint: str = "/var/lib/kafka") -> str:
    return f"""\
for i in $(seq 60); do [ -b {device} ] && break; sleep 5; done
blkid {device} || mkfs.xfs {device}
mkdir -p {mountpoint}
grep -q '{mountpoint} ' /etc/fstab || echo '{device} {mountpoint} xfs defaults,nofail,noatime 0 2' >> /etc/fstab
mount -a
"""


def systemd_unit(description: str, exec_start: str) -> str:
    return f"""\
cat > /etc/systemd/system/kafka.service <<'UNIT'
[Unit]
Description={description}
After=network-online.target
[Service]
User=kafka
Environment=JAVA_HOME={JAVA_HOME}
ExecStart={exec_start}
Restart=on-failure
LimitNOFILE=1000000
[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable --now kafka
"""


def kafka_artifact(kafka_version: str) -> str:
    """The Apache Kafka binary release's file name (staged in the artifacts bucket)."""
    return f"kafka_2.13-{kafka_version}.tgz"


def user_data(
    slot: BrokerSlot,
    slots: Sequence[BrokerSlot],
    kafka_version: str,
    cid: str,
    source: ArtifactSource,
    zone: str | None = None,
) -> str:
    home = f"/opt/kafka_2.13-{kafka_version}"
    props = render_properties(kraft_properties(slot, slots, zone))
    return (
        "#!/bin/bash\nset -euo pipefail\n"
        + source.jdk_install()
        + mount_script()
        + f"id kafka || useradd -r -d /var/lib/kafka kafka\nmkdir -p {LOG_DIR}\n"
        + source.fetch(kafka_artifact(kafka_version), "/opt")
        + f"cat > /etc/kafka.properties <<'PROPS'\n{props}PROPS\n"
        f"[ -f {LOG_DIR}/meta.properties ] || {home}/bin/kafka-storage.sh format -t {cid} "
        "-c /etc/kafka.properties\n"
        f"chown -R kafka:kafka /var/lib/kafka\n"
        + systemd_unit(
            f"Apache Kafka {kafka_version} node {slot.node_id}",
            f"{home}/bin/kafka-server-start.sh /etc/kafka.properties",
        )
    )


@dataclass
class ApacheKafkaClusterArgs:
    """A KRaft cluster of `capacity.count` brokers with one EBS log volume each."""

    role: RegionRole
    region: RegionConfig
    cluster_seed: str
    kafka_version: str
    capacity: BrokerCapacity
    storage: VolumeConfig
    image: str
    subnet_ids: Sequence[pulumi.Input[str]]
    subnet_cidrs: Sequence[str]
    security_group_id: pulumi.Input[str]
    tags: Mapping[str, str]
    artifacts: ArtifactSource
    zone: str | None = None  # PrivateLink zone (brokers advertise b<N>.<zone>)
    stopped_azs: Sequence[int] = ()
    force_stop: bool = False
    data_opts: pulumi.ResourceOptions | None = None


class ApacheKafkaCluster(pulumi.ComponentResource):
    bootstrap_servers: str
    fleet: BrokerFleet

    def __init__(
        self, name: str, args: ApacheKafkaClusterArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("kdrill:aws:ApacheKafkaCluster", name, None, opts)
        cid = cluster_id(args.cluster_seed)
        slots = broker_slots(args.capacity.count, args.region, args.subnet_cidrs)

        def render(slot: BrokerSlot) -> str:
            return user_data(slot, slots, args.kafka_version, cid, args.artifacts, args.zone)

        self.fleet = BrokerFleet(
            f"{name}-fleet",
            BrokerFleetArgs(
                role=args.role,
                region=args.region,
                tags=args.tags,
                subnet_ids=args.subnet_ids,
                subnet_cidrs=args.subnet_cidrs,
                security_group_id=args.security_group_id,
                capacity=args.capacity,
                image=args.image,
                volume=args.storage,
                volume_part="log-volume",
                user_data=render,
                artifacts_arn=args.artifacts.object_arn(),
                stopped_azs=args.stopped_azs,
                force_stop=args.force_stop,
                data_opts=args.data_opts,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.bootstrap_servers = bootstrap_servers(self.fleet.slots)
        self.cluster_id = cid
        self.register_outputs(
            {
                "bootstrapServers": self.bootstrap_servers,
                "clusterId": cid,
                "instanceIds": self.fleet.instance_ids,
            }
        )
