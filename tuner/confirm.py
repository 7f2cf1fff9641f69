"""Confirmation runs: the recommendation against the defaults, side by side, capacity-bound.

The runs are interleaved (best, java, aiokafka, best, …) so drift hits every configuration
alike, and they share one backlog topic of their own, sized from the study's fastest trial,
so each fresh group is measured on records it cannot run out of.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping

from prometheus_client import CollectorRegistry

from tuner import cluster
from tuner.cluster import Connection
from tuner.config import SettingValue, StudySpec
from tuner.report import BASELINES, Confirmation, candidates
from tuner.trial import TrialResult, measure


def confirm(
    spec: StudySpec,
    best: Mapping[str, SettingValue],
    *,
    bootstrap_servers: str,
    backlog_records: int,
    on_run: Callable[[int, int, str, TrialResult], None] | None = None,
) -> Confirmation:
    """Run best, Java defaults and aiokafka defaults `confirm.repeats` times, interleaved.

    `on_run(done, total, name, result)` hears each finished run. A run whose backlog still ran
    out is kept as it is (`backlog_emptied`): the report refuses to compare it.
    """
    runs: dict[str, list[TrialResult]] = {name: [] for name in BASELINES}
    registry = CollectorRegistry()
    conn = Connection(bootstrap_servers=bootstrap_servers, cluster=spec.cluster)
    total = spec.confirm.repeats * len(BASELINES)
    backlog = max(backlog_records, spec.workload.prefill_records)
    tag = uuid.uuid4().hex[:6]
    with cluster.owned_topic(spec, conn, f"{spec.study.name}.confirm.{tag}") as run_spec:
        for repeat in range(spec.confirm.repeats):
            for name, settings in candidates(best, spec.consumer.settings).items():
                measured = measure(
                    run_spec,
                    bootstrap_servers=bootstrap_servers,
                    settings=settings,
                    group_id=f"{run_spec.topic.name}.c{repeat}.{name.split()[0]}",
                    registry=registry,
                    backlog_records=backlog,
                )
                backlog = max(backlog, measured.backlog_records)
                runs[name].append(measured.result)
                if on_run is not None:
                    on_run(sum(map(len, runs.values())), total, name, measured.result)
    return Confirmation(runs={k: tuple(v) for k, v in runs.items()})
