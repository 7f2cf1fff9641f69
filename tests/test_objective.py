"""What Optuna is told per trial: objective values and a constraint set that never varies."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

import optuna

from tests.helpers import gp_constraint_check, measured
from tuner.cli.optimize import ADVICE
from tuner.config import ConstraintsSpec, ObjectiveSpec
from tuner.report import Candidate, Confirmation
from tuner.search.objective import Constraint, Unusable, infeasible_reason, score, unusable
from tuner.trial.run import FetchStats, LatencyMs, OffsetCheck, PollStats, SteadyState, TrialResult

HEALTHY = TrialResult(
    group_id="g",
    settings=MappingProxyType({"max.poll.interval.ms": 10000}),
    window_s=3.0,
    records_consumed=3000,
    throughput_records_per_s=1000.0,
    throughput_mb_per_s=0.1,
    record_age_ms=LatencyMs(p50=40000.0, p95=50000.0, p99=55000.0),
    rebalances=0,
    fetch=FetchStats(
        requests=10,
        latency_ms_p50=1.0,
        latency_ms_p99=2.0,
        records_per_fetch_avg=300.0,
        bytes_per_fetch_avg=30000.0,
    ),
    poll=PollStats(interval_ms_max=2000.0, idle_ratio=0.5),
    lag_max=100,
    backlog_emptied=False,
    errors=(),
    offsets=OffsetCheck(end_offsets_total=5000, committed_total=3000, consumed_total=3000),
    steady=SteadyState(
        group_id="g.steady",
        window_s=10.0,
        target_records_per_s=500.0,
        produced=5000,
        consumed=4990,
        latency_ms=LatencyMs(p50=5.0, p95=9.0, p99=12.0),
        kept_up=True,
        rebalances=0,
    ),
)
ERRING = replace(
    HEALTHY,
    errors=("member m1: KafkaError: boom",),
    poll=PollStats(interval_ms_max=None, idle_ratio=None),
    record_age_ms=LatencyMs(p50=None, p95=None, p99=None),
    steady=None,
)
STRICT = ObjectiveSpec(
    constraints=ConstraintsSpec(p99_latency_ms=50.0, max_poll_interval_headroom=0.5)
)


def test_healthy_and_erring_trials_carry_the_same_constraint_keys() -> None:
    """Errors count 0 when there are none, and headroom is there without a poll observation."""
    healthy, erring = score(HEALTHY, STRICT), score(ERRING, STRICT)
    assert list(healthy.constraints) == list(erring.constraints) == list(Constraint)
    assert healthy.constraints[Constraint.ERRORS] == 0.0
    assert erring.constraints[Constraint.ERRORS] == 1.0
    assert healthy.constraints[Constraint.MAX_POLL_INTERVAL_HEADROOM] == 2000 / 10000 - 0.5
    assert erring.constraints[Constraint.MAX_POLL_INTERVAL_HEADROOM] == -0.5
    assert healthy.feasible
    assert erring.violated() == [Constraint.ERRORS, Constraint.P99_LATENCY_MS]


def test_an_infeasible_trial_says_which_error_made_it_so() -> None:
    """`errors` alone sends the reader digging; the reason carries the first member error."""
    assert infeasible_reason(score(ERRING, STRICT), ERRING) == (
        "errors: member m1: KafkaError: boom, p99_latency_ms"
    )
    assert infeasible_reason(score(HEALTHY, STRICT), HEALTHY) is None


def test_latency_is_the_steady_state_p99_never_the_record_age() -> None:
    """The second objective and the p99 constraint read the steady state (12 ms), not the
    55 s record age; a group that fell behind the load scores an infinite p99."""
    two = ObjectiveSpec(minimize="p99_latency", constraints=ConstraintsSpec(p99_latency_ms=50.0))
    assert score(HEALTHY, two).values == (1000.0, 12.0)
    assert score(HEALTHY, two).constraints[Constraint.P99_LATENCY_MS] == 12.0 - 50.0
    assert HEALTHY.steady is not None
    behind = replace(HEALTHY, steady=replace(HEALTHY.steady, kept_up=False))
    assert score(behind, two).values == (1000.0, float("inf"))
    assert score(behind, two).violated() == [Constraint.P99_LATENCY_MS]
    assert score(replace(HEALTHY, steady=None), two).values[1] == float("inf")


def test_headroom_is_neutral_only_when_the_limit_is_unknown() -> None:
    """No max.poll.interval.ms in the settings: the headroom key is still there, at 0."""
    unknown = replace(HEALTHY, settings=MappingProxyType({}))
    assert score(unknown, STRICT).constraints[Constraint.MAX_POLL_INTERVAL_HEADROOM] == 0.0
    assert Constraint.P99_LATENCY_MS not in score(HEALTHY, ObjectiveSpec()).constraints


def test_gp_sampler_accepts_a_study_of_mixed_trials() -> None:
    """The check GPSampler runs on a study's constraints passes for healthy and erring trials
    told alike (it raised "The number of constraints must be the same for all trials")."""
    study = optuna.create_study(direction="maximize")
    for result in (HEALTHY, replace(HEALTHY, errors=("member m0: boom",)), ERRING):
        trial = study.ask()
        s = score(result, STRICT)
        for key, value in s.constraints.items():
            trial.set_constraint(key, value)
        study.tell(trial, list(s.values))
    values, feasible = gp_constraint_check(study)
    assert values.shape == (3, len(Constraint))
    assert feasible.tolist() == [True, False, False]


def test_every_constraint_has_advice() -> None:
    """The CLI's advice table covers every constraint the objective can report."""
    assert set(Constraint) <= set(ADVICE)


def test_a_run_is_usable_only_if_capacity_bound_and_it_processed_records() -> None:
    """`unusable` names the supply for a run whose backlog ran out, idleness for one that
    processed nothing, and passes a capacity-bound run; the confirmation says the same."""
    assert unusable(measured(1000)) is None
    assert unusable(measured(1000, backlog_emptied=True)) is Unusable.SUPPLY
    assert unusable(measured(0)) is Unusable.IDLE
    confirmation = Confirmation(
        runs={
            Candidate.BEST: (measured(1000), measured(1000, backlog_emptied=True)),
            Candidate.JAVA_DEFAULTS: (measured(0), measured(900)),
            Candidate.AIOKAFKA_DEFAULTS: (measured(900), measured(900)),
        }
    )
    assert "the backlog of best ran out in run 2 of 2" in str(confirmation.unusable(Candidate.BEST))
    assert "processed 0 records in run 1 of 2" in str(
        confirmation.unusable(Candidate.JAVA_DEFAULTS)
    )
    assert confirmation.unusable(Candidate.AIOKAFKA_DEFAULTS) is None
