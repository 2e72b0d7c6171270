"""Control state on the secured pair (issue 16 items 2, 4, 6): MirrorMaker 2's partial ACL
sync shows as classified differences; a wrong password, an unknown principal and a missing
ACL stop a drill at preflight with one line naming the fix, in the primary and in the
standby (the producer's WRITE on the topic it writes after cutover); a group's READ ACL
that leaves the standby after preflight fails the drill on the authorization check after
cutover, the finding named."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import yaml
from confluent_kafka.admin import AclBindingFilter

from components import clientconf
from components.local import kafka, security
from drills import controlstate
from drills.controlstate import BREAKS, COSMETIC
from drills.hooks import Hooks
from drills.runner import run_drill
from drills.targets import LocalTarget
from tests.integration.conftest import wait_for
from tests.integration.test_drill import spec

REPO = Path(__file__).resolve().parents[2]


def _acl_filter(rows):
    """Delete filters for the given ACL specs (security.acl_specs shape)."""
    return [AclBindingFilter(b.restype, b.name, b.resource_pattern_type, b.principal, b.host,
                             b.operation, b.permission_type) for b in security.bindings(rows)]  # fmt: skip


def test_mirrormaker2_acl_sync_is_partial_and_parity_says_so(pair):
    topic = f"acl-{uuid.uuid4().hex[:6]}"
    group = f"grp-{uuid.uuid4().hex[:6]}"
    who_c, who_p = f"User:{security.group_principal('billing')}", f"User:{security.PRODUCER}"
    rows = [("TOPIC", topic, "LITERAL", who_c, "ALL"), ("TOPIC", topic, "LITERAL", who_p, "WRITE"),
            ("GROUP", group, "LITERAL", who_c, "READ")]  # fmt: skip
    kafka.create_topics(pair.primary.bootstrap, {topic: 1}, 1)
    kafka.create_acls(pair.primary.bootstrap, security.bindings(rows))
    remote = pair.remote_topic(topic)
    try:
        # MirrorMaker 2 replicates the topic, then copies its topic ACLs on its next sync
        def synced():
            inv = controlstate.inventory(pair.standby.bootstrap)
            copied = [a for a in inv["acls"] if a["name"] == remote]
            return copied and remote in inv["topics"] and inv  # the ACL can come first

        stby = wait_for(synced, 90, f"MirrorMaker 2 to copy {topic}'s ACLs")
        prim = controlstate.inventory(pair.primary.bootstrap)
        d = controlstate.parity(prim, stby, pair.remote_topic)
        mine = {x["subject"]: x["severity"] for x in d["differences"]
                if topic in x["subject"] or group in x["subject"]}  # fmt: skip
        assert mine == {
            f"ALLOW {who_c} ALL TOPIC:literal:{remote}": BREAKS,  # ALL became READ
            f"ALLOW {who_c} ALL TOPIC:literal:{topic}": BREAKS,
            f"ALLOW {who_p} WRITE TOPIC:literal:{topic}": BREAKS,  # WRITE not copied
            f"ALLOW {who_c} READ GROUP:literal:{group}": BREAKS,  # group ACLs not copied
            f"ALLOW {who_c} READ TOPIC:literal:{remote}": COSMETIC,  # what MM2 did copy
        }
    finally:
        a = kafka.admin(pair.primary.bootstrap)
        for f in a.delete_acls(_acl_filter(rows), request_timeout=15).values():
            f.result()
        b = kafka.admin(pair.standby.bootstrap)
        copied = _acl_filter([("TOPIC", remote, "LITERAL", who_c, "READ")])
        for f in b.delete_acls(copied, request_timeout=15).values():
            f.result()


def _sync(pair, tmp_path, *extra: str) -> subprocess.CompletedProcess:
    stack = tmp_path / f"Pulumi.{pair.cfg.stack}.yaml"  # the session pair, by its stack's name
    stack.write_text(yaml.safe_dump({"config": pair.cfg.raw}))
    argv = [sys.executable, "-m", "drills.cli", "sync-control-state", "--from", "east", "--to",
            "west", "--stack", str(stack), *extra]  # fmt: skip
    p = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "COLUMNS": "300", "NO_COLOR": "1"})  # fmt: skip
    assert p.returncode == 0, p.stderr[-1000:]
    return p


def _preflight_error(pair, tmp_path, s) -> tuple[str, str]:
    out = run_drill(s, LocalTarget(pair), tmp_path / "run")
    ev = json.loads((tmp_path / "run" / "evidence.json").read_text())
    steps = ev["journal"]["steps"]
    assert out.status == "failed" and steps[0]["phase"] == "preflight", steps[0]
    assert [x["phase"] for x in steps] == ["preflight", "teardown"], "it went past preflight"
    return steps[0]["error"], json.dumps(ev)


def test_a_wrong_password_is_one_line_at_preflight(pair, tmp_path):
    creds = dict(pair.credentials)
    roles = security.roles(creds, pair.cfg.security.groups)
    roles["producer"] = {**roles["producer"], "sasl.password": "wrong-password-0000"}
    admin = security.client_settings(security.ADMIN, creds[security.ADMIN])
    clientconf.register(pair.primary.bootstrap, admin, roles)
    try:
        err, ev = _preflight_error(pair, tmp_path, spec())
    finally:
        pair.register_clients()
    assert "east: kdrill-producer (producer) cannot authenticate" in err and "\n" not in err
    assert "fix its password" in err
    assert "wrong-password-0000" not in ev and creds[security.PRODUCER] not in ev


def test_an_unknown_principal_is_one_line_at_preflight(pair, tmp_path):
    s = spec()
    data = s.to_dict()
    data["workload"]["groups"][1]["name"] = "fraud"  # not in kdrill:security.groups
    from drills.spec import parse_spec

    err, _ = _preflight_error(pair, tmp_path, parse_spec(data))
    assert "no principal for group:fraud" in err and "kdrill:security.groups" in err


def test_a_missing_acl_is_one_line_at_preflight(pair, tmp_path):
    s = spec()
    topic = s.workload.topics[0].name
    kafka.create_topics(pair.primary.bootstrap, {topic: 3}, 1)  # made outside kdrill: no ACLs
    err, _ = _preflight_error(pair, tmp_path, s)
    assert f"east: kdrill-producer (producer) is denied WRITE on topic {topic}" in err
    assert "add an ALLOW WRITE ACL" in err


def test_standby_without_the_producers_write_stops_the_drill_at_preflight(pair, tmp_path):
    """The gap that reached cutover: the topic producers write in the standby after cutover
    lacks their WRITE (under the identity policy MirrorMaker 2 creates it and never copies
    ALLOW WRITE). The preflight must stop on it, naming the ACL and the fix."""
    s = spec()
    topic = s.workload.topics[0].name  # written in the standby after cutover, either policy
    pair.create_workload_topics(pair.primary.name, {topic: 3})  # kdrill's grants, both regions
    pair.create_workload_topics(pair.standby.name, {topic: 3})
    row = [("TOPIC", topic, "LITERAL", f"User:{security.PRODUCER}", "WRITE")]
    b = kafka.admin(pair.standby.bootstrap)
    for f in b.delete_acls(_acl_filter(row), request_timeout=15).values():
        assert f.result(), "the producer's WRITE was not there to remove"
    try:
        err, ev = _preflight_error(pair, tmp_path, s)
        assert (f"west: kdrill-producer (producer) is denied WRITE on topic {topic}: add an "
                "ALLOW WRITE ACL for it") in err, err  # fmt: skip
        assert "`kdrill sync-control-state --from east --to west`" in err and "\n" not in err
        # the primary was fine: the stop is the standby's
        pre = json.loads(ev)["journal"]["steps"][0]["output"]["authorization"]
        assert all(f["ok"] for f in pre["east"])
        assert [f["role"] for f in pre["west"] if not f["ok"]] == ["producer"]
    finally:
        kafka.create_acls(pair.standby.bootstrap, security.bindings(row))
    need = controlstate.Need("producer", {topic: "WRITE"})
    assert controlstate.authorize(pair.standby.bootstrap, "west", need)["ok"]


class _RevokeBeforeInject(Hooks):
    """Delete ACLs in a region right before the incident: after preflight checked them."""

    def __init__(self, bootstrap: str, rows: list):
        self.bootstrap, self.rows, self.deleted = bootstrap, rows, False

    def before_inject(self, drill) -> None:
        a = kafka.admin(self.bootstrap)
        for f in a.delete_acls(_acl_filter(self.rows), request_timeout=15).values():
            self.deleted = bool(f.result())


def test_a_group_acl_gone_from_the_standby_mid_drill_fails_the_authorization_check(pair, tmp_path):
    """The missing-READ-ACL scenario after preflight: analytics' group READ leaves the standby
    during the drill (preflight would have stopped on it: the test above); the drill runs on,
    and the check after cutover names the denial in the verdict."""
    who = f"User:{security.group_principal('analytics')}"
    row = [("GROUP", security.GROUP_PREFIX, "PREFIXED", who, "READ")]
    revoke = _RevokeBeforeInject(pair.standby.bootstrap, row)
    try:
        out = run_drill(spec(**{"objectives.max_rto_seconds": None}), LocalTarget(pair),
                        tmp_path / "run", revoke)  # fmt: skip
        assert revoke.deleted, "the stack's group ACL was not there to remove"
        # item 4: sync-control-state names the gap, repairs it, and is idempotent
        dry = _sync(pair, tmp_path, "--dry-run")
        line = f"+ acl ALLOW {who} READ GROUP:prefixed:kdrill-  (west)"
        assert line in dry.stdout and "not applied" in dry.stdout + dry.stderr, dry
        applied = _sync(pair, tmp_path)
        assert line in applied.stdout and "applied" in applied.stdout + applied.stderr, applied
        again = _sync(pair, tmp_path)
        assert "nothing to sync" in again.stdout + again.stderr, again
    finally:
        kafka.create_acls(pair.standby.bootstrap, security.bindings(row))
    ev = json.loads((tmp_path / "run" / "evidence.json").read_text())
    assert out.status == "completed" and not ev["verdict"]["passed"]
    checks = {c["objective"]: c for c in ev["verdict"]["checks"]}
    auth = checks["authorized after cutover"]
    assert not auth["met"] and len(auth["findings"]) == 1
    assert auth["findings"][0].startswith(
        "west: kdrill-group-analytics (group:analytics) is denied READ on group kdrill-"
    )
    assert checks["max_parity_breaking"]["met"]  # judged at preflight, before the ACL left
    # billing, whose ACL is there, was authorized
    step = next(x for x in ev["journal"]["steps"] if x["name"].startswith("authorization check"))
    assert {c["role"]: c["ok"] for c in step["output"]["checks"]} == {
        "producer": True, "group:billing": True, "group:analytics": False}  # fmt: skip
