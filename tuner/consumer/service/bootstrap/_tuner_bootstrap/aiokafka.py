"""aiokafka's `AIOKafkaConsumer`: `getmany()` hands out batches, `getone()` single records
(and `async for record in consumer` calls it), `stop()` closes."""

from __future__ import annotations

import importlib
from typing import Any

from _tuner_bootstrap.context import Context, records_of
from _tuner_bootstrap.kwargs_client import meter_of, methods, subclass


def wrap(base: type[Any], ctx: Context) -> type[Any]:
    """`AIOKafkaConsumer` with the trial's cluster, group, topic and settings."""

    async def getmany(
        self: Any, *partitions: Any, timeout_ms: int = 0, max_records: int | None = None
    ) -> Any:
        meter = meter_of(self)
        max_records = ctx.batch(meter, "getmany", "max_records", max_records)
        started = await meter.start_async()
        batch: Any = {}
        try:
            batch = await base.getmany(
                self, *partitions, timeout_ms=timeout_ms, max_records=max_records
            )
        finally:
            meter.done(started, records_of(batch))
        return batch

    async def getone(self: Any, *partitions: Any) -> Any:
        meter = meter_of(self)
        started = await meter.start_async()
        got = 0
        try:
            record = await base.getone(self, *partitions)
            got = 1
        finally:
            meter.done(started, got)
        return record

    async def stop(self: Any) -> Any:
        try:
            return await base.stop(self)
        finally:
            ctx.closed(meter_of(self))

    def listener_base() -> type[Any]:
        listener: type[Any] = importlib.import_module("aiokafka.abc").ConsumerRebalanceListener
        return listener

    namespace = {
        **methods(base, ctx, listener_base),
        "getmany": getmany,
        "getone": getone,
        "stop": stop,
    }
    return subclass(base, namespace)
