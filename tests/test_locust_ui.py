"""Locust's web UI with our user class, driven in a real headless Chromium."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

from tests.helpers import unique
from tuner.broker import EmbeddedBroker, free_port
from tuner.cluster import admin as cluster
from tuner.cluster.admin import Connection
from tuner.config import ClusterSpec, SecuritySpec, TopicSpec
from tuner.load.runner import SASL_PASSWORD_ENV, locustfile

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
T = TypeVar("T")


def _until(check: Callable[[], T | None], timeout_s: float, what: str) -> T:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def _produce_row(driver: WebDriver) -> list[str] | None:
    try:
        for row in driver.find_elements(By.CSS_SELECTOR, "table tbody tr"):
            cells = [c.text for c in row.find_elements(By.TAG_NAME, "td")]
            if cells and cells[0] == "produce":
                return cells
    except StaleElementReferenceException:  # the table re-rendered while being read
        return None
    return None


def _set(driver: WebDriver, name: str, value: str) -> None:
    field = driver.find_element(By.NAME, name)
    field.send_keys(Keys.CONTROL, "a")  # clear() does not reach React's state
    field.send_keys(value)


def _web_ui() -> tuple[subprocess.Popen[bytes], int]:
    """Locust's web UI with our locustfile, on a free port of 127.0.0.1 (its own session)."""
    port = free_port()
    locust = subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", str(locustfile()), "--web-host", "127.0.0.1",
         "--web-port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    return locust, port


def test_start_and_stop_a_run_from_the_web_ui(bootstrap_servers: str, browser: WebDriver) -> None:
    """Start from the form with our parameters, watch `produce` count up, stop; Kafka has it."""
    conn = Connection(bootstrap_servers=bootstrap_servers, cluster=ClusterSpec())
    topic = unique("ui")
    asyncio.run(cluster.ensure_topic(conn, TopicSpec(name=topic, partitions=2)))
    locust, port = _web_ui()
    try:
        url = f"http://127.0.0.1:{port}/"
        _until(lambda: _get(browser, url), 30, "the Locust UI")
        _set(browser, "userCount", "2")
        _set(browser, "spawnRate", "2")
        browser.find_elements(By.CSS_SELECTOR, "button.MuiAccordionSummary-root")[-1].click()
        _until(lambda: browser.find_element(By.NAME, "kafkaTopic").is_displayed(), 10, "form")
        _set(browser, "kafkaBootstrap", bootstrap_servers)
        _set(browser, "kafkaTopic", topic)
        _set(browser, "messageBytes", "300")
        _set(browser, "ratePerUser", "200")
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

        def counting() -> int | None:
            row = _produce_row(browser)
            return int(row[2].replace(",", "")) if row and row[1] == topic else None

        first = _until(counting, 30, "a produce row")
        second = _until(lambda: (n := counting()) and n > first and n, 30, "the count to rise")
        assert second > first
        header = _until(lambda: browser.find_element(By.TAG_NAME, "header").text, 10, "header")
        words = header.split()
        assert words[words.index("Users") + 1] == "2"
        ARTIFACTS.mkdir(exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / "locust-ui.png"))
        stop = [b for b in browser.find_elements(By.TAG_NAME, "button") if b.text == "STOP"]
        stop[0].click()
        _until(lambda: "STOPPED" in browser.page_source.upper(), 30, "the run to stop")
        time.sleep(2)  # the final flush's deliveries reach the stats
        shown = _until(counting, 10, "the final count")
        final_row = _until(lambda: _produce_row(browser), 10, "the final row")
        failures = int(final_row[3].replace(",", ""))
    finally:
        locust.terminate()
        locust.wait(timeout=30)
    ends = asyncio.run(cluster.end_offsets(conn, topic))
    assert shown is not None
    assert failures == 0
    assert sum(ends.values()) == shown


def _get(browser: WebDriver, url: str) -> bool:
    try:
        browser.get(url)
    except Exception:
        return False
    return bool(browser.find_elements(By.NAME, "userCount"))


def test_secured_cluster_from_the_web_ui_shows_no_password(
    secure_broker: EmbeddedBroker, browser: WebDriver
) -> None:
    """Over SASL_SSL/SCRAM the form shows protocol, mechanism, user and CA file but no password
    (Locust reads it from its environment); records flow, and the page never holds it."""
    listeners = secure_broker.listeners
    assert listeners is not None
    address = f"127.0.0.1:{listeners.sasl_ssl_port}"
    scram = SecuritySpec(protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
                         username=listeners.username, password=listeners.password,
                         ssl_cafile=str(listeners.tls.ca_file))  # fmt: skip
    conn = Connection(bootstrap_servers=address, cluster=ClusterSpec(security=scram))
    topic = unique("ui-secured")
    asyncio.run(cluster.ensure_topic(conn, TopicSpec(name=topic, partitions=1)))
    port = free_port()
    locust = subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", str(locustfile()), "--web-host", "127.0.0.1",
         "--web-port", str(port), "--kafka-bootstrap", address, "--kafka-topic", topic,
         "--kafka-security-protocol", "SASL_SSL", "--kafka-sasl-mechanism", "SCRAM-SHA-512",
         "--kafka-sasl-username", listeners.username, "--kafka-ssl-ca", str(scram.ssl_cafile)],
        env={**os.environ, SASL_PASSWORD_ENV: listeners.password},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    pages: list[str] = []
    try:
        _until(lambda: _get(browser, f"http://127.0.0.1:{port}/"), 30, "the Locust UI")
        _set(browser, "userCount", "1")
        _set(browser, "spawnRate", "1")
        browser.find_elements(By.CSS_SELECTOR, "button.MuiAccordionSummary-root")[-1].click()
        _until(lambda: browser.find_element(By.NAME, "kafkaTopic").is_displayed(), 10, "form")
        fields = {e.get_attribute("name") for e in browser.find_elements(By.CSS_SELECTOR, "input")}
        assert {"kafkaSaslUsername", "kafkaSslCa"} <= fields
        assert not any("password" in (name or "").lower() for name in fields)
        pages.append(browser.page_source)
        _set(browser, "ratePerUser", "100")
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

        def counting() -> int | None:
            row = _produce_row(browser)
            return int(row[2].replace(",", "")) if row and row[1] == topic else None

        _until(counting, 30, "records produced over SASL_SSL")
        pages.append(browser.page_source)
    finally:
        locust.terminate()
        locust.wait(timeout=30)
    assert sum(asyncio.run(cluster.end_offsets(conn, topic)).values()) > 0
    assert not any(listeners.password in page for page in pages)


def test_the_form_shows_the_cluster_as_host_and_takes_a_payload_file(
    bootstrap_servers: str, browser: WebDriver, tmp_path: Path
) -> None:
    """Host shows the cluster (`--kafka-bootstrap`, no missing-host warning), and the cluster
    typed into it is used; a payload file set under Custom parameters is what lands on the
    topic, value for value."""
    conn = Connection(bootstrap_servers=bootstrap_servers, cluster=ClusterSpec())
    topic = unique("ui-payloads")
    asyncio.run(cluster.ensure_topic(conn, TopicSpec(name=topic, partitions=2)))
    samples = tmp_path / "samples.jsonl"
    values = {f'{{"order": {i}, "note": "{"n" * i}"}}' for i in range(25)}
    samples.write_text("\n".join(sorted(values)) + "\n")
    locust, port = _web_ui()
    try:
        _until(lambda: _get(browser, f"http://127.0.0.1:{port}/"), 30, "the Locust UI")
        assert browser.find_element(By.NAME, "host").get_attribute("value") == "127.0.0.1:9092"
        assert "no host attribute" not in browser.page_source
        _set(browser, "host", bootstrap_servers)  # the default's broker is not this test's
        _set(browser, "userCount", "1")
        _set(browser, "spawnRate", "1")
        browser.find_elements(By.CSS_SELECTOR, "button.MuiAccordionSummary-root")[-1].click()
        _until(lambda: browser.find_element(By.NAME, "payloads").is_displayed(), 10, "form")
        _set(browser, "kafkaTopic", topic)
        _set(browser, "payloads", str(samples))
        _set(browser, "ratePerUser", "100")
        ARTIFACTS.mkdir(exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / "locust-ui-payloads.png"))
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

        def counted() -> int | None:
            row = _produce_row(browser)
            n = int(row[2].replace(",", "")) if row and row[1] == topic else 0
            return n if n >= 2 * len(values) else None

        _until(counted, 60, "two passes over the payloads")
    finally:
        locust.terminate()
        locust.wait(timeout=30)
    written = asyncio.run(_values(bootstrap_servers, topic))
    assert len(written) >= 2 * len(values)
    assert {v.decode() for v in written} == values


async def _values(bootstrap_servers: str, topic: str) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap_servers, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    out: list[bytes] = []
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(2)])
        async with asyncio.timeout(30):
            while len(out) < sum(ends.values()):
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    out.extend(m.value for m in batch if m.value is not None)
    finally:
        await consumer.stop()
    return out
