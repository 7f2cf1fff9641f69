"""A batch's time as the sum of its records' draws, and the rules that use it (KT101, KT102,
KT201): the numbers against the simulator's own draws and a normal approximation, the advice
when no batch size helps, and findings judged on the gap a run measured."""

from __future__ import annotations

import math
import urllib.parse
from dataclasses import replace

import pytest

from tests.helpers import held_loop_trial, kt102_on_a_short_session, measured, small_spec
from tuner.advice import Severity, Workload, from_config, from_run, study_advice
from tuner.advice import prometheus as prom
from tuner.advice import rules as r
from tuner.advice.batch import batch_time, records_within
from tuner.advice.blocked import loop_hold
from tuner.advice.facts import Facts
from tuner.config import ProcessingSpec, parse_config
from tuner.consumer.processing import ProcessingModel, record_p99_ms
from tuner.settings import effective_settings
from tuner.trial.result import PollStats

Z99 = 2.3263478740408408

ISSUE = {
    "topic": {"partitions": 2},
    "workload": {"message_bytes": 150},
    "consumer": {
        "members": 2,
        "processing": {"per_record_ms": 1, "distribution": "lognormal", "p99_ms": 8,
                       "mode": "cpu"},
    },
}  # fmt: skip
"""1 MiB per partition / 150 B = 6,990 records per poll; 1 ms mean, 8 ms p99 per record, cpu."""


def _workload(spec: ProcessingSpec) -> Workload:
    return Workload(
        message_bytes=256, partitions=2, members=2, per_record_ms=spec.per_record_ms,
        record_p99_ms=record_p99_ms(spec), per_batch_ms=spec.per_batch_ms, mode=spec.mode,
        distribution=spec.distribution,
    )  # fmt: skip


def _facts(
    w: Workload, settings: dict[str, int] | None = None, gap_ms: float | None = None
) -> Facts:
    given = settings or {}
    run = measured(100)
    observed = None
    if gap_ms is not None:
        ran = replace(run, poll=PollStats(interval_ms_max=gap_ms, idle_ratio=0.1))
        observed = from_run(ran).observed
    return Facts(
        group="g", settings=effective_settings(given), given=frozenset(given), workload=w,
        observed=observed,
    )  # fmt: skip


def test_constant_batch_is_exact() -> None:
    """A constant 2 ms per record and 50 ms per batch: 1,000 records take exactly 2,050 ms."""
    spec = ProcessingSpec(per_record_ms=2, per_batch_ms=50)
    t = batch_time(_workload(spec), 1000)
    assert (t.mean_ms, t.at_quantile_ms) == (2050, 2050)
    assert records_within(_workload(spec), 2050) == 1000


@pytest.mark.parametrize(
    ("distribution", "p99_ms", "records", "batches"),
    [
        ("exponential", None, 1, 40_000),
        ("exponential", None, 20, 10_000),
        ("exponential", None, 1000, 2_000),
        ("lognormal", 8.0, 1, 40_000),
        ("lognormal", 8.0, 20, 10_000),
        ("lognormal", 8.0, 1000, 2_000),
    ],
)
def test_batch_p99_matches_the_simulators_own_draws(
    distribution: str, p99_ms: float | None, records: int, batches: int
) -> None:
    """The predicted p99 of a batch is within 6% of the p99 of batches the consumer's own
    processing model draws (1 ms mean per record)."""
    spec = ProcessingSpec(per_record_ms=1, distribution=distribution, p99_ms=p99_ms)  # type: ignore[arg-type]
    model = ProcessingModel(spec, seed=7)
    draws = sorted(model.draw_s(records) * 1000 for _ in range(batches))
    empirical = draws[int(0.99 * batches)]
    predicted = batch_time(_workload(spec), records)
    assert predicted.at_quantile_ms == pytest.approx(empirical, rel=0.06)
    assert predicted.mean_ms == pytest.approx(records)


def test_the_issues_lognormal_batch_is_seconds_not_a_minute() -> None:
    """Lognormal 1 ms mean, 8 ms p99, cpu, 6,990 records per poll: KT102 says about 7.3 s, the
    mean plus z99 x √N standard deviations (not 6,990 x 8 ms = 55.9 s), and names the p99."""
    facts = from_config(parse_config(ISSUE))
    found = {f.code: f for f in r.advise(facts)}
    kt102 = found["KT102"]
    sigma = Z99 - math.sqrt(Z99**2 - 2 * math.log(8))  # one record's lognormal sigma
    sd = math.sqrt(6990 * math.expm1(sigma**2))  # mean 1 ms: var = e^σ² - 1 per record
    assert kt102.value == pytest.approx(6990 + Z99 * sd, rel=0.01)
    assert 7000 < kt102.value < 7700
    assert kt102.severity is Severity.WARNING  # 74% of aiokafka's 10 s session
    assert "p99 of a batch of 6,990 records: 7,3" in kt102.arithmetic
    assert "7.4 s" in kt102.title or "7.3 s" in kt102.title
    assert "KT101" not in found  # 7.4 s against 300 s


def test_suggested_max_poll_records_comes_from_the_sum() -> None:
    """Lognormal 2 ms mean, 10 ms p99 against 10 s: about 2,400 records fit half of it at p99
    (the mean alone allows 2,500), not 500 (= 5,000 ms / the p99 of one record)."""
    w = _workload(ProcessingSpec(per_record_ms=2, distribution="lognormal", p99_ms=10))
    f = r.poll_work_over_interval(_facts(w, {"max.poll.interval.ms": 10000}))
    assert f is not None
    fits = records_within(w, 5000)
    assert 2300 < fits < 2500
    assert f"set max.poll.records to at most {fits:,}" in f.change


def test_no_batch_size_helps_a_per_batch_cost_past_the_session() -> None:
    """7 s per batch in cpu mode against a 6 s session: no max.poll.records helps, so the advice
    names a longer session timeout and the work off the loop instead."""
    spec = ProcessingSpec(per_record_ms=0.1, per_batch_ms=7000, mode="cpu")
    facts = _facts(_workload(spec), {"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000})
    f = r.loop_blocked_past_session(facts)
    assert f is not None
    assert f.severity is Severity.RISK
    assert "no max.poll.records helps" in f.change
    assert "max.poll.records ≤" not in f.change
    assert "off the loop" in f.change
    assert f"raise session.timeout.ms to at least {2 * f.value:,.0f}" in f.change


def test_findings_go_by_the_measured_gap() -> None:
    """A predicted 41 s poll that a run measured at 3 s raises no KT101 against 10 s; a
    predicted 14% of 300 s that a run measured at 200 s (67%) does, with both numbers."""
    w = _workload(ProcessingSpec(per_record_ms=10))  # 4,096 records: 40,960 ms
    assert r.poll_work_over_interval(_facts(w, {"max.poll.interval.ms": 10000})) is not None
    assert r.poll_work_over_interval(_facts(w, {"max.poll.interval.ms": 10000}, 3000)) is None
    assert r.poll_work_over_interval(_facts(w, {"max.poll.interval.ms": 300000})) is None
    f = r.poll_work_over_interval(_facts(w, {"max.poll.interval.ms": 300000}, 200000))
    assert f is not None
    assert (f.value, f.severity) == (200000, Severity.WARNING)
    assert "40,960 ms" in f.arithmetic
    assert "measured: longest gap between polls 200,000 ms (run)" in f.arithmetic


def test_the_recommendation_raises_no_finding_its_runs_contradict() -> None:
    """The issue's study: a recommended max.poll.interval.ms of 82,691 whose runs measured a
    6,973 ms longest gap and no rebalance gets no poll-work finding; the defaults' blocked-loop
    finding states the predicted and the measured gap."""
    spec = parse_config(ISSUE)
    ran = replace(measured(100), poll=PollStats(interval_ms_max=6973, idle_ratio=0.1))
    found = study_advice(
        spec, {"max.poll.interval.ms": 82691}, default_runs=[ran], recommended_runs=[ran]
    )
    assert "KT101" not in {f.code for f in found.recommended}
    assert "KT201" not in {f.code for f in found.recommended}
    kt102 = {f.code: f for f in found.defaults}["KT102"]
    assert kt102.value == 6973
    assert "longest gap between polls 6,973 ms (run)" in kt102.arithmetic
    assert "the p99 of a batch of 6,990 records: 7,3" in kt102.arithmetic


@pytest.mark.integration
@pytest.mark.parametrize("mode", ["cpu", "async"])
def test_a_run_measures_the_blocked_loop_the_advisor_predicts(
    bootstrap_servers: str, mode: str
) -> None:
    """100 records of a constant 8 ms per poll, a commit after each: in cpu mode a run measures
    the event loop held for about the 800 ms the advisor predicts, and KT102 goes by that
    measurement; in async mode the loop stays free (well under a poll's work)."""
    spec = small_spec(
        f"advloop{mode}",
        consumer={"members": 1, "processing": {"per_record_ms": 8, "mode": mode},
                  "settings": {"max.poll.records": 100, "enable.auto.commit": False}},
        trial={"warmup_s": 1, "measure_s": 4},
    )  # fmt: skip
    result, blocked = held_loop_trial(spec, bootstrap_servers)
    config = from_config(spec)
    predicted = loop_hold(config, _must(config.workload)).time
    assert predicted.at_quantile_ms == 800
    if mode == "async":
        assert blocked < 0.25 * predicted.at_quantile_ms
        return
    assert blocked == pytest.approx(predicted.at_quantile_ms, rel=0.2)
    f = kt102_on_a_short_session(spec, result)
    assert f.value == blocked
    assert f"the event loop was held up to {blocked:,.0f} ms (run" in f.arithmetic


def _must(w: Workload | None) -> Workload:
    assert w is not None
    return w


def test_prometheus_gives_the_measured_loop_hold() -> None:
    """Our names carry the longest loop hold: 12 s against aiokafka's 10 s session is a KT102
    risk from Prometheus alone, with the measured number."""

    def get(url: str) -> object:
        expr = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["query"][0]
        known = {"event_loop_blocked_max_seconds": "12000", "assigned_partitions": "2"}
        value = next((v for k, v in known.items() if k in expr), None)
        result = [] if value is None else [{"metric": {"group": "g"}, "value": [0, value]}]
        return {"status": "success", "data": {"result": result}}

    (facts,) = prom.read("http://p", names="tuner", window_s=60, get=get)
    f = r.loop_blocked_past_session(facts)
    assert f is not None
    assert (f.value, f.severity) == (12000, Severity.RISK)
    assert "the event loop was held up to 12,000 ms (Prometheus, tuner names" in f.arithmetic
