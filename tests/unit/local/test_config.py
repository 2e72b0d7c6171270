"""The local stack file: what it builds, and one clear line for each bad value."""

import copy
import subprocess
import sys

import pytest
import yaml

from components.local import config, kafka, mirrormaker, network
from components.local.errors import LocalEnvError

BASE = yaml.safe_load(config.stack_file("local").read_text())["config"]


def with_(path: str, value):
    """BASE with one key (dotted, list indexes as numbers) replaced."""
    cfg = copy.deepcopy(BASE)
    node, *rest = path.split(".")
    target = cfg
    keys = [node, *rest]
    for k in keys[:-1]:
        target = target[int(k)] if k.isdigit() else target[k]
    last = keys[-1]
    target[int(last) if last.isdigit() else last] = value
    return cfg


def test_shipped_local_stack_is_a_primary_standby_pair():
    cfg = config.load("local")
    assert [r.role for r in cfg.regions] == ["primary", "standby"]
    assert cfg.primary.name != cfg.standby.name
    assert cfg.replication.policy in config.POLICIES
    assert cfg.topics, "the demo needs a topic"


@pytest.mark.parametrize(
    "path,value,expect",
    [
        (
            "kdrill:regions.0.brokers",
            0,
            "kdrill:regions[0].brokers: 0 must be an integer from 1 to 5",
        ),
        (
            "kdrill:regions.1.cpuCores",
            "lots",
            "kdrill:regions[1].cpuCores: 'lots' must be a number",
        ),
        (
            "kdrill:regions.0.role",
            "standby",
            "needs one region with role primary and one with role standby",
        ),
        ("kdrill:regions.1.name", "east", "both regions are named 'east'"),
        ("kdrill:regions.0.name", "US-East", "'US-East' must be 1-8 lowercase"),
        ("kdrill:regions.0.zone", "a", "kdrill:regions[0].zone: unknown key"),
        ("kdrill:replication.policy", "mirror", "'mirror' must be one of: prefixed, identity"),
        (
            "kdrill:replication.intervalSeconds",
            0,
            "kdrill:replication.intervalSeconds: 0 must be a positive integer",
        ),
        ("kdrill:topics", [{"name": "t", "partitions": -1}], "kdrill:topics[0].partitions: -1"),
        ("kdrill:local.network", "10.77.0.0/24", "must be a /16"),
        ("kdrill:pattern", "msk", "the local runtime needs 'local'"),
    ],
)
def test_bad_values_name_the_key_and_the_fix(path, value, expect):
    with pytest.raises(LocalEnvError) as e:
        config.parse(with_(path, value))
    msg = str(e.value)
    assert expect in msg
    assert "\n" not in msg


@pytest.mark.parametrize(
    "path,value,expect",
    [
        (
            "kdrill:replication.lag",
            1,
            "kdrill:replication.lag: unknown key; allowed: engine, policy, offsetLagMax, intervalSeconds",
        ),
        (
            "kdrill:local.rtt",
            1,
            "kdrill:local.rtt: unknown key; allowed: network, namePrefix, interRegionRttMs",
        ),
        ("kdrill:regions.0.brokers", True, "kdrill:regions[0].brokers: True must be an integer"),
        ("kdrill:regions.0.brokers", 2.0, "kdrill:regions[0].brokers: 2.0 must be an integer"),
        ("kdrill:regions.1", "west", "kdrill:regions[1]: must be a mapping with name, role"),
        ("kdrill:regions", [], "kdrill:regions: must be a list of exactly two regions"),
        ("kdrill:regions.0.buckets", [""], "kdrill:regions[0].buckets[0]: '' must be a list"),
        ("kdrill:topics", [{"partitions": 2}], "kdrill:topics[0].name: missing; set it to"),
        ("kdrill:replication.engine", "mm1", "'mm1' must be 'mirrormaker2'"),
        ("kdrill:local.network", "10.77.0.1/16", "'10.77.0.1/16' must be an IPv4 network"),
        ("kdrill:local.namePrefix", "Kd", "kdrill:local.namePrefix: 'Kd' must be 1-4 lowercase"),
        ("kdrill:local.interRegionRttMs", 9000, "9000 must be an integer from 0 to 5000 (ms)"),
    ],
)
def test_every_section_is_checked_and_errors_stay_one_line(path, value, expect):
    with pytest.raises(LocalEnvError) as e:
        config.parse(with_(path, value), stack="x")
    msg = str(e.value)
    assert msg.startswith("stack x: ") and expect in msg, msg
    assert "\n" not in msg


def test_missing_regions_say_what_to_add():
    raw = copy.deepcopy(BASE)
    del raw["kdrill:regions"]
    with pytest.raises(
        LocalEnvError, match=r"kdrill:regions: missing; set it to a list of exactly two"
    ):
        config.parse(raw)


def test_empty_sections_and_other_namespaces_mean_defaults():
    raw = {
        "kdrill:regions": BASE["kdrill:regions"],
        "kdrill:topics": None,
        "kdrill:replication": None,
        "kdrill:local": None,
        "aws:region": "us-east-1",  # another namespace's key: not ours to judge
    }
    cfg = config.parse(raw)
    assert cfg.topics == ()
    assert (cfg.replication.policy, cfg.replication.offset_lag_max) == ("prefixed", 100)
    assert cfg.replication.policy_class == config.POLICIES["prefixed"]
    assert (str(cfg.network), cfg.prefix, cfg.rtt_ms) == ("10.77.0.0/16", "kd", 70)
    assert cfg.raw is raw


def test_parsed_config_reads_like_the_stack_file():
    cfg = config.load("local")
    east, west = cfg.regions
    assert (east.index, west.index) == (1, 2)  # the order in the file fixes the addresses
    assert (east.aws_region, east.brokers, east.cpu_cores) == ("us-east-1", 1, 1.0)
    assert west.buckets == ("kdrill-west-data", "kdrill-west-evidence")
    assert cfg.region("west") is west and cfg.standby is west and cfg.primary is east
    assert cfg.topics[0].name == "orders" and cfg.topics[0].partitions == 3
    assert cfg.source == config.stack_file("local")
    # frozen and comparable: the same file read twice is the same config
    assert config.load("local") == cfg and hash(config.load("local")) == hash(cfg)
    with pytest.raises(ValueError):
        east.brokers = 3


def test_unknown_stack_lists_the_stacks_that_exist():
    with pytest.raises(LocalEnvError, match=r"stack 'nope' does not exist.*stacks here: .*local"):
        config.load("nope")


def test_unknown_region_names_the_known_ones():
    with pytest.raises(LocalEnvError, match="unknown region 'mars'; this stack has: east, west"):
        config.load("local").region("mars")


def test_client_and_replication_paths_use_separate_links_and_subnets():
    cfg = config.load("local")
    east, west = (network.addresses(cfg, r) for r in cfg.regions)
    # each region's client link is its own /24: no region can reach the other's client address
    assert east.client_ip.rsplit(".", 1)[0] != west.client_ip.rsplit(".", 1)[0]
    # the backbone is one shared subnet, distinct from both client subnets
    assert east.backbone_ip.rsplit(".", 1)[0] == west.backbone_ip.rsplit(".", 1)[0]
    assert east.backbone_ip.rsplit(".", 1)[0] not in {
        east.client_ip.rsplit(".", 1)[0],
        west.client_ip.rsplit(".", 1)[0],
    }
    names = [
        east.client_link,
        east.backbone_link,
        west.client_link,
        west.backbone_link,
        network.bridge_name(cfg),
    ]
    assert len(set(names)) == 5 and all(len(n) <= 15 for n in names)  # IFNAMSIZ


def test_broker_listeners_separate_clients_replication_and_the_quorum():
    b = kafka.Broker("east", 1, "10.77.1.2", "10.77.100.11", 3)
    props = dict(
        line.split("=", 1)
        for line in kafka.server_properties(b, "/tmp/x").splitlines()
        if "=" in line and not line.startswith("#")
    )
    assert props["listeners"] == (
        "CLIENT://10.77.1.2:9093,REPLICATION://10.77.100.11:9193,INTERNAL://127.0.0.1:9293,CONTROLLER://127.0.0.1:9393"
    )
    assert props["inter.broker.listener.name"] == "INTERNAL"
    assert props["controller.quorum.voters"] == "0@127.0.0.1:9392,1@127.0.0.1:9393,2@127.0.0.1:9394"
    assert props["min.insync.replicas"] == "2" and props["default.replication.factor"] == "3"


def test_single_broker_uses_bootstrap_servers_for_a_standalone_quorum():
    b = kafka.Broker("east", 0, "10.77.1.2", "10.77.100.11", 1)
    text = kafka.server_properties(b, "/tmp/x")
    assert "controller.quorum.bootstrap.servers=127.0.0.1:9392" in text
    assert "controller.quorum.voters" not in text
    assert "offsets.topic.replication.factor=1" in text
    argv = kafka.format_argv("/tmp/p", "id", standalone=True, log4j="/tmp/l")
    assert argv[
        argv.index("kafka.tools.StorageTool") + 1 : argv.index("kafka.tools.StorageTool") + 3
    ] == [
        "format",
        "--standalone",
    ]


def test_cluster_ids_are_kafka_uuids():
    ids = {kafka.new_cluster_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(len(i) == 22 and "=" not in i for i in ids)
    assert not any(i.startswith("-") for i in ids)  # about 1 in 64 would, unchecked


@pytest.mark.parametrize("policy,cls", list(config.POLICIES.items()))
def test_mirrormaker_config_is_tuned_for_drills(policy, cls):
    cfg = config.load("local")
    props = dict(
        (k.strip(), v.strip())
        for k, v in (
            line.split("=", 1)
            for line in mirrormaker.properties(
                cfg, "10.77.100.11:9192", "10.77.2.2:9092", policy
            ).splitlines()
            if "=" in line and not line.startswith("#")
        )
    )
    assert props["replication.policy.class"] == cls
    for key in (
        "refresh.topics.interval.seconds",
        "refresh.groups.interval.seconds",
        "emit.checkpoints.interval.seconds",
        "sync.group.offsets.interval.seconds",
    ):
        assert int(props[key]) <= 5, f"{key} left at a steady-state default"
    assert props["sync.group.offsets.enabled"] == "true"
    assert props["offset.lag.max"] == "100"
    assert props["east->west.enabled"] == "true" and props["west->east.enabled"] == "false"
    assert props["west->east.emit.heartbeats.enabled"] == "false"
    assert props["east.bootstrap.servers"] == "10.77.100.11:9192"  # the replication listener
    assert props["replication.factor"] == "1"


def test_remote_topic_names_follow_the_policy():
    assert mirrormaker.remote_topic("orders", "east", "prefixed") == "east.orders"
    assert mirrormaker.remote_topic("orders", "east", "identity") == "orders"


def test_cli_reports_an_unknown_stack_in_one_line_without_traceback():
    p = subprocess.run(
        [sys.executable, "-m", "drills.cli", "local", "up", "--stack", "nope"],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 1
    assert p.stderr.strip().startswith("kdrill: error: stack 'nope' does not exist")
    assert len(p.stderr.strip().splitlines()) == 1
    assert "Traceback" not in p.stderr


def test_cli_help_explains_the_local_commands():
    p = subprocess.run(
        [sys.executable, "-m", "drills.cli", "local", "--help"], capture_output=True, text=True
    )
    assert p.returncode == 0
    for cmd in ("up", "down", "status", "demo"):
        assert cmd in p.stdout


def test_up_as_non_root_fails_before_creating_anything(monkeypatch, tmp_path):
    from components.local import env

    monkeypatch.setattr(env.os, "geteuid", lambda: 1000)
    created = []
    monkeypatch.setattr(env.network, "create", lambda cfg: created.append(cfg))
    pair = env.LocalPair(config.load("local"), state_root=tmp_path)
    with pytest.raises(LocalEnvError, match="needs root"):
        pair.up()
    assert created == [] and not (tmp_path / "kd").exists()
