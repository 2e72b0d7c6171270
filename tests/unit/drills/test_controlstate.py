"""Control-state parity: names mapped through the replication policy, every difference
classified, MirrorMaker 2's partial ACL sync shown rather than hidden."""

from types import SimpleNamespace

from drills.controlstate import (
    BREAKS,
    COSMETIC,
    DEGRADES,
    Scope,
    checks,
    needs,
    parity,
    preflight_denial,
)


def acl(name, principal, op, rtype="TOPIC", pattern="LITERAL", perm="ALLOW"):
    return {"resource_type": rtype, "name": name, "pattern": pattern, "principal": principal,
            "host": "*", "operation": op, "permission": perm}  # fmt: skip


def remote(t):
    return f"east.{t}"


def inv(topics=None, acls=(), users=(), groups=(), configs=None, quotas=None):
    out = {"topics": topics or {}, "configs": configs or {}, "acls": list(acls),
           "users": list(users), "groups": list(groups)}  # fmt: skip
    if quotas is not None:
        out["quotas"] = quotas
    return out


def by_subject(d):
    return {x["subject"]: x for x in d["differences"]}


def test_mirrormaker2_acl_sync_shows_up_as_differences():
    """What MM2's sync.topic.acls leaves in the standby, from a primary granting WRITE, ALL
    and a group READ: only READ on the replicated name. Each gap is named and classified."""
    prim = inv({"orders": 3}, [
        acl("orders", "User:p", "WRITE"),
        acl("orders", "User:c", "ALL"),
        acl("kdrill-", "User:c", "READ", rtype="GROUP", pattern="PREFIXED"),
    ])  # fmt: skip
    stby = inv({"east.orders": 3, "orders": 3}, [acl("east.orders", "User:c", "READ")])
    d = parity(prim, stby, remote)
    s = by_subject(d)
    assert s["ALLOW User:p WRITE TOPIC:literal:orders"]["severity"] == BREAKS  # WRITE skipped
    assert s["ALLOW User:c ALL TOPIC:literal:east.orders"]["severity"] == BREAKS  # ALL -> READ
    assert s["ALLOW User:c ALL TOPIC:literal:orders"]["severity"] == BREAKS
    assert s["ALLOW User:c READ GROUP:prefixed:kdrill-"]["severity"] == BREAKS  # not copied
    extra = s["ALLOW User:c READ TOPIC:literal:east.orders"]
    assert extra["severity"] == COSMETIC and extra["primary"] is None
    assert d["counts"] == {BREAKS: 4, DEGRADES: 0, COSMETIC: 1}


def test_acls_present_under_the_names_clients_use_after_failover_are_no_difference():
    prim = inv({"orders": 3}, [acl("orders", "User:p", "WRITE"), acl("orders", "User:c", "READ")])
    stby = inv({"east.orders": 3, "orders": 3}, [
        acl("orders", "User:p", "WRITE"), acl("orders", "User:c", "READ"),
        acl("east.orders", "User:c", "READ"),
    ])  # fmt: skip
    assert parity(prim, stby, remote)["differences"] == []


def test_users_quotas_groups_and_configs_are_classified():
    prim = inv({"orders": 3, "audit": 1}, users=["kdrill-admin", "kdrill-producer"],
               groups=["g1"], quotas={"kdrill-producer": {"producer_byte_rate": "1024"}},
               configs={"orders": {"max.message.bytes": "2000000", "retention.ms": "1",
                                   "compression.type": "lz4"}})  # fmt: skip
    stby = inv({"east.orders": 2}, users=["kdrill-admin", "other"], quotas={},
               configs={"east.orders": {"max.message.bytes": "1000000", "retention.ms": "2",
                                        "compression.type": "zstd"}})  # fmt: skip
    d = parity(prim, stby, remote)
    s = {x["subject"]: x for x in d["differences"] if x["kind"] != "quota"}
    assert s["audit"]["kind"] == "topic" and s["audit"]["severity"] == BREAKS
    assert s["orders"]["kind"] == "partitions" and s["orders"]["severity"] == DEGRADES
    assert s["orders max.message.bytes"]["severity"] == BREAKS
    assert s["orders retention.ms"]["severity"] == DEGRADES
    assert s["orders compression.type"]["severity"] == COSMETIC
    assert s["kdrill-producer"]["kind"] == "user" and s["kdrill-producer"]["severity"] == BREAKS
    assert s["other"]["severity"] == COSMETIC
    assert s["g1"]["severity"] == DEGRADES
    quota = [x for x in d["differences"] if x["kind"] == "quota"]
    assert [(q["subject"], q["severity"]) for q in quota] == [("kdrill-producer", DEGRADES)]


def test_breaking_differences_outside_the_workload_only_degrade():
    prim = inv({"orders": 3, "someone-elses": 1}, [acl("someone-elses", "User:x", "READ")])
    stby = inv({"east.orders": 3})
    d = parity(prim, stby, remote, Scope(frozenset({"orders"}), frozenset({"User:p"})))
    assert {x["severity"] for x in d["differences"]} == {DEGRADES}
    assert d["topics_missing_in_standby"] == ["someone-elses"]


def test_an_unreadable_section_is_named_not_counted_as_equal():
    prim = {**inv({"orders": 1}), "unavailable": {"acls": "SECURITY_DISABLED"}}
    d = parity(prim, inv({"east.orders": 1}, [acl("x", "User:y", "READ")]), remote)
    assert d["unavailable"] == {"primary.acls": "SECURITY_DISABLED"}
    assert [x for x in d["differences"] if x["kind"] == "acl"] == []


def test_checks_judge_breaking_differences_and_denials_after_cutover():
    obj = SimpleNamespace(max_parity_breaking=0)
    control = {"parity": {"differences": [{"subject": "audit", "severity": BREAKS},
                                          {"subject": "g", "severity": DEGRADES}]},
               "authorization": [{"ok": False, "finding": "west: u denied READ on group g"},
                                 {"ok": True, "finding": ""}]}  # fmt: skip
    lines = {c["objective"]: c for c in checks(obj, control)}
    assert lines["max_parity_breaking"]["value"] == 1 and not lines["max_parity_breaking"]["met"]
    assert lines["max_parity_breaking"]["findings"] == ["audit"]
    auth = lines["authorized after cutover"]
    assert not auth["met"] and auth["findings"] == ["west: u denied READ on group g"]
    assert checks(SimpleNamespace(max_parity_breaking=2), {"parity": control["parity"]})[0]["met"]
    assert checks(obj, None) == []


def test_needs_in_the_standby_cover_replicas_and_the_topics_written_after_cutover():
    got = needs(["orders"], {"billing": ("kdrill-r1-billing", ["orders"])}, remote, standby=True)
    assert [(n.role, n.topics, n.group) for n in got] == [
        ("producer", {"orders": "WRITE"}, None),
        ("group:billing", {"east.orders": "READ", "orders": "READ"}, "kdrill-r1-billing"),
    ]


def test_a_workload_principals_acl_on_another_drills_topic_only_degrades():
    """A shared pair keeps earlier drills' topics (e.g. a failback's `west.orders` in east)
    with ACLs for the same workload principals: missing in the standby, they break those
    drills, not this one; its own topic's and its groups' ACLs still break."""
    prim = inv({"orders": 3, "west.old": 3}, [
        acl("west.old", "User:c", "READ"),
        acl("orders", "User:c", "READ"),
        acl("kdrill-", "User:c", "READ", rtype="GROUP", pattern="PREFIXED"),
    ])  # fmt: skip
    stby = inv({"east.orders": 3, "orders": 3, "east.west.old": 3})
    scope = Scope(topics=frozenset({"orders"}), principals=frozenset({"User:c"}))
    s = by_subject(parity(prim, stby, remote, scope))
    assert s["ALLOW User:c READ TOPIC:literal:east.west.old"]["severity"] == DEGRADES
    assert s["ALLOW User:c READ TOPIC:literal:east.orders"]["severity"] == BREAKS
    assert s["ALLOW User:c READ GROUP:prefixed:kdrill-"]["severity"] == BREAKS


def _found(region, role, ok, line=""):
    return {"region": region, "role": role, "principal": "u", "ok": ok, "finding": line}


def test_preflight_stops_on_a_standby_denial_of_a_principal_the_cutover_moves():
    """The gap that reached cutover: the standby's topic lacks the producer's WRITE (under the
    identity policy MirrorMaker 2 creates it and never copies ALLOW WRITE)."""
    prim = [_found("east", "producer", True), _found("east", "group:billing", True)]
    deny = "west: kdrill-producer (producer) is denied WRITE on topic orders: add an ALLOW WRITE ACL for it"
    stby = [_found("west", "producer", False, deny), _found("west", "group:billing", True)]
    line = preflight_denial(prim, stby, {"producer", "group:billing"}, "east", "west")
    assert line is not None and line.startswith(deny) and "\n" not in line
    assert "`kdrill sync-control-state --from east --to west`" in line
    assert "denied after cutover" in line
    # a principal that stays (or a drill that does not fail over): not a preflight stop
    assert preflight_denial(prim, stby, {"group:billing"}, "east", "west") is None
    assert preflight_denial(prim, stby, set(), "east", "west") is None
    # the primary's denial comes first, as it is
    bad = [_found("east", "producer", False, "east: x")]
    assert preflight_denial(bad, stby, {"producer"}, "east", "west") == "east: x"
    # a missing topic is replication's, not an ACL: no sync hint
    gone = [
        _found(
            "west", "producer", False, "west: u (producer) cannot WRITE t: the topic does not exist"
        )
    ]
    assert "sync-control-state" not in preflight_denial(prim, gone, {"producer"}, "east", "west")
