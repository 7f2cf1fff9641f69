"""The consumers' measurements again, under the names the JMX exporter gives the Java client's.

So dashboards and alerts written for Java consumers work on these aiokafka consumers: a
`client_id` label (the member's aiokafka client id) and the Java client's meanings — averages
and rates over a recent window (30 s, as `metrics.sample.window.ms`), times in ms. Computed at
scrape time from the `tuner_consumer_*` families; nothing extra runs per record.
"""

from __future__ import annotations

import functools
import importlib.metadata
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from tuner.metrics.instruments import PREFIX
from tuner.metrics.java_names import (
    APP_INFO,
    CLIENT_TYPE,
    JAVA_MAPPINGS,
    JAVA_WINDOW_S,
    JavaMapping,
    Scope,
    Totals,
)

_SUMMED = {
    f"{PREFIX}records_consumed_total": "records",
    f"{PREFIX}bytes_consumed_total": "bytes",
    f"{PREFIX}fetch_requests_total": "fetches",
    f"{PREFIX}rebalances_total": "rebalances",
    f"{PREFIX}failed_rebalances_total": "failed_rebalances",
    f"{PREFIX}fetch_latency_seconds_sum": "fetch_latency_sum",
    f"{PREFIX}fetch_latency_seconds_count": "fetch_latency_count",
    f"{PREFIX}fetch_latency_max_seconds": "fetch_latency_max",
    f"{PREFIX}fetch_throttle_seconds_sum": "fetch_throttle_sum",
    f"{PREFIX}fetch_throttle_seconds_count": "fetch_throttle_count",
    f"{PREFIX}fetch_records_sum": "fetch_records_sum",
    f"{PREFIX}fetch_records_count": "fetch_records_count",
    f"{PREFIX}fetch_bytes_sum": "fetch_bytes_sum",
    f"{PREFIX}fetch_bytes_count": "fetch_bytes_count",
    f"{PREFIX}connections": "connections",
    f"{PREFIX}node_responses_total": "responses",
    f"{PREFIX}failed_authentications_total": "failed_authentications",
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
_TOPIC_ONLY = {
    f"{PREFIX}fetch_topic_records_sum": "fetch_records_sum",
    f"{PREFIX}fetch_topic_records_count": "fetch_records_count",
    f"{PREFIX}fetch_topic_bytes_sum": "fetch_bytes_sum",
    f"{PREFIX}fetch_topic_bytes_count": "fetch_bytes_count",
}
"""One topic's share of each fetch response: the per-topic view of `fetch_records`/`_bytes`."""

_SCOPE_LABEL: dict[Scope, str] = {"topic": "topic", "node": "node_id"}


@dataclass(frozen=True, slots=True)
class MemberTotals:
    """One member's totals for the client as a whole, per topic and per broker node."""

    client: Totals = field(default_factory=dict)
    topics: dict[str, Totals] = field(default_factory=dict)
    nodes: dict[str, Totals] = field(default_factory=dict)

    def scoped(self, scope: Scope) -> dict[str, Totals]:
        """Label value → totals of each series of that scope ('' for the client)."""
        if scope == "topic":
            return self.topics
        if scope == "node":
            return self.nodes
        return {"": self.client}


def java_topic(topic: str) -> str:
    """The topic as the Java client tags its fetch-manager metrics: dots become underscores."""
    return topic.replace(".", "_")


def member_totals(families: Iterable[Metric]) -> dict[str, MemberTotals]:
    """client_id (`group.member`, the aiokafka client id) → that member's totals and gauges."""
    out: dict[str, MemberTotals] = {}
    for family in families:
        for sample in family.samples:
            key = (
                _SUMMED.get(sample.name) or _MAXED.get(sample.name) or _TOPIC_ONLY.get(sample.name)
            )
            group, member = sample.labels.get("group"), sample.labels.get("member")
            if key is None or group is None or member is None:
                continue
            totals = out.setdefault(f"{group}.{member}", MemberTotals())
            targets = [] if sample.name in _TOPIC_ONLY else [totals.client]
            if "topic" in sample.labels:
                targets.append(totals.topics.setdefault(java_topic(sample.labels["topic"]), {}))
            if "node_id" in sample.labels:
                targets.append(totals.nodes.setdefault(sample.labels["node_id"], {}))
            for target in targets:
                if sample.name in _MAXED:
                    target[key] = max(target.get(key, 0.0), sample.value)
                else:
                    target[key] = target.get(key, 0.0) + sample.value
    return out


class JavaCompatibleCollector(Collector):
    """Collects `source` and yields the Java client's metric names computed from it, each
    series labelled `client_type="consumer"` and `client_id` (plus `topic` or `node_id`)."""

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
        self._history: dict[str, deque[tuple[float, MemberTotals]]] = {}
        self._lock = threading.Lock()  # the exporter serves each scrape on its own thread

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            families = self._families()
        yield from (f for f in families if f.samples)

    def _families(self) -> list[Metric]:
        now = self.clock()
        members = member_totals(self.source.collect())
        families: dict[str, Metric] = {}
        for m in JAVA_MAPPINGS:  # a client and a per-topic mapping share a name: one family
            for name in m.names:
                families.setdefault(name, GaugeMetricFamily(name, m.help))
        app_info = [
            GaugeMetricFamily(name, "The consumer's app-info: one series per client (value 1).")
            for name in APP_INFO
        ]
        version = _aiokafka_version()
        for client_id, totals in sorted(members.items()):
            history = self._history.setdefault(client_id, deque())
            while len(history) > 1 and history[1][0] <= now - self.window_s:
                history.popleft()  # keep one sample at or before the window's start
            old_at, old = history[0] if history else (now, None)
            history.append((now, totals))
            client = {"client_type": CLIENT_TYPE, "client_id": client_id}
            for family in app_info:
                family.add_sample(family.name, {**client, "version": version}, 1.0)
            for m in JAVA_MAPPINGS:
                for scope in m.scopes:
                    self._add(
                        families,
                        m,
                        scope=scope,
                        client=client,
                        totals=totals,
                        old=old,
                        dt=now - old_at,
                    )
        for client_id in set(self._history) - set(members):
            del self._history[client_id]
        return [*app_info, *families.values()]

    @staticmethod
    def _add(
        families: dict[str, Metric],
        m: JavaMapping,
        *,
        scope: Scope,
        client: dict[str, str],
        totals: MemberTotals,
        old: MemberTotals | None,
        dt: float,
    ) -> None:
        before = old.scoped(scope) if old is not None else {}
        for label, current in sorted(totals.scoped(scope).items()):
            value = m.value(current, before.get(label), dt)
            if value is None:
                continue
            labels = client if scope == "client" else {**client, _SCOPE_LABEL[scope]: label}
            for name in m.names:
                families[name].add_sample(name, labels, value)


@functools.cache
def _aiokafka_version() -> str:
    """The `version` label of the app-info series (the Java client puts its own version there)."""
    try:
        return importlib.metadata.version("aiokafka")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
