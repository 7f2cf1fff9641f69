"""The broker's jars: from Maven Central (resolved once with `mvn` into the user cache dir) or
from an Apache Kafka distribution named by `KAFKA_HOME`; and a Java to run them."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
from importlib import resources
from pathlib import Path

from tuner.broker.errors import BrokerFailure, BrokerSetupError

log = logging.getLogger(__name__)

KAFKA_VERSION = "4.1.1"


def cache_dir() -> Path:
    """`$XDG_CACHE_HOME/kafka-tuner` (default `~/.cache/kafka-tuner`)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kafka-tuner"


def check_java() -> str:
    """Return the `java` executable, or raise if there is none or it is older than 17."""
    java = shutil.which("java")
    if java is None:
        raise BrokerSetupError(
            "no `java` on PATH: install a Java 17+ runtime (e.g. openjdk-17-jre)"
        )
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if match is None:
        raise BrokerSetupError(
            f"cannot tell the Java version from `java -version`: {out.strip()!r}"
        )
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8.0" style
        major = int(match.group(2))
    if major < 17:
        raise BrokerSetupError(
            f"Kafka {KAFKA_VERSION} needs Java 17 or newer; `java` is Java {major}"
        )
    return java


def classpath() -> str:
    """The broker's classpath: `$KAFKA_HOME/libs`, else the cached Maven jars (resolved once)."""
    kafka_home = os.environ.get("KAFKA_HOME")
    if kafka_home:
        libs = Path(kafka_home) / "libs"
        if not any(libs.glob("kafka_2.13-*.jar")):
            raise BrokerSetupError(
                f"KAFKA_HOME={kafka_home} is not an Apache Kafka distribution "
                "(no libs/kafka_2.13-*.jar)"
            )
        return f"{libs}/*"
    libs = cache_dir() / f"kafka-{KAFKA_VERSION}" / "libs"
    if not any(libs.glob("kafka_2.13-*.jar")):
        _resolve_jars(libs)
    return f"{libs}/*"


def _resolve_jars(libs: Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerSetupError(
            f"no cached Kafka jars in {libs.parent}, no `mvn` to fetch them, and no KAFKA_HOME: "
            "install Maven, or point KAFKA_HOME at an Apache Kafka distribution"
        )
    libs.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="libs-", dir=libs.parent))
    pom = resources.files("tuner.broker") / "resources" / "pom.xml"
    with resources.as_file(pom) as pom_path:
        log.info("resolving Kafka %s jars with Maven into %s", KAFKA_VERSION, libs)
        done = subprocess.run(
            [mvn, "-B", "-q", "-f", str(pom_path), "dependency:copy-dependencies",
             "-DincludeScope=runtime", f"-DoutputDirectory={staging}"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
    if done.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise BrokerFailure(f"Maven could not resolve the Kafka {KAFKA_VERSION} jars:\n{tail}")
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)  # atomic: a crash mid-download never leaves a half classpath
