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
