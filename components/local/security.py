"""Authentication and authorization of the local pair's clusters (issue 16 item 1).

Contract, with `kdrill:security.enabled` (the default):

- The CLIENT and REPLICATION listeners speak SASL_PLAINTEXT with SCRAM-SHA-512; the
  INTERNAL (inter-broker) and CONTROLLER listeners stay PLAINTEXT on the region's own
  loopback, reachable only from inside the region's namespace. Their principal is
  ANONYMOUS, which must be a super user for the KRaft quorum's own requests.
- The KRaft StandardAuthorizer with `allow.everyone.if.no.acl.found=false`: a principal
  can do only what an ACL allows it.
- Principals (SCRAM users, created when the storage is formatted, so no user exists that
  the stack did not declare):
      kdrill-admin          super user: kdrill's tools (admin, offsets, probes, tests)
      kdrill-mm2            super user: MirrorMaker 2 (reads the primary, writes the standby,
                            copies topic ACLs)
      kdrill-producer       the workload's producer: WRITE on the stack's topics
      kdrill-group-<name>   one per consumer group of `kdrill:security.groups`: READ on the
                            topics it reads and on the groups kdrill names (`kdrill-` prefix)
- A client quota on the producer principal (producer_byte_rate / consumer_byte_rate), set
  with Kafka's own ConfigCommand (confluent-kafka has no client-quota API).

Credentials are generated once per stack (`generate`) and held as a Pulumi secret in the
stack's drill-time config (components/local/stack.py); the stack's parts receive them as a
secret input and write them to `<state dir>/credentials.json` (mode 0600), which is what
the pair's own clients read. A password never reaches a command line: the JVMs that need
one (the storage format adding SCRAM users, ConfigCommand) get their arguments from a
Java argument file of mode 0600, deleted once the JVM has read it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from components.clientconf import PRODUCER_ROLE, group_role

MECHANISM = "SCRAM-SHA-512"
ADMIN = "kdrill-admin"
MM2 = "kdrill-mm2"
PRODUCER = "kdrill-producer"
GROUP_PREFIX = "kdrill-"  # the group ids kdrill's drills use (`kdrill-<run>-<name>`)
CREDENTIALS_FILE = "credentials.json"


def group_principal(group: str) -> str:
    return f"kdrill-group-{group}"


def principals(groups: Iterable[str]) -> list[str]:
    """Every SCRAM user a stack declares, super users first."""
    return [ADMIN, MM2, PRODUCER, *(group_principal(g) for g in groups)]


def generate(names: Iterable[str]) -> dict[str, str]:
    """A new random password per principal (hex: no character a properties file, a JAAS
    line or a Java argument file would need to quote)."""
    return {n: secrets.token_hex(24) for n in names}


# --- files of mode 0600 --------------------------------------------------------------


def write_private(path: Path, text: str) -> Path:
    """Write `text` to `path` with mode 0600 from the first byte (never readable by others,
    not even between create and chmod)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # A temporary name of its own (mkstemp: 0600, O_EXCL): both regions' Kafka parts write
    # the credentials file at once during `up`, and a shared temporary name raced.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def write_credentials(state_dir: Path, creds: Mapping[str, str]) -> Path:
    """Materialise the stack's credentials where the pair's clients read them; rewritten
    only when they changed."""
    path = state_dir / CREDENTIALS_FILE
    text = json.dumps(dict(sorted(creds.items())), indent=1)
    if path.exists() and path.read_text() == text:
        return path
    return write_private(path, text)


def read_credentials(state_dir: Path) -> dict[str, str] | None:
    try:
        return json.loads((state_dir / CREDENTIALS_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return None


# --- clients ---------------------------------------------------------------------------


def client_settings(user: str, password: str) -> dict[str, str]:
    """librdkafka settings of a client authenticating as `user`."""
    return {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": MECHANISM,
        "sasl.username": user,
        "sasl.password": password,
    }


def jaas(user: str, password: str) -> str:
    return (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{user}" password="{password}";'
    )


def java_client_properties(user: str, password: str) -> str:
    """A Java client's properties (ConfigCommand's --command-config)."""
    return (
        f"security.protocol=SASL_PLAINTEXT\nsasl.mechanism={MECHANISM}\n"
        f"sasl.jaas.config={jaas(user, password)}\n"
    )


def roles(creds: Mapping[str, str], groups: Iterable[str]) -> dict[str, dict[str, str]]:
    """Role -> librdkafka settings: the workload's least-privilege principals."""
    out = {PRODUCER_ROLE: client_settings(PRODUCER, creds[PRODUCER])}
    for g in groups:
        p = group_principal(g)
        if p in creds:
            out[group_role(g)] = client_settings(p, creds[p])
    return out


# --- brokers -------------------------------------------------------------------------


def broker_properties() -> str:
    """server.properties lines turning SASL/SCRAM and the authorizer on (no secret in them:
    a SCRAM server checks against the credentials in the cluster's metadata)."""
    login = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    return f"""\
listener.security.protocol.map=CLIENT:SASL_PLAINTEXT,REPLICATION:SASL_PLAINTEXT,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT
sasl.enabled.mechanisms={MECHANISM}
listener.name.client.scram-sha-512.sasl.jaas.config={login}
listener.name.replication.scram-sha-512.sasl.jaas.config={login}
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
# ANONYMOUS: the PLAINTEXT INTERNAL/CONTROLLER listeners on the region's own loopback.
super.users=User:ANONYMOUS;User:{ADMIN};User:{MM2}
"""


def scram_args(creds: Mapping[str, str]) -> list[str]:
    """StorageTool format arguments adding every principal as a SCRAM user."""
    out: list[str] = []
    for user, password in sorted(creds.items()):
        out += ["--add-scram", f"{MECHANISM}=[name={user},password={password}]"]
    return out


def argfile_argv(argv: list[str], argfile: Path) -> list[str]:
    """`argv` (java first) as `java @argfile`: the rest, which may hold a secret, goes into
    a 0600 file the JVM launcher expands, so no command line shows it."""
    write_private(argfile, "\n".join(_quote(a) for a in argv[1:]) + "\n")
    return [argv[0], f"@{argfile}"]


def _quote(arg: str) -> str:
    if any(c in arg for c in " \t\"'#\\"):
        return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return arg


# --- ACLs ----------------------------------------------------------------------------


def acl_specs(
    topics: Iterable[str],
    groups: Iterable[str],
    read_also: Iterable[str] = (),
    group_acls: bool = True,
) -> list[tuple[str, str, str, str, str]]:
    """The workload's ACLs in one region as (resource type, name, pattern, principal,
    operation), all ALLOW from any host: the producer WRITEs the stack's topics; each
    group's principal READs them (and `read_also`: the remote topics a standby holds) and
    READs the groups kdrill names (`group_acls`: the stack's, granted once at `up`). WRITE
    and READ imply DESCRIBE; WRITE on a topic is what
    an idempotent producer needs (KIP-679)."""
    topics, groups, read_also = list(topics), list(groups), list(read_also)
    out = [("TOPIC", t, "LITERAL", f"User:{PRODUCER}", "WRITE") for t in topics]
    for g in groups:
        who = f"User:{group_principal(g)}"
        out += [("TOPIC", t, "LITERAL", who, "READ") for t in [*topics, *read_also]]
        if group_acls:
            out.append(("GROUP", GROUP_PREFIX, "PREFIXED", who, "READ"))
    return out


def bindings(specs: Iterable[tuple[str, str, str, str, str]]) -> list:
    from confluent_kafka.admin import (
        AclBinding,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    return [
        AclBinding(
            ResourceType[rt],
            name,
            ResourcePatternType[pt],
            who,
            "*",
            AclOperation[op],
            AclPermissionType.ALLOW,
        )  # fmt: skip
        for rt, name, pt, who, op in specs
    ]


def quota_args(
    bootstrap: str, command_config: Path, user: str, producer: int, consumer: int
) -> list[str]:
    """ConfigCommand arguments setting `user`'s byte-rate quotas."""
    return [
        "--bootstrap-server", bootstrap, "--command-config", str(command_config),
        "--alter", "--entity-type", "users", "--entity-name", user,
        "--add-config", f"producer_byte_rate={producer},consumer_byte_rate={consumer}",
    ]  # fmt: skip


def describe_quotas_argv(bootstrap: str, command_config: Path, log4j: Path) -> list[str]:
    """ConfigCommand describing every user's quotas (and SCRAM mechanisms, no secrets)."""
    from components.local import kafka_dist

    args = ["--bootstrap-server", bootstrap, "--command-config", str(command_config),
            "--describe", "--entity-type", "users"]  # fmt: skip
    return kafka_dist.java_argv("kafka.admin.ConfigCommand", kafka_dist.TOOL_HEAP, log4j, args)


def parse_described(text: str) -> dict[str, dict[str, dict[str, str]]]:
    """ConfigCommand's describe output -> {"quotas": {user: {key: value}}, "scram": {user:
    {mechanism: "iterations=N"}}}. Rates come back as doubles ("6.7108864E7"): kept as
    the integer they are when whole."""
    out: dict[str, dict[str, dict[str, str]]] = {"quotas": {}, "scram": {}}
    for line in text.splitlines():
        m = re.match(r"^(Quota|SCRAM credential) configs for user-principal '([^']*)' are (.*)$",
                     line.strip())  # fmt: skip
        if not m:
            continue
        kind = "quotas" if m.group(1) == "Quota" else "scram"
        values: dict[str, str] = {}
        for item in m.group(3).split(", "):
            k, _, v = item.partition("=")
            with contextlib.suppress(ValueError):
                f = float(v)
                v = str(int(f)) if f.is_integer() else v
            values[k.strip()] = v
        out[kind][m.group(2)] = values
    return out
