"""A trial measured until it is capacity-bound, and `tuner run`'s single trial.

A run in which some member waited on the supply measured the supply, not the group
(`tuner.trial.supply`); `measure` tops the topic up and runs the trial again, so what it
returns is the group's capacity whenever it can be.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace

from prometheus_client import CollectorRegistry

from tuner import broker
from tuner.cluster import access
from tuner.cluster.sample import with_topic_sample
from tuner.cluster.workload import summarize
from tuner.config import SettingValue, StudySpec
from tuner.metrics.phases import Observer
from tuner.trial.connect import measuring_on
from tuner.trial.result import TrialResult
from tuner.trial.run import run_trial
from tuner.trial.supply import grown_backlog

log = logging.getLogger(__name__)


MAX_ATTEMPTS = 3
"""A trial that waited on the supply is run again on a grown backlog at most this often in all."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Measured:
    """A trial's result and the backlog it ran on (the last attempt's)."""

    result: TrialResult
    backlog_records: int
    attempts: int

    @property
    def capacity_bound(self) -> bool:
        return not self.result.backlog_emptied


def measure(
    spec: StudySpec,
    *,
    bootstrap_servers: str,
    settings: Mapping[str, SettingValue],
    group_id: str,
    registry: CollectorRegistry,
    backlog_records: int,
    observer: Observer | None = None,
) -> Measured:
    """Run a trial until it is capacity-bound: a run in which some member waited on the supply
    (`tuner.trial.supply`: its backlog ran out, or it caught up with live load) measured the supply,
    not the group, so the topic is topped up and the trial runs again with a fresh
    group (`<group_id>.r<n>`), at most `MAX_ATTEMPTS` times in all.

    The caller must refuse to rank a result that is still not capacity-bound.
    """
    records = backlog_records
    payloads = summarize(spec.workload)
    for attempt in range(MAX_ATTEMPTS):
        result = asyncio.run(
            run_trial(
                spec,
                bootstrap_servers=bootstrap_servers,
                settings=settings,
                group_id=group_id if attempt == 0 else f"{group_id}.r{attempt}",
                registry=registry,
                observer=observer,
                backlog_records=records,
            )
        )
        if not result.backlog_emptied or attempt == MAX_ATTEMPTS - 1:
            break
        grown = grown_backlog(spec, result, records)
        log.info("on a backlog of %d records %s; again on %d", records, result.supply, grown)
        if grown <= records:
            break
        records = grown
    return Measured(
        result=replace(result, payloads=payloads), backlog_records=records, attempts=attempt + 1
    )


def run_standalone(
    spec: StudySpec,
    *,
    settings: Mapping[str, SettingValue] | None = None,
    observer: Observer | None = None,
) -> TrialResult:
    """`tuner run`: one trial with the config's settings, its metrics served while it runs.

    With `bootstrap_servers: embedded` it uses the running `tuner broker` or starts one for
    the duration of the trial. A run that waited on the supply is run again on a larger
    backlog; one that still does is returned as it is (`backlog_emptied`): the caller must not
    present its number as the group's capacity.
    """
    access.check(spec.cluster)
    registry = CollectorRegistry()
    group_id = f"{spec.cluster.topic_prefix}run.{uuid.uuid4().hex[:8]}"
    with measuring_on(spec, registry) as conn:
        spec = with_topic_sample(spec, conn, broker.cache_dir() / "samples")
        return measure(
            spec,
            bootstrap_servers=conn.bootstrap_servers,
            settings=spec.consumer.settings if settings is None else settings,
            group_id=group_id,
            registry=registry,
            observer=observer,
            backlog_records=spec.workload.prefill_records,
        ).result
