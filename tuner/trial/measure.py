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
from tuner.trial import backlog, supply
from tuner.trial.backlog import Rates
from tuner.trial.connect import measuring_on
from tuner.trial.result import TrialResult
from tuner.trial.run import run_trial

log = logging.getLogger(__name__)


MAX_RESIZES = 2
"""A group that the backlog could not be topped up ahead of (`backlog.Undersized`) leaves
before its window, and a new one joins a backlog written for the rate it showed: this often at
most in one measurement; then the window measures on, and its own judgement decides."""
MAX_ATTEMPTS = 3
"""A trial that waited on the supply is run again, on a backlog sized from the rate it showed,
at most this often in all."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Measured:
    """A trial's result and the backlog it ran on (the last attempt's)."""

    result: TrialResult
    backlog_records: int
    """What the topic held at the end of the last attempt, top-ups included."""
    attempts: int
    resized: int = 0
    """Groups that left before their window for a backlog written first (`MAX_RESIZES`)."""

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
    backlog_records: int = 0,
    rates: Rates | None = None,
    observer: Observer | None = None,
) -> Measured:
    """Run a trial until it is capacity-bound: a run in which some member waited on the supply
    (`tuner.trial.supply`: its backlog ran out, or it caught up with live load) measured the supply,
    not the group, so the trial runs again with a fresh group (`<group_id>.r<n>`) on a backlog
    sized from the rate it showed, at most `MAX_ATTEMPTS` times in all.

    The backlog before the group joins is at least `backlog_records`, sized for the fastest
    rate in `rates` (the study's and bench's trials share one, so each is sized for the fastest
    seen so far) and topped up before the window from the rate the warm-up shows
    (`tuner.trial.backlog`). The caller must refuse to rank a result that is still not
    capacity-bound; its `supply` then says what stood in the way.
    """
    rates = Rates() if rates is None else rates
    payloads = summarize(spec.workload)
    records = max(backlog_records, supply.first_backlog(spec, rates.consumed_per_s))
    resized = 0
    for attempt in range(MAX_ATTEMPTS):
        while True:
            run_id = group_id if attempt == 0 else f"{group_id}.r{attempt}"
            try:
                result = asyncio.run(
                    run_trial(
                        spec,
                        bootstrap_servers=bootstrap_servers,
                        settings=settings,
                        group_id=run_id if resized == 0 else f"{run_id}.b{resized}",
                        registry=registry,
                        observer=observer,
                        backlog_records=records,
                        rates=rates,
                        restart=resized < MAX_RESIZES,
                    )
                )
                break
            except backlog.Undersized as why:
                resized += 1
                records = max(records, supply.first_backlog(spec, rates.consumed_per_s))
                log.info("%s; a new group joins %s records written first", why, f"{records:,}")
        rates.saw(consumed_per_s=supply.peak_rate(result))
        if not result.backlog_emptied or attempt == MAX_ATTEMPTS - 1:
            break
        rates.saw(consumed_per_s=supply.seen_rate(spec, result))
        sized = supply.first_backlog(spec, rates.consumed_per_s)
        # What the rate sizes ran dry already: the rate was a lower bound (a drained backlog).
        grown = min(sized if sized > records else 2 * records, supply.cap_records(spec))
        log.info("on a backlog of %d records %s; again on %d", records, result.supply, grown)
        if grown <= records:
            break
        records = grown
    if result.backlog_emptied and rates.shortfall:
        result = replace(result, supply=f"{result.supply}; {rates.shortfall}")
    return Measured(
        result=replace(result, payloads=payloads),
        # What the topic held at the end, top-ups included: where the next trial starts.
        backlog_records=max(records, result.offsets.end_offsets_total),
        attempts=attempt + 1,
        resized=resized,
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
        ).result
