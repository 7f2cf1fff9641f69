"""The Java client's consumer metric names, as the JMX exporter serves them, and how each is
computed from a member's totals: averages and rates over its sample windows (2 of 30 s, as
`metrics.num.samples` and `metrics.sample.window.ms`), the rest as they are at the scrape."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

JAVA_WINDOW_S = 30.0
"""One sample window, as the Java client's `metrics.sample.window.ms` (30000)."""
JAVA_SAMPLES = 2
"""Sample windows kept, as `metrics.num.samples` (2): a rate covers 30 to 60 s."""
JAVA_TICK_S = 1.0
"""How often the view samples the members on its own clock: how stale a served rate may be."""
JAVA_FETCH = "kafka_consumer_consumer_fetch_manager_metrics_"
JAVA_COORDINATOR = "kafka_consumer_consumer_coordinator_metrics_"
JAVA_CONSUMER = "kafka_consumer_consumer_metrics_"
JAVA_NODE = "kafka_consumer_consumer_node_metrics_"

APP_INFO = ("kafka_consumer_app_info", "kafka_consumer_app")
"""The app-info bean as JMX exporter 0.x and 1.x name it: what dashboards list clients from."""
CLIENT_TYPE = "consumer"

Totals = dict[str, float]
"""One member's cumulative values (`<family>_sum`, `<family>_count`, counters) and gauges."""

Scope = Literal["client", "topic", "node"]
"""What one Java series describes: the client, one topic it fetches, or one broker node."""


@dataclass(frozen=True, slots=True)
class Windowed:
    """A value over the member's sample windows, computed on the view's clock: (totals at the
    tick, totals at the start of the oldest sample kept, seconds between them) → value, None
    for no sample."""

    of: Callable[[Totals, Totals, float], float | None]


@dataclass(frozen=True, slots=True)
class Live:
    """A value read from the member's totals at the scrape (a count, a gauge, a time)."""

    of: Callable[[Totals], float | None]


@dataclass(frozen=True, slots=True)
class JavaMapping:
    """One Java-named metric: how it is computed from a member's totals."""

    name: str
    help: str
    value: Windowed | Live
    scopes: tuple[Scope, ...] = ("client",)
    aliases: tuple[str, ...] = ()
    """The same series under other names: JMX exporter 1.x drops `_total` from gauges."""

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


_MIN_ELAPSED_S = 0.001
"""The Java client's floor on a rate's window (1 ms), so a window just begun is not 0 s."""


def _avg(key: str, scale: float = 1.0) -> Windowed:
    def value(now: Totals, start: Totals, _dt: float) -> float | None:
        count = now.get(f"{key}_count", 0.0) - start.get(f"{key}_count", 0.0)
        if count <= 0:
            return None
        return (now.get(f"{key}_sum", 0.0) - start.get(f"{key}_sum", 0.0)) / count * scale

    return Windowed(value)


def _rate(key: str, per: float = 1.0) -> Windowed:
    """Events per second over the sample windows kept. Always a value, 0 while none happened,
    as the Java client reports (dashboards add rates, and an absent series empties the sum).
    The Java client pads a young window to (samples - 1) x 30 s, which under-reports a
    client's first 30 s; trials are often shorter, so the time the samples cover is used."""

    def value(now: Totals, start: Totals, dt: float) -> float:
        return (now.get(key, 0.0) - start.get(key, 0.0)) / max(dt, _MIN_ELAPSED_S) * per

    return Windowed(value)


def _current(key: str, scale: float = 1.0) -> Live:
    return Live(lambda now: now[key] * scale if key in now else None)


def _ago(key: str) -> Live:
    """Seconds since a Unix timestamp; -1 when it never happened, as the Java client says."""

    def value(now: Totals) -> float | None:
        if key not in now:
            return None
        return -1.0 if now[key] <= 0 else max(time.time() - now[key], 0.0)

    return Live(value)


JAVA_MAPPINGS: tuple[JavaMapping, ...] = (
    JavaMapping(
        f"{JAVA_FETCH}fetch_latency_avg",
        "Average fetch request latency (ms).",
        _avg("fetch_latency", 1000.0),
    ),
    JavaMapping(f"{JAVA_FETCH}fetch_rate", "Fetch requests per second.", _rate("fetches")),
    JavaMapping(
        f"{JAVA_FETCH}fetch_total",
        "Fetch requests since start.",
        _current("fetches"),
        aliases=(f"{JAVA_FETCH}fetch",),
    ),
    JavaMapping(
        f"{JAVA_FETCH}fetch_latency_max",
        "Longest fetch request in the last 30 s (ms).",
        _current("fetch_latency_max", 1000.0),
    ),
    JavaMapping(
        f"{JAVA_FETCH}fetch_throttle_time_avg",
        "Average throttle time the broker reported in fetch responses (ms).",
        _avg("fetch_throttle", 1000.0),
    ),
    JavaMapping(
        f"{JAVA_FETCH}records_per_request_avg",
        "Average records per fetch response (of the topic, with a topic label).",
        _avg("fetch_records"),
        scopes=("client", "topic"),
    ),
    JavaMapping(
        f"{JAVA_FETCH}fetch_size_avg",
        "Average bytes per fetch response (of the topic, with a topic label).",
        _avg("fetch_bytes"),
        scopes=("client", "topic"),
    ),
    JavaMapping(
        f"{JAVA_FETCH}records_consumed_rate",
        "Records consumed per second (of the topic, with a topic label).",
        _rate("records"),
        scopes=("client", "topic"),
    ),
    JavaMapping(
        f"{JAVA_FETCH}records_consumed_total",
        "Records consumed since start (of the topic, with a topic label).",
        _current("records"),
        scopes=("client", "topic"),
        aliases=(f"{JAVA_FETCH}records_consumed",),
    ),
    JavaMapping(
        f"{JAVA_FETCH}bytes_consumed_rate",
        "Value bytes consumed per second (of the topic, with a topic label).",
        _rate("bytes"),
        scopes=("client", "topic"),
    ),
    JavaMapping(
        f"{JAVA_FETCH}bytes_consumed_total",
        "Value bytes consumed since start (of the topic, with a topic label).",
        _current("bytes"),
        scopes=("client", "topic"),
        aliases=(f"{JAVA_FETCH}bytes_consumed",),
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
        aliases=(f"{JAVA_COORDINATOR}rebalance",),
    ),
    JavaMapping(
        f"{JAVA_COORDINATOR}failed_rebalance_rate_per_hour",
        "Join/sync rounds that failed, per hour.",
        _rate("failed_rebalances", 3600.0),
    ),
    JavaMapping(
        f"{JAVA_COORDINATOR}failed_rebalance_total",
        "Join/sync rounds that failed since start.",
        _current("failed_rebalances"),
        aliases=(f"{JAVA_COORDINATOR}failed_rebalance",),
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
    JavaMapping(
        f"{JAVA_CONSUMER}connection_count",
        "Open connections to brokers.",
        _current("connections"),
    ),
    JavaMapping(
        f"{JAVA_CONSUMER}failed_authentication_rate",
        "Connections whose authentication failed, per second.",
        _rate("failed_authentications"),
    ),
    JavaMapping(
        f"{JAVA_CONSUMER}failed_authentication_total",
        "Connections whose authentication failed since start.",
        _current("failed_authentications"),
        aliases=(f"{JAVA_CONSUMER}failed_authentication",),
    ),
    JavaMapping(
        f"{JAVA_NODE}response_rate",
        "Responses from the broker node per second.",
        _rate("responses"),
        scopes=("node",),
    ),
    JavaMapping(
        f"{JAVA_NODE}response_total",
        "Responses from the broker node since start.",
        _current("responses"),
        scopes=("node",),
        aliases=(f"{JAVA_NODE}response",),
    ),
)
