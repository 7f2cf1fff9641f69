"""What the advisor reasons over: a workload, consumer settings, and what was observed.

Each source (a config, a run's result, a Prometheus) knows part of it and leaves the rest
None; `merge` lays one over another, so the sources can be used together.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from tuner import librdkafka
from tuner.clients import ClientName, client_named
from tuner.config import StudySpec
from tuner.config import handler as refs
from tuner.consumer.processing import record_p99_ms
from tuner.protocol import GroupProtocol
from tuner.settings import SETTINGS, BrokerLimits, SettingValue, effective_settings
from tuner.trial.result import TrialResult


@dataclass(frozen=True, slots=True, kw_only=True)
class Workload:
    """The application and topic, as a config describes them."""

    message_bytes: int
    partitions: int
    members: int
    per_record_ms: float
    record_p99_ms: float
    distribution: Literal["constant", "exponential", "lognormal"]
    """Of one record's time: with `per_record_ms` and `record_p99_ms`, it fixes a batch's."""
    per_batch_ms: float
    mode: Literal["async", "cpu"]
    records_per_s: float | None = None
    """Paced live load (users x rate per user); None when unpaced or prefill only."""

    @property
    def partitions_per_member(self) -> int:
        """The most partitions one member holds when the group is whole."""
        return math.ceil(self.partitions / max(self.members, 1))


@dataclass(frozen=True, slots=True, kw_only=True)
class Observed:
    """What a run or a Prometheus measured; None where the source has no such number."""

    source: str
    window_s: float | None = None
    poll_interval_max_ms: float | None = None
    open_gap_ms: float | None = None
    """The longest a member had gone without polling when the window ended: a gap still open
    (the member inside one batch), counted in `poll_interval_max_ms` too."""
    loop_blocked_max_ms: float | None = None
    """The longest a member's event loop was held, as a timer on it measured."""
    records_per_poll: float | None = None
    records_per_fetch: float | None = None
    fetch_latency_ms: float | None = None
    idle_ratio: float | None = None
    rebalances: float | None = None
    """Rebalances inside the window (a run counts them; Prometheus gives the increase)."""
    lag_max: float | None = None
    lag_growth_per_s: float | None = None
    members: int | None = None
    idle_members: int | None = None
    """Members holding no partition."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Facts:
    """One consumer group's facts; `given` names the settings a source stated, the rest are
    defaults (aiokafka's, or Java's for Java-named metrics)."""

    group: str = ""
    settings: Mapping[str, SettingValue | None] = field(
        default_factory=lambda: effective_settings({})
    )
    given: frozenset[str] = frozenset()
    workload: Workload | None = None
    observed: Observed | None = None
    limits: BrokerLimits = field(default_factory=BrokerLimits)
    client: ClientName | None = None
    """The client whose defaults fill `settings` (confluent-kafka: librdkafka's); None when no
    source named it (an older run, the Java client's names): aiokafka's are assumed."""
    group_protocol: GroupProtocol = "classic"
    """The consumer group protocol of `client` (KIP-848's is `consumer`)."""

    def ms(self, name: str) -> int:
        """An integer setting's value (ms, bytes or a count)."""
        return int(self.settings[name] or 0)


def from_config(spec: StudySpec, *, group: str = "") -> Facts:
    """The workload and the consumer settings of a config (aiokafka's defaults filling gaps)."""
    proc, producer = spec.consumer.processing, spec.workload.producer
    paced = producer.users > 0 and producer.rate_per_user > 0
    handler = spec.consumer.handler
    workload = Workload(
        message_bytes=spec.workload.mean_message_bytes,
        partitions=spec.topic.partitions,
        members=spec.consumer.members,
        # The user's handler has no cost in the config: what a run observed stands for it.
        per_record_ms=0.0 if handler else proc.per_record_ms,
        record_p99_ms=0.0 if handler else record_p99_ms(proc),
        distribution="constant" if handler else proc.distribution,
        per_batch_ms=0.0 if handler else proc.per_batch_ms,
        mode=proc.mode if handler is None else _handler_mode(handler.function),
        records_per_s=producer.users * producer.rate_per_user if paced else None,
    )
    c = spec.consumer
    settings = client_settings(c.client, c.group_protocol, c.settings)
    return Facts(
        group=group, settings=settings, given=frozenset(c.settings), workload=workload,
        client=c.client, group_protocol=c.group_protocol,
    )  # fmt: skip


def _handler_mode(ref: str) -> Literal["async", "cpu"]:
    """A plain `def` handler runs on the event loop and holds it, as `mode: cpu` does (one
    that cannot be imported here is assumed to, the cautious side)."""
    try:
        return "async" if refs.is_async(refs.load(ref)) else "cpu"
    except refs.HandlerImportError:
        return "cpu"


def from_run(result: TrialResult) -> Facts:
    """A `tuner run --json` result: the client, protocol and settings it ran with (that
    client's defaults filling gaps) and what it measured. Under KIP-848 its session and
    heartbeat were the group's configs, so they are not counted as settings the client stated."""
    growth = None
    if result.steady is not None and result.steady.window_s > 0:
        growth = (result.steady.produced - result.steady.consumed) / result.steady.window_s
    elif result.producer is not None:
        growth = result.producer.records_per_s - result.throughput_records_per_s
    observed = Observed(
        source="run",
        window_s=result.window_s,
        poll_interval_max_ms=result.poll.interval_ms_max,
        open_gap_ms=result.poll.open_gap_ms_max,
        loop_blocked_max_ms=result.poll.loop_blocked_ms_max,
        records_per_poll=result.poll.records_per_poll_avg,
        records_per_fetch=result.fetch.records_per_fetch_avg if result.fetch.requests else None,
        fetch_latency_ms=result.fetch.latency_ms_p50,
        idle_ratio=result.poll.idle_ratio,
        rebalances=float(result.rebalances),
        lag_max=float(result.lag_max),
        lag_growth_per_s=growth,
    )
    protocol = result.group_protocol or "classic"
    settings = client_settings(
        result.client, protocol, {k: v for k, v in result.settings.items() if v is not None}
    )
    group_configs = librdkafka.KIP848_GROUP_CONFIGS if protocol == "consumer" else {}
    return Facts(
        group=result.group_id,
        settings={**settings, **dict(result.settings)},
        given=frozenset(
            n
            for n in result.settings
            if (n in SETTINGS or n in librdkafka.LIBRDKAFKA_ONLY) and n not in group_configs
        ),
        observed=observed,
        client=result.client,
        group_protocol=protocol,
    )


def client_settings(
    client: ClientName | None, protocol: GroupProtocol, stated: Mapping[str, SettingValue]
) -> dict[str, SettingValue | None]:
    """Every setting of `client` (aiokafka when None): `stated`, its defaults filling gaps."""
    return client_named(client).effective_settings(stated, protocol=protocol)


def merge(base: Facts, over: Facts) -> Facts:
    """`over` laid on `base`: its stated settings, workload and observations win, and the
    client (with its protocol) where it names one; a setting neither states keeps the default
    of the merged client (a run or a live group that names no client, laid on a
    confluent-kafka config, keeps librdkafka's defaults, not aiokafka's)."""
    named = base if over.client is None else over
    client = named.client
    fill = over if over.client == client else base
    settings = {
        name: over.settings[name]
        if name in over.given
        else base.settings[name]
        if name in base.given
        else fill.settings.get(name, over.settings.get(name))
        for name in dict.fromkeys([*over.settings, *fill.settings])
    }
    return Facts(
        group=over.group or base.group,
        settings=settings,
        given=base.given | over.given,
        workload=over.workload or base.workload,
        observed=over.observed or base.observed,
        limits=base.limits,
        client=client,
        group_protocol=named.group_protocol,
    )


def combine(base: Facts | None, live: tuple[Facts, ...]) -> tuple[Facts, ...]:
    """A config and/or run (`base`) laid under each live group's facts, or `base` alone."""
    if not live:
        return () if base is None else (base,)
    return tuple(g if base is None else merge(base, g) for g in live)
