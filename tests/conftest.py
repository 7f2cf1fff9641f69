"""Shared fixtures: one real Apache Kafka broker for the whole test session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

from tuner.broker import EmbeddedBroker
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
def secure_broker() -> Iterator[EmbeddedBroker]:
    """A second real broker with SASL_SSL (SCRAM-SHA-512, PLAIN) and SSL listeners, a CA of its
    own and a random password (`secure_broker.listeners`), stopped at the end."""
    broker = EmbeddedBroker(secure=SecureOptions(), heap="512m")
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
