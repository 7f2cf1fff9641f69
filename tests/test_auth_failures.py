"""Refused logins, which aiokafka only logs, counted per client on the real secured broker and
served under the Java client's failed-authentication names."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, SaslAuthenticationFailed
from prometheus_client import CollectorRegistry

from tests.helpers import unique
from tuner.broker import EmbeddedBroker, tls
from tuner.cluster import admin as cluster
from tuner.cluster.admin import Connection
from tuner.config import ClusterSpec, TopicSpec
from tuner.config.spec import SecuritySpec
from tuner.consumer import InstrumentedConsumer, MemberSpec, ProblemKind, auth_failures
from tuner.consumer.group import ConsumerGroup, GroupError
from tuner.metrics import JAVA_CONSUMER, ConsumerMetrics, JavaCompatibleCollector

WRONG = "not-the-password"
RATE = f"{JAVA_CONSUMER}failed_authentication_rate"
TOTAL = f"{JAVA_CONSUMER}failed_authentication_total"
TOTAL_1X = f"{JAVA_CONSUMER}failed_authentication"


def _scram(broker: EmbeddedBroker, password: str | None = None) -> Connection:
    """SASL_SSL with SCRAM-SHA-512 to the secured broker, with its password or `password`."""
    listeners = broker.listeners
    assert listeners is not None
    security = SecuritySpec(
        protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512", username=listeners.username,
        password=password or listeners.password, ssl_cafile=str(listeners.tls.ca_file),
    )  # fmt: skip
    spec = ClusterSpec(bootstrap_servers=f"127.0.0.1:{listeners.sasl_ssl_port}", security=security)
    return Connection(bootstrap_servers=spec.bootstrap_servers, cluster=spec)


def _failed(registry: CollectorRegistry, member: str = "m0") -> float | None:
    return registry.get_sample_value(
        "tuner_consumer_failed_authentications_total", {"group": "g", "member": member}
    )


def _java(java: JavaCompatibleCollector) -> dict[str, float]:
    """The failed-authentication series of one client, by name."""
    return {
        s.name: s.value for f in java.collect() for s in f.samples if s.name.startswith(TOTAL_1X)
    }


@pytest.mark.integration
def test_a_refused_login_counts_for_its_own_client_only(secure_broker: EmbeddedBroker) -> None:
    """Two consumers in one process start side by side: the one with a wrong password is
    refused at bootstrap (one address, one attempt: exactly 1), the other joins, fetches and
    stays at 0; the Java total (both exporter spellings) and the 30 s rate follow each one."""
    right = _scram(secure_broker)
    topic = TopicSpec(name=unique("auth"), partitions=1)
    registries = {"bad": CollectorRegistry(), "good": CollectorRegistry()}
    clock = [0.0]
    java = {k: JavaCompatibleCollector(r, clock=lambda: clock[0]) for k, r in registries.items()}
    metrics = {k: ConsumerMetrics(r, group="g", member="m0") for k, r in registries.items()}
    before = {k: _java(j) for k, j in java.items()}

    async def consume() -> BaseException | None:
        await cluster.ensure_topic(right, topic)
        kwargs: dict[str, Any] = {"group_id": unique("group"), "enable_auto_commit": False}
        bad = InstrumentedConsumer(topic.name, metrics=metrics["bad"], client_id="bad",
                                   **kwargs, **_scram(secure_broker, WRONG).kwargs())  # fmt: skip
        good = InstrumentedConsumer(topic.name, metrics=metrics["good"], client_id="good",
                                    **kwargs, **right.kwargs())  # fmt: skip
        try:
            refused, _ = await asyncio.gather(bad.start(), good.start(), return_exceptions=True)
            async with asyncio.timeout(20):
                while not good.consumer.assignment():
                    await good.getmany(timeout_ms=200)
                await good.getmany(timeout_ms=500)
            return refused if isinstance(refused, BaseException) else None
        finally:
            await asyncio.gather(bad.stop(), good.stop())
            await cluster.delete_topic(right, topic.name)

    refused = asyncio.run(consume())
    assert isinstance(refused, KafkaConnectionError)
    clock[0] += 10
    for view in java.values():
        view.sample()
    after = {k: _java(j) for k, j in java.items()}
    assert _failed(registries["bad"]) == 1
    assert _failed(registries["good"]) == 0
    for name in (RATE, TOTAL, TOTAL_1X):
        assert before["bad"][name] == before["good"][name] == 0, name
    assert after["bad"][TOTAL] == after["bad"][TOTAL_1X] == 1
    assert after["bad"][RATE] == pytest.approx(0.1)  # one in the 10 s since the view first saw it
    assert after["good"] == {RATE: 0, TOTAL: 0, TOTAL_1X: 0}


@pytest.mark.integration
def test_a_failed_tls_handshake_counts_as_a_failed_authentication(
    secure_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """The broker's certificate checked against a CA that did not sign it: the handshake fails,
    which the Java client counts as a failed authentication too (SslAuthenticationException)."""
    listeners = secure_broker.listeners
    assert listeners is not None
    other = tls.make_ca(tmp_path / "other-ca", name="some other CA")
    security = SecuritySpec(protocol="SSL", ssl_cafile=str(other.ca_file))
    spec = ClusterSpec(bootstrap_servers=f"127.0.0.1:{listeners.ssl_port}", security=security)
    conn = Connection(bootstrap_servers=spec.bootstrap_servers, cluster=spec)
    registry = CollectorRegistry()
    m = ConsumerMetrics(registry, group="g", member="m0")

    async def start() -> None:
        consumer = InstrumentedConsumer(unique("authtls"), metrics=m, **conn.kwargs())
        try:
            await consumer.start()
        finally:
            await consumer.stop()

    with pytest.raises(KafkaConnectionError, match="Unable to bootstrap from"):
        asyncio.run(start())
    assert _failed(registry) == 1


@pytest.mark.integration
def test_a_login_refused_on_a_later_connection_is_counted(
    secure_broker: EmbeddedBroker, caplog: pytest.LogCaptureFixture
) -> None:
    """A member whose password stops working mid-run (here: its client's copy replaced, then its
    connections dropped) is refused on every reconnect its coordinator and metadata tasks try:
    the count equals the refusals aiokafka logged, none missed, none twice."""
    conn = _scram(secure_broker)
    topic = TopicSpec(name=unique("authlater"), partitions=1)
    registry = CollectorRegistry()
    m = ConsumerMetrics(registry, group="g", member="m0")

    async def consume() -> None:
        await cluster.ensure_topic(conn, topic)
        consumer = InstrumentedConsumer(topic.name, metrics=m, group_id=unique("group"),
                                        enable_auto_commit=False, **conn.kwargs())  # fmt: skip
        try:
            await consumer.start()
            async with asyncio.timeout(20):
                while not consumer.consumer.assignment():
                    await consumer.getmany(timeout_ms=200)
                assert _failed(registry) == 0
                client = consumer.consumer._client
                client._sasl_plain_password = WRONG  # what a rotated password does to a client
                for connection in list(client._conns.values()):
                    connection.close()
                for _ in range(10):
                    await consumer.getmany(timeout_ms=200)
        finally:
            async with asyncio.timeout(20):
                await consumer.stop()
            await cluster.delete_topic(conn, topic.name)

    with caplog.at_level(logging.ERROR, logger=auth_failures.LOGGER):
        asyncio.run(consume())
    refusals = [r for r in caplog.records if r.name == auth_failures.LOGGER
                and any(isinstance(a, SaslAuthenticationFailed) for a in r.args or ())]  # fmt: skip
    assert len(refusals) >= 2, refusals
    assert _failed(registry) == len(refusals)


@pytest.mark.integration
def test_a_member_process_refused_at_start_reports_its_count(
    secure_broker: EmbeddedBroker,
) -> None:
    """A member process (aiokafka's logs silenced there) whose login is refused sends its count
    before it fails; the group's registry serves it under the Java name, and the group reports
    the failure as an authentication problem, not a plain consumer error."""
    wrong = _scram(secure_broker, WRONG)
    spec = MemberSpec(bootstrap_servers=wrong.bootstrap_servers, cluster=wrong.cluster,
                      topic=unique("authproc"), group_id="g", member="m0")  # fmt: skip
    group = ConsumerGroup([spec], registry=CollectorRegistry(), isolation="process")

    async def run() -> None:
        async with group:
            await group.wait_until_assigned(timeout_s=20)

    started = time.monotonic()
    with pytest.raises(GroupError, match="Unable to bootstrap"):
        asyncio.run(run())
    assert time.monotonic() - started < 20
    counts = [s.value for f in group.families() for s in f.samples
              if s.name == "tuner_consumer_failed_authentications_total"]  # fmt: skip
    assert counts == [1]
    assert _java(JavaCompatibleCollector(group.collector))[TOTAL] == 1
    (problem,) = group.errors()
    assert problem.kind is ProblemKind.AUTHENTICATION
    assert problem.member == "m0"
    assert "Unable to bootstrap" in problem.message


def test_only_auth_errors_logged_inside_a_client_call_are_counted() -> None:
    """Other connection errors, and a refusal logged outside any instrumented client's
    connection attempt, are not counted; each attempt credits its own client."""
    assert auth_failures.install()
    counted: list[str] = []
    log = logging.getLogger(auth_failures.LOGGER)

    async def connect(*args: object) -> None:
        log.error("Unable connect to node with id %s: %s", *args)

    async def run() -> None:
        attempt = auth_failures.attributed(connect, lambda: counted.append("a"))
        await attempt(1, SaslAuthenticationFailed("refused"))
        await attempt(1, KafkaConnectionError("no route"))
        await connect(1, SaslAuthenticationFailed("refused"))
        await auth_failures.attributed(connect, lambda: counted.append("b"))(
            2, SaslAuthenticationFailed("refused")
        )

    asyncio.run(run())
    assert counted == ["a", "b"]
