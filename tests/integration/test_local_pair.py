"""The local region pair on real Kafka, MirrorMaker 2, namespaces and cgroups."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from confluent_kafka import TopicPartition

from components.local import cgroups, config, kafka, mirrormaker, network, processes
from components.local.env import LocalPair
from components.local.errors import LocalEnvError
from drills.targets import decode_checkpoint
from tests.integration.conftest import consume_n, consumer, produce_all, stack_config, wait_for

REPO = Path(__file__).resolve().parents[2]


def records(n: int) -> list[tuple[bytes, bytes, list]]:
    return [
        (f"k{i % 7}".encode(), f"value-{i}".encode(), [("seq", str(i).encode()), ("src", b"test")])
        for i in range(n)
    ]


def test_pair_runs_in_separate_namespaces_with_separate_client_and_backbone_links(pair):
    assert {r.namespace for r in pair.regions} <= network.namespaces()
    for r in pair.regions:
        addrs = subprocess.run(
            ["ip", "-n", r.namespace, "-o", "-4", "addr", "show"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert f"client    inet {r.client_ip}/24" in addrs
        assert f"backbone    inet {r.backbone_ip}/24" in addrs
    # Regions reach each other only over the backbone, never over client links.
    prim = pair.primary.brokers[0]
    assert can_connect(pair.standby.namespace, prim.replication_address)
    assert not can_connect(pair.standby.namespace, prim.client_address)
    assert can_connect(None, prim.client_address)  # clients, in the root namespace


def can_connect(namespace: str | None, address: str) -> bool:
    host, port = address.rsplit(":", 1)
    probe = f"import socket; socket.create_connection(({host!r}, {port}), timeout=2).close()"
    prefix = ["ip", "netns", "exec", namespace] if namespace else []
    return (
        subprocess.run([*prefix, sys.executable, "-c", probe], capture_output=True).returncode == 0
    )


@pytest.mark.parametrize("policy", ["prefixed", "identity"])
def test_records_arrive_in_the_standby_with_identical_keys_values_and_headers(
    pair, topic_name, policy
):
    if pair.policy != policy:
        pair.restart_replication(policy)
    kafka.create_topics(pair.primary.bootstrap, {topic_name: 3}, 1)
    sent = records(600)
    produce_all(pair.primary.bootstrap, sent, topic_name)

    remote = pair.remote_topic(topic_name)
    assert remote == (f"{pair.primary.name}.{topic_name}" if policy == "prefixed" else topic_name)
    got = consume_n(pair.standby.bootstrap, remote, len(sent), timeout=90)

    assert len(got) == len(sent)
    assert sorted((m.key(), m.value(), tuple(m.headers())) for m in got) == sorted(
        (k, v, tuple(h)) for k, v, h in sent
    )
    # per key, the order written is the order replicated
    by_key: dict[bytes, list[int]] = {}
    for m in got:
        by_key.setdefault(m.key(), []).append(int(dict(m.headers())["seq"]))
    assert all(seqs == sorted(seqs) for seqs in by_key.values())


def test_committed_group_offsets_reach_the_standby(pair, topic_name):
    kafka.create_topics(pair.primary.bootstrap, {topic_name: 1}, 1)
    produce_all(pair.primary.bootstrap, records(400), topic_name)
    remote = pair.remote_topic(topic_name)
    consume_n(pair.standby.bootstrap, remote, 400, timeout=90)  # replicated first

    group = f"readers-{topic_name}"
    c = consumer(pair.primary.bootstrap, group)
    c.subscribe([topic_name])
    got = 0
    while got < 300:
        got += len(c.consume(num_messages=300 - got, timeout=1))
    c.commit(offsets=[TopicPartition(topic_name, 0, 300)], asynchronous=False)
    c.close()  # inactive: MM2 syncs offsets only into groups empty in the target

    # 1. MM2 emits a checkpoint for the group into <primary>.checkpoints.internal
    cp_topic = mirrormaker.checkpoints_topic(pair.primary.name)

    def checkpoint():
        for m in consume_n(pair.standby.bootstrap, cp_topic, 10_000, timeout=3):
            cp = decode_checkpoint(m.key(), m.value())
            if cp[0] == group and cp[3] == 300:
                return cp
        return None

    g, t, part, upstream, downstream = wait_for(checkpoint, 60, f"a checkpoint of {group} at 300")
    assert (t, part) == (remote, 0)
    # translation never moves a consumer past what it committed; offset.lag.max bounds how far behind
    assert 300 - 100 <= downstream <= 300

    # 2. and syncs the translated offset into the standby's (empty) group
    s = consumer(pair.standby.bootstrap, group)
    try:
        synced = wait_for(
            lambda: [
                tp.offset
                for tp in s.committed([TopicPartition(remote, 0)], timeout=5)
                if tp.offset >= 0
            ],
            60,
            f"{group}'s offset synced in {pair.standby.name}",
        )
    finally:
        s.close()
    assert synced == [downstream]


def test_each_regions_processes_run_under_its_cpu_quota(pair):
    for r in pair.regions:
        assert cgroups.quota_cores(r.cgroup) == pytest.approx(r.spec.cpu_cores)
        in_group = set(cgroups.procs(r.cgroup))
        in_ns = set(network.pids_in(r.namespace))
        assert in_ns and in_ns <= in_group, f"{r.name}: processes outside the region's cgroup"
        expected = {p.pid for p in pair.procs if p.region == r.name}
        assert expected <= in_group

    # The quota is enforced: a 2 s busy loop in the region gets at most the CPU it allows.
    r = pair.standby
    log = pair.dir / "busy.log"
    loop = "import time\nt=time.time()\nwhile time.time()-t<2: pass\nprint(time.process_time())"
    cgroups.set_quota(r.cgroup, 0.2)
    try:
        pid = processes.start(r.namespace, r.cgroup, [sys.executable, "-c", loop], log)
        wait_for(lambda: not processes.alive(pid), 15, "the busy loop to end")
    finally:
        cgroups.set_quota(r.cgroup, r.spec.cpu_cores)
    cpu_seconds = float(log.read_text().split()[-1])
    assert cpu_seconds < 0.2 * 2 * 1.5, (
        f"busy loop got {cpu_seconds:.2f} CPU-s in 2 s under a 0.2-core quota"
    )


def test_up_while_already_up_is_one_clear_error(pair):
    with pytest.raises(LocalEnvError, match="already up.*run `kdrill local down` first"):
        LocalPair(pair.cfg, pair.dir.parent).up()
    assert pair.is_up()


def test_status_shows_brokers_topics_and_buckets(pair):
    st = pair.status()
    assert st.up
    east, west = st.regions
    assert east.brokers_registered == 1 and west.brokers_registered == 1
    assert "orders" in east.topics and pair.remote_topic("orders") in west.topics
    assert "kdrill-west-evidence" in west.buckets
    assert all(west.processes.values()) and "mirrormaker2 west" in west.processes


def test_sigint_during_up_tears_everything_down(tmp_path):
    stack = tmp_path / "Pulumi.sig.yaml"
    raw = stack_config("ks", "10.80.0.0/16").raw
    stack.write_text(yaml.safe_dump({"config": raw}))
    env = {**os.environ, "KDRILL_STATE_DIR": str(tmp_path / "state")}
    # the pair as `kdrill local up --stack <file>` sees it (its stack is named from the file)
    p = LocalPair(config.load(str(stack)), tmp_path / "state")
    p.down()  # what an earlier, killed run may have left: the wait below must see this run's processes
    proc = subprocess.Popen(
        [sys.executable, "-m", "drills.cli", "local", "up", "--stack", str(stack)],
        cwd=REPO,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    # interrupt once a broker runs in the primary: network, cgroups and processes all exist
    wait_for(
        lambda: network.pids_in(p.primary.namespace) if "ks-east" in network.namespaces() else [],
        60,
        "a process in the primary namespace",
        interval=0.1,
    )
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    left = p.leftovers()
    p.down()  # never leave a failed run's pair behind for the next one
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert left == []
