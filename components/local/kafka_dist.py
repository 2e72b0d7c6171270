"""Where the Apache Kafka jars are, and how to start a JVM on them.

`tools/bootstrap.sh` resolves the pinned jars (tools/kafka/pom.xml) from Maven
Central into ~/.cache/kdrill/kafka-<version>/libs. If KAFKA_HOME points at a
real Kafka installation, its libs/ are used instead.
"""

from __future__ import annotations

import functools
import hashlib
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


def java_argv(
    main_class: str, heap: list[str], log4j_config: Path, args: list[str], cds: bool = True
) -> list[str]:
    """The command line of a kdrill JVM; with `cds` it maps the class-data-sharing archive of
    its kind when set-up made one (components/local/jvmcds.py), so it starts on less CPU."""
    archive = cds_archive(main_class) if cds else None
    return [
        java(),
        *heap,
        *JVM_OPTS,
        *([f"-XX:SharedArchiveFile={archive}"] if archive else []),
        f"-Dlog4j2.configurationFile={log4j_config}",
        "-cp",
        f"{libs_dir()}/*",
        main_class,
        *args,
    ]


# --- class-data-sharing archives (built by components/local/jvmcds.py) ---------------

ROLES = ("broker", "mirrormaker2")
MM2_MAIN = "org.apache.kafka.connect.mirror.MirrorMaker"


@functools.lru_cache(maxsize=1)
def _fingerprint() -> str:
    """Java binary (path, size, mtime) and the jars (names and sizes): an archive is valid
    for exactly these; anything else gets a directory of its own."""
    exe = Path(os.path.realpath(java()))
    st = exe.stat()
    h = hashlib.sha256(f"{exe}:{st.st_size}:{int(st.st_mtime)}".encode())
    for jar in sorted(libs_dir().iterdir()):
        h.update(f"{jar.name}:{jar.stat().st_size}".encode())
    return h.hexdigest()[:16]


def cds_directory() -> Path:
    return cache_dir() / "cds" / _fingerprint()


def cds_archive(main_class: str) -> Path | None:
    """The archive a JVM running `main_class` maps (MirrorMaker 2's, or the broker's for the
    broker and every Kafka tool), or None when set-up made none (or KDRILL_NO_CDS=1)."""
    if os.environ.get("KDRILL_NO_CDS") == "1":
        return None
    try:
        role = "mirrormaker2" if main_class == MM2_MAIN else "broker"
        p = cds_directory() / f"{role}.jsa"
    except (LocalEnvError, OSError):  # no Java or no jars: java() / libs_dir() say so
        return None
    return p if p.is_file() else None


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
