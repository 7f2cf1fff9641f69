"""The consumer clients the tuner measures, one module each behind `ConsumerClient`, looked
up by the name `consumer.client` spells: a new client is one module plus its entry here."""

from __future__ import annotations

from collections.abc import Mapping

from tuner.clients.aiokafka import AIOKAFKA
from tuner.clients.base import ClientName, ConsumerClient
from tuner.clients.confluent import CONFLUENT_KAFKA

CLIENTS: Mapping[str, ConsumerClient] = {c.name: c for c in (AIOKAFKA, CONFLUENT_KAFKA)}
"""Every client by its `consumer.client` name."""


def client_named(name: str | None) -> ConsumerClient:
    """The client `consumer.client` names (aiokafka, the default, when None)."""
    return CLIENTS[name or AIOKAFKA.name]


__all__ = ["CLIENTS", "ClientName", "ConsumerClient", "client_named"]
