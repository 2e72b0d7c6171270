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

With `kdrill:security.tls` the CLIENT listener speaks SASL_SSL instead (REPLICATION, the
backbone, stays SASL_PLAINTEXT; MirrorMaker 2 reaches its destination through CLIENT, so it
gets the truststore too). `tls_material` makes, once per pair, under a lock (both regions'
Kafka parts start at once): a CA of the stack, one certificate per region whose IP SANs
are the addresses clients use (the region's client IP), a PKCS12 keystore per region, a
PKCS12 truststore (Java clients: ConfigCommand, MirrorMaker 2) and the CA as PEM
(librdkafka's `ssl.ca.location`), all mode 0600 under `<state dir>/tls/`. The store
password is derived from the stack's Pulumi secret (`store_password`: an HMAC of the
kdrill-admin password), so it exists only where that secret does: server.properties and
MirrorMaker 2's secrets file (both 0600), never argv or a log.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import ipaddress
import json
import os
import re
import secrets
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from components.clientconf import PRODUCER_ROLE, group_role

MECHANISM = "SCRAM-SHA-512"
ADMIN = "kdrill-admin"
MM2 = "kdrill-mm2"
PRODUCER = "kdrill-producer"
GROUP_PREFIX = "kdrill-"  # the group ids kdrill's drills use (`kdrill-<run>-<name>`)
CREDENTIALS_FILE = "credentials.json"
TLS_DIR = "tls"


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


def write_private(path: Path, text: str | bytes) -> Path:
    """Write `text` (or bytes: key stores) to `path` with mode 0600 from the first byte
    (never readable by others, not even between create and chmod)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # A temporary name of its own (mkstemp: 0600, O_EXCL): both regions' Kafka parts write
    # the credentials file at once during `up`, and a shared temporary name raced.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb" if isinstance(text, bytes) else "w") as f:
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


def client_settings(user: str, password: str, ca: Path | None = None) -> dict[str, str]:
    """librdkafka settings of a client authenticating as `user`; with `ca` (the pair's CA
    certificate, TLS on) over SASL_SSL, the brokers' certificates checked against it and
    their IP SANs against the address dialled (librdkafka's default `https` identification)."""
    out = {
        "security.protocol": "SASL_SSL" if ca else "SASL_PLAINTEXT",
        "sasl.mechanism": MECHANISM,
        "sasl.username": user,
        "sasl.password": password,
    }
    if ca:
        out["ssl.ca.location"] = str(ca)
        out["ssl.endpoint.identification.algorithm"] = "https"
    return out


def jaas(user: str, password: str) -> str:
    return (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{user}" password="{password}";'
    )


def java_client_properties(user: str, password: str, tls: TlsFiles | None = None) -> str:
    """A Java client's properties (ConfigCommand's --command-config), reaching the CLIENT
    listener (SASL_SSL with the pair's truststore when `tls`). Holds secrets: write it 0600."""
    text = (
        f"security.protocol={'SASL_SSL' if tls else 'SASL_PLAINTEXT'}\n"
        f"sasl.mechanism={MECHANISM}\nsasl.jaas.config={jaas(user, password)}\n"
    )
    if tls:
        text += (
            f"ssl.truststore.type=PKCS12\nssl.truststore.location={tls.truststore}\n"
            f"ssl.truststore.password={tls.password}\n"
        )
    return text


def roles(
    creds: Mapping[str, str], groups: Iterable[str], ca: Path | None = None
) -> dict[str, dict[str, str]]:
    """Role -> librdkafka settings: the workload's least-privilege principals."""
    out = {PRODUCER_ROLE: client_settings(PRODUCER, creds[PRODUCER], ca)}
    for g in groups:
        p = group_principal(g)
        if p in creds:
            out[group_role(g)] = client_settings(p, creds[p], ca)
    return out


# --- brokers -------------------------------------------------------------------------


def broker_properties(tls: TlsFiles | None = None, region: str = "") -> str:
    """server.properties lines turning SASL/SCRAM and the authorizer on (no secret in them:
    a SCRAM server checks against the credentials in the cluster's metadata); with `tls`,
    SASL_SSL on CLIENT with region `region`'s keystore -- its password is then in the file,
    which must be written 0600."""
    login = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    client = "SASL_SSL" if tls else "SASL_PLAINTEXT"
    ssl = ""
    if tls:
        ssl = (
            "listener.name.client.ssl.keystore.type=PKCS12\n"
            f"listener.name.client.ssl.keystore.location={tls.keystore(region)}\n"
            f"listener.name.client.ssl.keystore.password={tls.password}\n"
            f"listener.name.client.ssl.key.password={tls.password}\n"
            "listener.name.client.ssl.client.auth=none\n"
        )
    return f"""\
listener.security.protocol.map=CLIENT:{client},REPLICATION:SASL_PLAINTEXT,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT
{ssl}sasl.enabled.mechanisms={MECHANISM}
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


# --- TLS on the CLIENT listener (kdrill:security.tls) ----------------------------------


@dataclass(frozen=True)
class TlsFiles:
    """Where a pair's TLS material is (all 0600), and the password of its stores."""

    dir: Path
    password: str

    @property
    def ca(self) -> Path:
        """The CA certificate, PEM: librdkafka's `ssl.ca.location`."""
        return self.dir / "ca.pem"

    @property
    def truststore(self) -> Path:
        """The CA as a PKCS12 truststore: Java clients (ConfigCommand, MirrorMaker 2)."""
        return self.dir / "truststore.p12"

    def keystore(self, region: str) -> Path:
        """Region `region`'s brokers' key and certificate chain, PKCS12."""
        return self.dir / f"{region}.keystore.p12"

    def sans(self) -> Path:
        return self.dir / "sans.json"


def store_password(creds: Mapping[str, str]) -> str:
    """The keystores' and truststore's password: derived from the stack's secret (kdrill-admin's
    password), so it is held wherever the secret is and nowhere else."""
    return hmac.new(creds[ADMIN].encode(), b"kdrill tls stores", hashlib.sha256).hexdigest()


def tls_files(state_dir: Path, creds: Mapping[str, str]) -> TlsFiles:
    return TlsFiles(state_dir / TLS_DIR, store_password(creds))


def tls_material(
    state_dir: Path, creds: Mapping[str, str], stack: str, region_ips: Mapping[str, list[str]]
) -> TlsFiles:
    """Make the pair's CA, a certificate per region (IP SANs: `region_ips[region]`, the
    addresses its clients dial) and the stores, unless they exist for these addresses and
    this password. Under a lock: both regions' Kafka parts call it at once, and must share
    one CA."""
    files = tls_files(state_dir, creds)
    files.dir.mkdir(parents=True, exist_ok=True)
    want = json.dumps({"sans": {r: sorted(v) for r, v in sorted(region_ips.items())},
                       "password": hashlib.sha256(files.password.encode()).hexdigest()})  # fmt: skip
    with open(files.dir / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        have = files.sans().read_text() if files.sans().exists() else None
        ready = [files.ca, files.truststore, *(files.keystore(r) for r in region_ips)]
        if have == want and all(p.exists() for p in ready):
            return files
        _make_tls(files, stack, region_ips)
        write_private(files.sans(), want)
    return files


def _make_tls(files: TlsFiles, stack: str, region_ips: Mapping[str, list[str]]) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import pkcs12
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.now(UTC)
    valid = (now - timedelta(hours=1), now + timedelta(days=365))
    pw = files.password.encode()
    enc = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(20000)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(pw)
    )

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kdrill"),
                          x509.NameAttribute(NameOID.COMMON_NAME, cn)])  # fmt: skip

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name(f"kdrill CA of stack {stack}"))
        .issuer_name(name(f"kdrill CA of stack {stack}"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid[0])
        .not_valid_after(valid[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),  # fmt: skip
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    for region, ips in region_ips.items():
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name(f"kdrill {stack} {region} brokers"))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(valid[0])
            .not_valid_after(valid[1])
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address(ip)) for ip in sorted(set(ips))]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
            )
            .sign(ca_key, hashes.SHA256())
        )
        p12 = pkcs12.serialize_key_and_certificates(b"broker", key, cert, [ca], enc)
        write_private(files.keystore(region), p12)
    trust = pkcs12.serialize_java_truststore([pkcs12.PKCS12Certificate(ca, b"kdrill-ca")], enc)
    write_private(files.truststore, trust)
    write_private(files.ca, ca.public_bytes(serialization.Encoding.PEM))
    # the CA's key is not kept: every certificate the pair needs is made here, at once
