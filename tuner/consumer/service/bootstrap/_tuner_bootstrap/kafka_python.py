"""kafka-python's `KafkaConsumer`: `poll(timeout_ms, max_records, update_offsets)` is what both
the poll loop and the iterator (`for record in consumer`) call, so both are counted."""

from __future__ import annotations

import importlib
from typing import Any

from _tuner_bootstrap.context import Context, records_of
from _tuner_bootstrap.kwargs_client import meter_of, methods, subclass


def wrap(base: type[Any], ctx: Context) -> type[Any]:
    """`KafkaConsumer` with the trial's cluster, group, topic and settings."""

    def poll(
        self: Any, timeout_ms: int = 0, max_records: int | None = None, update_offsets: bool = True
    ) -> Any:
        meter = meter_of(self)
        max_records = ctx.batch(meter, "poll", "max_records", max_records)
        started = meter.start()
        batch: Any = {}
        try:
            batch = base.poll(
                self, timeout_ms=timeout_ms, max_records=max_records, update_offsets=update_offsets
            )
        finally:
            meter.done(started, records_of(batch))
        return batch

    def close(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return base.close(self, *args, **kwargs)
        finally:
            ctx.closed(meter_of(self))

    def listener_base() -> type[Any]:
        module = importlib.import_module("kafka.consumer.subscription_state")
        listener: type[Any] = module.ConsumerRebalanceListener
        return listener

    return subclass(base, {**methods(base, ctx, listener_base), "poll": poll, "close": close})
