"""Small builders shared by the tests (not fixtures: plain functions with explicit inputs)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry

from tuner.config import StudySpec, parse_config
from tuner.trial import TrialResult, run_trial


def unique(prefix: str) -> str:
    """A topic or group name no other test uses: `tuner.<prefix>.<random>`."""
    return f"tuner.{prefix}.{uuid.uuid4().hex[:8]}"


def small_spec(name: str, **sections: Any) -> StudySpec:
    """A quick trial: its own topic, 2 members, a small backlog, short windows."""
    data: dict[str, Any] = {
        "topic": {"name": unique(name), "partitions": 4},
        "workload": {"message_bytes": 200, "prefill_records": 20000},
        "consumer": {"members": 2},
        "trial": {"warmup_s": 1, "measure_s": 4},
        "metrics": {"port": 0, "producer_port": 0},
    }
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value}
    return parse_config(data)


def trial(
    spec: StudySpec,
    bootstrap_servers: str,
    registry: CollectorRegistry | None = None,
    *,
    alongside: Callable[[], Coroutine[Any, Any, None]] | None = None,
) -> TrialResult:
    """Run one trial of `spec` with a fresh group id; `alongside` runs in the same loop."""

    async def main() -> TrialResult:
        run = run_trial(
            spec,
            bootstrap_servers=bootstrap_servers,
            settings=spec.consumer.settings,
            group_id=unique("group"),
            registry=registry or CollectorRegistry(),
        )
        if alongside is None:
            return await run
        async with asyncio.TaskGroup() as tasks:
            side = tasks.create_task(alongside())
            result = await run
            side.cancel()
        return result

    return asyncio.run(main())


async def trickle(bootstrap_servers: str, topic: str, *, per_s: float, after_s: float) -> None:
    """Produce one small record every 1/per_s seconds after `after_s`, until cancelled."""
    await asyncio.sleep(after_s)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, linger_ms=0)
    await producer.start()
    try:
        while True:
            await producer.send_and_wait(topic, b"t" * 100)
            await asyncio.sleep(1 / per_s)
    finally:
        await producer.stop()
