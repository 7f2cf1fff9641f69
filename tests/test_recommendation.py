"""`recommend`: the step after the study, ablation then confirmation, on the real broker."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import optuna
import pytest
from prometheus_client import CollectorRegistry

from tests.helpers import measured, small_spec
from tuner import report
from tuner.config import SettingValue
from tuner.recommend.bench import Bench
from tuner.recommend.confirm import confirm_on
from tuner.recommend.recommendation import Step, recommend
from tuner.report import Candidate
from tuner.search.study import RESULT_ATTR, SETTINGS_ATTR
from tuner.trial.run import TrialResult


@pytest.mark.integration
def test_the_rounded_values_are_what_the_ablation_and_the_confirmation_run(
    bootstrap_servers: str, tmp_path: Path
) -> None:
    """A best trial that drew max.poll.records=2211 is ablated and confirmed as 2200: every run
    of the recommendation used 2200 (or aiokafka's default, once put back), never 2211, and the
    report names the rounding."""
    spec = small_spec(
        "rounded",
        cluster={"bootstrap_servers": bootstrap_servers},
        confirm={"repeats": 1, "ablation_pairs": 1},
        trial={"warmup_s": 0.5, "measure_s": 2},
    )
    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    trial.set_user_attr(SETTINGS_ATTR, {"max.poll.records": 2211})
    trial.set_user_attr(RESULT_ATTR, measured(1000).to_dict())
    trial.set_constraint("rebalances", 0.0)
    study.tell(trial, 1000.0)
    steps: list[Step] = []
    done = recommend(spec, study, study.best_trial, on_step=steps.append)
    assert steps == [Step.ABLATION, Step.CONFIRMATION]
    ablation, confirmation = done.ablation, done.confirmation
    assert ablation is not None
    (change,) = ablation.changes
    assert change.best == 2200
    assert confirmation.settings == dict(ablation.settings)
    ran = {r.settings["max.poll.records"] for r in confirmation.runs[Candidate.BEST]}
    assert ran == {2200 if change.kept else None}
    report.write(tmp_path, study, study.best_trial, confirmation, ablation=ablation)
    md = (tmp_path / "report.md").read_text()
    assert "`max.poll.records=2200` (drawn: 2211)" in md
    assert "2211" not in (tmp_path / "consumer.properties").read_text()


class _OrderBench(Bench):
    """A bench that records which candidate ran in which order, measuring nothing."""

    order: list[str]

    def run(self, settings: Mapping[str, SettingValue], label: str) -> TrialResult:
        self.order.append(label.split(".", 1)[1])
        return measured(1000)


def test_each_confirmation_round_starts_one_candidate_later() -> None:
    """Three rounds put each candidate first, second and third once: no candidate always runs
    right after the same one (a fixed order measured one configuration 15% apart from itself)."""
    bench = _OrderBench(
        spec=small_spec("order"), bootstrap_servers="", backlog_records=0,
        registry=CollectorRegistry(),
    )  # fmt: skip
    bench.order = []
    confirmation = confirm_on(bench, {"max.poll.records": 200})
    best, java, own = (c.slug for c in Candidate)
    assert bench.order == [best, java, own, java, own, best, own, best, java]
    assert not confirmation.unchanged


def test_a_recommendation_of_the_defaults_is_not_called_a_gain_over_them() -> None:
    """Nothing kept: the recommendation's runs and aiokafka's defaults measure the same
    settings, and the verdict says their ratio is the spread, not a gain."""
    bench = _OrderBench(
        spec=small_spec("same", consumer={"settings": {"max.poll.interval.ms": 10000}}),
        bootstrap_servers="", backlog_records=0, registry=CollectorRegistry(),
    )  # fmt: skip
    bench.order = []
    confirmation = confirm_on(bench, {"max.poll.interval.ms": 10000})
    assert confirmation.unchanged
    said = confirmation.verdict(Candidate.AIOKAFKA_DEFAULTS)
    assert said.endswith("the run-to-run spread of the same configuration, not a gain.")
    assert "spread" not in confirmation.verdict(Candidate.JAVA_DEFAULTS)
