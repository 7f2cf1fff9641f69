"""`recommend`: the step after the study, ablation then confirmation, on the real broker."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import optuna
import pytest
from prometheus_client import CollectorRegistry

from tests.helpers import measured, slow_records, small_spec
from tuner import report
from tuner.cli.advise import study_advice_of
from tuner.config import SettingValue
from tuner.recommend.ablation import Verdict
from tuner.recommend.bench import Bench
from tuner.recommend.confirm import confirm_on
from tuner.recommend.recommendation import Step, recommend
from tuner.report import Candidate
from tuner.search.study import CLIENT_ATTR, RESULT_ATTR, SETTINGS_ATTR, outcome_of
from tuner.trial.run import TrialResult


def _study_of(settings: Mapping[str, SettingValue], client: str = "aiokafka") -> optuna.Study:
    """An in-memory study whose one trial (the best) ran `settings` with `client`."""
    study = optuna.create_study(direction="maximize")
    study.set_user_attr(CLIENT_ATTR, {"client": client, "group_protocol": "classic"})
    trial = study.ask()
    trial.set_user_attr(SETTINGS_ATTR, dict(settings))
    trial.set_user_attr(RESULT_ATTR, measured(1000).to_dict())
    trial.set_constraint("rebalances", 0.0)
    study.tell(trial, 1000.0)
    return study


@pytest.mark.integration
def test_the_rounded_values_are_what_the_ablation_and_the_confirmation_run(
    bootstrap_servers: str, tmp_path: Path
) -> None:
    """A best trial that drew max.poll.records=152 is ablated and confirmed as 150: 5 ms
    records and a 2 s max.poll.interval.ms make aiokafka's unlimited batches overrun it, so
    putting it back rebalances and 150 is kept; every run of the recommendation used 150, never
    152, and the report names the rounding."""
    spec = small_spec(
        "rounded",
        cluster={"bootstrap_servers": bootstrap_servers},
        consumer={**slow_records(), "processing": {"per_record_ms": 5}},
        confirm={"repeats": 1, "ablation_pairs": 1},
        trial={"warmup_s": 0.5, "measure_s": 3},
    )
    outcome = outcome_of(_study_of({**spec.consumer.settings, "max.poll.records": 152}))
    assert outcome.best is not None
    steps: list[Step] = []
    done = recommend(spec, outcome, outcome.best, on_step=steps.append)
    assert steps == [Step.ABLATION, Step.CONFIRMATION]
    ablation, confirmation = done.ablation, done.confirmation
    assert ablation is not None
    (change,) = ablation.changes
    assert change.best == 150
    assert change.verdict is Verdict.TROUBLE, change.reason
    assert confirmation is not None
    assert confirmation.settings == dict(ablation.settings)
    assert {r.settings["max.poll.records"] for r in confirmation.runs[Candidate.BEST]} == {150}
    report.write(tmp_path, outcome, done)
    md = (tmp_path / "report.md").read_text()
    assert "`max.poll.records=150` (drawn: 152)" in md
    assert "max.poll.records=150\n" in (tmp_path / "consumer.properties").read_text()
    assert "152" not in (tmp_path / "consumer.properties").read_text()


@pytest.mark.integration
def test_a_confluent_kafka_study_ablates_against_librdkafkas_defaults(
    bootstrap_servers: str, tmp_path: Path
) -> None:
    """A confluent-kafka best trial that drew session.timeout.ms=10000 (aiokafka's default;
    librdkafka's is 45000) is ablated against 45000 and put back (no run rebalanced), so
    librdkafka.properties does not set it; no file names aiokafka's defaults."""
    spec = small_spec(
        "confluent-session",
        cluster={"bootstrap_servers": bootstrap_servers},
        consumer={"client": "confluent-kafka", "processing": {"per_record_ms": 0.5}},
        confirm={"repeats": 1, "ablation_pairs": 1},
        trial={"warmup_s": 0.5, "measure_s": 2},
    )
    outcome = outcome_of(_study_of({"session.timeout.ms": 10000}, client="confluent-kafka"))
    assert outcome.best is not None
    done = recommend(spec, outcome, outcome.best)
    assert done.ablation is not None
    (change,) = done.ablation.changes
    assert (change.name, change.best, change.baseline) == ("session.timeout.ms", 10000, 45000)
    assert change.verdict is Verdict.NO_TROUBLE, change.reason
    assert done.confirmation is not None
    assert done.confirmation.settings == {}
    advice = study_advice_of(spec, outcome, done)
    written = report.write(tmp_path, outcome, done, advice=advice)
    assert "session.timeout.ms" not in (tmp_path / "librdkafka.properties").read_text()
    assert "put back" in written.summary or "Change nothing" in written.summary
    texts = {p.name: p.read_text() for p in written.paths if p.suffix != ".png"}
    assert "What the advisor says" in texts["report.md"]
    for name, text in texts.items():
        for said in ("aiokafka defaults", "aiokafka's defaults", "aiokafka default "):
            assert said not in text, (name, said)
    assert json.loads(texts["summary.json"])["baseline"] == "confluent-kafka defaults"


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
