"""`InstrumentedConsumer`: an aiokafka consumer reporting fetch, poll, rebalance, commit metrics.

Usable in your own application: build it with the same keyword arguments as
`AIOKafkaConsumer`, plus a `ConsumerMetrics`, and call `getmany()` / `processed()` / `commit()`.

Fetch metrics are taken at the FetchRequest round trip inside aiokafka, which has no hook for
it: the consumer's client `send` (every response, per broker), the coordinator's commit and
its join/sync round are wrapped on the instance; so are the client's two ways of connecting,
whose refused logins `auth_failures` counts.
This module and `auth_failures` are the only ones that touch aiokafka internals; if they move,
it logs a warning and runs without those metrics rather than failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import operator
import struct
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.client import ConnectionGroup

from tuner.consumer import auth_failures
from tuner.consumer.poll_timer import PollTimer, WindowMax
from tuner.metrics import ConsumerMetrics

log = logging.getLogger(__name__)

FETCH_API_KEY = 1
_BATCH_HEADER = struct.Struct(">qi")  # baseOffset, batchLength
_RECORDS_COUNT = struct.Struct(">i")
_RECORDS_COUNT_OFFSET = 57  # v2 record batch: recordsCount follows baseSequence (KIP-98 format)
_BATCH_OVERHEAD = 12  # baseOffset + batchLength precede the batchLength bytes
COORDINATOR_NODE_BASE = 2**31 - 1
"""The Java client names its coordinator connection node `Integer.MAX_VALUE - broker id`."""
LAG_EVERY_S = 1.0
LAG_STALE_S = 2 * LAG_EVERY_S
"""A member's lag reading is stale once its gap between polls has been open this long: it
reads lag at a poll (aiokafka at most every `LAG_EVERY_S`; librdkafka's statistics are
served from `consume()` each second), so a member stuck in one batch still shows the lag of
the poll before it, or none. The trial then takes lag from the broker's offsets."""
LAG_POSITION_TIMEOUT_S = 0.05
_VALUE_SIZE = operator.attrgetter("serialized_value_size")
"""Per-record work is the hot path: map+attrgetter is ~5x cheaper than a Python loop."""


def count_records(record_set: bytes | None) -> int:
    """Records in a fetched record set, from the v2 batch headers (no decompression)."""
    if not record_set:
        return 0
    total, pos, size = 0, 0, len(record_set)
    while pos + _RECORDS_COUNT_OFFSET + 4 <= size:
        _, length = _BATCH_HEADER.unpack_from(record_set, pos)
        if pos + _BATCH_OVERHEAD + length > size:
            break  # a truncated trailing batch: the broker cut it at the fetch size
        total += _RECORDS_COUNT.unpack_from(record_set, pos + _RECORDS_COUNT_OFFSET)[0]
        pos += _BATCH_OVERHEAD + length
    return total


def batch_totals(batch: dict[TopicPartition, list[Any]]) -> dict[str, tuple[int, int]]:
    """Topic → (records, value bytes) of a polled batch."""
    out: dict[str, tuple[int, int]] = {}
    for tp, records in batch.items():
        if records:
            r, b = out.get(tp.topic, (0, 0))
            out[tp.topic] = (r + len(records), b + sum(map(_VALUE_SIZE, records)))
    return out


def java_node_id(node_id: int, group: int) -> str:
    """The Java client's `node-id` tag: `node-<id>`, the coordinator connection counted down
    from `Integer.MAX_VALUE` (as Java's AbstractCoordinator does)."""
    if group == ConnectionGroup.COORDINATION:
        return f"node-{COORDINATOR_NODE_BASE - node_id}"
    return f"node-{node_id}"


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    def __init__(self, owner: InstrumentedConsumer) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        self._owner._on_revoked(list(revoked))

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self._owner._on_assigned(list(assigned))


class InstrumentedConsumer:
    """An `AIOKafkaConsumer` subscribed to `topics`, measured; `async with` starts and stops it."""

    def __init__(self, *topics: str, metrics: ConsumerMetrics, **consumer_kwargs: Any) -> None:
        self.topics = topics
        self.metrics = metrics
        self.consumer = AIOKafkaConsumer(**consumer_kwargs)
        self.assignments = 0
        self._revoked_at: float | None = None
        self._poll_timer = PollTimer(metrics)
        self._fetch_max = WindowMax()
        self._loop_max = WindowMax()
        self._loop_lock = threading.Lock()
        self._loop_due: float | None = None
        metrics.loop_blocked_max.set_function(self._loop_held_max)
        self._lag_at = 0.0
        self._positions: dict[TopicPartition, int] = {}
        metrics.max_poll_interval.set(consumer_kwargs.get("max_poll_interval_ms", 300000) / 1000)
        metrics.fetch_max_wait.set(consumer_kwargs.get("fetch_max_wait_ms", 500) / 1000)
        self._hook_connects()

    async def start(self) -> None:
        self.consumer.subscribe(topics=list(self.topics), listener=_Listener(self))
        await self.consumer.start()
        self._hook_internals()

    async def stop(self) -> None:
        """Leave the group; with auto-commit on, aiokafka commits the consumed offsets first."""
        self._poll_timer.close()
        await self.consumer.stop()

    async def __aenter__(self) -> InstrumentedConsumer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- hooks into aiokafka ---------------------------------------------------------------

    def _hook_connects(self) -> None:
        """Before `start`: bootstrap is the first connection, and where a wrong password fails."""
        client = getattr(self.consumer, "_client", None)
        if client is None or not all(hasattr(client, n) for n in ("bootstrap", "_get_conn")):
            log.warning("aiokafka internals changed: no failed-authentication count")
            return
        if not auth_failures.install():
            log.warning("logger aiokafka drops ERROR records: no failed-authentication count")
        credit = self.metrics.failed_authentications.inc
        client.bootstrap = auth_failures.attributed(client.bootstrap, credit)
        client._get_conn = auth_failures.attributed(client._get_conn, credit)

    def _hook_internals(self) -> None:
        client = getattr(self.consumer, "_client", None)
        coordinator = getattr(self.consumer, "_coordinator", None)
        if client is None or not hasattr(client, "send"):
            log.warning("aiokafka internals changed: no fetch metrics")
        else:
            client.send = self._timed_send(client.send)
        conns = getattr(client, "_conns", None)
        if isinstance(conns, dict):
            self.metrics.connections.set_function(
                lambda: sum(1 for conn in list(conns.values()) if conn.connected())
            )
        else:
            log.warning("aiokafka internals changed: no connection count")
        if coordinator is None or not hasattr(coordinator, "_do_commit_offsets"):
            log.warning("aiokafka internals changed: no commit metrics")
        else:
            coordinator._do_commit_offsets = self._timed_commit(coordinator._do_commit_offsets)
        if coordinator is None or not hasattr(coordinator, "_do_rejoin_group"):
            log.warning("aiokafka internals changed: no failed-rebalance count")
        else:
            coordinator._do_rejoin_group = self._counted_rejoin(coordinator._do_rejoin_group)

    def _timed_send(self, send: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        m = self.metrics

        async def send_and_measure(node_id: int, request: Any, **kwargs: Any) -> Any:
            node = java_node_id(node_id, kwargs.get("group", ConnectionGroup.DEFAULT))
            if getattr(request, "API_KEY", None) != FETCH_API_KEY:
                response = await send(node_id, request, **kwargs)
                m.responded(node)
                return response
            started = time.perf_counter()
            response = await send(node_id, request, **kwargs)
            returned = time.perf_counter()
            m.responded(node)
            m.fetch_latency.observe(returned - started)
            m.fetch_latency_max.set(self._fetch_max.add(returned, returned - started))
            m.fetch_requests.inc()
            throttle_ms = getattr(response, "throttle_time_ms", None)  # FetchResponse v1+
            if throttle_ms is not None:
                m.fetch_throttle.observe(throttle_ms / 1000)
            records = nbytes = 0
            for topic, partitions in response.topics:
                topic_records = topic_bytes = 0
                for part in partitions:
                    record_set = part[-1]
                    if record_set:
                        topic_bytes += len(record_set)
                        topic_records += count_records(record_set)
                m.fetched(topic, topic_records, topic_bytes)
                records += topic_records
                nbytes += topic_bytes
            m.fetch_records.observe(records)
            m.fetch_bytes.observe(nbytes)
            return response

        return send_and_measure

    def _timed_commit(self, commit: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        m = self.metrics

        async def commit_and_measure(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await commit(*args, **kwargs)
            finally:
                m.commit_latency.observe(time.perf_counter() - started)

        return commit_and_measure

    def _counted_rejoin(
        self, rejoin: Callable[..., Awaitable[bool]]
    ) -> Callable[..., Awaitable[bool]]:
        """aiokafka's one JoinGroup + SyncGroup round: False means it failed and is retried
        (what the Java client counts in failed-rebalance-total)."""
        m = self.metrics

        async def rejoin_and_count(*args: Any, **kwargs: Any) -> bool:
            joined = await rejoin(*args, **kwargs)
            if not joined:
                m.failed_rebalances.inc()
            return joined

        return rejoin_and_count

    def _on_revoked(self, revoked: list[TopicPartition]) -> None:
        # A rebalance is counted when it starts (the member is asked to give its partitions
        # back), so one that never completes inside the window still counts.
        if self.assignments > 0:
            self.metrics.rebalances.inc()
            self.metrics.last_rebalance.set(time.time())
        self._revoked_at = time.perf_counter()
        for tp in revoked:
            self.metrics.forget_partition(tp.topic, tp.partition)
            self._positions.pop(tp, None)

    def _on_assigned(self, assigned: list[TopicPartition]) -> None:
        if self.assignments > 0 and self._revoked_at is not None:
            self.metrics.rebalance_duration.observe(time.perf_counter() - self._revoked_at)
        self.assignments += 1
        self._revoked_at = None
        self.metrics.assigned_partitions.set(len(assigned))

    # -- the application's calls -----------------------------------------------------------

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[Any]]:
        """`AIOKafkaConsumer.getmany`, timing the gap since the last poll and the wait inside."""
        m = self.metrics
        self.check_loop()
        called = self._poll_timer.called()
        batch: dict[TopicPartition, list[Any]] = await self.consumer.getmany(
            *partitions, timeout_ms=timeout_ms, max_records=max_records
        )
        returned = self._poll_timer.returned(called)
        count = 0
        for tp, records in batch.items():
            count += len(records)
            if records:
                self._positions[tp] = records[-1].offset + 1
        m.poll_records.observe(count)
        if not count:
            m.empty_polls.inc()
        if returned - self._lag_at >= LAG_EVERY_S:
            self._lag_at = returned
            await self._update_lag()
        return batch

    def expect_loop(self, due: float | None) -> None:
        """A timer on the member's event loop is set to fire at `due` (`time.perf_counter()`);
        None: no timer any more (the member stops)."""
        self._loop_due = due

    def check_loop(self) -> None:
        """Record how late that timer is: the loop has been held that long, and aiokafka's
        heartbeat task (on the same loop) with it. Called by the timer when it fires and
        inline at each poll; a hold still going on when the member reports (from its watchdog
        thread while the loop is held) shows too, as the lateness so far."""
        self._loop_held_max()

    def _loop_held_max(self) -> float:
        now, due = time.perf_counter(), self._loop_due
        with self._loop_lock:
            return self._loop_max.add(now, 0.0 if due is None else max(now - due, 0.0))

    def processed(
        self,
        batch: dict[TopicPartition, list[Any]],
        seconds: float,
        totals: dict[str, tuple[int, int]] | None = None,
        blocked_s: float = 0.0,
    ) -> None:
        """Record that `batch` took `seconds` to process (the first `blocked_s` of them without
        the event loop running anything else): it counts as consumed only now.

        Counting at poll time would credit a 10,000-record batch to the instant it was handed
        out, while the application is still working through it for seconds.
        """
        m = self.metrics
        m.processing.observe(seconds)
        m.processing_blocked.inc(max(blocked_s, 0.0))
        for topic, (count, nbytes) in (batch_totals(batch) if totals is None else totals).items():
            m.consumed(topic, count, nbytes)
            m.processing_records.inc(count)
        now_ms = time.time() * 1000.0
        for records in batch.values():
            if records:
                m.e2e_latency.observe(max(now_ms - records[-1].timestamp, 0.0) / 1000)

    async def commit(self) -> None:
        """Commit the consumed positions (timed by the commit hook)."""
        await self.consumer.commit()

    async def _update_lag(self) -> None:
        """Highwater minus position per assigned partition. A partition that has handed out
        no record since it was assigned asks the consumer for its position (a member that
        got an empty partition in a rebalance still has a lag: zero)."""
        for tp in self.consumer.assignment():
            high = self.consumer.highwater(tp)
            position = self._positions.get(tp)
            if high is not None and position is None:
                with contextlib.suppress(Exception):  # position not known yet: next time
                    async with asyncio.timeout(LAG_POSITION_TIMEOUT_S):
                        position = self._positions[tp] = await self.consumer.position(tp)
            if high is not None and position is not None:
                self.metrics.lag(tp.topic, tp.partition, max(high - position, 0))
