"""Security on the local pair (issue 16 item 1): SASL/SCRAM on the client listener, the
StandardAuthorizer denying what no ACL allows, least-privilege workload principals, client
quotas, and credentials kept as stack secrets and 0600 files, never on a command line."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from components.clientconf import PRODUCER_ROLE, client_config, group_role
from components.local import kafka_dist, security
from components.local.kafka import RDKAFKA_LOG
from components.local.stack import CREDENTIALS_KEY
from tests.integration.conftest import produce_all


def _produce_error(conf: dict, topic: str) -> KafkaError | None:
    """The delivery error of one record sent with `conf` (None: acknowledged)."""
    got: list = []
    p = Producer({**conf, "message.timeout.ms": 8000, "enable.idempotence": False},
                 logger=RDKAFKA_LOG)  # fmt: skip
    p.produce(topic, b"v", on_delivery=lambda err, msg: got.append(err))
    p.flush(15)
    assert got, "no delivery report within 15 s"
    return got[0]


def _consume_error(conf: dict, topic: str, group: str) -> KafkaError | None:
    """The first error a group member reading `topic` with `conf` meets (None: it read a
    record)."""
    c = Consumer({**conf, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False}, logger=RDKAFKA_LOG)  # fmt: skip
    c.subscribe([topic])
    try:
        for _ in range(40):
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error() is None:
                return None
            if m.error().code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                return m.error()
        pytest.fail(f"neither a record nor an error from {topic} in 20 s")
    finally:
        c.close()


@pytest.fixture(scope="module")
def orders(pair) -> str:
    """The stack's topic in the primary, holding a record (written as kdrill-admin)."""
    produce_all(pair.primary.bootstrap, [(b"k", b"v", [])], "orders")
    return "orders"


def test_producer_principal_writes_but_is_denied_read(pair, orders):
    bs = pair.primary.bootstrap
    conf = client_config(bs, principal=PRODUCER_ROLE)
    assert conf["sasl.username"] == security.PRODUCER
    assert _produce_error(conf, orders) is None  # the ACL it needs is there
    err = _consume_error(conf, orders, f"kdrill-t-{uuid.uuid4().hex[:6]}")
    assert err is not None and err.code() in (
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.GROUP_AUTHORIZATION_FAILED,
    ), err


def test_consumer_principal_reads_but_is_denied_write(pair, orders):
    bs = pair.primary.bootstrap
    conf = client_config(bs, principal=group_role("billing"))
    assert conf["sasl.username"] == security.group_principal("billing")
    assert _consume_error(conf, orders, f"kdrill-t-{uuid.uuid4().hex[:6]}") is None
    # outside the group ids kdrill names: no ACL, denied
    err = _consume_error(conf, orders, f"other-{uuid.uuid4().hex[:6]}")
    assert err is not None and err.code() == KafkaError.GROUP_AUTHORIZATION_FAILED, err
    err = _produce_error(conf, orders)
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err


def test_standby_lets_groups_read_the_replicated_topic(pair):
    conf = client_config(pair.standby.bootstrap, principal=group_role("analytics"))
    remote = pair.remote_topic("orders")
    assert _consume_error(conf, remote, f"kdrill-t-{uuid.uuid4().hex[:6]}") is None


def test_no_authentication_or_a_wrong_password_is_refused(pair):
    bs = pair.primary.bootstrap
    plain = AdminClient({"bootstrap.servers": bs}, logger=RDKAFKA_LOG)  # no credentials, on purpose
    with pytest.raises(KafkaException):
        plain.list_topics(timeout=3)
    errors: list[KafkaError] = []
    wrong = AdminClient({**client_config(bs), "sasl.password": "not-the-password",
                         "error_cb": errors.append}, logger=RDKAFKA_LOG)  # fmt: skip
    with pytest.raises(KafkaException):
        wrong.list_topics(timeout=4)
    wrong.poll(1)  # error callbacks are served by poll
    assert any(e.code() == KafkaError._AUTHENTICATION for e in errors), errors


def test_the_producer_principal_has_its_quota(pair):
    """Read back through Kafka's own ConfigCommand (confluent-kafka has no quota API)."""
    d = pair.registry.workdir(pair.primary.name)
    argv = security.describe_quotas_argv(pair.primary.brokers[0].client_address,
                                         d / "admin-client.properties",
                                         kafka_dist.log4j_config(pair.dir))  # fmt: skip
    got = security.parse_described(subprocess.run(argv, capture_output=True, text=True,
                                                  timeout=60).stdout)  # fmt: skip
    sec = pair.cfg.security
    assert got["quotas"] == {security.PRODUCER: {
        "producer_byte_rate": str(sec.producer_byte_rate),
        "consumer_byte_rate": str(sec.consumer_byte_rate)}}  # fmt: skip
    assert set(got["scram"]) == set(security.principals(sec.groups))


def test_credentials_are_a_stack_secret_and_0600_files_only(pair):
    creds = pair.credentials
    assert creds and set(creds) == set(security.principals(pair.cfg.security.groups))
    # the drill-time config holds them as a Pulumi secret (ciphertext), not as text
    held = yaml.safe_load(pair.stack.config_file.read_text())["config"][CREDENTIALS_KEY]
    assert isinstance(held, dict) and set(held) == {"secure"}
    passwords = list(creds.values())
    backend = [f for f in pair.stack.backend_dir.rglob("*") if f.is_file()]
    assert backend
    for f in [*backend, pair.stack.config_file]:
        text = f.read_bytes().decode(errors="replace")
        assert not any(pw in text for pw in passwords), f"a password in {f}"
    # the files meant to hold them are 0600
    holders = {pair.dir / security.CREDENTIALS_FILE, pair.dir / "mm2-secrets.properties",
               *pair.dir.glob("*/admin-client.properties")}  # fmt: skip
    for f in holders:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    for f in pair.dir.rglob("*"):
        # offset indexes (preallocated, offsets only) are skipped; record logs are read
        if f.suffix in (".index", ".timeindex") or "pulumi" in f.parts:
            continue
        if f.is_file() and f not in holders:
            text = f.read_bytes().decode(errors="replace")
            assert not any(pw in text for pw in passwords), f"a password in {f}"
    # nor on any command line of the pair's processes
    pids = {p.pid for p in pair.procs}
    for pid in pids:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        assert not any(pw in cmdline for pw in passwords), f"a password in pid {pid}'s argv"
    assert json.loads((pair.dir / security.CREDENTIALS_FILE).read_text()) == creds
    assert os.geteuid() == 0  # the files are root's
