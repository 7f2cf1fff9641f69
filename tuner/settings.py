"""The supported consumer settings: names in Java, aiokafka and librdkafka, defaults, and rules.

Settings are keyed by their Java property name everywhere in the tuner. This module imports
neither optuna nor aiokafka, so loading and validating a config stays cheap; aiokafka's
keyword arguments (which need its assignor classes) are built in `tuner.clients.aiokafka`.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

SettingValue = int | bool | str
"""A consumer setting's value, keyed elsewhere by its Java property name."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ParameterSpec:
    """One searched setting: an int range (`log` for byte sizes) or a list of choices."""

    low: int | None = None
    high: int | None = None
    log: bool = False
    choices: tuple[SettingValue, ...] = ()


INT_MAX = 2**31 - 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Setting:
    java_name: str
    aiokafka_kwarg: str
    librdkafka_name: str | None
    kind: type[int] | type[bool] | type[str]
    java_default: SettingValue
    aiokafka_default: SettingValue | None
    """None where aiokafka means "unlimited" (max_poll_records)."""
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()
    description: str = ""


ASSIGNOR_KINDS = ("range", "roundrobin", "sticky")
"""The assignors by short name; `tuner.clients.aiokafka.assignors` gives aiokafka's classes."""
_JAVA_ASSIGNORS = {
    "range": "org.apache.kafka.clients.consumer.RangeAssignor",
    "roundrobin": "org.apache.kafka.clients.consumer.RoundRobinAssignor",
    "sticky": "org.apache.kafka.clients.consumer.StickyAssignor",
}
_RDKAFKA_ASSIGNORS = {"range": "range", "roundrobin": "roundrobin", "sticky": "cooperative-sticky"}
ASSIGNOR_NAMES = {**{v: k for k, v in _JAVA_ASSIGNORS.items()}, **{k: k for k in ASSIGNOR_KINDS}}

_SETTINGS = (
    Setting(java_name="fetch.min.bytes", aiokafka_kwarg="fetch_min_bytes",
            librdkafka_name="fetch.min.bytes", kind=int, java_default=1, aiokafka_default=1,
            minimum=1, maximum=INT_MAX,
            description="the broker holds a fetch until this much data is ready"),
    Setting(java_name="fetch.max.wait.ms", aiokafka_kwarg="fetch_max_wait_ms",
            librdkafka_name="fetch.wait.max.ms", kind=int, java_default=500,
            aiokafka_default=500, minimum=0, maximum=INT_MAX,
            description="longest the broker holds a fetch waiting for fetch.min.bytes"),
    Setting(java_name="max.partition.fetch.bytes", aiokafka_kwarg="max_partition_fetch_bytes",
            librdkafka_name="max.partition.fetch.bytes", kind=int, java_default=1048576,
            aiokafka_default=1048576, minimum=1, maximum=INT_MAX,
            description="data per partition per fetch"),
    Setting(java_name="fetch.max.bytes", aiokafka_kwarg="fetch_max_bytes",
            librdkafka_name="fetch.max.bytes", kind=int, java_default=52428800,
            aiokafka_default=52428800, minimum=1, maximum=INT_MAX,
            description="data per fetch response, all partitions together"),
    Setting(java_name="max.poll.records", aiokafka_kwarg="max_poll_records",
            librdkafka_name=None, kind=int, java_default=500, aiokafka_default=None,
            minimum=1, maximum=INT_MAX,
            description="records per poll; aiokafka's default is unlimited (Java's is 500)"),
    Setting(java_name="session.timeout.ms", aiokafka_kwarg="session_timeout_ms",
            librdkafka_name="session.timeout.ms", kind=int, java_default=45000,
            aiokafka_default=10000, minimum=1, maximum=INT_MAX,
            description="missed heartbeats for this long evict the member (Java: 45 s since 3.0)"),
    Setting(java_name="heartbeat.interval.ms", aiokafka_kwarg="heartbeat_interval_ms",
            librdkafka_name="heartbeat.interval.ms", kind=int, java_default=3000,
            aiokafka_default=3000, minimum=1, maximum=INT_MAX,
            description="how often the background task heartbeats the coordinator"),
    Setting(java_name="max.poll.interval.ms", aiokafka_kwarg="max_poll_interval_ms",
            librdkafka_name="max.poll.interval.ms", kind=int, java_default=300000,
            aiokafka_default=300000, minimum=1, maximum=INT_MAX,
            description="a member that does not poll again within this leaves the group"),
    Setting(java_name="enable.auto.commit", aiokafka_kwarg="enable_auto_commit",
            librdkafka_name="enable.auto.commit", kind=bool, java_default=True,
            aiokafka_default=True, description="commit in the background (else after each batch)"),
    Setting(java_name="auto.commit.interval.ms", aiokafka_kwarg="auto_commit_interval_ms",
            librdkafka_name="auto.commit.interval.ms", kind=int, java_default=5000,
            aiokafka_default=5000, minimum=0, maximum=INT_MAX,
            description="background commit period"),
    Setting(java_name="partition.assignment.strategy",
            aiokafka_kwarg="partition_assignment_strategy",
            librdkafka_name="partition.assignment.strategy", kind=str,
            java_default="range", aiokafka_default="roundrobin",
            choices=(*ASSIGNOR_KINDS, *_JAVA_ASSIGNORS.values()),
            description="who gets which partition; Java defaults to range + cooperative-sticky"),
)  # fmt: skip

SETTINGS: Mapping[str, Setting] = {s.java_name: s for s in _SETTINGS}
"""Every supported consumer setting, by Java property name."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerLimits:
    """The broker's bounds on session timeouts (Kafka's defaults)."""

    group_min_session_timeout_ms: int = 6000
    group_max_session_timeout_ms: int = 1800000


def _check_value(setting: Setting, value: object) -> str | None:
    if setting.kind is bool:
        return None if isinstance(value, bool) else f"must be true or false, got {value!r}"
    if setting.kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"must be an integer, got {value!r}"
        low = setting.minimum if setting.minimum is not None else -INT_MAX
        high = setting.maximum if setting.maximum is not None else INT_MAX
        if not low <= value <= high:
            return f"must be in [{low}, {high}], got {value}"
        return None
    if not isinstance(value, str) or value not in setting.choices:
        return f"must be one of {', '.join(setting.choices)}; got {value!r}"
    return None


def validate_settings(
    values: Mapping[str, object], *, limits: BrokerLimits | None = None, rules: bool = True
) -> list[tuple[str, str]]:
    """Every problem as (property name, message): unknown names, types, ranges, then the rules
    (`rules=False` leaves the cross-setting rules to the caller, as `tuner advise` does)."""
    limits = limits or BrokerLimits()
    problems: list[tuple[str, str]] = []
    valid: dict[str, object] = {}
    for name, value in values.items():
        setting = SETTINGS.get(name)
        if setting is None:
            close = difflib.get_close_matches(name, list(SETTINGS), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append((name, f"unknown or unsupported consumer setting{hint}"))
            continue
        message = _check_value(setting, value)
        if message is None:
            valid[name] = value
        else:
            problems.append((name, message))
    if not rules:
        return problems
    # The rules between valid values still apply: one bad name must not hide them. A rule
    # that reads a setting with a bad value would judge a default the user did not ask for.
    bad = {name for name, _ in problems}
    found = check_rules(effective_settings(valid), limits)
    return problems + [(n, m) for n, m in found if not (RULE_INPUTS[n] & bad)]


RULE_INPUTS: Mapping[str, frozenset[str]] = {
    "heartbeat.interval.ms": frozenset({"heartbeat.interval.ms", "session.timeout.ms"}),
    "session.timeout.ms": frozenset({"session.timeout.ms"}),
    "fetch.max.bytes": frozenset({"fetch.max.bytes", "max.partition.fetch.bytes"}),
}
"""The settings each rule of `check_rules` reads, keyed by the setting its problem names."""


PARTNERS: Mapping[str, tuple[str, ...]] = {
    name: tuple(sorted(inputs - {name}))
    for inputs in RULE_INPUTS.values()
    if len(inputs) > 1
    for name in inputs
}
"""Settings a rule of `check_rules` binds: the ablation puts them back together if need be."""

REVERT_ORDER = (
    "session.timeout.ms", "max.poll.interval.ms", "heartbeat.interval.ms",
    "partition.assignment.strategy", "enable.auto.commit", "auto.commit.interval.ms",
    "fetch.max.wait.ms", "fetch.min.bytes", "fetch.max.bytes", "max.partition.fetch.bytes",
    "max.poll.records",
)  # fmt: skip
"""The ablation's order without importances: the timeouts (failover time) first."""

WHY: Mapping[str, str] = {
    "fetch.min.bytes": "lets the broker fill each fetch response instead of answering with a "
    "few records, so fewer round trips carry the same records",
    "fetch.max.wait.ms": "bounds how long the broker holds a fetch for fetch.min.bytes: the "
    "latency paid for fuller responses",
    "max.partition.fetch.bytes": "bounds the data one partition returns per fetch, so one "
    "response carries more (or less) of each partition's backlog",
    "fetch.max.bytes": "bounds one fetch response over all partitions; it must hold at least "
    "max.partition.fetch.bytes",
    "max.poll.records": "bounds the records one poll hands out, so one batch's processing "
    "stays inside max.poll.interval.ms",
    "session.timeout.ms": "how long the coordinator waits for heartbeats before it evicts a "
    "member: the time a dead member's partitions stand still",
    "heartbeat.interval.ms": "how often a member tells the coordinator it is alive; it must "
    "stay below a third of session.timeout.ms",
    "max.poll.interval.ms": "how long one batch may take before the member is deemed stuck and "
    "leaves the group: the time a stuck member's partitions stand still",
    "enable.auto.commit": "commits offsets in the background instead of after each batch",
    "auto.commit.interval.ms": "how often background commits happen: the records re-read "
    "after a failover",
    "partition.assignment.strategy": "decides which member reads which partition, and how much "
    "moves in a rebalance",
}
"""Why each setting matters, in the ablation's words."""


def check_rules(
    eff: Mapping[str, SettingValue | None], limits: BrokerLimits
) -> list[tuple[str, str]]:
    """The cross-setting rules, on effective settings (given values over aiokafka defaults)."""
    out: list[tuple[str, str]] = []
    session = int(eff["session.timeout.ms"] or 0)
    heartbeat = int(eff["heartbeat.interval.ms"] or 0)
    if heartbeat_too_slow(session_ms=session, heartbeat_ms=heartbeat):
        out.append((
            "heartbeat.interval.ms",
            f"must be less than session.timeout.ms / 3 ({session} / 3 = {session / 3:.0f}), "
            f"got {heartbeat}",
        ))  # fmt: skip
    lo, hi = limits.group_min_session_timeout_ms, limits.group_max_session_timeout_ms
    if not session_in_bounds(session, limits):
        out.append((
            "session.timeout.ms",
            f"must be within the broker's group.min/max.session.timeout.ms [{lo}, {hi}], "
            f"got {session}",
        ))  # fmt: skip
    fetch_max, partition_max = eff["fetch.max.bytes"], eff["max.partition.fetch.bytes"]
    if fetch_max_too_small(int(fetch_max or 0), int(partition_max or 0)):
        out.append((
            "fetch.max.bytes",
            f"must be >= max.partition.fetch.bytes ({partition_max}), got {fetch_max}",
        ))  # fmt: skip
    return out


def heartbeat_too_slow(*, session_ms: int, heartbeat_ms: int) -> bool:
    """Fewer than three heartbeats fit in a session timeout: one lost or late heartbeat and
    the coordinator evicts the member (Kafka's `heartbeat.interval.ms` documentation)."""
    return heartbeat_ms * 3 >= session_ms


def session_in_bounds(session_ms: int, limits: BrokerLimits) -> bool:
    """The broker refuses a join outside `group.min/max.session.timeout.ms`."""
    return limits.group_min_session_timeout_ms <= session_ms <= limits.group_max_session_timeout_ms


def fetch_max_too_small(fetch_max_bytes: int, partition_max_bytes: int) -> bool:
    return fetch_max_bytes < partition_max_bytes


def effective_settings(values: Mapping[str, object]) -> dict[str, SettingValue | None]:
    """Java name → value for every supported setting, aiokafka's defaults filling the gaps."""
    out: dict[str, SettingValue | None] = {}
    for name, setting in SETTINGS.items():
        value = values.get(name, setting.aiokafka_default)
        if setting.kind is str and isinstance(value, str):
            value = ASSIGNOR_NAMES.get(value, value)
        out[name] = value  # type: ignore[assignment]  # validated before it gets here
    return out


def java_defaults() -> dict[str, SettingValue]:
    return {name: s.java_default for name, s in SETTINGS.items()}


def aiokafka_defaults() -> dict[str, SettingValue | None]:
    return {name: s.aiokafka_default for name, s in SETTINGS.items()}


def java_property(name: str, value: SettingValue) -> str:
    """`name=value` as the Java consumer reads it (an assignor by its class name)."""
    if name == "partition.assignment.strategy":
        return f"{name}={_JAVA_ASSIGNORS[ASSIGNOR_NAMES[str(value)]]}"
    return f"{name}={_property_value(value)}"


def librdkafka_gap(name: str, value: SettingValue) -> str | None:
    """Why librdkafka has no setting that means what `name=value` meant to aiokafka, or None
    when it has one (`librdkafka_property`)."""
    if SETTINGS[name].librdkafka_name is None:
        return (
            "librdkafka has no poll batch size: it prefetches into a local queue up to "
            "queued.min.messages (and queued.max.messages.kbytes) and hands out what is queued"
        )
    if name == "partition.assignment.strategy" and ASSIGNOR_NAMES[str(value)] == "sticky":
        return (
            "librdkafka's only sticky assignor is cooperative-sticky, an incremental "
            "rebalance protocol, not the eager sticky assignor that was measured"
        )
    return None


def librdkafka_property(name: str, value: SettingValue) -> str:
    """`name=value` under librdkafka's name; only where `librdkafka_gap` is None."""
    rd = SETTINGS[name].librdkafka_name
    if rd is None:
        raise ValueError(f"{name} has no librdkafka equivalent")
    if name == "partition.assignment.strategy":
        return f"{rd}={ASSIGNOR_NAMES[str(value)]}"
    return f"{rd}={_property_value(value)}"


def _property_value(value: SettingValue) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def rounded(
    values: Mapping[str, SettingValue], *, keep: Collection[str] = ()
) -> dict[str, SettingValue]:
    """Every integer setting to two significant figures, as a person would write it (2211 ->
    2200, 195231 -> 200000); names in `keep` (the user's fixed settings) and values equal to a
    default stay as they are.

    The rules of `check_rules` hold afterwards if they held before: a heartbeat that would
    reach a third of the rounded session is rounded down below it, a fetch.max.bytes below the
    rounded max.partition.fetch.bytes is rounded up to it; a pair that still breaks a rule
    keeps its given values. The broker's session bounds are two-figure numbers, so rounding to
    the nearest never crosses them.
    """
    out = dict(values)
    for name, value in values.items():
        setting = SETTINGS.get(name)
        if (
            setting is None or setting.kind is not int or name in keep
            or isinstance(value, bool) or not isinstance(value, int)
            or value in (setting.java_default, setting.aiokafka_default)
        ):  # fmt: skip
            continue
        out[name] = _two_figures(value, _nearest)
    eff = effective_settings(out)
    heartbeat, session = "heartbeat.interval.ms", "session.timeout.ms"
    if (
        heartbeat in out
        and heartbeat not in keep
        and heartbeat_too_slow(
            session_ms=int(eff[session] or 0), heartbeat_ms=int(eff[heartbeat] or 0)
        )
    ):
        out[heartbeat] = _two_figures((int(eff[session] or 0) - 1) // 3, math.floor)
    fetch_max, partition = "fetch.max.bytes", "max.partition.fetch.bytes"
    if (
        fetch_max in out
        and fetch_max not in keep
        and fetch_max_too_small(int(eff[fetch_max] or 0), int(eff[partition] or 0))
    ):
        out[fetch_max] = _two_figures(int(eff[partition] or 0), math.ceil)
    broken = {n for n, _ in validate_settings(out)} - {n for n, _ in validate_settings(values)}
    for rule in broken:
        for name in RULE_INPUTS.get(rule, frozenset({rule})):
            if name in values:
                out[name] = values[name]
    return out


def _step(value: int) -> int:
    """The distance between two-figure numbers around `value` (100 for 2211)."""
    return int(10 ** max(0, len(str(abs(value))) - 2))


def _nearest(x: float) -> int:
    return math.floor(x + 0.5)


def _two_figures(value: int, direction: Callable[[float], int]) -> int:
    """`value` to two significant figures, down (`math.floor`), up (`math.ceil`) or to the
    nearest; at least 1."""
    step = _step(value)
    return max(1, direction(value / step) * step)


def check_parameters(params: Mapping[str, ParameterSpec]) -> list[tuple[str, str]]:
    """Problems with a `search.parameters` section, per property."""
    out: list[tuple[str, str]] = []
    for name, p in params.items():
        setting = SETTINGS.get(name)
        if setting is None:
            close = difflib.get_close_matches(name, list(SETTINGS), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            out.append((name, f"unknown or unsupported consumer setting{hint}"))
            continue
        if p.choices:
            out.extend((name, f"choice {c!r}: {m}") for c in p.choices
                       if (m := _check_value(setting, c)) is not None)  # fmt: skip
        elif p.low is None or p.high is None:
            out.append((name, "needs `low` and `high`, or `choices`"))
        elif setting.kind is not int:
            out.append((name, f"is {setting.kind.__name__}: give `choices`, not a range"))
        elif not 1 <= p.low <= p.high:
            out.append((name, f"`1 <= low <= high` must hold, got low={p.low}, high={p.high}"))
    return out
