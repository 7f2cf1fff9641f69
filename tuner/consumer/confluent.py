"""A confluent-kafka group member: the same loop, processing model and families as aiokafka's.

librdkafka prefetches on its own threads into a queue per partition and hands out what is
queued from `consume(num_messages, timeout)`; heartbeats never wait on the application.
Poll, batch and processing facts come from this loop around `consume()`; fetch facts from
librdkafka's statistics (`rdkafka_stats`); rebalances from the assign/revoke callbacks, counted
as for aiokafka: every change of the assignment after the first one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from prometheus_client import CollectorRegistry

from tuner import librdkafka
from tuner.consumer.handler import UserHandler
from tuner.consumer.member import (
    POLL_TIMEOUT_MS,
    MemberSpec,
    _Reporter,
    _watched,
    leave,
    work_through,
)
from tuner.consumer.messages import Message as Report
from tuner.consumer.poll_timer import PollTimer
from tuner.consumer.processing import ProcessingModel
from tuner.consumer.rdkafka_stats import StatsReader, assigned_pairs
from tuner.metrics import ConsumerMetrics
from tuner.protocol import protocol_named

log = logging.getLogger(__name__)
_AUTH_ERRORS = frozenset({
    KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED,
    KafkaError._SSL,
})  # fmt: skip


def batch_totals(batch: list[Message]) -> dict[str, tuple[int, int]]:
    """Topic → (records, value bytes) of a consumed batch (error events excluded)."""
    out: dict[str, tuple[int, int]] = {}
    for msg in batch:
        topic = msg.topic()
        if topic is None or msg.error() is not None:
            continue
        value = msg.value()
        r, b = out.get(topic, (0, 0))
        out[topic] = (r + 1, b + (len(value) if value else 0))
    return out


class RdConsumer:
    """A `confluent_kafka.Consumer` subscribed to `topic`, measured into `metrics`."""

    def __init__(
        self, topic: str, *, metrics: ConsumerMetrics, conf: dict[str, Any], batch: int
    ) -> None:
        self.topic, self.metrics, self.batch = topic, metrics, batch
        self.stats = StatsReader(metrics)
        self.assignments = 0
        self._revoked_at: float | None = None
        self._poll_timer = PollTimer(metrics)
        metrics.max_poll_interval.set(librdkafka.max_poll_interval_s(conf))
        metrics.fetch_max_wait.set(librdkafka.fetch_wait_s(conf))
        self.consumer = Consumer({
            **conf,
            "statistics.interval.ms": librdkafka.STATISTICS_INTERVAL_MS,
            "stats_cb": self.stats,
            "error_cb": self._error,
            # librdkafka's own log lines go through the member's logger, served by consume(),
            # instead of straight to stderr: warnings and errors show, its info chatter does not.
            "logger": log,
        })  # fmt: skip

    def start(self) -> None:
        self.consumer.subscribe(
            [self.topic], on_assign=self._on_assign, on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )  # fmt: skip

    def _error(self, error: KafkaError) -> None:
        if error.code() in _AUTH_ERRORS:
            self.metrics.failed_authentications.inc()
        self.metrics.error(error.name().lstrip("_").lower())

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if not partitions:
            return
        # Counted when it starts, as for aiokafka: a rebalance that never completes counts.
        if self.assignments > 0:
            self.metrics.rebalances.inc()
            self.metrics.last_rebalance.set(time.time())
        self._revoked_at = time.perf_counter()
        for pair in assigned_pairs(partitions):
            self.stats.assigned.discard(pair)
            self.metrics.forget_partition(*pair)
        self.metrics.assigned_partitions.set(len(self.stats.assigned))

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Eager (classic range/roundrobin) hands the whole new assignment after a revoke;
        incremental protocols (cooperative-sticky, KIP-848) only the partitions added, with
        no revoke before them when the member only gains: that change counts here."""
        m = self.metrics
        if self.assignments > 0:
            if self._revoked_at is not None:
                m.rebalance_duration.observe(time.perf_counter() - self._revoked_at)
            elif partitions:
                m.rebalances.inc()
                m.last_rebalance.set(time.time())
        if partitions or self.assignments == 0:
            self.assignments += 1
        self._revoked_at = None
        self.stats.assigned |= assigned_pairs(partitions)
        m.assigned_partitions.set(len(self.stats.assigned))

    def poll(self, timeout_s: float) -> list[Message]:
        """`consume()` a batch, timing the gap since the last call and the wait inside."""
        m = self.metrics
        called = self._poll_timer.called()
        batch = self.consumer.consume(self.batch, timeout_s)
        self._poll_timer.returned(called)
        records = []
        for msg in batch:
            error = msg.error()
            if error is None:
                records.append(msg)
            elif error.code() != KafkaError._PARTITION_EOF:
                raise KafkaException(error)
        m.poll_records.observe(len(records))
        if not records:
            m.empty_polls.inc()
        return records

    def processed(
        self,
        batch: list[Message],
        seconds: float,
        totals: dict[str, tuple[int, int]],
        blocked_s: float,
    ) -> None:
        """Record that `batch` took `seconds` (the first `blocked_s` of them without the event
        loop running anything else): it counts as consumed only now."""
        m = self.metrics
        m.processing.observe(seconds)
        m.processing_blocked.inc(max(blocked_s, 0.0))
        for topic, (count, nbytes) in totals.items():
            m.consumed(topic, count, nbytes)
            m.processing_records.inc(count)
        now_ms = time.time() * 1000.0
        last: dict[tuple[str | None, int | None], int] = {}
        for msg in batch:
            last[msg.topic(), msg.partition()] = msg.timestamp()[1]
        for stamp in last.values():  # the last record of each partition, as for aiokafka
            m.e2e_latency.observe(max(now_ms - stamp, 0.0) / 1000)

    def close(self) -> None:
        """Stop polling (no gap is open after) and close: librdkafka commits the stored offsets
        (auto-commit) and leaves the group."""
        self._poll_timer.close()
        self.consumer.close()

    def commit(self) -> None:
        started = time.perf_counter()
        try:
            self.consumer.commit(asynchronous=False)
        finally:
            self.metrics.commit_latency.observe(time.perf_counter() - started)


async def run_confluent_member(
    spec: MemberSpec,
    send: Callable[[Report], None],
    stopped: Callable[[], bool],
    *,
    watch: bool = False,
) -> None:
    """Consume until `stopped()`: consume a batch, process, commit (auto-commit off), report.

    `consume()` blocks the loop for up to its timeout; nothing else runs in this loop (the
    member is its own process), and reports are sent between batches. The user's handler, if
    any, gets the `Message`s of each `consume()`; librdkafka heartbeats on its own thread, so
    a plain `def` handler delays only `max.poll.interval.ms`, never the session. Nothing else
    runs in the loop to report during a long batch: `watch` starts the member's watchdog thread.
    """
    conf = {
        **librdkafka.connection_config(spec.bootstrap_servers, spec.cluster.security),
        "group.id": spec.group_id,
        "client.id": f"{spec.group_id}.{spec.member}",
        **spec.consumer_kwargs,
    }
    registry = CollectorRegistry(auto_describe=False)
    metrics = ConsumerMetrics(
        registry, group=spec.group_id, member=spec.member, client=spec.client,
        group_protocol=protocol_named(conf.get("group.protocol", "classic")),
    )  # fmt: skip
    metrics.consumed(spec.topic, 0, 0)
    model = ProcessingModel(spec.processing, seed=spec.seed)
    app = UserHandler(spec.handler) if spec.handler is not None else None
    manual_commit = conf.get("enable.auto.commit") is False
    consumer = RdConsumer(spec.topic, metrics=metrics, conf=conf, batch=spec.batch_records)
    reporter = _Reporter(spec.member, registry, send)
    reporter.assignments = lambda: consumer.assignments
    try:
        if app is not None:
            await app.setup()  # before joining: the group does not wait on it
        consumer.start()
        with _watched(reporter, watch):
            while not stopped():
                batch = consumer.poll(POLL_TIMEOUT_MS / 1000)
                totals = batch_totals(batch)
                seconds, blocked_s = await work_through(
                    batch, totals, app or model, reporter, stopped
                )
                consumer.processed(batch, seconds, totals, blocked_s)
                reporter.batch_done(totals)
                if manual_commit and batch:
                    consumer.commit()
                if reporter.due():
                    reporter.report()
    finally:
        await leave(asyncio.to_thread(consumer.close), spec.member, send, reporter, app)
