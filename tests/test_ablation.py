"""Ablation: the best trial cut back to the changes that pay, decided from interleaved runs."""

from __future__ import annotations

import random
from collections.abc import Mapping

import pytest

from tests.helpers import measured, slow_records, small_spec
from tuner import librdkafka
from tuner.config import SettingValue
from tuner.recommend.ablation import Ablation, Change, Verdict, ablate, bench_run
from tuner.recommend.bench import bench
from tuner.search import space
from tuner.trial.run import TrialError, TrialResult

BASE: dict[str, SettingValue] = {"max.poll.interval.ms": 2000}


class Model:
    """A plain `Run`: throughput from the settings (max.poll.records 100 is 20% faster,
    fetch.max.wait.ms 450 1% slower), a rebalance when max.poll.records is unlimited and
    `unlimited_rebalances`; it records every configuration it was asked to run."""

    def __init__(self, *, unlimited_rebalances: bool = False) -> None:
        self.unlimited_rebalances = unlimited_rebalances
        self.calls: list[dict[str, SettingValue]] = []

    def __call__(self, settings: Mapping[str, SettingValue]) -> TrialResult:
        self.calls.append(dict(settings))
        eff = space.effective_settings(settings)
        rps = 1000.0 * (1.2 if eff["max.poll.records"] == 100 else 1.0)
        rps *= 0.99 if eff["fetch.max.wait.ms"] == 450 else 1.0
        unlimited = eff["max.poll.records"] is None
        return measured(rps, rebalances=int(unlimited and self.unlimited_rebalances))


def _by_name(result: Ablation) -> dict[str, object]:
    return {c.name: c for c in result.changes}


def test_a_setting_that_matters_is_kept_and_one_that_does_not_is_reverted() -> None:
    """max.poll.records (20% faster) stays; fetch.max.wait.ms (1% off) goes back to 500."""
    best: dict[str, SettingValue] = {**BASE, "max.poll.records": 100, "fetch.max.wait.ms": 450}
    result = ablate(best, BASE, run=Model(), pairs=2)
    assert dict(result.settings) == {**BASE, "max.poll.records": 100}
    changes = {c.name: c for c in result.changes}
    assert changes["max.poll.records"].kept
    reverting = changes["max.poll.records"].reverting
    assert reverting is not None
    assert reverting.estimate == pytest.approx(1 / 1.2 - 1)
    assert changes["max.poll.records"].reason == (
        "putting it back costs more than 3% throughput, its whole 95% interval beyond the tolerance"
    )
    assert changes["max.poll.records"].verdict is Verdict.COSTS
    assert reverting.pairs == 3  # two pairs give no interval: a third shows the cost
    assert result.helped
    assert not changes["fetch.max.wait.ms"].kept
    assert changes["fetch.max.wait.ms"].best == 450
    assert changes["fetch.max.wait.ms"].baseline == 500
    assert result.runs == 2 * 3 + 2 * 2  # a 1% effect needs no third pair


def test_librdkafka_settings_are_ablated_like_the_others() -> None:
    """A confluent-kafka best trial with queued.min.messages (no effect in the model) and
    max.poll.records 100 (20% faster): the queue bound goes back, the batch stays."""
    best: dict[str, SettingValue] = {"max.poll.records": 100, "queued.min.messages": 5000}
    result = ablate(best, {}, run=Model(), pairs=1)
    assert dict(result.settings) == {"max.poll.records": 100}
    queued = _by_name(result)["queued.min.messages"]
    assert isinstance(queued, Change)
    assert (queued.kept, queued.best, queued.baseline) == (False, 5000, 100_000)


def test_a_confluent_kafka_setting_goes_back_to_librdkafkas_default() -> None:
    """With librdkafka's effective settings, a 7 s session goes back to 45000 (what a
    confluent-kafka member runs without it), not to aiokafka's 10000; with the heartbeat, in
    one step: two liveness timeouts that no run needed go back together."""
    best: dict[str, SettingValue] = {"session.timeout.ms": 7000, "heartbeat.interval.ms": 2000}
    result = ablate(best, {}, run=Model(), pairs=1, effective=librdkafka.effective_settings)
    baselines = {c.name: c.baseline for c in result.changes}
    assert baselines == {"session.timeout.ms": 45000, "heartbeat.interval.ms": 3000}
    assert {c.name: c.together for c in result.changes} == {
        "session.timeout.ms": ("heartbeat.interval.ms",),
        "heartbeat.interval.ms": ("session.timeout.ms",),
    }
    assert result.runs == 2


def test_a_setting_at_aiokafkas_default_is_still_a_change_to_librdkafka() -> None:
    """A confluent-kafka best trial that drew session.timeout.ms=10000 (aiokafka's default,
    not librdkafka's 45000) is ablated against 45000, and put back: it prevented nothing."""
    model = Model()
    result = ablate({"session.timeout.ms": 10000}, {}, run=model, pairs=1,
                    effective=librdkafka.effective_settings)  # fmt: skip
    (change,) = result.changes
    assert (change.name, change.best, change.baseline) == ("session.timeout.ms", 10000, 45000)
    assert change.verdict is Verdict.NO_TROUBLE
    assert dict(result.settings) == {}
    assert [c.get("session.timeout.ms") for c in model.calls] == [10000, None]


def test_runs_are_interleaved_and_the_order_swaps_each_pair() -> None:
    """Each step runs current, candidate, candidate, current, …: drift hits both alike, and
    neither side always runs first."""
    model = Model()
    ablate({"fetch.max.wait.ms": 450}, {}, run=model, pairs=3)
    assert [c.get("fetch.max.wait.ms") for c in model.calls] == [450, None, None, 450, 450, None]


def test_a_revert_that_brings_back_a_rebalance_is_kept() -> None:
    """As fast when put back, but unlimited max.poll.records rebalances: the change stays."""
    best: dict[str, SettingValue] = {**BASE, "max.poll.records": 20}

    def run(settings: Mapping[str, SettingValue]) -> TrialResult:
        unlimited = "max.poll.records" not in settings
        return measured(1000, rebalances=int(unlimited))

    result = ablate(best, BASE, run=run, pairs=2)
    (change,) = result.changes
    assert change.kept
    assert "brings back trouble: 2 rebalances in 2 runs" in change.reason
    assert dict(result.settings) == best


def test_coupled_timeouts_go_back_together_and_the_result_validates() -> None:
    """session.timeout.ms 57 s cannot go back to 10 s beside a 10.3 s heartbeat: both revert."""
    best: dict[str, SettingValue] = {"session.timeout.ms": 57027, "heartbeat.interval.ms": 10328}
    model = Model()
    result = ablate(best, {}, run=model, pairs=2)
    assert len(model.calls) == 4  # one step for the pair, not one each
    assert dict(result.settings) == {}
    changes = {c.name: c for c in result.changes}
    assert not changes["session.timeout.ms"].kept
    assert changes["session.timeout.ms"].together == ("heartbeat.interval.ms",)
    assert not changes["heartbeat.interval.ms"].kept
    assert space.validate_settings(result.settings) == []


def test_coupled_fetch_sizes_revert_together() -> None:
    """fetch.max.bytes below the default partition size would break the rule: both go back."""
    best: dict[str, SettingValue] = {"max.partition.fetch.bytes": 65536, "fetch.max.bytes": 65536}
    result = ablate(best, {}, run=Model(), pairs=1)
    assert dict(result.settings) == {}
    assert {c.name for c in result.reverted} == set(best)
    assert space.validate_settings(result.settings) == []


def test_among_equals_the_baseline_wins_a_shorter_timeout_too() -> None:
    """A 7 s session timeout the search drew is as fast as 10 s: "shorter is safer" is no
    measured reason, so it goes back (its heartbeat with it), as does a 600 s
    max.poll.interval.ms; each says no run rebalanced, so it prevented no trouble."""
    best: dict[str, SettingValue] = {
        "session.timeout.ms": 7000, "heartbeat.interval.ms": 2000, "max.poll.interval.ms": 600000,
    }  # fmt: skip
    result = ablate(best, {}, run=Model(), pairs=2)
    assert dict(result.settings) == {}
    assert {c.verdict for c in result.changes} == {Verdict.NO_TROUBLE}
    assert all("no run rebalanced" in c.reason for c in result.changes)
    assert not result.helped


def test_a_change_that_cost_throughput_is_put_back_and_said_so() -> None:
    """Putting max.poll.records back to unlimited is 13% faster: it goes back, and the words
    say the change cost throughput, not that it had no effect."""

    def run(settings: Mapping[str, SettingValue]) -> TrialResult:
        return measured(1000 if "max.poll.records" in settings else 1132)

    result = ablate({"max.poll.records": 2200}, {}, run=run, pairs=3)
    (change,) = result.changes
    assert not change.kept
    assert change.verdict is Verdict.HURT
    assert change.reverting is not None
    assert change.reverting.estimate == pytest.approx(0.132)
    assert change.reason == (
        "putting it back raised throughput by more than 3%, its whole 95% interval beyond the "
        "tolerance: the change cost throughput"
    )
    assert not result.helped


def test_settings_that_break_a_rule_are_refused() -> None:
    """A best that Kafka would reject, or no runs to decide with, is an error."""
    with pytest.raises(ValueError, match=r"heartbeat\.interval\.ms"):
        ablate({"session.timeout.ms": 7000}, {}, run=Model(), pairs=1)
    with pytest.raises(ValueError, match="at least one pair"):
        ablate({"fetch.min.bytes": 1000}, {}, run=Model(), pairs=0)


def test_least_important_first_else_the_timeouts_first() -> None:
    """With importances the least important goes first; without, session.timeout.ms does."""
    best: dict[str, SettingValue] = {"fetch.min.bytes": 1000, "session.timeout.ms": 20000}
    seen: list[str] = []
    ablate(best, {}, run=Model(), pairs=1, on_change=lambda d, t, c: seen.append(c.name))
    assert seen == ["session.timeout.ms", "fetch.min.bytes"]
    seen.clear()
    importances = {"session.timeout.ms": 0.7, "fetch.min.bytes": 0.1}
    ablate(best, {}, run=Model(), pairs=1, importances=importances,
           on_change=lambda d, t, c: seen.append(c.name))  # fmt: skip
    assert seen == ["fetch.min.bytes", "session.timeout.ms"]


def test_a_run_out_of_backlog_is_no_evidence_for_a_revert() -> None:
    """A candidate whose backlog ran out measured the supply: the change is kept."""

    def run(settings: Mapping[str, SettingValue]) -> TrialResult:
        return measured(1000, backlog_emptied="fetch.min.bytes" not in settings)

    result = ablate({"fetch.min.bytes": 1000}, {}, run=run, pairs=1)
    assert result.changes[0].kept
    assert "backlog ran out" in result.changes[0].reason


def test_a_run_that_fails_keeps_the_change() -> None:
    """A candidate whose run raises `TrialError` gives no evidence: the change stays, and the
    steps after it still run."""

    def run(settings: Mapping[str, SettingValue]) -> TrialResult:
        if "fetch.min.bytes" not in settings:
            raise TrialError("members crashed")
        return measured(1000)

    best: dict[str, SettingValue] = {"fetch.min.bytes": 1000, "fetch.max.wait.ms": 450}
    result = ablate(best, {}, run=run, pairs=2)
    changes = {c.name: c for c in result.changes}
    assert changes["fetch.min.bytes"].kept
    assert changes["fetch.min.bytes"].reason == (
        "no comparison: a run of the candidate put back failed: members crashed"
    )
    assert not changes["fetch.max.wait.ms"].kept


@pytest.mark.parametrize("seed", range(8))
def test_a_workload_where_nothing_matters_recommends_nothing(seed: int) -> None:
    """Every run 1000 records/s with 4% noise whatever the settings (the spread of ordinary
    workloads): in every seed the ablation of six drawn changes keeps none, at 2 pairs to
    start (the old rule, a 3% cost over 2 pairs, kept some in 7 of these 8 seeds)."""
    rng = random.Random(seed)
    best: dict[str, SettingValue] = {
        "max.poll.records": 2200, "fetch.min.bytes": 1000, "fetch.max.wait.ms": 100,
        "max.partition.fetch.bytes": 2 << 20, "max.poll.interval.ms": 580000,
        "session.timeout.ms": 20000,
    }  # fmt: skip
    result = ablate(best, {}, run=lambda _: measured(1000 * rng.gauss(1, 0.04)), pairs=2)
    assert dict(result.settings) == {}, [(c.name, c.reason) for c in result.kept]
    assert not result.helped


WIDE: dict[str, SettingValue] = {
    "max.poll.records": 100, "fetch.min.bytes": 1000, "fetch.max.wait.ms": 450,
    "max.partition.fetch.bytes": 2 << 20, "max.poll.interval.ms": 580000,
    "session.timeout.ms": 20000,
}  # fmt: skip
NOISE = {"max.poll.records": 0.9, "fetch.min.bytes": 0.03, "fetch.max.wait.ms": 0.03,
         "max.partition.fetch.bytes": 0.02, "max.poll.interval.ms": 0.01,
         "session.timeout.ms": 0.01}  # fmt: skip


def test_what_the_importances_call_noise_goes_back_in_one_step() -> None:
    """Six changes, five of them noise by the importances: the five go back together in one
    step (2 pairs), max.poll.records (20% faster) stays in its own (3 pairs): 10 runs, where a
    step per setting took 22; the verdicts are the same."""
    one_by_one = ablate(WIDE, {}, run=Model(), pairs=2)
    grouped = ablate(WIDE, {}, run=Model(), pairs=2, importances=NOISE)
    assert dict(grouped.settings) == dict(one_by_one.settings) == {"max.poll.records": 100}
    assert {c.name: c.kept for c in grouped.changes} == {c.name: c.kept for c in one_by_one.changes}
    assert (grouped.runs, one_by_one.runs) == (4 + 6, 22)
    together = {c.name: set(c.together) for c in grouped.changes if not c.kept}
    assert together["fetch.min.bytes"] == set(WIDE) - {"max.poll.records", "fetch.min.bytes"}


def test_a_noise_group_that_costs_is_halved_until_the_setting_that_matters_is_found() -> None:
    """The importances were wrong: max.poll.records (20% faster) is in the noise group. Putting
    the group back costs, so it is halved, and halved again: max.poll.records stays, the rest
    go back, as a step per setting decides."""
    wrong = {**NOISE, "max.poll.records": 0.01, "fetch.min.bytes": 0.9}
    result = ablate(WIDE, {}, run=Model(), pairs=2, importances=wrong)
    assert dict(result.settings) == {"max.poll.records": 100}
    kept = [c.name for c in result.changes if c.kept]
    assert kept == ["max.poll.records"]


@pytest.mark.integration
def test_ablation_on_the_broker_keeps_max_poll_records_and_reverts_fetch_wait(
    bootstrap_servers: str,
) -> None:
    """10 ms records, max.poll.interval.ms 2 s: unlimited max.poll.records rebalances, so 20
    stays; fetch.max.wait.ms 450 instead of 500 changes nothing measurable and goes back."""
    spec = small_spec(
        "ablate",
        cluster={"bootstrap_servers": bootstrap_servers},
        consumer=slow_records(),
        workload={"prefill_records": 20000},
    )
    best: dict[str, SettingValue] = {
        **spec.consumer.settings, "max.poll.records": 20, "fetch.max.wait.ms": 450,
    }  # fmt: skip
    with bench(spec, bootstrap_servers=bootstrap_servers, backlog_records=20000) as b:
        result = ablate(best, spec.consumer.settings, run=bench_run(b), pairs=2)
    changes = {c.name: c for c in result.changes}
    assert changes["max.poll.records"].kept, changes["max.poll.records"].reason
    assert "rebalances" in changes["max.poll.records"].reason
    assert not changes["fetch.max.wait.ms"].kept, changes["fetch.max.wait.ms"].reason
    assert dict(result.settings) == {**spec.consumer.settings, "max.poll.records": 20}
