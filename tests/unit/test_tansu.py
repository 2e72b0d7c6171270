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
