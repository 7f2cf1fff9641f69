"""Shared fixtures: one real Apache Kafka broker for the whole test session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tuner.broker import EmbeddedBroker


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
def bootstrap_servers(request: pytest.FixtureRequest) -> str:
    """The broker's address; `KAFKA_TUNER_TEST_BOOTSTRAP` reuses an already running broker."""
    existing = os.environ.get("KAFKA_TUNER_TEST_BOOTSTRAP")
    if existing:
        return existing
    broker: EmbeddedBroker = request.getfixturevalue("kafka_broker")
    return broker.bootstrap_servers
