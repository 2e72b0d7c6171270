"""Where the Apache Kafka jars are, and how to start a JVM on them.

`tools/bootstrap.sh` resolves the pinned jars (tools/kafka/pom.xml) from Maven
Central into ~/.cache/kdrill/kafka-<version>/libs. If KAFKA_HOME points at a
real Kafka installation, its libs/ are used instead.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from components.local.config import REPO_ROOT
from components.local.errors import LocalEnvError

POM = REPO_ROOT / "tools" / "kafka" / "pom.xml"

# Small heaps: six JVMs (3 brokers per region) plus MirrorMaker 2 must fit a
# 2-core, shared machine. C1-only JIT and the serial collector start faster and
# use fewer threads; throughput needs here are thousands of records/s, not millions.
JVM_OPTS = [
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
]
BROKER_HEAP = ["-Xms96m", "-Xmx384m"]
TOOL_HEAP = ["-Xms32m", "-Xmx128m"]
MM2_HEAP = ["-Xms96m", "-Xmx384m"]


def pinned_version() -> str:
    m = re.search(r"<kafka.version>([^<]+)</kafka.version>", POM.read_text())
    assert m, f"{POM} has no <kafka.version>"
    return m.group(1)


def cache_dir() -> Path:
    return Path(os.environ.get("KDRILL_CACHE", Path.home() / ".cache" / "kdrill"))


def libs_dir() -> Path:
    home = os.environ.get("KAFKA_HOME")
    if home:
        libs = Path(home) / "libs"
        if not libs.is_dir():
            raise LocalEnvError(
                f"KAFKA_HOME={home} has no libs/; unset it or point it at a Kafka install"
            )
        return libs
    libs = cache_dir() / f"kafka-{pinned_version()}" / "libs"
    if not libs.is_dir():
        raise LocalEnvError(
            f"Kafka jars not found in {libs}; run tools/bootstrap.sh (or ./run demo)"
        )
    return libs


def java() -> str:
    home = os.environ.get("JAVA_HOME")
    exe = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not exe or not Path(exe).exists():
        raise LocalEnvError(
            "Java not found; install a JDK 17+ (apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
        )
    return exe


def java_argv(main_class: str, heap: list[str], log4j_config: Path, args: list[str]) -> list[str]:
    return [
        java(),
        *heap,
        *JVM_OPTS,
        f"-Dlog4j2.configurationFile={log4j_config}",
        "-cp",
        f"{libs_dir()}/*",
        main_class,
        *args,
    ]


LOG4J2 = """\
# Written by kdrill: everything to stdout (which kdrill sends to a log file).
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.out.ref = OUT
logger.mirror.name = org.apache.kafka.connect.mirror
logger.mirror.level = INFO
logger.server.name = kafka.server.KafkaRaftServer
logger.server.level = INFO
"""


def log4j_config(directory: Path) -> Path:
    """The log4j2 config every JVM of a pair starts with, written into the pair's directory
    on first use (its path on the command line is also how `down` knows a JVM is the pair's)."""
    p = directory / "log4j2.properties"
    if not p.exists():
        p.write_text(LOG4J2)
    return p
