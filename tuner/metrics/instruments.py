"""The instruments: every `tuner_consumer_*`, `tuner_*` study and `tuner_producer_*` metric.

Instruments are created against a registry passed in (never the global one). Consumers
observe per fetch, poll and batch, never per record (one `observe` costs ~0.5 µs), except the
end-to-end latency, which is sampled.
"""

from __future__ import annotations

import bisect
import collections
import contextlib
import math
from collections.abc import Mapping, Sequence
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from tuner.metrics.phases import Outcome
from tuner.protocol import GroupProtocol

_M = TypeVar("_M", Counter, Histogram)

PREFIX = "tuner_consumer_"
GROUP_LABELS = ("group", "member")
TOPIC_LABELS = (*GROUP_LABELS, "topic")
PARTITION_LABELS = (*TOPIC_LABELS, "partition")

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15,
    0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0,
)  # fmt: skip
"""Fetch/commit latency: fine around the 500 ms `fetch.max.wait.ms` default, and around the
round trips of a zone or a region (1-80 ms), which a network profile makes a fetch pay."""
POLL_INTERVAL_BUCKETS = (
    0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
)  # fmt: skip
"""Time between polls: up to and past the 300 s `max.poll.interval.ms` default."""
E2E_BUCKETS = (
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
)  # fmt: skip
COUNT_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 50000)
BYTES_BUCKETS = tuple(float(1 << s) for s in range(8, 27, 2))  # 256 B … 64 MiB


class ConsumerMetrics:
    """The instruments of one group member, with its labelled children looked up once."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        group: str,
        member: str,
        client: str = "aiokafka",
        group_protocol: GroupProtocol = "classic",
    ) -> None:
        self.group = group
        self.member = member
        r = registry
        Gauge(
            f"{PREFIX}client_info",
            "The member's client library and consumer group protocol, as labels (value 1).",
            (*GROUP_LABELS, "client", "group_protocol"), registry=r,
        ).labels(group, member, client, group_protocol).set(1)  # fmt: skip
        self._records = Counter(
            f"{PREFIX}records_consumed", "Records the application finished processing.",
            TOPIC_LABELS, registry=r,
        )  # fmt: skip
        self._bytes = Counter(
            f"{PREFIX}bytes_consumed", "Value bytes of the records processed.",
            TOPIC_LABELS, registry=r,
        )  # fmt: skip
        self.fetch_requests = Counter(
            f"{PREFIX}fetch_requests", "Fetch requests completed (round trips).", GROUP_LABELS,
            registry=r,
        ).labels(group, member)  # fmt: skip
        self.fetch_latency = Histogram(
            f"{PREFIX}fetch_latency_seconds", "Fetch request round trip.", GROUP_LABELS,
            buckets=LATENCY_BUCKETS, registry=r,
        ).labels(group, member)  # fmt: skip
        self.fetch_records = Histogram(
            f"{PREFIX}fetch_records", "Records per fetch response.", GROUP_LABELS,
            buckets=COUNT_BUCKETS, registry=r,
        ).labels(group, member)  # fmt: skip
        self.fetch_bytes = Histogram(
            f"{PREFIX}fetch_bytes", "Record bytes per fetch response.", GROUP_LABELS,
            buckets=BYTES_BUCKETS, registry=r,
        ).labels(group, member)  # fmt: skip
        self.fetch_latency_max = Gauge(
            f"{PREFIX}fetch_latency_max_seconds",
            "Longest fetch round trip in the last 30 s.", GROUP_LABELS, registry=r,
        ).labels(group, member)  # fmt: skip
        self.fetch_throttle = Histogram(
            f"{PREFIX}fetch_throttle_seconds",
            "Throttle time the broker reported in each fetch response (quotas).", GROUP_LABELS,
            buckets=LATENCY_BUCKETS, registry=r,
        ).labels(group, member)  # fmt: skip
        self._fetch_topic_records = Histogram(
            f"{PREFIX}fetch_topic_records", "Records of one topic per fetch response.",
            TOPIC_LABELS, buckets=COUNT_BUCKETS, registry=r,
        )  # fmt: skip
        self._fetch_topic_bytes = Histogram(
            f"{PREFIX}fetch_topic_bytes", "Record bytes of one topic per fetch response.",
            TOPIC_LABELS, buckets=BYTES_BUCKETS, registry=r,
        )  # fmt: skip
        self.connections = Gauge(
            f"{PREFIX}connections", "Open connections of the member's client to brokers.",
            GROUP_LABELS, registry=r,
        ).labels(group, member)  # fmt: skip
        self.failed_authentications = Counter(
            f"{PREFIX}failed_authentications",
            "Connection attempts the broker refused at authentication (SASL or TLS handshake).",
            GROUP_LABELS, registry=r,
        ).labels(group, member)  # fmt: skip
        self._node_responses = Counter(
            f"{PREFIX}node_responses",
            "Responses received from each broker (node_id as the Java client names it).",
            (*GROUP_LABELS, "node_id"), registry=r,
        )  # fmt: skip
        self.poll_interval = Histogram(
            f"{PREFIX}poll_interval_seconds",
            "Time between successive polls (what max.poll.interval.ms bounds).", GROUP_LABELS,
            buckets=POLL_INTERVAL_BUCKETS, registry=r,
        ).labels(group, member)  # fmt: skip
        self.poll_interval_max = Gauge(
            f"{PREFIX}poll_interval_max_seconds",
            "Longest time between polls in the last 30 s, the gap still open included.",
            GROUP_LABELS, registry=r,
        ).labels(group, member)  # fmt: skip
        self.poll_gap_open = Gauge(
            f"{PREFIX}poll_gap_open_seconds",
            "How long the member has gone without polling: since its last poll began, while it "
            "works on that poll's records (0 inside a poll). A member stuck in one batch shows "
            "here before its gap closes.", GROUP_LABELS, registry=r,
        ).labels(group, member)  # fmt: skip
        self.loop_blocked_max = Gauge(
            f"{PREFIX}event_loop_blocked_max_seconds",
            "Longest time the member's event loop was held (a timer fired this late, or is this "
            "late so far) in the last 30 s: heartbeats waited as long.", GROUP_LABELS, registry=r,
        ).labels(group, member)  # fmt: skip
        self.poll_records = Histogram(
            f"{PREFIX}poll_records", "Records returned per poll.", GROUP_LABELS,
            buckets=COUNT_BUCKETS, registry=r,
        ).labels(group, member)  # fmt: skip
        self.empty_polls = Counter(
            f"{PREFIX}empty_polls", "Polls that returned no record (waiting on a fetch).",
            GROUP_LABELS, registry=r,
        ).labels(group, member)  # fmt: skip
        self.poll_idle_ratio = Gauge(
            f"{PREFIX}poll_idle_ratio",
            "Share of time spent waiting inside poll rather than processing (recent; the batch "
            "in progress counts as processing).",
            GROUP_LABELS, registry=r,
        ).labels(group, member)  # fmt: skip
        self.processing = Histogram(
            f"{PREFIX}processing_seconds", "Application processing time per polled batch.",
            GROUP_LABELS, buckets=POLL_INTERVAL_BUCKETS, registry=r,
        ).labels(group, member)  # fmt: skip
        self.processing_blocked = Counter(
            f"{PREFIX}processing_blocked_seconds",
            "Time from each batch's start until the event loop next ran another task: near "
            "processing_seconds, the handler blocks the loop (heartbeats wait); near 0, it "
            "awaits.", GROUP_LABELS, registry=r,
        ).labels(group, member)  # fmt: skip
        self.processing_records = Counter(
            f"{PREFIX}processing_records",
            "Records of the batches counted in processing_seconds, at each batch's end (never "
            "credited pro rata, unlike records_consumed).", GROUP_LABELS, registry=r,
        ).labels(group, member)  # fmt: skip
        self.rebalances = Counter(
            f"{PREFIX}rebalances", "Rebalances the member took part in after its first assignment.",
            GROUP_LABELS, registry=r,
        ).labels(group, member)  # fmt: skip
        self.failed_rebalances = Counter(
            f"{PREFIX}failed_rebalances",
            "Join/sync rounds that ended without an assignment (the member retries).",
            GROUP_LABELS, registry=r,
        ).labels(group, member)  # fmt: skip
        self.rebalance_duration = Histogram(
            f"{PREFIX}rebalance_duration_seconds", "From partitions revoked to assigned.",
            GROUP_LABELS, buckets=LATENCY_BUCKETS, registry=r,
        ).labels(group, member)  # fmt: skip
        self.last_rebalance = Gauge(
            f"{PREFIX}last_rebalance_timestamp_seconds",
            "Unix time the member's last rebalance started (0: none since it joined).",
            GROUP_LABELS, registry=r,
        ).labels(group, member)  # fmt: skip
        self.last_poll = Gauge(
            f"{PREFIX}last_poll_timestamp_seconds", "Unix time of the member's last poll.",
            GROUP_LABELS, registry=r,
        ).labels(group, member)  # fmt: skip
        self.assigned_partitions = Gauge(
            f"{PREFIX}assigned_partitions", "Partitions assigned to the member.", GROUP_LABELS,
            registry=r,
        ).labels(group, member)  # fmt: skip
        self._lag = Gauge(
            f"{PREFIX}lag_records", "Highwater minus position, per assigned partition.",
            PARTITION_LABELS, registry=r,
        )  # fmt: skip
        self.e2e_latency = Histogram(
            f"{PREFIX}e2e_latency_seconds",
            "Record timestamp to processed (sampled: the last record of each partition batch).",
            GROUP_LABELS, buckets=E2E_BUCKETS, registry=r,
        ).labels(group, member)  # fmt: skip
        self.commit_latency = Histogram(
            f"{PREFIX}commit_latency_seconds", "Offset commit round trip.", GROUP_LABELS,
            buckets=LATENCY_BUCKETS, registry=r,
        ).labels(group, member)  # fmt: skip
        self.max_poll_interval = Gauge(
            f"{PREFIX}max_poll_interval_seconds", "Configured max.poll.interval.ms.",
            GROUP_LABELS, registry=r,
        ).labels(group, member)  # fmt: skip
        self.fetch_max_wait = Gauge(
            f"{PREFIX}fetch_max_wait_seconds", "Configured fetch.max.wait.ms.", GROUP_LABELS,
            registry=r,
        ).labels(group, member)  # fmt: skip
        self._errors = Counter(
            f"{PREFIX}errors", "Errors seen by the member, by kind.", (*GROUP_LABELS, "kind"),
            registry=r,
        )  # fmt: skip
        self._by_topic: dict[str, tuple[Counter, Counter]] = {}
        self._fetch_by_topic: dict[str, tuple[Histogram, Histogram]] = {}
        self._by_node: dict[str, Counter] = {}

    def consumed(self, topic: str, records: int, nbytes: int) -> None:
        records_child, bytes_child = self._children(
            self._by_topic, self._records, self._bytes, topic
        )
        records_child.inc(records)
        bytes_child.inc(nbytes)

    def fetched(self, topic: str, records: int, nbytes: int) -> None:
        """One topic's share of one fetch response."""
        records_child, bytes_child = self._children(
            self._fetch_by_topic, self._fetch_topic_records, self._fetch_topic_bytes, topic
        )
        records_child.observe(records)
        bytes_child.observe(nbytes)

    def _children(
        self, cache: dict[str, tuple[_M, _M]], records: _M, nbytes: _M, topic: str
    ) -> tuple[_M, _M]:
        """The (records, bytes) children of one topic, looked up once (labels() costs µs)."""
        children = cache.get(topic)
        if children is None:
            children = cache[topic] = (
                records.labels(self.group, self.member, topic),
                nbytes.labels(self.group, self.member, topic),
            )
        return children

    def responded(self, node_id: str, count: int = 1) -> None:
        child = self._by_node.get(node_id)
        if child is None:
            child = self._by_node[node_id] = self._node_responses.labels(
                self.group, self.member, node_id
            )
        if count > 0:
            child.inc(count)

    def lag(self, topic: str, partition: int, records: int) -> None:
        self._lag.labels(self.group, self.member, topic, str(partition)).set(records)

    def forget_partition(self, topic: str, partition: int) -> None:
        """Drop a revoked partition's lag series, so a stale value never lingers."""
        with contextlib.suppress(KeyError):
            self._lag.remove(self.group, self.member, topic, str(partition))

    def error(self, kind: str) -> None:
        self._errors.labels(self.group, self.member, kind).inc()


STUDY_PREFIX = "tuner_"


class StudyMetrics:
    """`tuner optimize` as it runs, for the study dashboard.

    Bounded cardinality: the trial number is a gauge value, never a label, and the settings
    info carries only the trial in flight (the previous trial's series is removed).
    """

    def __init__(self, registry: CollectorRegistry, *, study: str) -> None:
        self.study = study
        self._number = Gauge(
            f"{STUDY_PREFIX}trial_number", "Number of the trial in flight (or last run).",
            ("study",), registry=registry,
        ).labels(study)  # fmt: skip
        self._info = Gauge(
            f"{STUDY_PREFIX}trial_info",
            "The settings of the trial in flight, as labels (value 1).",
            ("study", "setting", "value"), registry=registry,
        )  # fmt: skip
        self._objective = Gauge(
            f"{STUDY_PREFIX}trial_objective",
            "Records/s of the last finished trial, by its state.", ("study", "state"),
            registry=registry,
        )  # fmt: skip
        self._best = Gauge(
            f"{STUDY_PREFIX}study_best_objective", "Best feasible records/s so far.", ("study",),
            registry=registry,
        ).labels(study)  # fmt: skip
        self._trials = Counter(
            f"{STUDY_PREFIX}study_trials", "Finished trials, by state.", ("study", "state"),
            registry=registry,
        )  # fmt: skip
        for state in Outcome:
            self._trials.labels(study, state)

    def started(self, number: int, settings: Mapping[str, object]) -> None:
        self._number.set(number)
        self._info.clear()
        for name, value in sorted(settings.items()):
            self._info.labels(self.study, name, str(value)).set(1)

    def finished(self, state: Outcome, value: float | None, best: float | None) -> None:
        """`value` is the trial's records/s, if it has one."""
        self._trials.labels(self.study, state).inc()
        if value is not None:
            self._objective.clear()
            self._objective.labels(self.study, state).set(value)
        if best is not None:
            self._best.set(best)


PRODUCER_PREFIX = "tuner_producer_"
SEND_LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0,
)  # fmt: skip


class ProducerMetrics:
    """The Locust producer's instruments (they live in the Locust process, labelled by topic)."""

    def __init__(self, registry: CollectorRegistry, *, topic: str) -> None:
        self.sent = Counter(
            f"{PRODUCER_PREFIX}records_sent", "Records the broker acknowledged.", ("topic",),
            registry=registry,
        ).labels(topic)  # fmt: skip
        self.bytes_sent = Counter(
            f"{PRODUCER_PREFIX}bytes_sent", "Value bytes the broker acknowledged.", ("topic",),
            registry=registry,
        ).labels(topic)  # fmt: skip
        self.send_latency = Histogram(
            f"{PRODUCER_PREFIX}send_latency_seconds", "produce() to delivery report.",
            ("topic",), buckets=SEND_LATENCY_BUCKETS, registry=registry,
        ).labels(topic)  # fmt: skip
        self.errors = Counter(
            f"{PRODUCER_PREFIX}errors", "Records the producer failed to deliver.", ("topic",),
            registry=registry,
        ).labels(topic)  # fmt: skip

    def delivered(
        self, latencies_s: Sequence[float], value_bytes: int, *, total_bytes: int | None = None
    ) -> None:
        """Many acknowledged records at once: one increment per counter and histogram bucket,
        not per record (a per-record `observe` cost more than producing the record). Records
        of different sizes give `total_bytes`, the sum of their values' sizes."""
        if not latencies_s:
            return
        self.sent.inc(len(latencies_s))
        self.bytes_sent.inc(len(latencies_s) * value_bytes if total_bytes is None else total_bytes)
        observe_many(self.send_latency, latencies_s)


def observe_many(histogram: Histogram, values: Sequence[float]) -> None:
    """`histogram.observe(v)` for each value, with one increment per bucket touched.

    Uses prometheus-client's per-bucket values (as its own `observe` does); a test checks
    the result equals observing each value in turn.
    """
    bounds = histogram._upper_bounds
    buckets = histogram._buckets
    for index, count in collections.Counter(bisect.bisect_left(bounds, v) for v in values).items():
        buckets[index].inc(count)
    histogram._sum.inc(math.fsum(values))
