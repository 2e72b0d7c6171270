"""Client settings registered per cluster reach every config built for it, and only it."""

from components import clientconf


def test_registered_settings_reach_every_address_of_the_cluster_and_extra_wins():
    sasl = {"security.protocol": "SASL_PLAINTEXT", "sasl.password": "pw"}
    clientconf.register("10.0.0.1:9092,10.0.0.2:9092", sasl)
    try:
        conf = clientconf.client_config("10.0.0.2:9092", {"security.protocol": "SASL_SSL"})
        assert conf["bootstrap.servers"] == "10.0.0.2:9092"
        assert conf["sasl.password"] == "pw" and conf["security.protocol"] == "SASL_SSL"
        assert "sasl.password" not in clientconf.client_config("10.0.0.3:9092")
        assert clientconf.redacted(conf)["sasl.password"] == "[secret]"
    finally:
        clientconf.register("10.0.0.1:9092,10.0.0.2:9092", {})
    assert clientconf.client_config("10.0.0.1:9092") == {"bootstrap.servers": "10.0.0.1:9092"}
