"""Fetch-level facts of a confluent-kafka member, from librdkafka's own statistics.

librdkafka runs its fetches on its own threads, out of Python's reach; every
`statistics.interval.ms` it reports (as JSON, see librdkafka's STATISTICS.md) per broker the
requests sent by type, the responses received and a window of round-trip times, and per
partition the fetch queue and the consumer lag. The `tuner_consumer_*` fetch families are fed
from the differences between two reports:

- `fetch_requests`: the brokers' `req.Fetch` counts.
- `fetch_latency_seconds`: each fetch of the interval observed at its place in the broker's
  round-trip window (min, p50 … p99, max); the window holds every request on that broker
  connection, which for a consumer are almost all fetches (the coordinator has its own).
- `fetch_records` / `fetch_bytes` (and per topic): the records and bytes received in the
  interval, divided evenly over its fetches — librdkafka does not report one response's size.
- `node_responses`, `connections`: per broker `rx` and `state`.
- `lag_records`: per assigned partition, `consumer_lag_stored` (the high watermark minus the
  offset of the next record handed to the application), or before any was handed out since
  the assignment, `consumer_lag` (from the committed offset the member starts at).

What librdkafka cannot tell: the size of a single fetch response (only the interval's mean),
fetch throttle per response (only a window average), failed join rounds, and the latency of
an automatic commit (a manual commit is timed by the member).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping
from typing import Any

from tuner.consumer.instrumented import COORDINATOR_NODE_BASE
from tuner.consumer.poll_timer import WindowMax
from tuner.metrics import ConsumerMetrics, observe_many

_QUANTILES = ((0.0, "min"), (0.5, "p50"), (0.75, "p75"), (0.9, "p90"), (0.95, "p95"),
              (0.99, "p99"), (1.0, "max"))  # fmt: skip


def spread(window: Mapping[str, Any], count: int) -> list[float]:
    """`count` values (seconds) placed at evenly spaced quantiles of a librdkafka rtt window
    (microseconds), interpolating between the quantiles it reports."""
    if count <= 0 or not window.get("cnt"):
        return []
    points = [(q, float(window.get(key, 0)) / 1e6) for q, key in _QUANTILES]
    out = []
    for i in range(count):
        q = (i + 0.5) / count
        for (q0, v0), (q1, v1) in itertools.pairwise(points):
            if q <= q1:
                out.append(v0 + (v1 - v0) * (q - q0) / (q1 - q0))
                break
    return out


def lag_of(partition: Mapping[str, Any]) -> int:
    """A partition's lag: the high watermark minus the next record the application gets
    (`consumer_lag_stored`); before it got any since the assignment there is no stored offset,
    and its position is the committed offset it started from (`consumer_lag`). -1 when
    neither is known (nothing committed and nothing handed out yet)."""
    stored = int(partition.get("consumer_lag_stored", -1))
    return stored if stored >= 0 else int(partition.get("consumer_lag", -1))


class StatsReader:
    """Feeds one member's `ConsumerMetrics` from successive librdkafka statistics reports."""

    def __init__(self, metrics: ConsumerMetrics) -> None:
        self.metrics = metrics
        self._fetches: dict[str, int] = {}
        self._responses: dict[str, int] = {}
        self._received: dict[str, tuple[int, int]] = {}
        self._fetch_max = WindowMax()
        self.assigned: set[tuple[str, int]] = set()
        """The member's assignment, kept by its rebalance callbacks: lag only for these."""
        self.reports = 0

    def __call__(self, report: str) -> None:
        """librdkafka's `stats_cb`: called inside `consume()`, on the member's thread."""
        self.read(json.loads(report))

    def read(self, stats: Mapping[str, Any]) -> None:
        m = self.metrics
        self.reports += 1
        fetches = 0
        latencies: list[float] = []
        up = 0
        brokers: Mapping[str, Any] = stats.get("brokers", {})
        ids = {b.get("nodename"): int(b.get("nodeid", -1)) for b in brokers.values()
               if b.get("source") != "logical"}  # fmt: skip
        for name, broker in brokers.items():
            up += broker.get("state") == "UP"
            node = _java_node(broker, ids)
            rx = int(broker.get("rx", 0))
            m.responded(node, rx - self._responses.get(name, 0))
            self._responses[name] = rx
            sent = int(broker.get("req", {}).get("Fetch", 0))
            new = sent - self._fetches.get(name, 0)
            self._fetches[name] = sent
            if new > 0:
                fetches += new
                latencies += spread(broker.get("rtt", {}), new)
        m.connections.set(up)
        if fetches:
            m.fetch_requests.inc(fetches)
            observe_many(m.fetch_latency, latencies)
            at = float(stats.get("ts", 0)) / 1e6
            m.fetch_latency_max.set(self._fetch_max.add(at, max(latencies, default=0.0)))
        self._topics(stats.get("topics", {}), fetches)

    def _topics(self, topics: Mapping[str, Any], fetches: int) -> None:
        m = self.metrics
        records_all = bytes_all = 0
        for topic, data in topics.items():
            records = nbytes = 0
            for partition, p in data.get("partitions", {}).items():
                if int(partition) < 0:
                    continue  # librdkafka's internal "unassigned" partition
                records += int(p.get("rxmsgs", 0))
                nbytes += int(p.get("rxbytes", 0))
                lag = lag_of(p)
                if (topic, int(partition)) in self.assigned and lag >= 0:
                    m.lag(topic, int(partition), lag)
            seen_r, seen_b = self._received.get(topic, (0, 0))
            self._received[topic] = (records, nbytes)
            new_r, new_b = max(records - seen_r, 0), max(nbytes - seen_b, 0)
            records_all += new_r
            bytes_all += new_b
            for i in range(fetches):  # evenly, the remainders on the first fetches
                m.fetched(
                    topic,
                    new_r // fetches + (i < new_r % fetches),
                    new_b // fetches + (i < new_b % fetches),
                )
        if fetches:
            observe_many(m.fetch_records, [records_all / fetches] * fetches)
            observe_many(m.fetch_bytes, [bytes_all / fetches] * fetches)


def _java_node(broker: Mapping[str, Any], ids: Mapping[object, int]) -> str:
    """The Java client's `node-id` tag: the coordinator connection (librdkafka's logical
    `GroupCoordinator` broker, matched to its broker by address) counted down from
    `Integer.MAX_VALUE`, as in `java_node_id`."""
    node = int(broker.get("nodeid", -1))
    if broker.get("source") == "logical":
        node = ids.get(broker.get("nodename"), node)
        return f"node-{COORDINATOR_NODE_BASE - max(node, 0)}"
    return f"node-{node}"


def assigned_pairs(partitions: Iterable[Any]) -> set[tuple[str, int]]:
    """(topic, partition) of confluent-kafka `TopicPartition`s."""
    return {(tp.topic, tp.partition) for tp in partitions}
