"""The search space: what `tuner optimize` samples, and the aiokafka kwargs a trial runs with.

The settings catalogue and its rules live in `tuner.settings` (no optuna, no aiokafka there,
so a config loads cheaply); they are re-exported here for the modules that import them from
`tuner.search.space`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import cast

import optuna

from tuner.clients import client_named
from tuner.clients.aiokafka import AIOKAFKA, to_aiokafka_kwargs
from tuner.settings import (
    INT_MAX,
    SETTINGS,
    BrokerLimits,
    ParameterSpec,
    Setting,
    SettingValue,
    aiokafka_defaults,
    check_parameters,
    check_rules,
    effective_settings,
    java_defaults,
    rounded,
    validate_settings,
)

__all__ = [
    "DEFAULT_SEARCH",
    "FETCH_RATIO",
    "HEARTBEAT_FRACTION",
    "SETTINGS",
    "BrokerLimits",
    "SearchSpace",
    "Setting",
    "aiokafka_defaults",
    "check_parameters",
    "check_rules",
    "effective_settings",
    "java_defaults",
    "rounded",
    "search_space",
    "suggest",
    "to_aiokafka_kwargs",
    "validate_settings",
]

# --- the search space ---------------------------------------------------------------------

DEFAULT_SEARCH = AIOKAFKA.search
"""What an aiokafka study searches when `search.parameters` is not given."""

HEARTBEAT = "heartbeat.interval.ms"
SESSION = "session.timeout.ms"
FETCH_MAX = "fetch.max.bytes"
PARTITION_FETCH_MAX = "max.partition.fetch.bytes"

HEARTBEAT_FRACTION = (0.1, 0.3)
"""heartbeat.interval.ms is sampled as this fraction of the trial's session.timeout.ms."""
FETCH_RATIO = (1.0, 64.0)
"""fetch.max.bytes is sampled as this multiple (log scale) of max.partition.fetch.bytes."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchSpace:
    """What a study searches once `consumer.settings` has fixed its part; fixed settings are
    never sampled, so a study never overrides what the user pinned."""

    parameters: Mapping[str, ParameterSpec]
    fixed: Mapping[str, SettingValue]
    removed: tuple[str, ...]
    """Searched names (default space or the user's) dropped because they are fixed."""

    def note(self) -> str | None:
        """`fixed by consumer.settings: max.poll.interval.ms=2500 (not searched)`, or None."""
        if not self.removed:
            return None
        pinned = ", ".join(f"{name}={self.fixed[name]}" for name in self.removed)
        return f"fixed by consumer.settings: {pinned} (not searched)"

    def suggest(self, trial: optuna.Trial) -> dict[str, SettingValue]:
        """The trial's full settings: the fixed ones plus one sample of the rest."""
        return {**self.fixed, **suggest(trial, self.parameters, fixed=self.fixed)}


def search_space(
    spec_parameters: Mapping[str, ParameterSpec] | None,
    fixed: Mapping[str, SettingValue],
    *,
    client: str = "aiokafka",
) -> SearchSpace:
    """The searched parameters (`search.parameters`, else the client's default space:
    `ConsumerClient.search`) minus every fixed one.

    A fixed heartbeat.interval.ms raises a searched session timeout's lower bound above three
    heartbeats, and a fixed fetch.max.bytes caps a searched max.partition.fetch.bytes, so
    sampled values still pass `check_rules` (when the range allows it).
    """
    own = client_named(client)
    params = own.search if spec_parameters is None else spec_parameters
    kept = {name: p for name, p in params.items() if name not in fixed}
    heartbeat, session = fixed.get(HEARTBEAT), kept.get(SESSION)
    if isinstance(heartbeat, int) and session is not None and session.high is not None:
        low = max(session.low or 1, 3 * heartbeat + 1)
        if low <= session.high:
            kept[SESSION] = replace(session, low=low)
    fetch_max, partition = fixed.get(FETCH_MAX), kept.get(PARTITION_FETCH_MAX)
    if isinstance(fetch_max, int) and partition is not None and partition.high is not None:
        high = min(partition.high, fetch_max)
        if (partition.low or 1) <= high:
            kept[PARTITION_FETCH_MAX] = replace(partition, high=high)
    own.narrow_space(kept, fixed)
    return SearchSpace(
        parameters=MappingProxyType(kept),
        fixed=MappingProxyType(dict(fixed)),
        removed=tuple(name for name in params if name in fixed),
    )


def suggest(
    trial: optuna.Trial,
    params: Mapping[str, ParameterSpec],
    *,
    fixed: Mapping[str, SettingValue] | None = None,
) -> dict[str, SettingValue]:
    """Sample one configuration that Kafka accepts, enforcing the rules while sampling.

    heartbeat.interval.ms is drawn as a fraction of the session timeout and fetch.max.bytes as
    a multiple of max.partition.fetch.bytes (sampled or `fixed`): every distribution is the
    same in every trial, as Optuna's multivariate samplers need, and no trial is wasted on a
    configuration that `check_rules` would reject. Names in `fixed` are never sampled.
    """
    fixed = fixed or {}
    out: dict[str, SettingValue] = {}
    derived = {
        name for name in (HEARTBEAT, FETCH_MAX) if name in params and not params[name].choices
    }
    for name, p in params.items():
        if name in fixed or name in derived:
            continue
        if p.choices:
            out[name] = cast(SettingValue, trial.suggest_categorical(name, list(p.choices)))
        else:
            assert p.low is not None  # noqa: S101 - check_parameters ran at load
            assert p.high is not None  # noqa: S101
            out[name] = trial.suggest_int(name, p.low, p.high, log=p.log)
    eff = effective_settings({**fixed, **out})
    if HEARTBEAT in derived and HEARTBEAT not in fixed:
        fraction = trial.suggest_float("heartbeat.fraction", *HEARTBEAT_FRACTION)
        session = int(eff[SESSION] or 0)
        out[HEARTBEAT] = _clamp(int(session * fraction), params[HEARTBEAT], (session - 1) // 3)
    if FETCH_MAX in derived and FETCH_MAX not in fixed:
        ratio = trial.suggest_float("fetch.max.bytes.ratio", *FETCH_RATIO, log=True)
        floor = int(eff[PARTITION_FETCH_MAX] or 1)
        out[FETCH_MAX] = max(floor, _clamp(round(floor * ratio), params[FETCH_MAX], INT_MAX))
    return out


def _clamp(value: int, p: ParameterSpec, ceiling: int) -> int:
    """Into the configured [low, high], then at most `ceiling` (the rule wins), at least 1."""
    value = max(p.low or 1, min(p.high or value, value))
    return max(1, min(value, ceiling))
