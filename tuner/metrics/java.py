"""The consumers' measurements again, under the names the JMX exporter gives the Java client's.

So dashboards and alerts written for Java consumers work on these aiokafka consumers: a
`client_id` label (the member's aiokafka client id) and the Java client's meanings — averages
and rates over its sample windows (2 of 30 s), times in ms. Computed from the
`tuner_consumer_*` families; nothing extra runs per record.

The Java client keeps its rates on its own clock, so every reader sees the same value whoever
else reads; rates computed between scrapes would have none on the first scrape (or for a
reader that asks once) and differ between two Prometheus servers. So the view samples the
members on its own clock (`ticking`), and a scrape serves what the last tick computed.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import logging
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
    JAVA_SAMPLES,
    JAVA_TICK_S,
    JAVA_WINDOW_S,
    Live,
    Scope,
    Totals,
    Windowed,
)

log = logging.getLogger(__name__)

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


Published = dict[tuple[str, Scope, str], float]
"""(name, scope, label value) → a windowed value of one member, as the last tick computed it."""


@dataclass(slots=True)
class _Member:
    """One member's sample windows, as the Java client's `SampledStat` keeps them."""

    starts: deque[tuple[float, MemberTotals]]
    """When each sample kept began, and the member's totals then; oldest first."""
    published: Published = field(default_factory=dict)


class JavaCompatibleCollector(Collector):
    """Collects `source` and yields the Java client's metric names computed from it, each
    series labelled `client_type="consumer"` and `client_id` (plus `topic` or `node_id`).

    Averages and rates change only when the view samples (`sample`, every `JAVA_TICK_S` while
    `ticking`): each member's sample windows start on that clock, `samples` of `window_s`, and
    a value covers the windows kept, as the Java client's do. A member first seen at a tick
    started from zero after the tick before; one already there when the view was made starts
    its window then. Counts, gauges and times are read at the scrape.
    """

    def __init__(
        self,
        source: Collector,
        *,
        window_s: float = JAVA_WINDOW_S,
        samples: int = JAVA_SAMPLES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.window_s = window_s
        self.samples = samples
        self.clock = clock
        self._members: dict[str, _Member] = {}
        self._ticked_at: float | None = None
        self._lock = threading.Lock()  # the exporter serves each scrape on its own thread
        self.sample()

    def sample(self) -> None:
        """One tick of the view's clock: start new sample windows where one is full, and
        compute every average and rate that scrapes serve until the next tick."""
        with self._lock:
            self._sample(member_totals(self.source.collect()))

    @contextlib.contextmanager
    def ticking(self, every_s: float = JAVA_TICK_S) -> Iterator[None]:
        """Sample every `every_s` on a thread of its own while the block runs."""
        stop = threading.Event()

        def run() -> None:
            while not stop.wait(every_s):
                try:
                    self.sample()
                except Exception:
                    log.exception("sampling the Java-compatible view failed")

        thread = threading.Thread(target=run, name="java-metrics-clock", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=5)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            families = self._families()
        yield from (f for f in families if f.samples)

    def _sample(self, members: dict[str, MemberTotals]) -> None:
        now = self.clock()
        for client_id, totals in members.items():
            state = self._members.get(client_id)
            if state is None:
                first = (
                    (now, totals) if self._ticked_at is None else (self._ticked_at, MemberTotals())
                )
                state = self._members[client_id] = _Member(deque([first]))
            elif now - state.starts[-1][0] >= self.window_s:
                state.starts.append((now, totals))
                obsolete = now - self.samples * self.window_s  # as the Java client purges
                while len(state.starts) > self.samples or state.starts[0][0] <= obsolete:
                    state.starts.popleft()
            began, before = state.starts[0]
            state.published = _windowed(totals, before, now - began)
        for client_id in set(self._members) - set(members):
            del self._members[client_id]
        self._ticked_at = now

    def _families(self) -> list[Metric]:
        collected = list(self.source.collect())
        members = member_totals(collected)
        libraries = _member_clients(collected)
        if any(_unpublished(members[c], self._members.get(c)) for c in members):
            self._sample(members)  # a new member, topic or node: its tick now, not after it
        families: dict[str, Metric] = {}
        for m in JAVA_MAPPINGS:  # a client and a per-topic mapping share a name: one family
            for name in m.names:
                families.setdefault(name, GaugeMetricFamily(name, m.help))
        app_info = [
            GaugeMetricFamily(name, "The consumer's app-info: one series per client (value 1).")
            for name in APP_INFO
        ]
        for client_id, totals in sorted(members.items()):
            published = self._members[client_id].published
            client = {"client_type": CLIENT_TYPE, "client_id": client_id}
            version = _version(libraries.get(client_id, "aiokafka"))
            for family in app_info:
                family.add_sample(family.name, {**client, "version": version}, 1.0)
            for m in JAVA_MAPPINGS:
                for scope in m.scopes:
                    for label, current in sorted(totals.scoped(scope).items()):
                        if isinstance(m.value, Live):
                            value = m.value.of(current)
                        else:
                            value = published.get((m.name, scope, label))
                        if value is None:
                            continue
                        labels = (
                            client if scope == "client" else {**client, _SCOPE_LABEL[scope]: label}
                        )
                        for name in m.names:
                            families[name].add_sample(name, labels, value)
        return [*app_info, *families.values()]


def _windowed(totals: MemberTotals, before: MemberTotals, dt: float) -> Published:
    """Every windowed value of one member: from `before` to `totals`, `dt` seconds apart."""
    out: Published = {}
    for m in JAVA_MAPPINGS:
        if not isinstance(m.value, Windowed):
            continue
        for scope in m.scopes:
            start = before.scoped(scope)
            for label, current in totals.scoped(scope).items():
                value = m.value.of(current, start.get(label, {}), dt)
                if value is not None:
                    out[(m.name, scope, label)] = value
    return out


def _unpublished(totals: MemberTotals, state: _Member | None) -> bool:
    """Whether the member, or one of its topics or nodes, came after the last tick."""
    if state is None:
        return True
    seen = {(scope, label) for _, scope, label in state.published}
    return any(
        (scope, label) not in seen for scope in ("topic", "node") for label in totals.scoped(scope)
    )


def _member_clients(families: Iterable[Metric]) -> dict[str, str]:
    """client_id → the client library the member reports in `tuner_consumer_client_info`."""
    return {
        f"{s.labels['group']}.{s.labels['member']}": s.labels["client"]
        for family in families
        if family.name == f"{PREFIX}client_info"
        for s in family.samples
    }


@functools.cache
def _version(library: str) -> str:
    """The `version` label of the app-info series: the member's client library's version (the
    Java client puts its own version there)."""
    try:
        return importlib.metadata.version(library)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
