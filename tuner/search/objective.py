"""From a trial's measurement to what Optuna optimises: the objective values and constraints.

Constraint values follow Optuna's convention: a trial is feasible when every value is <= 0.
The best trial is always chosen among feasible ones (Optuna 5 does this for `best_trial`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from tuner.config import ObjectiveSpec
from tuner.trial.result import TrialResult


class Constraint(StrEnum):
    """The constraint names Optuna stores; the CLI's advice is keyed by the same members."""

    REBALANCES = "rebalances"
    ERRORS = "errors"
    P99_LATENCY_MS = "p99_latency_ms"
    MAX_POLL_INTERVAL_HEADROOM = "max_poll_interval_headroom"


class Unusable(StrEnum):
    """Why a run's number is not the group's capacity, so no comparison may use it."""

    SUPPLY = "it waited on the supply (backlog ran out or caught up with live load)"
    IDLE = "no records processed"
    COARSE = "its window held too few batches per member to be measured"


def unusable(result: TrialResult) -> Unusable | None:
    """Was this run usable? None if so. The one check the ablation and the confirmation share:
    a run whose backlog ran out (or that caught up with live load) measured the supply, not the
    consumers, a run whose window held too few batches may be off by a whole batch at each
    edge (`TrialResult.coarse`), and a run that processed nothing has no rate to compare."""
    if result.backlog_emptied:
        return Unusable.SUPPLY
    if result.coarse is not None:
        return Unusable.COARSE
    if result.records_consumed <= 0 or result.throughput_records_per_s <= 0:
        return Unusable.IDLE
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Score:
    value: float
    """Records/s the group processed in the measurement window (maximised)."""
    values: tuple[float, ...]
    """What Optuna is told: (throughput,) or, with `objective.minimize`, (throughput, p99 ms of
    the steady state)."""
    constraints: dict[Constraint, float]
    """Name → value; <= 0 is feasible. The same keys on every trial of a study (Optuna's
    GPSampler refuses trials whose number of constraints differs)."""

    @property
    def feasible(self) -> bool:
        return all(v <= 0 for v in self.constraints.values())

    def violated(self) -> list[Constraint]:
        return [name for name, v in self.constraints.items() if v > 0]


def score(result: TrialResult, objective: ObjectiveSpec) -> Score:
    """Throughput; zero rebalances and zero errors are the constraints always applied.

    Which keys appear depends only on `objective`, never on the trial. Latency is the steady
    state's p99 only (the capacity window's is the backlog's age); a trial without a steady
    state, or whose group fell behind the load, scores an infinite p99 (Optuna's GP clips it).
    """
    constraints = objective.constraints
    values: tuple[float, ...] = (result.throughput_records_per_s,)
    p99 = result.steady.p99_ms if result.steady is not None else float("inf")
    if objective.minimize == "p99_latency":
        values += (p99,)
    out: dict[Constraint, float] = {
        Constraint.REBALANCES: float(result.rebalances),
        Constraint.ERRORS: float(len(result.errors)),
    }
    if constraints.p99_latency_ms is not None:
        out[Constraint.P99_LATENCY_MS] = p99 - constraints.p99_latency_ms
    if constraints.max_poll_interval_headroom is not None:
        out[Constraint.MAX_POLL_INTERVAL_HEADROOM] = _headroom(
            result, constraints.max_poll_interval_headroom
        )
    return Score(value=result.throughput_records_per_s, values=values, constraints=out)


def infeasible_reason(judged: Score, result: TrialResult) -> str | None:
    """The violated constraints as the progress line and `fail_reason` say them; `errors`
    names the first error a member reported, so the reader need not dig for it."""
    return (
        ", ".join(
            f"{c}: {result.errors[0]}" if c is Constraint.ERRORS and result.errors else c
            for c in judged.violated()
        )
        or None
    )


def _headroom(result: TrialResult, allowed: float) -> float:
    """Longest poll interval as a share of max.poll.interval.ms, minus the allowed share.

    0 (neutral) only when the limit is unknown; no poll interval observed counts as 0 ms,
    since nothing ran long between polls.
    """
    limit = result.settings.get("max.poll.interval.ms")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
        return 0.0
    observed = result.poll.interval_ms_max or 0.0
    return observed / limit - allowed
