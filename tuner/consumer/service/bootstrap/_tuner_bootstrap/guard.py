"""The clients a service makes besides its consumer: producers and admin clients.

Frameworks make them at start whether the service's code uses them or not (FastStream's broker
connects a producer and an admin client, and creates its subscribers' topics). Inside a trial
they connect to the trial's cluster, never to the one the service names, and they write nothing
the tuner does not own: a record produced to any topic, and every admin call that changes the
cluster, stop the service with what it asked for. Creating the service's topic becomes creating
the trial's, which exists: the broker answers that it already exists, as production's would.
"""

from __future__ import annotations

import copy
from typing import Any

from _tuner_bootstrap.context import Context
from _tuner_bootstrap.kwargs_client import subclass

CHANGES = (
    "alter_configs", "alter_consumer_group_offsets", "alter_partition_reassignments",
    "alter_user_scram_credentials", "create_acls", "create_partitions", "delete_acls",
    "delete_consumer_group_offsets", "delete_consumer_groups", "delete_records", "delete_topics",
    "elect_leaders", "incremental_alter_configs",
)  # fmt: skip
"""The admin calls that change the cluster (of the three clients' admin classes)."""


def _produces(ctx: Context, where: str, topic: object) -> None:
    ctx.refuse(
        f"the service produces to {topic!r} in {where}; the tuner writes to no topic it does "
        "not own, and a service's output topics are not redirected yet"
    )


def _refused_change(ctx: Context, where: str) -> Any:
    def change(self: Any, *args: Any, **kwargs: Any) -> Any:
        ctx.refuse(f"the service calls {where}(); the tuner changes nothing it does not own")

    return change


def _topics_renamed(ctx: Context, new_topics: Any, attribute: str, where: str) -> list[Any]:
    """The topics to create, the service's renamed to the trial's (others refused)."""
    topics = list(new_topics)
    names = [getattr(t, attribute) for t in topics]
    others = [n for n in names if n != ctx.plan.service_topic]
    if others:
        ctx.refuse(
            f"the service creates the topic {', '.join(map(repr, others))} in {where}; the "
            "tuner creates no topic it does not own"
        )
    return topics


def kwargs_admin(base: type[Any], ctx: Context) -> type[Any]:
    """aiokafka's `AIOKafkaAdminClient`, kafka-python's `KafkaAdminClient`: on the trial's
    cluster, `create_topics` of the trial's topic (`NewTopic.name`), every change refused."""
    name = base.__name__

    def __init__(self: Any, *args: Any, **configs: Any) -> None:
        base.__init__(self, *args, **{**configs, "bootstrap_servers": ctx.plan.bootstrap_servers})

    def create_topics(self: Any, new_topics: Any, *args: Any, **kwargs: Any) -> Any:
        renamed = [
            copy.copy(t)
            for t in _topics_renamed(ctx, new_topics, "name", f"{name}.create_topics()")
        ]
        for topic in renamed:
            topic.name = ctx.plan.trial_topic
        return base.create_topics(self, renamed, *args, **kwargs)

    changes = {m: _refused_change(ctx, f"{name}.{m}") for m in CHANGES if hasattr(base, m)}
    return subclass(base, {**changes, "__init__": __init__, "create_topics": create_topics})


def kwargs_producer(base: type[Any], ctx: Context) -> type[Any]:
    """aiokafka's `AIOKafkaProducer` (`send`, `send_batch`; `send_and_wait` calls `send`) and
    kafka-python's `KafkaProducer` (`send`), on the trial's cluster, producing nothing."""
    name = base.__name__

    def __init__(self: Any, *args: Any, **configs: Any) -> None:
        base.__init__(self, *args, **{**configs, "bootstrap_servers": ctx.plan.bootstrap_servers})

    def send(self: Any, topic: Any, *args: Any, **kwargs: Any) -> Any:
        _produces(ctx, f"{name}.send()", topic)

    def send_batch(self: Any, batch: Any, topic: Any, *args: Any, **kwargs: Any) -> Any:
        _produces(ctx, f"{name}.send_batch()", topic)

    namespace: dict[str, Any] = {"__init__": __init__, "send": send}
    if hasattr(base, "send_batch"):
        namespace["send_batch"] = send_batch
    return subclass(base, namespace)


def _conf(ctx: Context, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """librdkafka's `(conf, ...)` with the trial's cluster."""
    conf = dict(args[0]) if args else {}
    return ({**conf, "bootstrap.servers": ctx.plan.bootstrap_servers}, *args[1:])


def confluent_producer(base: type[Any], ctx: Context) -> type[Any]:
    """confluent-kafka's `Producer` (and `SerializingProducer`, `aio`'s producer, built on
    it): `produce(topic, ...)` and `produce_batch(topic, ...)` refused."""

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        base.__init__(self, *_conf(ctx, args), **kwargs)

    def produce(self: Any, *args: Any, **kwargs: Any) -> Any:
        _produces(ctx, "Producer.produce()", kwargs.get("topic", args[0] if args else None))

    def produce_batch(self: Any, *args: Any, **kwargs: Any) -> Any:
        _produces(ctx, "Producer.produce_batch()", kwargs.get("topic", args[0] if args else None))

    namespace = {"__init__": __init__, "produce": produce, "produce_batch": produce_batch}
    return subclass(base, namespace)


def confluent_admin(base: type[Any], ctx: Context) -> type[Any]:
    """confluent-kafka's `AdminClient`, changed in place: its methods call
    `super(AdminClient, self)`, which a subclass put under its name would send back into
    itself. A `NewTopic` is a C type (`topic` read only), so the trial's is made anew with the
    service's partitions, replication and configs."""
    init, create = base.__init__, base.create_topics

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *_conf(ctx, args), **kwargs)

    def create_topics(self: Any, new_topics: Any, *args: Any, **kwargs: Any) -> Any:
        renamed = [
            type(t)(
                ctx.plan.trial_topic, t.num_partitions, t.replication_factor, config=t.config or {}
            )
            for t in _topics_renamed(ctx, new_topics, "topic", "AdminClient.create_topics()")
        ]
        return create(self, renamed, *args, **kwargs)

    changes = {m: _refused_change(ctx, f"AdminClient.{m}") for m in CHANGES if hasattr(base, m)}
    for name, method in {**changes, "__init__": __init__, "create_topics": create_topics}.items():
        setattr(base, name, method)
    return base
