"""One service member's instruments, fed from its bootstrap's reports.

The member's `ConsumerMetrics` live in a registry of their own (as a member process's do) and
the group serves them merged. The reports' counters are cumulative, so each update applies
the increments since the last one; each poll of a stretch between two reports counts at the
stretch's mean size and gap. A service's batch is one poll's records, done when it polls
again: its `Progress` has no expected time (`batch_s` 0).
"""

from __future__ import annotations

import time
from collections import deque

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric

from tuner.consumer.messages import Progress
from tuner.consumer.service.reports import ConsumerKey, Polled, ServiceReports
from tuner.metrics import ConsumerMetrics
from tuner.metrics.instruments import observe_many
from tuner.protocol import GroupProtocol

GAP_WINDOW_S = 30.0
"""`poll_interval_max_seconds` is the longest gap reported in this long (as the tuner's own
members' is: the last 30 s)."""


class MemberMeter:
    """A member's instruments and progress as of the reports applied so far."""

    def __init__(
        self,
        *,
        group_id: str,
        member: str,
        topic: str,
        record_bytes: int,
        protocol: GroupProtocol,
    ) -> None:
        self.group_id, self.member, self.topic = group_id, member, topic
        self.record_bytes = record_bytes
        """Bytes credited per record: the bootstrap counts records, not their bytes (that
        would cost the service per record), so the workload's mean record size stands in."""
        self.protocol = protocol
        self.registry = CollectorRegistry()
        self.metrics: ConsumerMetrics | None = None
        self._applied: dict[ConsumerKey, Polled] = {}
        self._gaps: deque[tuple[float, float]] = deque()

    def families(self) -> list[Metric]:
        return list(self.registry.collect())

    def update(self, reports: ServiceReports, now: float) -> Progress | None:
        """Apply the reports' new poll counters (the instruments are created at the first
        consumer, labelled with its client); the member's `Progress`, None before any poll."""
        if self.metrics is None:
            if not reports.created:
                return None
            self.metrics = ConsumerMetrics(
                self.registry, group=self.group_id, member=self.member,
                client=reports.created[0].client, group_protocol=self.protocol,
            )  # fmt: skip
        metrics = self.metrics
        for key, polled in reports.polled.items():
            before = self._applied.get(key)
            if before is polled:
                continue
            self._count(metrics, polled, before)
            self._applied[key] = polled
            self._gaps.append((polled.at, polled.last_gap_s))
        while self._gaps and self._gaps[0][0] < now - GAP_WINDOW_S:
            self._gaps.popleft()
        metrics.poll_interval_max.set(max((g for _, g in self._gaps), default=0.0))
        total = reports.progress()
        metrics.poll_gap_open.set(total.open_gap_s(now))
        assigned = [p.partitions for p in reports.polled.values() if p.partitions is not None]
        if assigned:  # the warm-up's idle rule reads them (`tuner.trial.window.idle`)
            metrics.assigned_partitions.set(sum(assigned))
        consumers = list(reports.polled.values())
        if not consumers:
            return None
        last = max(consumers, key=lambda p: p.last_return)
        in_flight, done = last.last_records, total.records - last.last_records
        return Progress(
            at=max(p.at for p in consumers),
            done={self.topic: (done, done * self.record_bytes)},
            batch={self.topic: (in_flight, in_flight * self.record_bytes)} if in_flight else {},
            batch_started=last.last_return,
            batch_s=0.0,
            batches=sum(p.batches for p in consumers) - (1 if in_flight else 0),
        )

    def _count(self, metrics: ConsumerMetrics, now: Polled, before: Polled | None) -> None:
        """The instruments' increments from one consumer's counters `before` → `now`."""
        records = now.records - (before.records if before else 0)
        polls = now.polls - (before.polls if before else 0)
        batches = now.batches - (before.batches if before else 0)
        in_poll = now.in_poll_s - (before.in_poll_s if before else 0.0)
        between = now.between_s - (before.between_s if before else 0.0)
        if records:
            metrics.consumed(self.topic, records, records * self.record_bytes)
        rebalances = now.rebalances - (before.rebalances if before else 0)
        if rebalances > 0:
            metrics.rebalances.inc(rebalances)
            metrics.last_rebalance.set(time.time())
        if polls <= 0:
            return
        empty = max(polls - batches, 0)
        if empty:
            metrics.empty_polls.inc(empty)
        sizes = [0.0] * empty + [records / batches] * batches if batches else [0.0] * polls
        observe_many(metrics.poll_records, sizes)
        observe_many(metrics.poll_interval, [between / polls] * polls)
        if in_poll + between > 0:
            # Java's poll-idle-ratio: the share of time inside poll, not in the service's code.
            metrics.poll_idle_ratio.set(in_poll / (in_poll + between))
