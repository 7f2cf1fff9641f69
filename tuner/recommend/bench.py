"""The bench: one backlog topic of its own for the runs after a study (ablation, confirmation).

Every run is a fresh group reading the topic from its start, capacity-bound by
`tuner.trial.run.measure`; the backlog only grows, so the ablation and the confirmation that
follows it share one topic and one backlog instead of filling a second.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from tuner.cluster import admin as cluster
from tuner.cluster.admin import Connection
from tuner.config import SettingValue, StudySpec
from tuner.trial.backlog import Rates
from tuner.trial.measure import measure
from tuner.trial.result import TrialResult


@dataclass(slots=True, kw_only=True)
class Bench:
    """Runs configurations on the bench's topic; remembers the largest backlog any run needed."""

    spec: StudySpec
    """The study's spec with the bench's own topic."""
    bootstrap_servers: str
    backlog_records: int
    registry: CollectorRegistry
    rates: Rates = field(default_factory=Rates)
    """The fastest rates any run on the bench showed: each run's backlog is sized for them."""
    runs: int = 0

    def run(self, settings: Mapping[str, SettingValue], label: str) -> TrialResult:
        """One capacity-bound run of `settings` (a run whose backlog still ran out is returned
        as it is, `backlog_emptied`: the caller refuses to compare it)."""
        self.runs += 1
        measured = measure(
            self.spec,
            bootstrap_servers=self.bootstrap_servers,
            settings=settings,
            group_id=f"{self.spec.topic.name}.{label}.{self.runs}",
            registry=self.registry,
            backlog_records=self.backlog_records,
            rates=self.rates,
        )
        self.backlog_records = max(self.backlog_records, measured.backlog_records)
        return measured.result


@contextlib.contextmanager
def bench(spec: StudySpec, *, bootstrap_servers: str, backlog_records: int) -> Iterator[Bench]:
    """A bench on a topic of its own (deleted afterwards), its backlog at least the study's."""
    conn = Connection(bootstrap_servers=bootstrap_servers, cluster=spec.cluster)
    suffix = f"{spec.study.name}.bench.{uuid.uuid4().hex[:6]}"
    with cluster.owned_topic(spec, conn, suffix) as bench_spec:
        yield Bench(
            spec=bench_spec,
            bootstrap_servers=bootstrap_servers,
            backlog_records=max(backlog_records, spec.workload.prefill_records or 0),
            registry=CollectorRegistry(),
        )
