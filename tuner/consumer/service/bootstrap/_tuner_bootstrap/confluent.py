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

OVERRIDDEN = ("bootstrap.servers", "group.id")


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
        return base.subscribe(self, ctx.topics(names, "Consumer.subscribe()"), *args, **kwargs)

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
