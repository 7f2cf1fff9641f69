"""What a trial measured, as frozen values: the capacity window and the steady state.

The capacity window's record timestamps give the age of backlog records (`record_age_ms`); only
the steady state's give a latency the settings cause (`SteadyState.latency_ms`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, TypeVar, cast, get_args, get_origin, get_type_hints

from tuner.broker.faults import FaultReport
from tuner.clients import ClientName
from tuner.cluster.workload import PayloadSummary
from tuner.config import NetworkSpec, SettingValue
from tuner.consumer.service.reports import ServiceRun
from tuner.load.runner import ProducerStats
from tuner.metrics import PREFIX, GroupWindow
from tuner.protocol import GroupProtocol

E2E = f"{PREFIX}e2e_latency_seconds"


@dataclass(frozen=True, slots=True, kw_only=True)
class LatencyMs:
    """Quantiles of a window's record timestamp → processed histogram (None: no sample)."""

    p50: float | None
    p95: float | None
    p99: float | None

    @classmethod
    def of(cls, window: GroupWindow) -> LatencyMs:
        return cls(p50=window.ms(E2E, 0.5), p95=window.ms(E2E, 0.95), p99=window.ms(E2E, 0.99))


@dataclass(frozen=True, slots=True, kw_only=True)
class SteadyState:
    """What a group did under a load it could (or could not) keep up with."""

    group_id: str
    window_s: float
    target_records_per_s: float
    """`workload.producer.users` times `rate_per_user`."""
    produced: int
    """Records the topic gained in the window (the broker's end offsets)."""
    consumed: int
    """Records the group processed in the window."""
    latency_ms: LatencyMs
    """End-to-end latency in the window: record timestamp (Locust's send) → processed."""
    kept_up: bool
    """Consumed ≈ produced: without it there is no steady state, and latency grows unbounded."""
    rebalances: int

    @property
    def p99_ms(self) -> float:
        """The p99 the objective scores: infinite for a group that fell behind (its latency
        only grows) or a window without a sample."""
        p99 = self.latency_ms.p99
        return p99 if self.kept_up and p99 is not None else float("inf")


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchStats:
    requests: int
    latency_ms_p50: float | None
    latency_ms_p99: float | None
    records_per_fetch_avg: float
    bytes_per_fetch_avg: float


@dataclass(frozen=True, slots=True, kw_only=True)
class PollStats:
    interval_ms_max: float | None
    idle_ratio: float | None
    records_per_poll_avg: float | None = None
    """None in results stored before it was measured."""
    loop_blocked_ms_max: float | None = None
    """The longest a member's event loop was held (its heartbeats with it), a hold still going
    on at the window's end included; None in results stored before it was measured."""
    open_gap_ms_max: float | None = None
    """The longest a member had gone without polling when the window ended (a gap still open:
    the member inside one batch). Counted in `interval_ms_max`, and as busy time in
    `idle_ratio`. None in results stored before it was measured."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OffsetCheck:
    """Counts that do not come from our own instruments, to catch a lying measurement."""

    end_offsets_total: int
    committed_total: int
    consumed_total: int
    """Records the group consumed over the whole trial (not only the window)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkIntervals:
    """Each member's work in each interval of the capacity window, one entry per (interval,
    member) with a batch: what `tuner profile` regresses to tell per-record from per-batch cost.

    Batches count in the interval they finished in, with their records and processing time, so
    each entry holds whole batches.
    """

    members: int
    partitions: int
    records: tuple[int, ...]
    batches: tuple[int, ...]
    processing_s: tuple[float, ...]
    processing_blocked_s: tuple[float, ...]
    """Of that, the time the event loop ran nothing else (`processing_blocked_seconds`)."""

    @classmethod
    def of(cls, windows: Sequence[GroupWindow], *, members: int, partitions: int) -> WorkIntervals:
        rows: list[tuple[int, int, float, float]] = []
        for w in windows:
            records = w.per_member_delta(f"{PREFIX}processing_records_total")
            batches = w.per_member_delta(f"{PREFIX}processing_seconds_count")
            seconds = w.per_member_delta(f"{PREFIX}processing_seconds_sum")
            blocked = w.per_member_delta(f"{PREFIX}processing_blocked_seconds_total")
            rows += [
                (int(records.get(m, 0)), int(n), seconds.get(m, 0.0), blocked.get(m, 0.0))
                for m, n in sorted(batches.items())
                if n > 0
            ]
        columns = tuple(zip(*rows, strict=True)) if rows else ((), (), (), ())
        return cls(
            members=members, partitions=partitions, records=columns[0], batches=columns[1],
            processing_s=columns[2], processing_blocked_s=columns[3],
        )  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class TrialResult:
    group_id: str
    settings: Mapping[str, SettingValue | None]
    """Effective consumer settings (Java names; None = aiokafka's unlimited)."""
    window_s: float
    records_consumed: int
    throughput_records_per_s: float
    throughput_mb_per_s: float
    record_age_ms: LatencyMs
    """Record timestamp → processed in the capacity window. The group drains a backlog written
    before it joined, so this is the records' age, not a latency the settings cause."""
    rebalances: int
    """Group rebalances inside the measurement window (the initial join is before it): the
    members' own count, or at least 1 if the coordinator's member list changed meanwhile."""
    fetch: FetchStats
    poll: PollStats
    lag_max: int
    """The most records behind one partition's end at the window's end: the members' own
    readings, or the broker's (`lag_from_broker`)."""
    backlog_emptied: bool
    """True if some member waited on the supply in the window (its backlog ran out, or it caught
    up with live load): then it measured the supply, not the group (`tuner.trial.supply`)."""
    errors: tuple[str, ...]
    offsets: OffsetCheck
    producer: ProducerStats | None = None
    """Locust's live load in the window (None when the trial runs on the prefill alone)."""
    intervals_records_per_s: tuple[float, ...] = field(default=())
    steady: SteadyState | None = None
    """The steady-state phase, where end-to-end latency is measured (None: the trial ran none,
    or its backlog ran out first)."""
    network: NetworkSpec | None = None
    """The network profile between the members and the broker (None: loopback, no profile)."""
    payloads: PayloadSummary | None = None
    """What the producers wrote: the source of the records, their sizes, compressibility."""
    supply: str | None = None
    """Why the window measured the supply, naming the second and member that show it (None:
    capacity-bound, or a result stored before it was recorded)."""
    work: WorkIntervals | None = None
    """Per-member, per-second work in the capacity window (None in results stored before)."""
    faults: tuple[FaultReport, ...] = ()
    """The brokers stopped in the window (`trial.faults`, measured through), their failover."""
    client: ClientName | None = None
    """The client the members were; None in results stored before it was recorded (the
    advisor takes such a run for aiokafka's, unless a config laid under it names the client)."""
    group_protocol: GroupProtocol | None = None
    """The consumer group protocol measured; None, as for `client`, in older results."""
    lag_from_broker: bool = False
    """`lag_max` is the topic's end offsets minus the group's committed offsets (its consumed
    positions, committed as the members left), as large as any member's own reading or larger:
    a member's own reading was stale, its gap between polls open past
    `tuner.consumer.LAG_STALE_S` at the window's end."""
    warmup_s: float | None = None
    """How long the warm-up really took: `trial.warmup_s` at least, then until every member had
    finished a batch (`tuner.trial.measurable`); None in results stored before it was."""
    coarse: str | None = None
    """Why the window held too few batches per member to be scored, with the numbers (None:
    enough, or a result stored before it was judged): its edges may be off by a whole batch,
    so no ranking or comparison may use its number (`tuner.trial.measurable.coarse`)."""
    kafka_version: str | None = None
    """The Apache Kafka release of the embedded broker measured (None: an external cluster,
    whose release the tuner does not read, or a result stored before it was recorded)."""
    service: ServiceRun | None = None
    """A service's members: their client and what the service's own code passed (None: the
    tuner's own members, or a result stored before it was recorded)."""

    def to_dict(self) -> dict[str, object]:
        return asdict(replace(self, settings=dict(self.settings)))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrialResult:
        """A stored `to_dict()` back, also from older versions: one with `e2e_latency_ms` (the
        record age, before it was called that) or without the fields added since."""
        if "record_age_ms" not in data and "e2e_latency_ms" in data:
            data = {**data, "record_age_ms": data["e2e_latency_ms"]}
        return _from_dict(cls, data)


_D = TypeVar("_D")


def _from_dict(cls: type[_D], data: Mapping[str, Any]) -> _D:
    """A frozen dataclass from `asdict` output, nested dataclasses and tuples rebuilt; a field
    the data lacks keeps its default (older results lack the fields added since)."""
    hints = get_type_hints(cls)
    kwargs = {
        f.name: _value(hints[f.name], data[f.name])
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if f.name in data
    }
    return cls(**kwargs)


def _value(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    if get_origin(hint) is tuple:
        item = get_args(hint)[0]
        if dataclasses.is_dataclass(item):
            return tuple(_from_dict(cast(type[Any], item), v) for v in value)
        return tuple(value)
    for kind in (hint, *get_args(hint)):  # `X | None` names the dataclass among its args
        if isinstance(kind, type) and dataclasses.is_dataclass(kind):
            return _from_dict(kind, value)
    return value
