"""confluent-kafka's `Consumer` (librdkafka): a C type, so it is subclassed, never patched;
`confluent_kafka.Consumer`, `DeserializingConsumer` and `confluent_kafka.aio.AIOConsumer` all
come from `confluent_kafka.cimpl.Consumer`. `Consumer(conf, **kwargs)`: keyword arguments
override the dict; a topic that starts with `^` is a pattern. Once held, a poll hands out
nothing instead of waiting for ever: a framework's stop (FastStream's commit and close) runs
on the thread that polls."""

from __future__ import annotations

from typing import Any

from _tuner_bootstrap.context import Context
from _tuner_bootstrap.kwargs_client import METER, meter_of, subclass
from _tuner_bootstrap.report import Meter

OVERRIDDEN = ("bootstrap.servers", "group.id")
CALLBACKS = ("on_assign", "on_revoke", "on_lost")
"""`Consumer.subscribe(topics, on_assign, on_revoke, on_lost)`'s callbacks, in order."""


def counting(meter: Meter, given: dict[str, Any]) -> dict[str, Any]:
    """The service's callbacks, each counting in `meter` first. `on_assign` and `on_revoke`
    are always set (the binding still assigns by itself when the callback does not);
    `on_lost` only when the service set it, since librdkafka calls `on_revoke` for lost
    partitions otherwise."""
    on_assign, on_revoke = given.get("on_assign"), given.get("on_revoke")

    def assigned(consumer: Any, partitions: Any) -> None:
        meter.assigned(len(partitions))
        if on_assign is not None:
            on_assign(consumer, partitions)

    def revoked(consumer: Any, partitions: Any) -> None:
        if partitions:  # an incremental protocol's empty revoke is no rebalance
            meter.revoked()
        if on_revoke is not None:
            on_revoke(consumer, partitions)

    out = {**given, "on_assign": assigned, "on_revoke": revoked}
    if given.get("on_lost") is not None:
        on_lost = given["on_lost"]

        def lost(consumer: Any, partitions: Any) -> None:
            meter.revoked()
            on_lost(consumer, partitions)

        out["on_lost"] = lost
    return out


def wrap(base: type[Any], ctx: Context) -> type[Any]:
    """`Consumer` with the trial's cluster, group, topic and settings."""
    plan = ctx.plan
    trial = ctx.config()

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        given = dict(args[0]) if args else {}
        ours = {*OVERRIDDEN, *trial}
        # librdkafka takes `group_id` for `group.id` as a keyword: the trial's wins either way
        kept = {k: v for k, v in kwargs.items() if k.replace("_", ".") not in ours}
        conf = {
            **given, **trial,
            "bootstrap.servers": plan.bootstrap_servers, "group.id": plan.group_id,
        }  # fmt: skip
        meter = ctx.reporter.meter()
        setattr(self, METER, meter)  # a Python subclass of a C type has a __dict__
        base.__init__(self, conf, *args[1:], **kept)
        meter.assignment = self.assignment
        ctx.created(meter, conf={**given, **kwargs})

    def subscribe(self: Any, topics: Any, *args: Any, **kwargs: Any) -> Any:
        names = [topics] if isinstance(topics, str) else list(topics)
        for name in names:
            if name.startswith("^"):
                ctx.pattern(name, "Consumer.subscribe()")
        callbacks = {**dict(zip(CALLBACKS, args, strict=False)), **kwargs}
        return base.subscribe(
            self, ctx.topics(names, "Consumer.subscribe()"), **counting(meter_of(self), callbacks)
        )

    def assign(self: Any, partitions: Any) -> Any:
        ctx.assigned(partitions, "Consumer.assign()")
        return base.assign(self, partitions)

    def poll(self: Any, *args: Any, **kwargs: Any) -> Any:
        meter = meter_of(self)
        if meter.holding():
            return None
        started = meter.start()
        message = None
        try:
            message = base.poll(self, *args, **kwargs)
        finally:
            meter.done(started, int(message is not None and message.error() is None))
        return message

    def consume(self: Any, num_messages: int = 1, timeout: float = -1) -> Any:
        meter = meter_of(self)
        num_messages = ctx.batch(meter, "consume", "num_messages", num_messages) or 1
        if meter.holding():
            return []
        started = meter.start()
        messages: list[Any] = []
        try:
            messages = base.consume(self, num_messages=num_messages, timeout=timeout)
        finally:
            meter.done(started, sum(1 for m in messages if m.error() is None))
        return messages

    def close(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return base.close(self, *args, **kwargs)
        finally:
            if hasattr(self, METER):
                ctx.closed(meter_of(self))

    namespace = {
        "__init__": __init__, "subscribe": subscribe, "assign": assign, "poll": poll,
        "consume": consume, "close": close,
    }  # fmt: skip
    return subclass(base, namespace)
