"""The JVMs map a class-data-sharing archive only when set-up made one for this Java and
these jars (components/local/kafka_dist.py `cds_archive`, built by jvmcds.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.local import kafka_dist


@pytest.fixture
def jars(tmp_path, monkeypatch) -> Path:
    """A cache dir holding a jar set of its own (the fingerprint is cached per process)."""
    libs = tmp_path / f"kafka-{kafka_dist.pinned_version()}" / "libs"
    libs.mkdir(parents=True)
    (libs / "kafka_2.13.jar").write_bytes(b"x")
    monkeypatch.setenv("KDRILL_CACHE", str(tmp_path))
    monkeypatch.delenv("KAFKA_HOME", raising=False)
    monkeypatch.delenv("KDRILL_NO_CDS", raising=False)
    kafka_dist._fingerprint.cache_clear()
    yield libs
    kafka_dist._fingerprint.cache_clear()


def shared(argv: list[str]) -> list[str]:
    return [a for a in argv if a.startswith("-XX:SharedArchiveFile=")]


def test_without_an_archive_the_jvm_starts_as_before(jars):
    assert shared(kafka_dist.java_argv("kafka.Kafka", [], Path("l"), [])) == []


def test_each_kind_maps_its_own_archive_and_tools_map_the_brokers(jars):
    d = kafka_dist.cds_directory()
    d.mkdir(parents=True)
    (d / "broker.jsa").write_bytes(b"a")
    (d / "mirrormaker2.jsa").write_bytes(b"b")
    argv = kafka_dist.java_argv("kafka.Kafka", [], Path("l"), ["p"])
    assert shared(argv) == [f"-XX:SharedArchiveFile={d / 'broker.jsa'}"]
    assert argv.index(shared(argv)[0]) < argv.index("-cp")  # a JVM option, not an argument
    tool = kafka_dist.java_argv("kafka.tools.StorageTool", [], Path("l"), [])
    assert shared(tool) == [f"-XX:SharedArchiveFile={d / 'broker.jsa'}"]
    mm2 = kafka_dist.java_argv(kafka_dist.MM2_MAIN, [], Path("l"), [])
    assert shared(mm2) == [f"-XX:SharedArchiveFile={d / 'mirrormaker2.jsa'}"]
    assert shared(kafka_dist.java_argv("kafka.Kafka", [], Path("l"), [], cds=False)) == []


def test_another_jar_set_does_not_use_the_archive(jars):
    d = kafka_dist.cds_directory()
    d.mkdir(parents=True)
    (d / "broker.jsa").write_bytes(b"a")
    (jars / "another.jar").write_bytes(b"y")
    kafka_dist._fingerprint.cache_clear()
    assert kafka_dist.cds_directory() != d
    assert shared(kafka_dist.java_argv("kafka.Kafka", [], Path("l"), [])) == []


def test_kdrill_no_cds_turns_it_off(jars, monkeypatch):
    d = kafka_dist.cds_directory()
    d.mkdir(parents=True)
    (d / "broker.jsa").write_bytes(b"a")
    monkeypatch.setenv("KDRILL_NO_CDS", "1")
    assert shared(kafka_dist.java_argv("kafka.Kafka", [], Path("l"), [])) == []
