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
from tuner.config.topology import KAFKA_VERSION, version_problem

log = logging.getLogger(__name__)

_DISTRIBUTION_JAR = re.compile(r"kafka_2\.13-(\d+\.\d+\.\d+)\.jar")


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
        raise BrokerSetupError(f"Kafka 4 needs Java 17 or newer; `java` is Java {major}")
    return java


def resolved_version(version: str | None = None) -> str:
    """The release the broker runs: `version` (the config's), else `KAFKA_HOME`'s, else
    `KAFKA_VERSION`. A `KAFKA_HOME` of another release than the one asked for is an error:
    the run would measure a broker it does not name."""
    if version is not None and (problem := version_problem(version)) is not None:
        raise BrokerSetupError(f"Kafka version {problem}")
    kafka_home = os.environ.get("KAFKA_HOME")
    if not kafka_home:
        return version or KAFKA_VERSION
    found = _home_version(Path(kafka_home))
    if version is not None and found != version:
        raise BrokerSetupError(
            f"KAFKA_HOME={kafka_home} is Apache Kafka {found}, not the {version} asked for: "
            "unset KAFKA_HOME (the jars are then fetched from Maven Central) or point it at "
            f"a {version} distribution"
        )
    return found


def _home_version(home: Path) -> str:
    for jar in sorted((home / "libs").glob("kafka_2.13-*.jar")):
        if (match := _DISTRIBUTION_JAR.fullmatch(jar.name)) is not None:
            return match.group(1)
    raise BrokerSetupError(
        f"KAFKA_HOME={home} is not an Apache Kafka distribution (no libs/kafka_2.13-X.Y.Z.jar)"
    )


def classpath(version: str | None = None) -> str:
    """The broker's classpath: `$KAFKA_HOME/libs`, else the cached Maven jars of `version`
    (default `KAFKA_VERSION`, resolved once per release)."""
    release = resolved_version(version)
    kafka_home = os.environ.get("KAFKA_HOME")
    if kafka_home:
        return f"{Path(kafka_home) / 'libs'}/*"
    libs = cache_dir() / f"kafka-{release}" / "libs"
    if not any(libs.glob("kafka_2.13-*.jar")):
        _resolve_jars(libs, release)
    return f"{libs}/*"


def tools_classpath(version: str | None = None) -> str:
    """The broker's classpath and Kafka's command-line tools (`kafka-tools`, resolved once per
    release beside the broker's jars; a `KAFKA_HOME` distribution holds them already)."""
    broker = classpath(version)
    if os.environ.get("KAFKA_HOME"):
        return broker
    tools = cache_dir() / f"kafka-{resolved_version(version)}" / "tools"
    if not any(tools.glob("kafka-tools-*.jar")):
        _resolve_jars(tools, resolved_version(version), pom_name="tools-pom.xml")
    return f"{broker}{os.pathsep}{tools}/*"


def _resolve_jars(libs: Path, version: str, *, pom_name: str = "pom.xml") -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerSetupError(
            f"no cached Kafka jars in {libs.parent}, no `mvn` to fetch them, and no KAFKA_HOME: "
            "install Maven, or point KAFKA_HOME at an Apache Kafka distribution"
        )
    libs.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="libs-", dir=libs.parent))
    pom = resources.files("tuner.broker") / "resources" / pom_name
    with resources.as_file(pom) as pom_path:
        log.info("resolving Kafka %s jars with Maven into %s", version, libs)
        done = subprocess.run(
            [mvn, "-B", "-q", "-f", str(pom_path), "dependency:copy-dependencies",
             "-DincludeScope=runtime", f"-Dkafka.version={version}",
             f"-DoutputDirectory={staging}"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
    if done.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise BrokerFailure(f"Maven could not resolve the Kafka {version} jars:\n{tail}")
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)  # atomic: a crash mid-download never leaves a half classpath
