"""The Tansu rehearsal's pieces that need no broker: where the binary is, how a broker is
started (argv, environment), what the rehearsal refuses, and that the default run leaves
the `tansu` marker out (its build is the better part of an hour)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from components.local import tansu
from components.local.errors import LocalEnvError
from components.local.tansu import TansuBroker
from drills.sharedstorage import RehearsalSpec, rehearse

ROOT = Path(__file__).resolve().parents[2]


def broker(region: str = "west", bucket: str = "b1") -> TansuBroker:
    return TansuBroker(region, f"ks-{region}", f"ks-{region}", "10.74.0.2",
                       "http://10.74.200.11:4566", "us-west-2", bucket, "c1")  # fmt: skip


def test_missing_binary_says_how_to_build_it(monkeypatch, tmp_path):
    monkeypatch.setattr(tansu, "CACHE", tmp_path)
    with pytest.raises(LocalEnvError, match=r"tools/tansu/build\.sh") as e:
        tansu.binary()
    assert "\n" not in str(e.value)


def test_a_broker_listens_and_advertises_its_region_address_on_the_bucket():
    b = broker()
    argv = b.argv(Path("/x/tansu"))
    assert argv[:2] == ["/x/tansu", "broker"]
    opts = dict(zip(argv[2::2], argv[3::2], strict=True))
    assert opts["--listener-url"] == opts["--advertised-listener-url"] == "tcp://10.74.0.2:9192"
    assert opts["--storage-engine"] == "s3://b1/"
    assert opts["--cluster-id"] == "c1"
    env = b.env()
    assert env["AWS_ENDPOINT"] == "http://10.74.200.11:4566"
    assert env["AWS_ALLOW_HTTP"] == "true" and env["AWS_REGION"] == "us-west-2"
    assert b.bootstrap == "10.74.0.2:9192"


def test_the_rehearsal_needs_one_bucket_for_both_brokers(tmp_path):
    with pytest.raises(ValueError, match="same S3 endpoint, bucket"):
        rehearse(broker("west", "b1"), broker("east", "b2"), RehearsalSpec("t"), tmp_path)
    assert not any(tmp_path.iterdir())  # refused before anything started


def test_a_rehearsal_spec_rejects_non_positive_windows():
    with pytest.raises(ValueError, match="must be positive"):
        RehearsalSpec("t", run_after_s=0)


def test_the_default_run_leaves_the_tansu_marker_out():
    pytest_cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]
    ini = pytest_cfg["ini_options"]
    assert any(m.startswith("tansu:") for m in ini["markers"])
    assert "not tansu" in ini["addopts"]
    assert "tansu" not in (ROOT / ".ci" / "run").read_text()


def test_the_checker_reads_a_shared_storage_failover():
    """A hand-built rehearsal history: east acknowledged seqs 0-9 (offsets 0-9), seq 10 was
    in flight when the broker died (its offset reserved in the watermark, no batch written:
    a hole at 10, E = 11), west took seqs 11-14 at 11-14. The group committed 6 on east,
    had processed 6 and 7 too, and resumed from its committed offset on west."""
    from drills.history import HistoryBuilder, Instants, ResumeSource, check
    from drills.sharedstorage import rehearsal_meta

    b, topic = HistoryBuilder(), "t1"
    for s in range(10):
        b.ack("p0", "k0", s, s + 1, cluster="east", topic=topic, partition=0, offset=s,
              send_time=1 + s / 10, ack_time=1.05 + s / 10)  # fmt: skip
    b.send("p0", "k0", 10, 11, cluster="east", topic=topic, send_time=1.95, error="timed out")
    for s in range(11, 15):
        b.ack("p0", "k0", s, s + 1, cluster="west", topic=topic, partition=0, offset=s,
              send_time=4.4 + s / 100, ack_time=4.5 + s / 100)  # fmt: skip
    for s in [*range(10), *range(11, 15)]:
        b.logged("p0", "k0", s, s + 1, cluster="west", topic=topic, partition=0, offset=s)
    for s in range(8):
        b.read("g1", "p0", "k0", s, s + 1, cluster="east", topic=topic, partition=0, offset=s,
               produced_at=1 + s / 10, poll_time=1.1 + s / 10)  # fmt: skip
    b.commit("g1", cluster="east", topic=topic, partition=0, offset=6, time=1.7)
    b.end_offset(cluster="west", topic=topic, partition=0, end_offset=11)
    b.resume("g1", cluster="west", topic=topic, partition=0, source=ResumeSource.SYNCED,
             position=6)  # fmt: skip
    for i, s in enumerate([6, 7, 8, 9, 11, 12, 13, 14]):
        produced = 1 + s / 10 if s < 10 else 4.4 + s / 100
        b.read("g1", "p0", "k0", s, s + 1, cluster="west", topic=topic, partition=0, offset=s,
               produced_at=produced, poll_time=5.0 + i / 10)  # fmt: skip
    spec = RehearsalSpec(topic)
    instants = Instants(t_fault=2.0, t_detect=3.0, t_decide=3.0, t_fence=2.0, t_cut=4.61)
    r = check(b.build(rehearsal_meta("east", "west", spec, instants)))
    assert r.rpo.records == 0 and r.rpo.acknowledged == 10
    assert r.rpo.indeterminate == 1  # seq 10: never acknowledged, not lost
    assert not r.found, r.sample()  # the hole at offset 10 is no anomaly
    (c,) = r.continuity
    assert (c.resume, c.ideal, c.resume_source) == (6, 6, "synced")
    assert (c.duplicates, c.skipped, c.duplicates_processed) == (0, 0, 2)
    assert r.rto.seconds == pytest.approx(5.4 - 2.0)  # seq 11, the first post-fault record
    assert r.rto.cutover == pytest.approx(4.61 - 3.0)
