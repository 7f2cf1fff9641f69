"""A study that fits its time (`study.budget`, `tuner optimize --budget`): the plan, and a
search on the real broker that stops where the plan says."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from tests.helpers import small_spec, unique
from tuner.cli import main
from tuner.config import StudySpec
from tuner.config.duration import duration_s
from tuner.search import budget
from tuner.search.optimize import optimize


def _spec(**sections: object) -> StudySpec:
    """Runs estimated at 1 + 4 + `OVERHEAD_GUESS_S` = 8 s; reserve 3·2·3 + 3·3 = 27 runs."""
    base: dict[str, object] = {
        "search": {"trials": 20},
        "confirm": {"ablation_pairs": 2, "repeats": 3},
    }
    return small_spec("budget", **{**base, **sections})


def test_durations_read_as_a_user_writes_them() -> None:
    assert [duration_s(t) for t in ("90s", "10m", "1h30m", "45", " 2m 30s ")] == [
        90, 600, 5400, 45, 150,
    ]  # fmt: skip
    for bad in ("ten minutes", "10x", "0", "-5m", "m"):
        with pytest.raises(ValueError, match=r"duration|more than 0"):
            duration_s(bad)


def test_a_budget_that_holds_everything_leaves_nothing_out() -> None:
    plan = budget.plan(_spec(), 3600, elapsed_s=0, trial_walls_s=())
    assert (plan.trials, plan.ablation_pairs, plan.confirm_repeats) == (20, 2, 3)
    assert plan.left_out == ()
    assert not plan.measured
    assert plan.run_s == 1 + 4 + budget.OVERHEAD_GUESS_S
    assert plan.eta_s(done=0) == (20 + 27) * plan.run_s


def test_a_tight_budget_shrinks_the_reserve_then_the_trials_and_says_each() -> None:
    """8 s runs: 40 min hold every run; 5 min (37 runs) the 27 reserved and 10 trials; 3 min
    (22 runs) shrink the ablation to 1 pair (21 runs), then the repeats to 2 (18): 4 trials."""
    assert budget.plan(_spec(), 300, elapsed_s=0, trial_walls_s=()).trials == 10
    plan = budget.plan(_spec(), 180, elapsed_s=0, trial_walls_s=())
    assert (plan.trials, plan.ablation_pairs, plan.confirm_repeats) == (4, 1, 2)
    assert plan.trials + plan.reserve_runs <= 180 // plan.run_s
    assert plan.left_out == (
        "4 of search.trials 20 trials: a longer budget would have searched more",
        "the ablation starts each step on 1 pair, not confirm.ablation_pairs 2",
        "the confirmation runs 2 repeats, not confirm.repeats 3",
    )


def test_a_budget_too_small_is_refused_with_what_would_do() -> None:
    with pytest.raises(budget.BudgetTooSmall) as refused:
        budget.plan(_spec(), 60, elapsed_s=0, trial_walls_s=())
    # 3 trials and the shrunk reserve's 18 runs at 8 s: 168 s.
    assert str(refused.value) == (
        "a budget of 60 s holds 0 trials at 8 s a run after the recommendation's 18 runs; "
        "3 trials take about 2.8 min"
    )


def test_the_plan_follows_what_trials_took() -> None:
    """Trials slower than guessed (15 s, not 8 s) shorten the search; once the fewest have
    run the plan stops the search there and says the recommendation will overrun."""
    spec = _spec()
    walls = [15.0, 16.0, 14.0]
    plan = budget.plan(spec, 600, elapsed_s=60, trial_walls_s=walls)
    assert plan.measured
    assert plan.run_s == statistics.median(walls)
    # 540 s left: 36 runs of 15 s; less the whole reserve of 27: 9 more, 12 in all.
    assert (plan.trials, plan.ablation_pairs, plan.confirm_repeats) == (12, 2, 3)
    late = budget.plan(spec, 600, elapsed_s=500, trial_walls_s=walls)
    assert late.trials == 3
    assert late.left_out[-1] == (
        "the recommendation's 18 runs take about 4.5 min, past the budget's 100 s left"
    )


def test_a_bad_budget_is_refused_naming_its_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 2 before any broker or storage: `--budget ten` names `study.budget` and the form;
    a budget too small says what would do."""
    config = tmp_path / "c.yaml"
    config.write_text("trial: {warmup_s: 1, measure_s: 4}\nmetrics: {port: 0, producer_port: 0}\n")
    assert main(["optimize", str(config), "--budget", "ten"]) == 2
    assert "study.budget: 'ten' is not a duration: write it like 90s, 10m or 1h30m" in (
        capsys.readouterr().err
    )
    assert main(["optimize", str(config), "--budget", "20s", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "study.budget: a budget of 20 s holds 0 trials" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.integration
def test_a_budgeted_search_stops_where_its_plan_says(
    bootstrap_servers: str, tmp_path: Path
) -> None:
    """50 trials asked, a 45 s budget, a 6-run reserve: the search stops after what the plan
    (made again after each trial, from what trials took) holds; the outcome carries that plan,
    which names what the budget left out."""
    spec = small_spec(
        "budget",
        cluster={"bootstrap_servers": bootstrap_servers},
        trial={"warmup_s": 0.5, "measure_s": 1},
        search={"trials": 50, "sampler": "random", "seed": 3,
                "parameters": {"max.poll.records": {"low": 100, "high": 2000}}},
        confirm={"ablation_pairs": 0, "repeats": 2},
        study={"name": unique("budget"), "budget": "45s"},
    )  # fmt: skip
    outcome = optimize(spec, out_dir=tmp_path)
    plan = outcome.plan
    assert plan is not None
    assert plan.measured
    ran = len(outcome.trials)
    assert 3 <= ran < 50
    assert ran == plan.trials
    assert plan.left_out[0] == (
        f"{ran} of search.trials 50 trials: a longer budget would have searched more"
    )
    # At the measured run time, the plan holds no more runs than the budget (bar the fewest
    # trials a study runs, which it says overrun).
    fits = int(45 // plan.run_s)
    assert ran + plan.reserve_runs <= max(fits, budget.MIN_TRIALS + plan.reserve_runs)
