"""Shared fixtures: one real Apache Kafka broker for the whole test session."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

from tuner.broker import EmbeddedBroker, EmbeddedCluster, free_port
from tuner.broker.security import SecureOptions


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[EmbeddedBroker]:
    """A real single-node KRaft broker on a free port, data in a temp dir, stopped at the end."""
    broker = EmbeddedBroker()
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_cluster() -> Iterator[EmbeddedCluster]:
    """A real 3-broker KRaft cluster (a controller and brokers 1-3, 384 MiB heaps) on free
    ports, started only by the tests that ask for it, stopped at the end."""
    with EmbeddedCluster(brokers=3) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def secure_broker() -> Iterator[EmbeddedBroker]:
    """A second real broker with SASL_SSL (SCRAM-SHA-512, PLAIN) and SSL listeners, a CA of its
    own and a random password (`secure_broker.listeners`), stopped at the end. It checks ACLs:
    its user is a super user, and the second user (`security.READER`) may use whatever no ACL
    names, so only a test that writes an ACL closes anything to it."""
    broker = EmbeddedBroker(secure=SecureOptions(authorizer=True), heap="512m")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def bootstrap_servers(request: pytest.FixtureRequest) -> str:
    """The broker's address; `KAFKA_TUNER_TEST_BOOTSTRAP` reuses an already running broker."""
    existing = os.environ.get("KAFKA_TUNER_TEST_BOOTSTRAP")
    if existing:
        return existing
    broker: EmbeddedBroker = request.getfixturevalue("kafka_broker")
    return broker.bootstrap_servers


def _postgres_bin() -> Path:
    """Debian's `postgresql` package keeps initdb and pg_ctl out of PATH, one dir per version."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not found:
        pytest.fail("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    return found[-1].parent


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server on a free port, its data in a temp dir, stopped at the end.

    PostgreSQL refuses to run as root, so as root (CI) it runs as `nobody`."""
    bin_dir = _postgres_bin()
    base = Path(tempfile.mkdtemp(prefix="tuner-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        os.chown(base, nobody.pw_uid, nobody.pw_gid)
        as_user = ["runuser", "-u", "nobody", "--"]
    data, port = base / "data", free_port()

    def run(*argv: str) -> None:
        subprocess.run([*as_user, *argv], check=True, capture_output=True, timeout=120)

    run(str(bin_dir / "initdb"), "-D", str(data), "-U", "tuner", "-A", "trust", "--no-sync")
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-o", options,
        "-w", "start")  # fmt: skip
    try:
        yield f"postgresql://tuner@127.0.0.1:{port}/postgres"
    finally:
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    """Debian's Chromium, headless, with a fresh profile and no background networking."""
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for arg in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,1000",
    ):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        yield driver
    finally:
        driver.quit()
