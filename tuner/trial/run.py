"""One trial, start to end: topic, backlog, load, consumer group, warm-up, measurement window.

Each trial runs in its own `asyncio.run` with its own consumer group id, so nothing leaks from
one trial to the next. The result is computed from window deltas of the instruments the
Prometheus exporter serves, and cross-checked against topic end offsets and committed offsets.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Literal

from prometheus_client import CollectorRegistry

from tuner import librdkafka
from tuner.broker import faults, release_at
from tuner.clients import client_named
from tuner.cluster import admin as cluster
from tuner.cluster.admin import Connection
from tuner.config import SettingValue, StudySpec
from tuner.consumer import LAG_STALE_S, ConsumerGroup, Group, GroupError, MemberSpec, kip848
from tuner.consumer.service import ServiceGroup, service_group
from tuner.load.runner import LoadError, LocustLoad, ProducerStats
from tuner.metrics import PREFIX, GroupWindow, RegistrySnapshot
from tuner.metrics.phases import Observer, Phase
from tuner.trial import backlog, supply
from tuner.trial.measurable import coarse
from tuner.trial.result import (
    FetchStats,
    LatencyMs,
    OffsetCheck,
    PollStats,
    SteadyState,
    TrialResult,
    WorkIntervals,
)
from tuner.trial.steady import run_steady
from tuner.trial.supply import backlog_for, peak_rate
from tuner.trial.window import each_second, idle, warm_up

__all__ = [  # the result types and phases are re-exported: callers know them from here
    "FetchStats", "LatencyMs", "Observer", "OffsetCheck", "Phase", "PollStats",
    "SteadyState", "TrialError", "TrialResult", "backlog_for", "peak_rate",
    "run_trial",
]  # fmt: skip

log = logging.getLogger(__name__)


class TrialError(Exception):
    """The trial could not produce a measurement (broker gone, members crashed, no assignment)."""


def _member_specs(
    spec: StudySpec,
    bootstrap_servers: str,
    settings: Mapping[str, SettingValue],
    group_id: str,
    *,
    start: Literal["earliest", "latest"] = "earliest",
) -> list[MemberSpec]:
    """A fresh group starts at the beginning of the backlog (`earliest`), or for the steady
    state at the topic's end (`latest`), seeing only records produced after it joined."""
    client = spec.consumer.client
    kwargs = client_named(client).member_config(
        settings, offset_reset=start, protocol=spec.consumer.group_protocol
    )
    return [
        MemberSpec(
            bootstrap_servers=bootstrap_servers,
            cluster=spec.cluster,
            topic=spec.topic.name,
            group_id=group_id,
            member=f"m{i}",
            consumer_kwargs=kwargs,
            client=client,
            batch_records=librdkafka.batch_records(settings),
            processing=spec.consumer.processing,
            handler=spec.consumer.handler,
            seed=i,
        )
        for i in range(spec.consumer.members)
    ]


async def run_trial(
    spec: StudySpec,
    *,
    bootstrap_servers: str,
    settings: Mapping[str, SettingValue],
    group_id: str,
    registry: CollectorRegistry,
    observer: Observer | None = None,
    backlog_records: int | None = None,
    rates: backlog.Rates | None = None,
    restart: bool = False,
) -> TrialResult:
    """Run one trial and return its measurement; raises `TrialError` if there is none to give.

    The group is new and reads the topic from its start, so the backlog is every record in the
    topic: it is topped up to `backlog_records` (default `supply.first_backlog`) first.
    Several trials can share one topic that way, and its backlog only grows. With `rates`,
    the group's consumption is sampled from its join on and the topic topped up before the
    window from the rate it showed (`tuner.trial.backlog`); without, the backlog stays as
    written; with `restart` too, a top-up that cannot get ahead of the group raises
    `backlog.Undersized` before the window (`tuner.trial.measure` writes first and runs
    again). With a steady state to measure (`StudySpec.steady_s`), a second group
    `<group_id>.steady` follows. Both groups are deleted when the trial ends, however it ends.
    """

    def phase(p: Phase, value: float | None = None) -> None:
        if observer is not None:
            observer(p, value)

    conn = Connection(bootstrap_servers=bootstrap_servers, cluster=spec.cluster)
    phase(Phase.TOPIC)
    await cluster.ensure_topic(conn, spec.topic)
    phase(Phase.PREFILL)
    records = supply.first_backlog(spec) if backlog_records is None else backlog_records
    await backlog.fill(conn, spec, records, rates or backlog.Rates())
    members = _member_specs(spec, bootstrap_servers, settings, group_id)
    try:
        await kip848.prepare_group(spec, bootstrap_servers, settings, group_id)
        async with contextlib.AsyncExitStack() as stack:
            load = None
            if spec.workload.producer.users > 0:
                phase(Phase.LOAD)
                load = await stack.enter_async_context(
                    LocustLoad(
                        spec.workload,
                        bootstrap_servers=bootstrap_servers,
                        topic=spec.topic.name,
                        metrics_port=spec.metrics.producer_port,
                        metrics_host=spec.metrics.host,
                        security=spec.cluster.security,
                    )
                )
            injector = faults.Injector(
                spec.trial.faults, bootstrap_servers=bootstrap_servers, topic=spec.topic.name
            )
            keeper = backlog.Keeper(
                spec=spec, conn=conn, registry=registry, group_id=group_id, rates=rates,
                restart=restart,
            )  # fmt: skip
            async with (
                injector,
                _group(spec, members, bootstrap_servers, settings, registry) as group,
                keeper,
            ):
                phase(Phase.JOIN)
                await group.wait_until_assigned(timeout_s=60)
                phase(Phase.WARMUP)
                await keeper.ready()
                warmed_s = await warm_up(
                    group, registry=registry, group_id=group_id,
                    min_s=spec.trial.warmup_s, window_s=spec.trial.measure_s,
                )  # fmt: skip
                await keeper.ready(warmup_s=0.0)  # what a longer warm-up read is written again
                phase(Phase.MEASURE)
                injector.arm()
                measured = await _measure(
                    spec.trial.measure_s, group, load, registry, conn, group_id, phase
                )
                await injector.settle()
            reports = injector.verdict(measure_through=spec.trial.measure_through_faults)
            errors = [*measured.errors, *map(str, group.errors())]
            result = await _capacity_result(spec, conn, group, measured, settings, errors)
            result = replace(result, faults=reports, warmup_s=warmed_s, coarse=measured.coarse)
            steady_ok = spec.consumer.service is None  # a service's steady state: not yet
            if load is not None and spec.steady_s > 0 and not result.backlog_emptied and steady_ok:
                await kip848.prepare_group(spec, bootstrap_servers, settings, f"{group_id}.steady")
                steady, steady_errors = await run_steady(
                    _member_specs(
                        spec, bootstrap_servers, settings, f"{group_id}.steady", start="latest"
                    ),
                    registry=registry, isolation=spec.consumer.isolation, conn=conn,
                    load=load, warmup_s=spec.trial.warmup_s, window_s=spec.steady_s,
                    observer=phase,
                )  # fmt: skip
                result = replace(
                    result,
                    steady=steady,
                    errors=(*result.errors, *(f"steady state: {e}" for e in steady_errors)),
                )
            phase(Phase.STOP)
    except (GroupError, LoadError, kip848.GroupConfigError, faults.FaultError) as exc:
        raise TrialError(str(exc)) from exc
    finally:  # the groups this trial made, once their members left: the tuner leaves none
        await cluster.delete_groups_of_run(conn, (group_id, f"{group_id}.steady"))
    return result


def _group(
    spec: StudySpec,
    members: list[MemberSpec],
    bootstrap_servers: str,
    settings: Mapping[str, SettingValue],
    registry: CollectorRegistry,
) -> Group:
    """The team's service as the group (`consumer.service`), or the tuner's own members."""
    if spec.consumer.service is None:
        return ConsumerGroup(members, registry=registry, isolation=spec.consumer.isolation)
    group_id = members[0].group_id
    return service_group(spec, bootstrap_servers, settings, group_id, registry=registry)


async def _capacity_result(  # noqa: PLR0917 - a private step of run_trial, called once
    spec: StudySpec,
    conn: Connection,
    group: Group,
    measured: _Measured,
    settings: Mapping[str, SettingValue],
    errors: list[str],
) -> TrialResult:
    """The capacity window's result, cross-checked against the broker's offsets."""
    group_id = group.members[0].group_id
    final = RegistrySnapshot.of(group.families(), group=group_id, at=time.monotonic())
    window, end = GroupWindow(measured.start, measured.end), measured.end
    ends = await cluster.end_offsets(conn, spec.topic.name)
    committed = await cluster.committed_offsets(conn, group_id, spec.topic.name)
    consumed_total = int(final.total(f"{PREFIX}records_consumed_total"))
    lost = _lost_records(ends, committed, consumed_total, final)
    if lost:
        raise TrialError(
            f"topic {spec.topic.name!r}: {lost}: the cluster lost data during the trial"
        )
    idle = end.per_member(f"{PREFIX}poll_idle_ratio")
    open_gap = end.maximum(f"{PREFIX}poll_gap_open_seconds")
    reported = end.maximum(f"{PREFIX}lag_records")  # None: no member reads lag (a service)
    stale = (open_gap or 0.0) > LAG_STALE_S or reported is None  # a stale lag: the poll's
    lag = int(reported or 0)
    broker_lag = max((off - committed.get(p, 0) for p, off in ends.items()), default=0)
    effective = client_named(spec.consumer.client).effective_settings(
        settings, protocol=spec.consumer.group_protocol
    )
    waited = supply.waited_on_supply(
        measured.seconds,
        settings=effective,
        record_bytes=window.bytes_per_s / window.records_per_s
        if window.records > 0
        else spec.workload.mean_message_bytes,
        produced_per_s=measured.producer.records_per_s if measured.producer else None,
        end_offsets_total=sum(ends.values()),
    )
    return TrialResult(
        group_id=group_id,
        client=spec.consumer.client,
        group_protocol=spec.consumer.group_protocol,
        settings=MappingProxyType(effective),
        window_s=window.seconds,
        records_consumed=int(window.records),
        throughput_records_per_s=window.records_per_s,
        throughput_mb_per_s=window.bytes_per_s / 1e6,
        record_age_ms=LatencyMs.of(window),
        rebalances=max(window.rebalances, int(measured.members_changed)),
        fetch=FetchStats(
            requests=int(window.fetch_requests),
            latency_ms_p50=window.ms(f"{PREFIX}fetch_latency_seconds", 0.5),
            latency_ms_p99=window.ms(f"{PREFIX}fetch_latency_seconds", 0.99),
            records_per_fetch_avg=window.records_per_fetch,
            bytes_per_fetch_avg=window.bytes_per_fetch,
        ),
        poll=PollStats(
            interval_ms_max=_ms(
                _at_least(end.maximum(f"{PREFIX}poll_interval_max_seconds"), open_gap)
            ),
            idle_ratio=sum(idle.values()) / len(idle) if idle else None,
            records_per_poll_avg=window.records_per_poll or None,
            loop_blocked_ms_max=None  # a service's event loop is its own, not timed
            if spec.consumer.service
            else _ms(end.maximum(f"{PREFIX}event_loop_blocked_max_seconds")),
            open_gap_ms_max=_ms(open_gap),
        ),
        lag_max=max(lag, broker_lag) if stale else lag,
        lag_from_broker=stale and broker_lag >= lag,
        backlog_emptied=waited is not None,
        supply=waited,
        errors=tuple(errors),
        offsets=OffsetCheck(
            end_offsets_total=sum(ends.values()),
            committed_total=sum(committed.values()),
            consumed_total=consumed_total,
        ),
        producer=measured.producer,
        intervals_records_per_s=measured.intervals,
        network=spec.cluster.network,
        kafka_version=release_at(conn.bootstrap_servers),
        service=group.service_run() if isinstance(group, ServiceGroup) else None,
        work=WorkIntervals.of(
            measured.windows, members=spec.consumer.members, partitions=spec.topic.partitions
        ),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class _Measured:
    start: RegistrySnapshot
    end: RegistrySnapshot
    intervals: tuple[float, ...]
    seconds: tuple[supply.Second, ...]
    windows: tuple[GroupWindow, ...]
    members_changed: bool
    producer: ProducerStats | None
    errors: tuple[str, ...]
    coarse: str | None = None


async def _measure(  # noqa: PLR0917 - a private step of run_trial, called once
    measure_s: float,
    group: Group,
    load: LocustLoad | None,
    registry: CollectorRegistry,
    conn: Connection,
    group_id: str,
    phase: Callable[[Phase, float | None], None],
) -> _Measured:
    """The window: a snapshot each second, the broker's member list at both ends."""
    load_start = load.snapshot() if load else None
    members_before = await cluster.describe_group(conn, group_id)
    seconds: list[supply.Second] = []
    windows: list[GroupWindow] = []

    def second(start: RegistrySnapshot, previous: RegistrySnapshot, now: RegistrySnapshot) -> None:
        windows.append(GroupWindow(previous, now))
        seconds.append(supply.Second.between(previous, now))
        phase(Phase.MEASURE, GroupWindow(start, now).records_per_s)

    window = await each_second(
        measure_s, group=group, load=load, registry=registry, group_id=group_id, second=second,
        lengthen=True,
    )  # fmt: skip
    await group.check_handlers_return(since=window.end.at, within_s=measure_s)
    too_few = coarse(
        window.progress, group.progress(), window_s=window.end.at - window.start.at,
        idle=idle(window.end),
    )  # fmt: skip
    load_end = load.snapshot() if load else None
    producer = ProducerStats.between(load_start, load_end) if load_start and load_end else None
    members_after = await cluster.describe_group(conn, group_id)
    return _Measured(
        start=window.start,
        end=window.end,
        intervals=tuple(w.records_per_s for w in windows),
        seconds=tuple(seconds),
        windows=tuple(windows),
        members_changed=members_after != members_before,
        producer=producer,
        errors=window.errors,
        coarse=too_few,
    )


def _lost_records(
    ends: Mapping[int, int],
    committed: Mapping[int, int],
    consumed_total: int,
    final: RegistrySnapshot,
) -> str | None:
    """What shows that the topic lost records mid-trial (a broker restarted on fresh storage,
    the topic deleted), or None: a topic only grows, so no partition may end before an offset
    the group committed, and without a rebalance (which re-delivers records) the group cannot
    have consumed more records than the topic holds."""
    behind = {p: off for p, off in committed.items() if off > ends.get(p, 0)}
    if behind:
        return f"the group committed offsets {behind} past the partitions' ends {dict(ends)}"
    rebalanced = final.total(f"{PREFIX}rebalances_total") > 0
    if not rebalanced and sum(ends.values()) < consumed_total:
        return f"it holds {sum(ends.values())} records but the group consumed {consumed_total}"
    return None


def _at_least(value: float | None, floor: float | None) -> float | None:
    """The larger of two readings (each gauge is read as its member reports, one after the
    other: the open gap read last may be the later, longer one)."""
    return value if floor is None else floor if value is None else max(value, floor)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000.0
