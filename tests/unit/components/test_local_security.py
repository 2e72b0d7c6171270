"""The local pair's security pieces that need no broker: roles in the client registry,
argument files that keep passwords off command lines, ACLs, MM2's properties, quotas."""

import os
import stat

from components import clientconf
from components.local import config, mirrormaker, security


def test_roles_give_their_principal_and_unknown_roles_fall_back_to_the_default():
    admin = security.client_settings(security.ADMIN, "a")
    roles = {"producer": security.client_settings(security.PRODUCER, "p")}
    clientconf.register("10.9.0.1:9092", admin, roles)
    try:
        assert clientconf.client_config("10.9.0.1:9092", principal="producer")["sasl.username"] \
            == security.PRODUCER  # fmt: skip
        assert clientconf.client_config("10.9.0.1:9092")["sasl.username"] == security.ADMIN
        assert clientconf.client_config("10.9.0.1:9092", principal="group:x")["sasl.username"] \
            == security.ADMIN  # fmt: skip
        assert clientconf.has_role("10.9.0.1:9092", "producer")
        assert not clientconf.has_role("10.9.0.1:9092", "group:x")
    finally:
        clientconf.register("10.9.0.1:9092", {})
    assert clientconf.has_role("10.9.0.1:9092", "group:x")  # an open cluster misses nothing
    assert "sasl.username" not in clientconf.client_config("10.9.0.1:9092", principal="producer")


def test_argfile_keeps_the_password_off_the_command_line(tmp_path):
    creds = security.generate(["kdrill-admin", "kdrill-producer"])
    argv = ["/usr/bin/java", "-cp", "/libs/*", "kafka.tools.StorageTool", "format",
            *security.scram_args(creds)]  # fmt: skip
    out = security.argfile_argv(argv, tmp_path / "format.args")
    assert out == ["/usr/bin/java", f"@{tmp_path / 'format.args'}"]
    assert not any(pw in " ".join(out) for pw in creds.values())
    text = (tmp_path / "format.args").read_text()
    assert all(f"SCRAM-SHA-512=[name={u},password={pw}]" in text for u, pw in creds.items())
    assert stat.S_IMODE(os.stat(tmp_path / "format.args").st_mode) == 0o600


def test_workload_acls_are_least_privilege():
    specs = security.acl_specs(["orders"], ["billing"], read_also=["east.orders"])
    assert specs == [
        ("TOPIC", "orders", "LITERAL", "User:kdrill-producer", "WRITE"),
        ("TOPIC", "orders", "LITERAL", "User:kdrill-group-billing", "READ"),
        ("TOPIC", "east.orders", "LITERAL", "User:kdrill-group-billing", "READ"),
        ("GROUP", "kdrill-", "PREFIXED", "User:kdrill-group-billing", "READ"),
    ]
    assert len(security.bindings(specs)) == 4


def test_mm2_reads_its_password_through_a_config_provider(tmp_path):
    cfg = config.load("local")
    secrets = tmp_path / "mm2-secrets.properties"
    props = mirrormaker.properties(cfg, "a:1", "b:2", "prefixed", secrets)
    assert f"east.sasl.jaas.config = ${{file:{secrets}:jaas}}" in props
    assert "west.security.protocol = SASL_PLAINTEXT" in props
    assert "sync.topic.acls.enabled = true" in props and "password=" not in props
    assert 'password="pw"' in mirrormaker.secrets_file({security.MM2: "pw"})
    plain = mirrormaker.properties(cfg, "a:1", "b:2", "prefixed")
    assert "sync.topic.acls.enabled = false" in plain and "SASL" not in plain


def test_configcommand_describe_output_is_parsed():
    text = ("Quota configs for user-principal 'kdrill-producer' are consumer_byte_rate=6.7108864E7,"
            " producer_byte_rate=1024.0\n"
            "SCRAM credential configs for user-principal 'kdrill-admin' are SCRAM-SHA-512=iterations=4096\n")  # fmt: skip
    got = security.parse_described(text)
    assert got["quotas"] == {"kdrill-producer": {"consumer_byte_rate": "67108864",
                                                 "producer_byte_rate": "1024"}}  # fmt: skip
    assert got["scram"] == {"kdrill-admin": {"SCRAM-SHA-512": "iterations=4096"}}


def test_security_section_is_validated_with_one_line():
    raw = {"kdrill:regions": [{"name": "east", "role": "primary"}, {"name": "west", "role": "standby"}],
           "kdrill:security": {"enabled": "yes"}}  # fmt: skip
    try:
        config.parse(raw)
    except config.LocalEnvError as e:
        assert "kdrill:security.enabled" in str(e) and "\n" not in str(e)
    else:
        raise AssertionError("a non-boolean enabled was accepted")
    assert config.parse({**raw, "kdrill:security": {"enabled": False}}).security.enabled is False


# --- TLS on the CLIENT listener --------------------------------------------------------


def _tls(tmp_path, ips=None):
    creds = security.generate([security.ADMIN])
    ips = ips or {"east": ["10.9.1.2"], "west": ["10.9.2.2"]}
    return security.tls_material(tmp_path, creds, "test", ips), creds


def test_tls_material_chains_to_one_ca_with_the_client_ips_as_sans(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import pkcs12

    tls, creds = _tls(tmp_path)
    ca = x509.load_pem_x509_certificate(tls.ca.read_bytes())
    for region, ip in (("east", "10.9.1.2"), ("west", "10.9.2.2")):
        key, cert, chain = pkcs12.load_key_and_certificates(
            tls.keystore(region).read_bytes(), tls.password.encode()
        )
        assert key is not None and chain[0] == ca
        cert.verify_directly_issued_by(ca)  # raises if another CA signed it
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert [str(x) for x in sans.get_values_for_type(x509.IPAddress)] == [ip]
    trust = pkcs12.load_pkcs12(tls.truststore.read_bytes(), tls.password.encode())
    assert [c.certificate for c in trust.additional_certs] == [ca]
    for f in tls.dir.iterdir():
        if not f.name.startswith("."):
            assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    assert tls.password not in tls.ca.read_text()
    assert tls.password == security.store_password(creds) and creds[security.ADMIN] not in str(tls)


def test_tls_material_is_made_once_and_again_when_the_addresses_change(tmp_path):
    tls, creds = _tls(tmp_path)
    first = tls.ca.read_bytes()
    again = security.tls_material(tmp_path, creds, "test",
                                  {"east": ["10.9.1.2"], "west": ["10.9.2.2"]})  # fmt: skip
    assert again.ca.read_bytes() == first
    moved = security.tls_material(tmp_path, creds, "test",
                                  {"east": ["10.8.1.2"], "west": ["10.8.2.2"]})  # fmt: skip
    assert moved.ca.read_bytes() != first


def test_tls_settings_for_clients_brokers_and_mirrormaker(tmp_path):
    tls, creds = _tls(tmp_path)
    c = security.client_settings(security.ADMIN, "pw", tls.ca)
    assert c["security.protocol"] == "SASL_SSL" and c["ssl.ca.location"] == str(tls.ca)
    assert security.client_settings(security.ADMIN, "pw")["security.protocol"] == "SASL_PLAINTEXT"
    broker = security.broker_properties(tls, "east")
    assert "CLIENT:SASL_SSL,REPLICATION:SASL_PLAINTEXT" in broker
    assert f"listener.name.client.ssl.keystore.location={tls.keystore('east')}" in broker
    assert "CLIENT:SASL_PLAINTEXT" in security.broker_properties()
    java = security.java_client_properties(security.ADMIN, "pw", tls)
    assert "security.protocol=SASL_SSL" in java and str(tls.truststore) in java
    cfg = config.load("local")
    secrets = tmp_path / "mm2-secrets.properties"
    props = mirrormaker.properties(cfg, "a:1", "b:2", "prefixed", secrets, tls=tls)
    # the destination (reached on its CLIENT listener) over TLS, the source as it was
    assert "west.security.protocol = SASL_SSL" in props
    assert "east.security.protocol = SASL_PLAINTEXT" in props
    assert tls.password not in props and f"${{file:{secrets}:truststore.password}}" in props
    assert f"truststore.password = {tls.password}" in mirrormaker.secrets_file(
        {security.MM2: "m"}, tls
    )


def test_tls_is_an_option_of_the_security_section():
    raw = dict(config.load("local").raw)
    raw["kdrill:security"] = {**raw["kdrill:security"], "tls": True}
    assert config.parse(raw, stack="t").security.tls
    assert not config.load("local").security.tls
