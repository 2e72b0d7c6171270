"""Control state: what each region holds besides data, how the standby differs, and whether
the workload's principals are authorized where they will run (issue 16 item 2).

Inventory (per region, `inventory`): topics (partitions, TOPIC_CONFIGS), ACLs (resource
type, name, pattern type, principal, host, operation, permission), SCRAM users (names
only), client quotas (when the target can read them), consumer groups.

Parity (`parity`): every difference a failover would expose, names mapped through the
replication policy, each classified:

    breaks     clients fail after failover (a topic, a user, an ALLOW they rely on missing;
               a smaller max.message.bytes, a larger min.insync.replicas)
    degrades   they run, differently (partitions, retention, cleanup, quotas, groups, a
               DENY missing, anything outside this drill's workload)
    cosmetic   nothing a client notices (an extra ACL or user, compression)

ACL names map by what a client does after failover: a topic ACL's principal READs the
replicated topic (`east.orders`) and the topic written after cutover (`orders`), and WRITEs
the latter; group ACLs keep their names. So MirrorMaker 2's partial ACL sync shows up:
it skips ALLOW WRITE (WRITE missing: breaks), turns ALL into READ on the replicated name
(ALL missing: breaks; the READ it added: cosmetic) and copies no group ACL (breaks).

Authorization (`authorize`): a principal's effective rights as the brokers state them
(Metadata / DescribeGroups with authorized operations: nothing is written), checked at
preflight in both regions and after cutover in the standby. A preflight stops
(`preflight_denial`) on a denial in the primary and on one in the standby for a principal
the cutover moves there, under the names it will use there (the standby's needs: READ on
the replicas and on the topics written after cutover, WRITE on the latter -- under the
identity policy the replica itself, which MirrorMaker 2 creates without ALLOW WRITE).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicCollection
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ConfigResource,
    ResourcePatternType,
    ResourceType,
)

from components.clientconf import client_config, has_role, settings_for
from components.local import kafka
from components.wait import WaitTimeout, wait_until

BREAKS, DEGRADES, COSMETIC = "breaks", "degrades", "cosmetic"
SEVERITIES = (BREAKS, DEGRADES, COSMETIC)
TOPIC_CONFIGS = ("retention.ms", "cleanup.policy", "min.insync.replicas", "max.message.bytes",
                 "compression.type")  # fmt: skip
INTERNAL = ("__", "mm2-")


def _internal(topic: str) -> bool:
    return topic.startswith(INTERNAL) or topic.endswith(".internal") or topic == "heartbeats" \
        or topic.endswith(".heartbeats")  # fmt: skip


# --- inventory -----------------------------------------------------------------------


def acl_row(b: Any) -> dict[str, str]:
    """A confluent-kafka AclBinding as a plain row."""
    return {"resource_type": b.restype.name, "name": b.name, "pattern": b.resource_pattern_type.name,
            "principal": b.principal, "host": b.host, "operation": b.operation.name,
            "permission": b.permission_type.name}  # fmt: skip


def inventory(bootstrap: str, timeout: float = 5, logger: Any = None) -> dict[str, Any]:
    """What one cluster holds, read as the cluster's default (admin) principal:
    {"topics": {name: partitions}, "configs": {name: {key: value}}, "acls": [rows],
     "users": [names], "groups": [ids], "unavailable": {section: why}}.
    A section the cluster will not show (no authorizer, no SCRAM) is named in `unavailable`,
    never reported as empty."""
    kw = {"logger": logger} if logger is not None else {}
    a = AdminClient(client_config(bootstrap, {"socket.connection.setup.timeout.ms": 3000}), **kw)
    md = a.list_topics(timeout=timeout)
    topics = {n: len(t.partitions) for n, t in sorted(md.topics.items()) if not _internal(n)}
    configs = kafka.topic_configs(a, topics, TOPIC_CONFIGS, timeout)
    unavailable: dict[str, str] = {}
    acls: list[dict[str, str]] = []
    try:
        flt = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                               AclOperation.ANY, AclPermissionType.ANY)  # fmt: skip
        acls = sorted((acl_row(b) for b in a.describe_acls(flt, request_timeout=timeout).result()),
                      key=lambda r: tuple(r.values()))  # fmt: skip
    except KafkaException as e:
        unavailable["acls"] = _why(e)
    users: list[str] = []
    try:
        users = sorted(a.describe_user_scram_credentials(request_timeout=timeout).result())
    except KafkaException as e:
        unavailable["users"] = _why(e)
    groups = sorted(
        g.group_id for g in a.list_consumer_groups(request_timeout=timeout).result().valid
    )
    return {"topics": topics, "configs": dict(sorted(configs.items())), "acls": acls,
            "users": users, "groups": groups, "unavailable": unavailable}  # fmt: skip


def _why(e: BaseException) -> str:
    err = e.args[0] if e.args and isinstance(e.args[0], KafkaError) else None
    return (err.str() if err else str(e)).splitlines()[0][:160] or type(e).__name__


# --- parity --------------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    kind: str  # topic | partitions | config | acl | user | quota | group
    subject: str  # what differs, in the primary's names
    primary: Any
    standby: Any
    severity: str  # breaks | degrades | cosmetic
    why: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Scope:
    """The drill's workload: topics (primary names), its principals and group ids. A
    difference outside it can break other clients, not this drill's: it degrades."""

    topics: frozenset[str] = frozenset()
    principals: frozenset[str] = frozenset()
    everything: bool = False  # judge every difference as if it were the workload's

    def covers_topic(self, name: str) -> bool:
        return self.everything or name in self.topics

    def covers_principal(self, principal: str) -> bool:
        return self.everything or principal in self.principals


def _acl_key(r: Mapping[str, str]) -> tuple:
    return (r["resource_type"], r["name"], r["pattern"], r["principal"], r["host"],
            r["operation"], r["permission"])  # fmt: skip


def _acl_text(r: Mapping[str, str]) -> str:
    return (f"{r['permission']} {r['principal']} {r['operation']} {r['resource_type']}:"
            f"{r['pattern'].lower()}:{r['name']}")  # fmt: skip


def _standby_names(r: Mapping[str, str], remote: Callable[[str], str]) -> list[str]:
    """The standby resource names a primary ACL must cover after failover."""
    if r["resource_type"] != "TOPIC" or r["pattern"] != "LITERAL":
        return [r["name"]]
    name, rem = r["name"], remote(r["name"])
    if r["operation"] == "WRITE":
        return [name]  # producers write the local name after cutover
    return list(dict.fromkeys([rem, name]))  # consumers read the replica, then the new topic


def _config_severity(key: str, a: str | None, b: str | None) -> tuple[str, str]:
    def num(v: str | None) -> float | None:
        try:
            return float(v) if v is not None else None
        except ValueError:
            return None

    x, y = num(a), num(b)
    if key == "max.message.bytes" and x is not None and y is not None and y < x:
        return BREAKS, "records the primary accepts are too large for the standby"
    if key == "min.insync.replicas" and x is not None and y is not None and y > x:
        return BREAKS, "acks=all writes need more in-sync replicas in the standby"
    if key == "compression.type":
        return COSMETIC, "clients are unaffected"
    return DEGRADES, "the standby keeps or compacts data differently"


def parity(
    prim: Mapping[str, Any],
    stby: Mapping[str, Any],
    remote: Callable[[str], str],
    scope: Scope = Scope(everything=True),
) -> dict[str, Any]:
    """Every control-state difference between the regions, classified (module docstring).
    Returns {"differences": [...], "counts": {severity: n}, "unavailable": {...}} and the
    summaries the report reads (topics_missing_in_standby, partition_mismatch,
    config_mismatch, groups_missing_in_standby)."""
    diffs: list[Difference] = []

    def add(kind: str, subject: str, a: Any, b: Any, sev: str, why: str, in_scope: bool) -> None:
        if sev == BREAKS and not in_scope:
            sev, why = DEGRADES, f"{why} (outside this drill's workload)"
        diffs.append(Difference(kind, subject, a, b, sev, why))

    missing, partitions, configs = [], {}, {}
    for topic, n in prim.get("topics", {}).items():
        if _internal(topic) or topic == "kdrill-probe":
            continue
        r = remote(topic)
        covered = scope.covers_topic(topic)
        if r not in stby.get("topics", {}):
            missing.append(topic)
            add("topic", topic, n, None, BREAKS, f"{r} does not exist in the standby", covered)
            continue
        if stby["topics"][r] != n:
            partitions[topic] = {"primary": n, "standby": stby["topics"][r]}
            add("partitions", topic, n, stby["topics"][r], DEGRADES,
                "keys map to other partitions", covered)  # fmt: skip
        a, b = prim.get("configs", {}).get(topic, {}), stby.get("configs", {}).get(r, {})
        diff = {k: {"primary": a.get(k), "standby": b.get(k)} for k in sorted(set(a) | set(b))
                if a.get(k) != b.get(k)}  # fmt: skip
        if diff:
            configs[topic] = diff
            for k, v in diff.items():
                sev, why = _config_severity(k, v["primary"], v["standby"])
                add("config", f"{topic} {k}", v["primary"], v["standby"], sev, why, covered)
    unavailable = {f"{side}.{k}": v for side, inv in (("primary", prim), ("standby", stby))
                   for k, v in (inv.get("unavailable") or {}).items()}  # fmt: skip
    if "acls" in prim and "primary.acls" not in unavailable and "standby.acls" not in unavailable:
        have = {_acl_key(x) for x in stby.get("acls", [])}
        expected: set[tuple] = set()
        for x in prim.get("acls", []):
            for name in _standby_names(x, remote):
                want = {**x, "name": name}
                expected.add(_acl_key(want))
                if _acl_key(want) in have:
                    continue
                allow = x["permission"] == "ALLOW"
                sev = BREAKS if allow and x["operation"] in ("READ", "WRITE", "ALL") else DEGRADES
                why = ("its principal is denied after failover" if sev == BREAKS else
                       "the standby is more permissive" if not allow else "a narrower right")  # fmt: skip
                # A topic ACL matters to this drill only on its topics (a workload principal's
                # right on another drill's topic breaks that drill, not this one); other
                # resources (its groups, the cluster) by principal.
                if x["resource_type"] == "TOPIC" and x["pattern"] == "LITERAL":
                    in_scope = scope.covers_topic(x["name"])
                else:
                    in_scope = scope.covers_principal(x["principal"])
                add("acl", _acl_text(want), _acl_text(x), None, sev, why, in_scope)
        for x in stby.get("acls", []):
            if _acl_key(x) not in expected:
                add("acl", _acl_text(x), None, _acl_text(x), COSMETIC,
                    "only in the standby (MirrorMaker 2 copies, or granted there)", False)  # fmt: skip
    if (
        "users" in prim
        and "primary.users" not in unavailable
        and "standby.users" not in unavailable
    ):
        su = set(stby.get("users", []))
        for u in prim.get("users", []):
            if u not in su:
                add("user", u, "present", None, BREAKS, "cannot authenticate in the standby "
                    "(SCRAM credentials are not replicated)", scope.covers_principal(f"User:{u}"))  # fmt: skip
        for u in sorted(su - set(prim.get("users", []))):
            add("user", u, None, "present", COSMETIC, "only in the standby", False)
    pq, sq = prim.get("quotas"), stby.get("quotas")
    if isinstance(pq, dict) and isinstance(sq, dict):
        for who in sorted(set(pq) | set(sq)):
            if pq.get(who) != sq.get(who):
                add("quota", who, pq.get(who), sq.get(who), DEGRADES,
                    "clients are throttled differently (quotas are not replicated)", False)  # fmt: skip
    groups = sorted(set(prim.get("groups", [])) - set(stby.get("groups", [])))
    for g in groups:
        add("group", g, "present", None, DEGRADES,
            "no synced offsets: resumes by auto.offset.reset", False)  # fmt: skip
    counts = {s: sum(d.severity == s for d in diffs) for s in SEVERITIES}
    regions = {side: {k: (len(inv[k]) if isinstance(inv.get(k), (list, dict)) else None)
                      for k in ("topics", "acls", "users", "quotas", "groups")}
               for side, inv in (("primary", prim), ("standby", stby))}  # fmt: skip
    return {"regions": regions,"topics_missing_in_standby": missing, "partition_mismatch": partitions,
            "config_mismatch": configs, "groups_missing_in_standby": groups,
            "differences": [d.to_dict() for d in diffs], "counts": counts,
            "unavailable": unavailable}  # fmt: skip


def checks(obj: Any, control: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The verdict's control-state lines: breaking parity differences (at most
    `objectives.max_parity_breaking`), and every authorization check after cutover passed."""
    if not control:
        return []
    out = []
    bound = getattr(obj, "max_parity_breaking", 0)
    if bound is not None and control.get("parity") is not None:
        breaking = [d["subject"] for d in control["parity"]["differences"]
                    if d["severity"] == BREAKS]  # fmt: skip
        out.append({"objective": "max_parity_breaking", "value": len(breaking), "bound": bound,
                    "met": len(breaking) <= bound, "findings": breaking[:20]})  # fmt: skip
    if control.get("authorization") is not None:
        denied = [f for f in control["authorization"] if not f["ok"]]
        out.append({"objective": "authorized after cutover", "value": len(denied), "bound": 0,
                    "met": not denied, "findings": [f["finding"] for f in denied][:20]})  # fmt: skip
    return out


# --- authorization -------------------------------------------------------------------


@dataclass
class Need:
    """What one principal (a client role) must be allowed in one region."""

    role: str  # components/clientconf role: producer | group:<name>
    topics: dict[str, str] = field(default_factory=dict)  # topic -> READ | WRITE
    group: str | None = None  # a group id it must READ


def authorize(bootstrap: str, region: str, need: Need, timeout: float = 5,
              logger: Any = None) -> dict[str, Any]:  # fmt: skip
    """Ask the brokers what `need.role`'s principal may do (nothing is written):
    {"region", "role", "principal", "ok", "finding": one line naming what to fix}."""
    if not settings_for(bootstrap):  # an open cluster: no principal to check
        return {"region": region, "role": need.role, "principal": None, "ok": True,
                "finding": "not checked: the cluster registered no credentials"}  # fmt: skip
    if not has_role(bootstrap, need.role):
        return {"region": region, "role": need.role, "principal": None, "ok": False,
                "finding": f"{region}: no principal for {need.role} in the target's credentials; "
                           f"declare it (local stack: kdrill:security.groups) and bring the pair "
                           f"up again"}  # fmt: skip
    conf = client_config(
        bootstrap, {"socket.connection.setup.timeout.ms": 3000}, principal=need.role
    )
    who = str(conf.get("sasl.username", "(no authentication)"))
    errors: list[KafkaError] = []
    kw = {"logger": logger} if logger is not None else {}
    a = AdminClient({**conf, "error_cb": errors.append}, **kw)
    out = {"region": region, "role": need.role, "principal": who, "ok": True, "finding": ""}

    def fail(line: str) -> dict[str, Any]:
        out.update(ok=False, finding=f"{region}: {who} ({need.role}) {line}")
        return out

    try:
        a.list_topics(timeout=timeout)
    except KafkaException:
        a.poll(0.5)  # error callbacks are served by poll
        auth = [e for e in errors if e.code() == KafkaError._AUTHENTICATION]
        if auth:
            return fail(f"cannot authenticate ({auth[0].str()[:120]}); "
                        "fix its password or create the SCRAM user there")  # fmt: skip
        return fail("could not reach the cluster to check its rights")
    if need.topics:
        fs = a.describe_topics(TopicCollection(sorted(need.topics)), request_timeout=timeout,
                               include_authorized_operations=True)  # fmt: skip
        for topic, f in fs.items():
            op = need.topics[topic]
            try:
                ops = {o.name for o in (f.result().authorized_operations or [])}
            except KafkaException as e:
                code = e.args[0].code() if e.args else None
                if code == KafkaError.UNKNOWN_TOPIC_OR_PART:
                    return fail(f"cannot {op} {topic}: the topic does not exist")
                return fail(f"is denied {op} on topic {topic}: add an ALLOW {op} ACL for it")
            if op not in ops and "ALL" not in ops:
                return fail(f"is denied {op} on topic {topic}: add an ALLOW {op} ACL for it")
    if need.group:
        ops, err = _group_ops(a, need.group, timeout)
        if ops is None:
            return fail(f"could not be checked on group {need.group}: {err}")
        if "READ" not in ops and "ALL" not in ops:
            return fail(f"is denied READ on group {need.group}: add an ALLOW READ group ACL")
    return out


def preflight_denial(
    primary: Iterable[Mapping[str, Any]],
    standby: Iterable[Mapping[str, Any]],
    moving: Iterable[str],
    primary_name: str,
    standby_name: str,
) -> str | None:
    """The line a preflight stops on, or None: the first principal denied in the primary, else
    the first denied in the standby among the roles the cutover moves there (`moving`). A
    standby denial names the fix that copies the primary's grants too. `primary`/`standby`:
    `authorize` results."""
    for f in primary:
        if not f["ok"]:
            return str(f["finding"])
    wanted = set(moving)
    for f in standby:
        if not f["ok"] and f["role"] in wanted:
            line = str(f["finding"])
            if " is denied " in line:
                line += (f" (or copy the primary's: `kdrill sync-control-state --from "
                         f"{primary_name} --to {standby_name}`)")  # fmt: skip
            return f"{line}; the drill would be denied after cutover"
    return None


def _group_ops(a: AdminClient, group: str, timeout: float) -> tuple[set[str] | None, str]:
    """The operations the client's principal may do on `group` (empty: denied), or None and
    why when the brokers would not say. A cluster's first group request waits for the offsets
    topic to be created: transient answers are asked again, for up to 6 x `timeout`."""
    why = ""

    def answered() -> tuple[set[str]] | None:
        nonlocal why
        f = a.describe_consumer_groups([group], request_timeout=2 * timeout,
                                       include_authorized_operations=True)[group]  # fmt: skip
        try:
            return ({o.name for o in (f.result().authorized_operations or [])},)
        except KafkaException as e:
            err = e.args[0] if e.args and isinstance(e.args[0], KafkaError) else None
            if err is not None and err.code() == KafkaError.GROUP_AUTHORIZATION_FAILED:
                return (set(),)
            why = f"{err.name() if err else type(e).__name__}: {_why(e)}"
            return None

    try:
        return wait_until(answered, 6 * timeout, f"group {group}'s rights", interval=0.5)[0], ""
    except WaitTimeout:
        return None, why


def needs(
    topics: Iterable[str], groups: Mapping[str, tuple[str, list[str]]], remote: Callable[[str], str],
    standby: bool,
) -> list[Need]:  # fmt: skip
    """The workload's needs in one region: the producer WRITEs its topics; each group (name ->
    (group id, its topics)) READs them (in the standby: the replicas and the topics written
    after cutover) and its group."""
    from components.clientconf import PRODUCER_ROLE, group_role

    topics = list(topics)
    out = [Need(PRODUCER_ROLE, {t: "WRITE" for t in topics})]
    for name, (gid, gtopics) in groups.items():
        reads = {n: "READ" for t in gtopics for n in ([remote(t), t] if standby else [t])}
        out.append(Need(group_role(name), reads, gid))
    return out


# --- making parity right (kdrill sync-control-state) -------------------------------------


@dataclass(frozen=True)
class Action:
    """One change `sync` applies to the destination region."""

    kind: str  # acl | user | quota | config
    text: str  # the line printed (no secret in it)
    data: dict[str, Any]


def sync_plan(
    src: Mapping[str, Any], dst: Mapping[str, Any], remote: Callable[[str], str]
) -> list[Action]:
    """What the destination lacks of the source's control state, as actions: ACLs under the
    names clients use after failover, SCRAM users (created with new secrets), client quotas,
    topic configs (topics themselves are replication's to create). Empty when in parity, so
    applying a plan twice changes nothing the second time."""
    out: list[Action] = []
    have = {_acl_key(x) for x in dst.get("acls", [])}
    for x in src.get("acls", []):
        for name in _standby_names(x, remote):
            want = {**x, "name": name}
            if _acl_key(want) not in have:
                have.add(_acl_key(want))
                out.append(Action("acl", f"+ acl {_acl_text(want)}", want))
    for u in src.get("users", []):
        if u not in set(dst.get("users", [])):
            out.append(Action("user", f"+ user {u} (SCRAM-SHA-512, a new secret)", {"user": u}))
    sq, dq = src.get("quotas"), dst.get("quotas")
    if isinstance(sq, dict) and isinstance(dq, dict):
        for who, q in sorted(sq.items()):
            if dq.get(who) != q:
                out.append(
                    Action(
                        "quota", f"~ quota {who}: {dq.get(who)} -> {q}", {"user": who, "quota": q}
                    )
                )
    for topic, conf in src.get("configs", {}).items():
        r = remote(topic)
        theirs = dst.get("configs", {}).get(r)
        if theirs is None or _internal(topic):
            continue
        for k, v in sorted(conf.items()):
            if theirs.get(k) != v and v is not None:
                out.append(Action("config", f"~ config {r} {k}: {theirs.get(k)} -> {v}",
                                  {"topic": r, "key": k, "value": v}))  # fmt: skip
    return out


def apply_sync(bootstrap: str, actions: list[Action], set_quota: Callable[[str, dict], None] | None,
               new_secret: Callable[[str], str]) -> list[str]:  # fmt: skip
    """Apply `actions` in the cluster at `bootstrap` (as its default, admin principal);
    `new_secret(user)` makes and keeps a new user's password, `set_quota(user, quota)` sets a
    quota (None: the target cannot). Returns what was not applied, one line each."""
    from confluent_kafka.admin import (
        AlterConfigOpType,
        ConfigEntry,
        ScramCredentialInfo,
        ScramMechanism,
        UserScramCredentialUpsertion,
    )

    a = AdminClient(client_config(bootstrap))
    skipped: list[str] = []
    acls = [x.data for x in actions if x.kind == "acl"]
    if acls:
        made = [AclBinding(ResourceType[r["resource_type"]], r["name"],
                           ResourcePatternType[r["pattern"]], r["principal"], r["host"],
                           AclOperation[r["operation"]], AclPermissionType[r["permission"]])
                for r in acls]  # fmt: skip
        for f in a.create_acls(made, request_timeout=15).values():
            f.result()
    users = [x.data["user"] for x in actions if x.kind == "user"]
    if users:
        ups = [UserScramCredentialUpsertion(u, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096),
                                           new_secret(u).encode()) for u in users]  # fmt: skip
        for f in a.alter_user_scram_credentials(ups, request_timeout=15).values():
            f.result()
    for x in actions:
        if x.kind == "quota":
            if set_quota is None:
                skipped.append(f"{x.text}: this target cannot set quotas")
            else:
                set_quota(x.data["user"], x.data["quota"])
    by_topic: dict[str, list] = {}
    for x in actions:
        if x.kind == "config":
            by_topic.setdefault(x.data["topic"], []).append(
                ConfigEntry(x.data["key"], x.data["value"],
                            incremental_operation=AlterConfigOpType.SET))  # fmt: skip
    if by_topic:
        res = [ConfigResource("TOPIC", t, incremental_configs=e) for t, e in by_topic.items()]
        for f in a.incremental_alter_configs(res, request_timeout=15).values():
            f.result()
    return skipped
