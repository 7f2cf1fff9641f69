"""confluent-kafka members on the real broker: the same families, counts that agree."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from tests.helpers import small_spec, trial

pytestmark = pytest.mark.integration


def test_both_clients_serve_the_same_families_and_agree_with_the_broker(
    bootstrap_servers: str,
) -> None:
    """An aiokafka and a confluent-kafka trial serve the same `tuner_consumer_*` families
    mid-run, and each consumes every record once, as the broker's committed offsets say."""
    seen = {}
    fetched: dict[str, float] = {}
    for client in ("aiokafka", "confluent-kafka"):
        spec = small_spec(
            f"client-{client}", consumer={"client": client}, trial={"warmup_s": 1, "measure_s": 3}
        )
        registry = CollectorRegistry()
        families: set[str] = set()

        async def scrape(
            registry: CollectorRegistry = registry, into: set[str] = families, client: str = client
        ) -> None:
            while True:
                into.update(
                    f.name for f in registry.collect()
                    if f.name.startswith("tuner_consumer_") and f.samples
                )  # fmt: skip
                fetched[client] = max(fetched.get(client, 0.0), _fetched_records(registry))
                await asyncio.sleep(0.2)

        seen[client] = (trial(spec, bootstrap_servers, registry, alongside=scrape), families)
    for client, (result, _) in seen.items():
        assert result.errors == (), client
        assert result.offsets.end_offsets_total == 20000, client
        assert result.offsets.consumed_total == 20000, client
        assert result.offsets.committed_total == 20000, client
        assert fetched[client] == 20000, client  # each record fetched once, no more
    assert seen["confluent-kafka"][1] == seen["aiokafka"][1]
    assert "tuner_consumer_fetch_requests" in seen["confluent-kafka"][1]
    assert seen["confluent-kafka"][0].settings["session.timeout.ms"] == 45000  # librdkafka's


def _fetched_records(registry: CollectorRegistry) -> float:
    return sum(
        s.value for f in registry.collect() for s in f.samples
        if s.name == "tuner_consumer_fetch_topic_records_sum"
    )  # fmt: skip
