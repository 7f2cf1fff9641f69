"""Every Prometheus metric the tuner exports, and reading windows of them back.

Instruments are created against a registry passed in (never the global one). Consumers
observe per fetch, poll and batch, never per record (one `observe` costs ~0.5 µs), except the
end-to-end latency, which is sampled. The trial reads window deltas of these same samples, so
the report, the objective and Grafana agree.
"""

from __future__ import annotations

import bisect
import collections
import contextlib
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

PREFIX = "tuner_consumer_"
GROUP_LABELS = ("group", "member")
TOPIC_LABELS = (*GROUP_LABELS, "topic")
PARTITION_LABELS = (*TOPIC_LABELS, "partition")

LATENCY_BUCKETS = (
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8,
    1.0, 1.5, 2.0, 3.0, 5.0, 10.0,
)  # fmt: skip
"""Fetch/commit latency: fine around the 500 ms `fetch.max.wait.ms` default."""
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

    def __init__(self, registry: CollectorRegistry, *, group: str, member: str) -> None:
        self.group = group
        self.member = member
        r = registry
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
        self.poll_interval = Histogram(
            f"{PREFIX}poll_interval_seconds",
            "Time between successive polls (what max.poll.interval.ms bounds).", GROUP_LABELS,
            buckets=POLL_INTERVAL_BUCKETS, registry=r,
        ).labels(group, member)  # fmt: skip
        self.poll_interval_max = Gauge(
            f"{PREFIX}poll_interval_max_seconds",
            "Longest time between polls in the last 30 s.", GROUP_LABELS, registry=r,
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
            "Share of time spent waiting inside poll rather than processing (recent).",
            GROUP_LABELS, registry=r,
        ).labels(group, member)  # fmt: skip
        self.processing = Histogram(
            f"{PREFIX}processing_seconds", "Application processing time per polled batch.",
            GROUP_LABELS, buckets=POLL_INTERVAL_BUCKETS, registry=r,
        ).labels(group, member)  # fmt: skip
        self.rebalances = Counter(
            f"{PREFIX}rebalances", "Rebalances the member took part in after its first assignment.",
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

    def consumed(self, topic: str, records: int, nbytes: int) -> None:
        children = self._by_topic.get(topic)
        if children is None:
            children = (
                self._records.labels(self.group, self.member, topic),
                self._bytes.labels(self.group, self.member, topic),
            )
            self._by_topic[topic] = children
        children[0].inc(records)
        children[1].inc(nbytes)

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
        for state in TRIAL_STATES:
            self._trials.labels(study, state)

    def started(self, number: int, settings: Mapping[str, object]) -> None:
        self._number.set(number)
        self._info.clear()
        for name, value in sorted(settings.items()):
            self._info.labels(self.study, name, str(value)).set(1)

    def finished(self, state: str, value: float | None, best: float | None) -> None:
        """`state` is one of TRIAL_STATES; `value` the trial's records/s, if it has one."""
        self._trials.labels(self.study, state).inc()
        if value is not None:
            self._objective.clear()
            self._objective.labels(self.study, state).set(value)
        if best is not None:
            self._best.set(best)


TRIAL_STATES = ("complete", "infeasible", "pruned", "failed")


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

    def delivered(self, latencies_s: Sequence[float], value_bytes: int) -> None:
        """Many acknowledged records at once: one increment per counter and histogram bucket,
        not per record (a per-record `observe` cost more than producing the record)."""
        if not latencies_s:
            return
        self.sent.inc(len(latencies_s))
        self.bytes_sent.inc(len(latencies_s) * value_bytes)
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


# --- the Java client's names (metrics.java_compatible) -------------------------------------
#
# The consumers' measurements again, under the names the Prometheus JMX exporter gives the
# Java client's metrics, so dashboards and alerts written for Java consumers work on these
# aiokafka consumers: a `client_id` label (the member's aiokafka client id) and the Java
# client's meanings — averages and rates over a recent window (30 s, as
# `metrics.sample.window.ms`), times in ms. Computed at scrape time from the `tuner_consumer_*`
# families; nothing extra runs per record.

JAVA_WINDOW_S = 30.0
JAVA_FETCH = "kafka_consumer_consumer_fetch_manager_metrics_"
JAVA_COORDINATOR = "kafka_consumer_consumer_coordinator_metrics_"
JAVA_CONSUMER = "kafka_consumer_consumer_metrics_"

Totals = dict[str, float]
"""One member's cumulative values (`<family>_sum`, `<family>_count`, counters) and gauges."""

_SUMMED = {
    f"{PREFIX}records_consumed_total": "records",
    f"{PREFIX}bytes_consumed_total": "bytes",
    f"{PREFIX}fetch_requests_total": "fetches",
    f"{PREFIX}rebalances_total": "rebalances",
    f"{PREFIX}fetch_latency_seconds_sum": "fetch_latency_sum",
    f"{PREFIX}fetch_latency_seconds_count": "fetch_latency_count",
    f"{PREFIX}fetch_records_sum": "fetch_records_sum",
    f"{PREFIX}fetch_records_count": "fetch_records_count",
    f"{PREFIX}fetch_bytes_sum": "fetch_bytes_sum",
    f"{PREFIX}fetch_bytes_count": "fetch_bytes_count",
    f"{PREFIX}poll_interval_seconds_sum": "poll_interval_sum",
    f"{PREFIX}poll_interval_seconds_count": "poll_interval_count",
    f"{PREFIX}commit_latency_seconds_sum": "commit_latency_sum",
    f"{PREFIX}commit_latency_seconds_count": "commit_latency_count",
    f"{PREFIX}rebalance_duration_seconds_sum": "rebalance_latency_sum",
    f"{PREFIX}rebalance_duration_seconds_count": "rebalance_latency_count",
    f"{PREFIX}poll_interval_max_seconds": "poll_interval_max",
    f"{PREFIX}poll_idle_ratio": "poll_idle_ratio",
    f"{PREFIX}last_rebalance_timestamp_seconds": "last_rebalance",
    f"{PREFIX}last_poll_timestamp_seconds": "last_poll",
    f"{PREFIX}assigned_partitions": "assigned_partitions",
}
_MAXED = {f"{PREFIX}lag_records": "lag_max"}


@dataclass(frozen=True, slots=True)
class JavaMapping:
    """One Java-named metric: how it is computed from a member's window."""

    name: str
    help: str
    value: Callable[[Totals, Totals | None, float], float | None]
    """(now, the window's oldest totals or None, window seconds) → value, None = no sample."""


def _avg(key: str, scale: float = 1.0) -> Callable[[Totals, Totals | None, float], float | None]:
    def value(now: Totals, old: Totals | None, _dt: float) -> float | None:
        base = old or {}
        count = now.get(f"{key}_count", 0.0) - base.get(f"{key}_count", 0.0)
        if count <= 0:
            return None
        return (now.get(f"{key}_sum", 0.0) - base.get(f"{key}_sum", 0.0)) / count * scale

    return value


def _rate(key: str, per: float = 1.0) -> Callable[[Totals, Totals | None, float], float | None]:
    def value(now: Totals, old: Totals | None, dt: float) -> float | None:
        if old is None or dt <= 0:
            return None
        return (now.get(key, 0.0) - old.get(key, 0.0)) / dt * per

    return value


def _current(
    key: str, scale: float = 1.0
) -> Callable[[Totals, Totals | None, float], float | None]:
    return lambda now, _old, _dt: now[key] * scale if key in now else None


def _ago(key: str) -> Callable[[Totals, Totals | None, float], float | None]:
    """Seconds since a Unix timestamp; -1 when it never happened, as the Java client says."""

    def value(now: Totals, _old: Totals | None, _dt: float) -> float | None:
        if key not in now:
            return None
        return -1.0 if now[key] <= 0 else max(time.time() - now[key], 0.0)

    return value


JAVA_MAPPINGS: tuple[JavaMapping, ...] = (
    JavaMapping(
        f"{JAVA_FETCH}fetch_latency_avg",
        "Average fetch request latency (ms).",
        _avg("fetch_latency", 1000.0),
    ),
    JavaMapping(f"{JAVA_FETCH}fetch_rate", "Fetch requests per second.", _rate("fetches")),
    JavaMapping(f"{JAVA_FETCH}fetch_total", "Fetch requests since start.", _current("fetches")),
    JavaMapping(
        f"{JAVA_FETCH}records_per_request_avg",
        "Average records per fetch response.",
        _avg("fetch_records"),
    ),
    JavaMapping(
        f"{JAVA_FETCH}fetch_size_avg", "Average bytes per fetch response.", _avg("fetch_bytes")
    ),
    JavaMapping(
        f"{JAVA_FETCH}records_consumed_rate", "Records consumed per second.", _rate("records")
    ),
    JavaMapping(
        f"{JAVA_FETCH}records_consumed_total", "Records consumed since start.", _current("records")
    ),
    JavaMapping(
        f"{JAVA_FETCH}bytes_consumed_rate", "Value bytes consumed per second.", _rate("bytes")
    ),
    JavaMapping(
        f"{JAVA_FETCH}bytes_consumed_total", "Value bytes consumed since start.", _current("bytes")
    ),
    JavaMapping(
        f"{JAVA_FETCH}records_lag_max",
        "Largest lag of the member's partitions (records).",
        _current("lag_max"),
    ),
    JavaMapping(
        f"{JAVA_COORDINATOR}rebalance_rate_per_hour",
        "Rebalances per hour.",
        _rate("rebalances", 3600.0),
    ),
    JavaMapping(
        f"{JAVA_COORDINATOR}rebalance_total",
        "Rebalances since the first assignment.",
        _current("rebalances"),
    ),
    JavaMapping(
        f"{JAVA_COORDINATOR}rebalance_latency_avg",
        "Average rebalance time (ms).",
        _avg("rebalance_latency", 1000.0),
    ),
    JavaMapping(
        f"{JAVA_COORDINATOR}last_rebalance_seconds_ago",
        "Seconds since the last rebalance.",
        _ago("last_rebalance"),
    ),
    JavaMapping(
        f"{JAVA_COORDINATOR}commit_latency_avg",
        "Average offset commit latency (ms).",
        _avg("commit_latency", 1000.0),
    ),
    JavaMapping(
        f"{JAVA_COORDINATOR}commit_rate",
        "Offset commits per second.",
        _rate("commit_latency_count"),
    ),
    JavaMapping(
        f"{JAVA_COORDINATOR}assigned_partitions",
        "Partitions assigned to the member.",
        _current("assigned_partitions"),
    ),
    JavaMapping(
        f"{JAVA_CONSUMER}time_between_poll_avg",
        "Average time between polls (ms).",
        _avg("poll_interval", 1000.0),
    ),
    JavaMapping(
        f"{JAVA_CONSUMER}time_between_poll_max",
        "Longest time between polls (ms).",
        _current("poll_interval_max", 1000.0),
    ),
    JavaMapping(
        f"{JAVA_CONSUMER}poll_idle_ratio_avg",
        "Share of time spent waiting in poll.",
        _current("poll_idle_ratio"),
    ),
    JavaMapping(
        f"{JAVA_CONSUMER}last_poll_seconds_ago", "Seconds since the last poll.", _ago("last_poll")
    ),
)


def member_totals(families: Iterable[Metric]) -> dict[str, Totals]:
    """client_id (`group.member`, the aiokafka client id) → that member's totals and gauges."""
    out: dict[str, Totals] = {}
    for family in families:
        for sample in family.samples:
            key = _SUMMED.get(sample.name) or _MAXED.get(sample.name)
            group, member = sample.labels.get("group"), sample.labels.get("member")
            if key is None or group is None or member is None:
                continue
            totals = out.setdefault(f"{group}.{member}", {})
            if sample.name in _MAXED:
                totals[key] = max(totals.get(key, 0.0), sample.value)
            else:
                totals[key] = totals.get(key, 0.0) + sample.value
    return out


class JavaCompatibleCollector(Collector):
    """Collects `source` and yields the Java client's metric names computed from it."""

    def __init__(
        self,
        source: Collector,
        *,
        window_s: float = JAVA_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.window_s = window_s
        self.clock = clock
        self._history: dict[str, deque[tuple[float, Totals]]] = {}
        self._lock = threading.Lock()  # the exporter serves each scrape on its own thread

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            families = self._families()
        yield from (f for f in families if f.samples)

    def _families(self) -> list[GaugeMetricFamily]:
        now = self.clock()
        members = member_totals(self.source.collect())
        families = {
            m.name: GaugeMetricFamily(m.name, m.help, labels=["client_id"]) for m in JAVA_MAPPINGS
        }
        for client_id, totals in sorted(members.items()):
            history = self._history.setdefault(client_id, deque())
            while len(history) > 1 and history[1][0] <= now - self.window_s:
                history.popleft()  # keep one sample at or before the window's start
            old_at, old = history[0] if history else (now, None)
            history.append((now, totals))
            for m in JAVA_MAPPINGS:
                value = m.value(totals, old, now - old_at)
                if value is not None:
                    families[m.name].add_metric([client_id], value)
        for client_id in set(self._history) - set(members):
            del self._history[client_id]
        return list(families.values())


def exposed(registry: CollectorRegistry, *, java_compatible: bool) -> CollectorRegistry:
    """What to serve: the registry, plus the Java-named view of it when asked for."""
    if not java_compatible:
        return registry
    served = CollectorRegistry(auto_describe=False)
    served.register(registry)
    served.register(JavaCompatibleCollector(registry))
    return served


@contextlib.contextmanager
def serve(registry: CollectorRegistry, *, host: str, port: int) -> Iterator[int]:
    """Serve `/metrics` for the registry while the block runs; yields the bound port."""
    server: WSGIServer
    thread: threading.Thread
    server, thread = start_http_server(port, addr=host, registry=registry)
    bound = int(server.server_port)
    log.info("serving metrics on http://%s:%d/metrics", host, bound)
    try:
        yield bound
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --- reading windows back ----------------------------------------------------------------

SampleKey = tuple[str, frozenset[tuple[str, str]]]


_SAMPLE_SUFFIXES = {
    "counter": ("_total", "_created"),
    "summary": ("_sum", "_count", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "info": ("_info",),
}
"""The suffixed sample names a family of each type serves (as prometheus-client lists them)."""
_SUFFIXED_ONLY = frozenset({"counter", "histogram", "gaugehistogram", "info"})
"""Types that serve no sample under the family's bare name."""


def sample_names(family: Metric) -> tuple[str, ...]:
    """Every sample name `family` can serve, whether or not it has samples yet."""
    bare = () if family.type in _SUFFIXED_ONLY else (family.name,)
    return (*bare, *(family.name + s for s in _SAMPLE_SUFFIXES.get(family.type, ())))


@dataclass(frozen=True, slots=True)
class RegistrySnapshot:
    """The samples of one group at one instant, as the exporter would serve them.

    Reading a name no collected family serves raises `KeyError`, so a renamed metric fails
    loudly instead of scoring every trial 0; a known family without samples reads as empty.
    """

    at: float
    samples: Mapping[SampleKey, float]
    names: frozenset[str]
    """Every sample name the collected families serve, including families with no samples."""

    @classmethod
    def of(cls, families: Iterable[Metric], *, group: str, at: float) -> RegistrySnapshot:
        samples: dict[SampleKey, float] = {}
        names: set[str] = set()
        for family in families:
            names.update(sample_names(family))
            for s in family.samples:
                names.add(s.name)
                if s.labels.get("group") == group:
                    samples[(s.name, frozenset(s.labels.items()))] = s.value
        return cls(at=at, samples=samples, names=frozenset(names))

    def _values(self, name: str) -> Iterator[tuple[frozenset[tuple[str, str]], float]]:
        if name not in self.names:
            raise KeyError(f"no metric family serves {name!r} (renamed or never registered?)")
        return ((labels, v) for (n, labels), v in self.samples.items() if n == name)

    def total(self, name: str) -> float:
        return sum(v for _, v in self._values(name))

    def per_member(self, name: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for labels, v in self._values(name):
            member = dict(labels).get("member", "")
            out[member] = out.get(member, 0.0) + v
        return out

    def maximum(self, name: str) -> float | None:
        values = [v for _, v in self._values(name)]
        return max(values) if values else None

    def buckets(self, name: str) -> dict[float, float]:
        """Cumulative bucket counts of a histogram summed over members: `le` → count."""
        out: dict[float, float] = {}
        for labels, v in self._values(f"{name}_bucket"):
            le = float(dict(labels)["le"])
            out[le] = out.get(le, 0.0) + v
        return out


def histogram_quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """Prometheus' `histogram_quantile` on cumulative buckets: linear within the bucket."""
    ordered = sorted(buckets.items())
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for le, count in ordered:
        if count >= rank:
            if math.isinf(le):
                return lower_bound
            span = count - lower_count
            fraction = (rank - lower_count) / span if span > 0 else 1.0
            return lower_bound + (le - lower_bound) * fraction
        lower_bound, lower_count = le, count
    return lower_bound


def delta_buckets(start: Mapping[float, float], end: Mapping[float, float]) -> dict[float, float]:
    return {le: count - start.get(le, 0.0) for le, count in end.items()}


@dataclass(frozen=True, slots=True)
class GroupWindow:
    """What the group did between two snapshots of the same instruments."""

    start: RegistrySnapshot
    end: RegistrySnapshot

    @property
    def seconds(self) -> float:
        return max(self.end.at - self.start.at, 1e-9)

    def delta(self, name: str) -> float:
        return self.end.total(name) - self.start.total(name)

    def per_member_delta(self, name: str) -> dict[str, float]:
        before = self.start.per_member(name)
        return {m: v - before.get(m, 0.0) for m, v in self.end.per_member(name).items()}

    def quantile(self, name: str, q: float) -> float | None:
        return histogram_quantile(
            q, delta_buckets(self.start.buckets(name), self.end.buckets(name))
        )

    @property
    def records(self) -> float:
        return self.delta(f"{PREFIX}records_consumed_total")

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds

    @property
    def bytes_per_s(self) -> float:
        return self.delta(f"{PREFIX}bytes_consumed_total") / self.seconds

    @property
    def fetch_requests(self) -> float:
        return self.delta(f"{PREFIX}fetch_requests_total")

    def _per_fetch(self, name: str) -> float:
        n = self.delta(f"{name}_count")
        return self.delta(f"{name}_sum") / n if n else 0.0

    @property
    def records_per_fetch(self) -> float:
        return self._per_fetch(f"{PREFIX}fetch_records")

    @property
    def bytes_per_fetch(self) -> float:
        return self._per_fetch(f"{PREFIX}fetch_bytes")

    @property
    def rebalances(self) -> int:
        """Group rebalances in the window: every member sees each one, so the max over members."""
        name = f"{PREFIX}rebalances_total"
        before = self.start.per_member(name)
        after = self.end.per_member(name)
        return int(max((v - before.get(m, 0.0) for m, v in after.items()), default=0.0))

    def ms(self, name: str, q: float) -> float | None:
        value = self.quantile(name, q)
        return None if value is None else value * 1000.0
