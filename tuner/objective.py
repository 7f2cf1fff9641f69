"""From a trial's measurement to what Optuna optimises: the objective values and constraints.

Constraint values follow Optuna's convention: a trial is feasible when every value is <= 0.
The best trial is always chosen among feasible ones (Optuna 5 does this for `best_trial`).
"""

from __future__ import annotations

from dataclasses import dataclass

from tuner.config import ObjectiveSpec
from tuner.trial import TrialResult


@dataclass(frozen=True, slots=True, kw_only=True)
class Score:
    value: float
    """Records/s the group processed in the measurement window (maximised)."""
    values: tuple[float, ...]
    """What Optuna is told: (throughput,) or, with `objective.minimize`, (throughput, p99 ms)."""
    constraints: dict[str, float]
    """Name → value; <= 0 is feasible."""

    @property
    def feasible(self) -> bool:
        return all(v <= 0 for v in self.constraints.values())

    def violated(self) -> list[str]:
        return [name for name, v in self.constraints.items() if v > 0]


def score(result: TrialResult, objective: ObjectiveSpec) -> Score:
    """Throughput; zero rebalances after the initial join is the constraint always applied.

    A window without a latency sample scores an infinite p99 in the two-objective mode.
    """
    constraints = objective.constraints
    values: tuple[float, ...] = (result.throughput_records_per_s,)
    if objective.minimize == "p99_latency":
        p99 = result.e2e_latency_ms.p99
        values += (p99 if p99 is not None else float("inf"),)
    out: dict[str, float] = {"rebalances": float(result.rebalances)}
    if result.errors:
        out["errors"] = float(len(result.errors))
    if constraints.p99_latency_ms is not None:
        p99 = result.e2e_latency_ms.p99
        out["p99_latency_ms"] = (p99 if p99 is not None else float("inf")) - (
            constraints.p99_latency_ms
        )
    if constraints.max_poll_interval_headroom is not None:
        limit = result.settings.get("max.poll.interval.ms")
        observed = result.poll.interval_ms_max
        if isinstance(limit, int) and observed is not None:
            out["max_poll_interval_headroom"] = observed / limit - (
                constraints.max_poll_interval_headroom
            )
    return Score(value=result.throughput_records_per_s, values=values, constraints=out)
