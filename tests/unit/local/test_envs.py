"""Ephemeral envs without a pair: TTLs, overrides, allocation, capacity, what reap picks.

Destroying real envs (and a reap killed with SIGKILL) is tests/integration/test_envs.py.
"""

from __future__ import annotations

import ipaddress
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from components.local import config, envplaces, envs
from components.local.envs import EnvRecord, Envs
from components.local.errors import LocalEnvError

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "text,seconds",
    [("30s", 30), ("15m", 900), ("2h", 7200), ("1h30m", 5400), ("1d", 86400), ("72h", 259200)],
)
def test_ttl_accepts_units_down_to_seconds(text, seconds):
    assert envs.parse_ttl(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    "text,why",
    [
        ("30", "unit"),
        ("2x", "unit"),
        ("", "unit"),
        ("0s", "longer than 0s"),
        ("73h", "policy pack"),
    ],  # fmt: skip
)
def test_ttl_refuses_in_one_line(text, why):
    with pytest.raises(LocalEnvError) as e:
        envs.parse_ttl(text)
    assert why in str(e.value) and "\n" not in str(e.value)


def test_sets_override_paths_and_keep_the_template():
    tmpl = yaml.safe_load(config.stack_file("local").read_text())["config"]
    out = envs.apply_sets(
        tmpl,
        ["kdrill:regions[1].brokers=2", "regions[0].cpuCores=0.5", "replication.policy=identity"],
    )
    assert out["kdrill:regions"][1]["brokers"] == 2
    assert out["kdrill:regions"][0]["cpuCores"] == 0.5
    assert out["kdrill:replication"]["policy"] == "identity"
    assert tmpl["kdrill:regions"][1]["brokers"] == 1  # the template is not changed
    config.parse(out)  # still a valid local stack


@pytest.mark.parametrize("bad", ["nokey", "=1", "kdrill:regions[7].brokers=2", "[0].x=1"])
def test_sets_refuse_bad_paths(bad):
    tmpl = yaml.safe_load(config.stack_file("local").read_text())["config"]
    with pytest.raises(LocalEnvError, match="--set"):
        envs.apply_sets(tmpl, [bad])


def test_name_is_checked():
    assert envs.check_name("env-abc1") == "abc1"
    with pytest.raises(LocalEnvError, match="--name"):
        envs.check_name("Bad Name")


@pytest.fixture
def root(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("KDRILL_STATE_DIR", str(tmp_path))
    monkeypatch.setattr(envplaces.network, "namespaces", lambda: {"e0-east", "kt-west"})
    monkeypatch.setattr(
        envplaces, "_root_networks", lambda: {ipaddress.IPv4Network("10.101.0.0/16")}
    )
    return tmp_path


def test_allocation_skips_namespaces_state_dirs_records_and_addresses(root):
    (root / "e1").mkdir()  # a state dir
    e = Envs(root)
    e.save(EnvRecord("x", "local", "local", "o", "2026-12-01T00:00:00Z", "2026-12-01T01:00:00Z",
                     prefix="e2", network="10.100.0.0/16"))  # fmt: skip
    prefix, net = e.allocate()
    assert prefix == "e3"  # e0 a namespace, e1 a state dir, e2 another env's record
    assert net == ipaddress.IPv4Network("10.102.0.0/16")  # .100 recorded, .101 on an interface


def test_allocation_skips_networks_of_recorded_pairs(root):
    (root / "kq").mkdir()
    (root / "kq" / "state.json").write_text(
        json.dumps({"config": {"kdrill:local": {"network": "10.100.0.0/16"}}})
    )
    assert Envs(root).allocate()[1] == ipaddress.IPv4Network("10.102.0.0/16")


def test_env_stack_files_are_found_by_name_in_the_state_dir(root):
    (root / "envs").mkdir()
    raw = yaml.safe_load(config.stack_file("local").read_text())["config"]
    (root / "envs" / "Pulumi.env-abc.yaml").write_text(yaml.safe_dump({"config": raw}))
    cfg = config.load("env-abc")
    assert cfg.stack == "env-abc" and cfg.source == root / "envs" / "Pulumi.env-abc.yaml"
    with pytest.raises(LocalEnvError, match="does not exist"):
        config.load("env-nope")


def test_capacity_thresholds():
    assert envs.capacity_problem(2, available_mib=3072, load1=1.0, cores=2) is None
    low = envs.capacity_problem(2, available_mib=2000, load1=1.0, cores=2)
    assert low and "3072 MiB" in low and "2000 MiB" in low
    busy = envs.capacity_problem(2, available_mib=9000, load1=17.0, cores=2)
    assert busy and "load average 17.0" in busy


def _rec(env_id: str, expires: datetime, state: str = "ready", prefix: str = "e5") -> EnvRecord:
    return EnvRecord(env_id, "local", "local", "o", envs.iso(expires - timedelta(hours=1)),
                     envs.iso(expires), state=state, prefix=prefix, network="10.150.0.0/16")  # fmt: skip


def _stack_with_tags(root: Path, prefix: str, stack: str, tags: dict[str, str]) -> None:
    d = root / prefix / "pulumi" / ".pulumi" / "stacks" / "kdrill"
    d.mkdir(parents=True)
    (d / f"{stack}.json").write_text(json.dumps({"checkpoint": {}}))
    (d / f"{stack}.pulumi-tags").write_text(json.dumps({"version": 1, "tags": tags}))


def test_reap_picks_expired_stamped_envs_and_unfinished_destroys_only(root):
    e = Envs(root)
    expired = _rec("old", NOW - timedelta(seconds=5), prefix="e5")
    live = _rec("new", NOW + timedelta(hours=1), prefix="e6")
    killed = _rec("half", NOW + timedelta(hours=1), state="destroying", prefix="e7")
    forged = _rec("forged", NOW - timedelta(hours=1), prefix="e8")
    for r in (expired, live, killed, forged):
        e.save(r)
    _stack_with_tags(root, "e5", expired.stack, expired.tags())
    _stack_with_tags(root, "e6", live.stack, live.tags())
    _stack_with_tags(root, "e8", forged.stack, {"environment": "ephemeral"})  # not stamped
    # an expired ephemeral stack env create never made: reported, never touched
    _stack_with_tags(root, "zz", "someone", {"environment": "ephemeral",
                                             "kdrill:expires-at": "2026-01-01T00:00:00Z"})  # fmt: skip
    got = dict(e.reap(dry_run=True, now=NOW))
    assert got["env-old"].startswith("would destroy (expired 5s ago")
    assert got["env-half"] == "would destroy (unfinished destroy)"
    assert "env-new" not in got
    assert got["env-forged"].startswith("skip: its stack does not carry this env's stamp")
    assert got["someone (zz)"].startswith("skip: expired but not stamped")
    assert (root / "zz" / "pulumi").exists() and e.record_path("env-old").exists()


def test_tag_expiry_wins_over_the_record(root):
    e = Envs(root)
    r = _rec("t", NOW + timedelta(hours=1))
    e.save(r)
    _stack_with_tags(root, "e5", r.stack, {**r.tags(), "kdrill:expires-at": "2026-12-01T11:00:00Z"})
    assert e._reap_verdict(r, NOW) == "expired 60m00s ago"


def test_a_second_reap_does_nothing_while_one_runs(root):
    e = Envs(root)
    with e.lock("reap"):
        assert Envs(root).reap(now=NOW) == [("-", "another reap is running; nothing done")]


def test_a_create_whose_process_died_is_reaped_before_expiry(root):
    e = Envs(root)
    r = _rec("dead", NOW + timedelta(hours=1), state="creating")
    r.pid = 2**22 + 12345  # above pid_max: no such process
    e.save(r)
    assert e._reap_verdict(r, NOW) == "abandoned create (its creator is gone)"
    r.pid = os.getpid()
    assert e._reap_verdict(r, NOW) is None  # still being created


def test_the_stamp_satisfies_the_policy_packs_stack_expiry_rule():
    from policies.validators import expiry_problem

    r = _rec("p", NOW + timedelta(hours=2))
    assert expiry_problem(r.tags(), NOW, timedelta(hours=72)) is None
    assert expiry_problem({**r.tags(), "kdrill:expires-at": ""}, NOW, timedelta(hours=72))


def test_create_refuses_without_memory_and_leaves_nothing(root, monkeypatch):
    monkeypatch.setenv("KDRILL_ENV_MIN_FREE_MIB", str(10**9))
    with pytest.raises(LocalEnvError) as e:
        Envs(root).create("local", timedelta(minutes=5), "o", name="nomem")
    assert str(e.value).startswith("cannot create an env: ") and "MiB" in str(e.value)
    assert "\n" not in str(e.value)
    assert not list((root / "envs").glob("*env-nomem*")) and Envs(root).records() == []


def test_a_drill_on_an_env_holds_its_lock_against_a_reap(root, capsys):
    """`kdrill run SPEC --stack env-<id>`: while the drill runs, a reap finding the env
    expired skips it; while a create or destroy holds the env, the drill is refused."""
    import argparse

    from drills import env_cli

    e = Envs(root)
    r = _rec("busy", NOW - timedelta(seconds=5))
    e.save(r)
    _stack_with_tags(root, "e5", r.stack, r.tags())
    args = argparse.Namespace(spec="drills/scenarios/region-loss.yaml", stack=r.stack)
    seen = []

    def drill(a):
        seen.append(dict(Envs(root).reap(now=NOW)))
        return 0

    assert env_cli.run_holding_env(args, drill) == 0
    assert seen == [{"env-busy": "skip: being created or destroyed right now"}]
    with e.lock(r.stack):
        assert env_cli.run_holding_env(args, drill) == 2
    assert "env-busy is being created or destroyed right now" in capsys.readouterr().err
    args.stack = "env-gone"
    assert env_cli.run_holding_env(args, drill) == 2
    assert "no environment 'env-gone'" in capsys.readouterr().err
