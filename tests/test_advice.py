"""The advisor: each rule on plain values (it triggers with its arithmetic, and stays quiet), the
command, and its findings from a real run, a real Prometheus and its own service."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from tests.helpers import (
    measured,
    running_prometheus,
    sigint_as_in_a_terminal,
    slow_records,
    small_spec,
    synthetic_study,
    trial,
)
from tuner import advice, metrics
from tuner.advice import (
    RULES,
    Facts,
    Finding,
    Observed,
    PrometheusError,
    Severity,
    Workload,
    advise,
    from_config,
    from_run,
    merge,
    parse_duration,
    study_advice,
)
from tuner.advice import prometheus as prom
from tuner.advice import rules as r
from tuner.advice.serve import AdviceService, serving, watch
from tuner.broker import free_port
from tuner.cli import main
from tuner.config import load_config, parse_config
from tuner.settings import SettingValue, effective_settings

WORK = Workload(
    message_bytes=256, partitions=4, members=2, per_record_ms=10.0, record_p99_ms=10.0,
    per_batch_ms=0.0, mode="async", distribution="constant",
)  # fmt: skip
"""rebalance-demo's shape (2 partitions per member), a constant 10 ms per record: a batch of N
records takes exactly N x 10 ms."""


def facts(
    settings: Mapping[str, SettingValue] | None = None,
    *,
    workload: Workload | None = None,
    observed: Observed | None = None,
) -> Facts:
    given = dict(settings or {})
    return Facts(
        group="g", settings=effective_settings(given), given=frozenset(given),
        workload=workload, observed=observed,
    )  # fmt: skip


def seen(**values: float) -> Observed:
    return Observed(source="run", **values)  # type: ignore[arg-type]


def test_poll_work_bound_from_fetch_sizes_with_unlimited_max_poll_records() -> None:
    """Unlimited max.poll.records: 2 partitions x 1 MiB / 256 B = 8,192 records, x 10 ms = 81.9 s
    against 10 s: a risk; the advice keeps half the interval at p99 (500 records)."""
    f = r.poll_work_over_interval(facts({"max.poll.interval.ms": 10000}, workload=WORK))
    assert f is not None
    assert f.code == "KT101"
    assert f.severity is Severity.RISK
    assert (f.value, f.limit) == (2 * 1048576 // 256 * 10.0, 10000)
    assert "= 8,192" in f.arithmetic
    assert "81,920 ms" in f.arithmetic
    assert "at most 500" in f.change  # (5,000 ms - 0 ms per batch) / 10 ms
    smaller = r.poll_work_over_interval(
        facts({"max.poll.interval.ms": 10000, "max.partition.fetch.bytes": 65536}, workload=WORK)
    )
    assert smaller is not None
    assert smaller.value == 2 * 65536 // 256 * 10.0


def test_poll_work_warning_and_quiet() -> None:
    """600 records x 10 ms = 6 s of 10 s is a warning; 100 records (1 s) says nothing."""
    warn = r.poll_work_over_interval(
        facts({"max.poll.interval.ms": 10000, "max.poll.records": 600}, workload=WORK)
    )
    assert warn is not None
    assert warn.severity is Severity.WARNING
    assert warn.value == 6000
    quiet = facts({"max.poll.interval.ms": 10000, "max.poll.records": 100}, workload=WORK)
    assert r.poll_work_over_interval(quiet) is None
    assert r.poll_work_over_interval(facts({"max.poll.interval.ms": 10000})) is None


def test_per_batch_cost_counts_in_the_poll_work() -> None:
    """quickstart: 4,096 records x 1 ms + 100 ms per batch = 4,196 ms of 5,000: a warning."""
    work = replace(WORK, message_bytes=512, partitions=6, members=3, per_record_ms=1.0,
                   record_p99_ms=1.0, per_batch_ms=100.0)  # fmt: skip
    f = r.poll_work_over_interval(facts({"max.poll.interval.ms": 5000}, workload=work))
    assert f is not None
    assert f.severity is Severity.WARNING
    assert f.value == 4196


def test_cpu_handler_blocking_past_session_timeout() -> None:
    """mode cpu, a commit after each batch: 1,500 records x 10 ms = 15 s holds the loop past a
    10 s session: a risk; async handlers or small batches say nothing. With auto-commit nothing
    waits between polls: the loop is held for the whole fetch (8,192 x 10 ms), however small
    max.poll.records is."""
    cpu = replace(WORK, mode="cpu")
    manual: dict[str, SettingValue] = {"enable.auto.commit": False}
    f = r.loop_blocked_past_session(facts({**manual, "max.poll.records": 1500}, workload=cpu))
    assert f is not None
    assert f.code == "KT102"
    assert f.severity is Severity.RISK
    assert (f.value, f.limit) == (15000, 10000)
    assert r.loop_blocked_past_session(facts({"max.poll.records": 1500}, workload=WORK)) is None
    small = facts({**manual, "max.poll.records": 100}, workload=cpu)
    assert r.loop_blocked_past_session(small) is None
    auto = r.loop_blocked_past_session(facts({"max.poll.records": 100}, workload=cpu))
    assert auto is not None
    assert auto.value == 8192 * 10
    assert "one fetch's 8,192 records are processed (82 polls of ≤ 100)" in auto.arithmetic
    assert "await between polls" in auto.change


def test_observed_gap_past_session_timeout_when_the_mode_is_unknown() -> None:
    """A 12 s gap between polls with an unknown handler is a warning against a 10 s session."""
    f = r.loop_blocked_past_session(facts(observed=seen(poll_interval_max_ms=12000)))
    assert f is not None
    assert f.severity is Severity.WARNING
    assert f.value == 12000
    assert r.loop_blocked_past_session(facts(observed=seen(poll_interval_max_ms=3000))) is None


def test_heartbeat_against_session() -> None:
    """4,000 x 3 = 12,000 >= 10,000: a warning; 12,000 >= 10,000 alone: a risk; 3,000: fine."""
    f = r.heartbeat_vs_session(facts({"heartbeat.interval.ms": 4000}))
    assert f is not None
    assert f.severity is Severity.WARNING
    assert "12,000 ≥ session.timeout.ms 10,000 ms" in f.arithmetic
    assert f.limit == pytest.approx(10000 / 3)
    assert "at most 3,333" in f.change
    worse = r.heartbeat_vs_session(facts({"heartbeat.interval.ms": 12000}))
    assert worse is not None
    assert worse.severity is Severity.RISK
    assert r.heartbeat_vs_session(facts()) is None


def test_session_timeout_outside_broker_bounds() -> None:
    """5 s is below the broker's 6 s minimum: the join is refused; 10 s is fine."""
    f = r.session_outside_bounds(facts({"session.timeout.ms": 5000}))
    assert f is not None
    assert f.severity is Severity.RISK
    assert (f.value, f.limit) == (5000, 6000)
    assert r.session_outside_bounds(facts({"session.timeout.ms": 10000})) is None


def test_long_session_and_poll_interval_in_seconds() -> None:
    """45 s sessions and 300 s poll intervals are named in seconds and minutes, as info."""
    session = r.long_failover(facts({"session.timeout.ms": 45000}))
    assert session is not None
    assert session.severity is Severity.INFO
    assert "45.0 s" in session.title
    assert r.long_failover(facts()) is None
    stuck = r.slow_stuck_detection(facts())
    assert stuck is not None
    assert "5.0 min" in stuck.title
    assert stuck.value == 300000
    assert r.slow_stuck_detection(facts({"max.poll.interval.ms": 30000})) is None


def test_fetch_min_bytes_a_trickle_cannot_fill() -> None:
    """100 records/s x 2/4 partitions x 256 B x 500 ms = 6,400 B < 65,536: every fetch waits."""
    trickle = replace(WORK, records_per_s=100.0)
    f = r.fetch_min_unfillable(facts({"fetch.min.bytes": 65536}, workload=trickle))
    assert f is not None
    assert f.code == "KT107"
    assert f.value == pytest.approx(6400)
    assert r.fetch_min_unfillable(facts({"fetch.min.bytes": 1000}, workload=trickle)) is None
    assert r.fetch_min_unfillable(facts({"fetch.min.bytes": 65536}, workload=WORK)) is None


def test_partition_fetch_below_message_size() -> None:
    """200 B per partition against 256 B messages; the default 1 MiB is fine."""
    f = r.partition_fetch_below_message(facts({"max.partition.fetch.bytes": 200}, workload=WORK))
    assert f is not None
    assert (f.value, f.limit) == (200, 256)
    assert r.partition_fetch_below_message(facts(workload=WORK)) is None


def test_fetch_max_below_partitions_per_member() -> None:
    """1 MiB in all < 1 MiB x 2 partitions per member; the default 50 MiB is fine."""
    f = r.fetch_max_below_partitions(facts({"fetch.max.bytes": 1048576}, workload=WORK))
    assert f is not None
    assert (f.value, f.limit) == (1048576, 2097152)
    assert r.fetch_max_below_partitions(facts(workload=WORK)) is None


def test_a_confluent_kafka_prefetch_queue_is_counted_for_the_whole_member() -> None:
    """KT112: queued.max.messages.kbytes 1 GiB lets 100,000 records x 4 KiB x 2 partitions
    queue, plus a fetch per partition; aiokafka and librdkafka's defaults give no finding."""
    data = {
        "topic": {"name": "tuner.prefetch", "partitions": 6},
        "workload": {"message_bytes": 4096},
        "consumer": {"members": 3, "client": "confluent-kafka",
                     "settings": {"queued.max.messages.kbytes": 1048576}},
    }  # fmt: skip
    (f,) = [x for x in advise(from_config(parse_config(data))) if x.code == "KT112"]
    assert f.value == 100_000 * 4096 * 2 + 2 * 1_048_576
    assert f.limit == 256 * 2**20
    data["consumer"] = {"members": 3, "client": "confluent-kafka"}
    assert "KT112" not in {x.code for x in advise(from_config(parse_config(data)))}
    data["consumer"] = {"members": 3}
    assert "KT112" not in {x.code for x in advise(from_config(parse_config(data)))}


def test_idle_members_from_config_and_observed() -> None:
    """5 members on 4 partitions leave 1 idle; 2 of 3 observed members holding none too."""
    f = r.idle_members(facts(workload=replace(WORK, members=5)))
    assert f is not None
    assert f.value == 1
    assert "5 members - 4 partitions" in f.arithmetic
    seen_idle = r.idle_members(facts(observed=seen(members=3, idle_members=2)))
    assert seen_idle is not None
    assert seen_idle.value == 2
    assert r.idle_members(facts(workload=WORK)) is None


def test_auto_commit_with_async_processing() -> None:
    """Auto-commit (aiokafka's default) with an async handler; not with manual commits or cpu."""
    f = r.auto_commit_async(facts(workload=WORK))
    assert f is not None
    assert f.code == "KT111"
    assert f.severity is Severity.WARNING
    assert r.auto_commit_async(facts({"enable.auto.commit": False}, workload=WORK)) is None
    assert r.auto_commit_async(facts(workload=replace(WORK, mode="cpu"))) is None
    assert "getmany()" in f.semantics
    on_confluent = r.auto_commit_async(replace(facts(workload=WORK), client="confluent-kafka"))
    assert on_confluent is not None
    assert "consume()" in on_confluent.semantics
    assert "getmany" not in on_confluent.semantics + on_confluent.change


def test_poll_gap_near_and_past_its_limit() -> None:
    """2,500 ms of 2,000: a risk (and 500 records per poll scale to 200); 1,200: a warning."""
    f = r.poll_gap_near_limit(
        facts({"max.poll.interval.ms": 2000},
              observed=seen(poll_interval_max_ms=2500, records_per_poll=500))
    )  # fmt: skip
    assert f is not None
    assert f.severity is Severity.RISK
    assert (f.value, f.limit) == (2500, 2000)
    assert "= 125%" in f.arithmetic
    assert "about 200" in f.change
    warn = r.poll_gap_near_limit(
        facts({"max.poll.interval.ms": 2000}, observed=seen(poll_interval_max_ms=1200))
    )
    assert warn is not None
    assert warn.severity is Severity.WARNING
    quiet = facts({"max.poll.interval.ms": 2000}, observed=seen(poll_interval_max_ms=500))
    assert r.poll_gap_near_limit(quiet) is None


def test_a_rebalance_names_only_the_causes_that_fired() -> None:
    """KT203's change names the poll gap (KT201) or the held loop (KT102) with its numbers
    when that finding fired, and neither when neither did."""
    stuck = facts(
        {"max.poll.interval.ms": 2000},
        observed=seen(
            poll_interval_max_ms=5000, open_gap_ms=5000, loop_blocked_max_ms=3, rebalances=1
        ),
    )
    change = _change(r.rebalancing(stuck))
    assert (
        "a member had not polled for 5,000 ms when the window ended (stuck in one batch), "
        "250% of max.poll.interval.ms (KT201)"
    ) in change
    assert "KT102" not in change
    held = facts(observed=seen(poll_interval_max_ms=13000, loop_blocked_max_ms=13000, rebalances=1))
    change = _change(r.rebalancing(held))
    assert "the handler blocks the event loop for 13.0 s, against the session timeout (KT102)" in (
        change
    )
    assert "KT201" not in change
    neither = facts(observed=seen(poll_interval_max_ms=50, loop_blocked_max_ms=2, rebalances=1))
    change = _change(r.rebalancing(neither))
    assert change.startswith("no measured gap between polls or held event loop explains it")
    assert "KT1" not in change
    assert "KT2" not in change


def test_slow_stuck_detection_names_a_stuck_member_and_never_a_gap_of_0_ms() -> None:
    """KT106 says how long a member stuck in one batch had not polled, and says nothing of a
    gap that was never measured (0 ms)."""
    stuck = _change(
        r.slow_stuck_detection(facts(observed=seen(poll_interval_max_ms=13000, open_gap_ms=12500)))
    )
    assert "(a member had not polled for 12.5 s when the window ended: stuck in one batch" in stuck
    gap = _change(r.slow_stuck_detection(facts(observed=seen(poll_interval_max_ms=900))))
    assert gap.endswith("(the longest gap observed was 900 ms)")
    zero = _change(r.slow_stuck_detection(facts(observed=seen(poll_interval_max_ms=0.0))))
    assert "0 ms" not in zero


def _change(finding: Finding | None) -> str:
    assert finding is not None
    return finding.change


def test_starved_fetches() -> None:
    """480 ms fetches of 3 records against a 500 ms wait; fast or full fetches say nothing."""
    f = r.starved_fetches(facts(observed=seen(fetch_latency_ms=480, records_per_fetch=3)))
    assert f is not None
    assert (f.value, f.limit) == (480, 500)
    assert r.starved_fetches(facts(observed=seen(fetch_latency_ms=20, records_per_fetch=3))) is None
    full = seen(fetch_latency_ms=480, records_per_fetch=5000)
    assert r.starved_fetches(facts(observed=full)) is None


def test_rebalances_observed() -> None:
    """2 rebalances in 10 s is 720 per hour: a risk; none, nothing."""
    f = r.rebalancing(facts(observed=seen(rebalances=2, window_s=10)))
    assert f is not None
    assert f.severity is Severity.RISK
    assert "720 per hour" in f.arithmetic
    assert r.rebalancing(facts(observed=seen(rebalances=0, window_s=10))) is None


def test_lag_growing() -> None:
    """Lag growing 50 records/s is a warning; shrinking lag is not."""
    f = r.lag_growing(facts(observed=seen(lag_growth_per_s=50)))
    assert f is not None
    assert f.value == 50
    assert r.lag_growing(facts(observed=seen(lag_growth_per_s=-100))) is None


def test_poll_idle_ratio() -> None:
    """Idle 80% with lag: a warning; without lag it is just caught up; lag unknown: info."""
    f = r.poll_idle(facts(observed=seen(idle_ratio=0.8, lag_max=1000)))
    assert f is not None
    assert f.severity is Severity.WARNING
    assert f.value == 0.8
    assert r.poll_idle(facts(observed=seen(idle_ratio=0.8, lag_max=0))) is None
    unknown = r.poll_idle(facts(observed=seen(idle_ratio=0.8)))
    assert unknown is not None
    assert unknown.severity is Severity.INFO
    assert r.poll_idle(facts(observed=seen(idle_ratio=0.1, lag_max=1000))) is None


def test_advise_orders_worst_first() -> None:
    """Findings come risk, warning, info, and one finding per code."""
    found = advise(facts({"max.poll.interval.ms": 10000}, workload=WORK))
    ranks = [f.severity.rank for f in found]
    assert ranks == sorted(ranks, reverse=True)
    assert found[0].code == "KT101"
    codes = [f.code for f in advise(_MANY_RISKS)]
    assert len(codes) == len(set(codes))
    assert {"KT102", "KT103", "KT104", "KT107", "KT108", "KT109", "KT110"} <= set(codes)
    assert {"KT201", "KT202", "KT203", "KT204", "KT205"} <= set(codes)


def test_every_rule_in_the_registry_has_a_code_of_its_own() -> None:
    """Every rule in `RULES` declares its code first in its docstring, no two rules share a
    code, and a rule that fires reports the code it declares."""
    declared = {rule: re.match(r"(KT\d{3}): ", rule.__doc__ or "") for rule in RULES}
    assert [r.__name__ for r, m in declared.items() if m is None] == []
    codes = {rule: m.group(1) for rule, m in declared.items() if m is not None}
    assert len(set(codes.values())) == len(RULES)
    cases = (_MANY_RISKS, facts({"max.poll.interval.ms": 10000}, workload=WORK))
    fired = {(rule, f.code) for rule in RULES for case in cases if (f := rule(case))}
    assert {code for _, code in fired} >= {"KT101", "KT102", "KT201"}
    assert all(code == codes[rule] for rule, code in fired)


_MANY_RISKS = facts(
    {"max.poll.interval.ms": 2000, "session.timeout.ms": 5000, "heartbeat.interval.ms": 4000,
     "fetch.min.bytes": 65536, "max.partition.fetch.bytes": 200, "fetch.max.bytes": 150},
    workload=replace(WORK, members=5, mode="cpu", records_per_s=10.0),
    observed=seen(poll_interval_max_ms=9000, fetch_latency_ms=490, records_per_fetch=1,
                  rebalances=1, window_s=5, lag_growth_per_s=9, idle_ratio=0.9, lag_max=10),
)  # fmt: skip
"""A group that breaks most rules at once."""


def test_config_run_and_merge() -> None:
    """A config gives workload and stated settings; a run's settings win over the config's."""
    spec = parse_config(
        {"topic": {"partitions": 4}, "consumer": {
            "members": 2, "settings": {"max.poll.interval.ms": 10000},
            "processing": {"per_record_ms": 2, "distribution": "lognormal", "p99_ms": 10}}},
    )  # fmt: skip
    config = from_config(spec)
    assert config.workload is not None
    assert config.workload.record_p99_ms == pytest.approx(10)
    assert config.given == {"max.poll.interval.ms"}
    run = from_run(measured(100, rebalances=3, settings={"max.poll.interval.ms": 2000}))
    both = merge(config, run)
    assert both.settings["max.poll.interval.ms"] == 2000
    assert both.workload == config.workload
    assert both.observed is not None
    assert both.observed.rebalances == 3


ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"


def test_cli_fail_on_sets_the_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    """rebalance-demo has a risk (exit 1 with --fail-on risk); quickstart only warnings
    (exit 0 with --fail-on risk, 1 with --fail-on warning); without --fail-on, 0."""
    demo = str(CONFIGS / "rebalance-demo.yaml")
    quick = str(CONFIGS / "quickstart.yaml")
    assert main(["advise", demo, "--fail-on", "risk"]) == 1
    assert "RISK     KT101 poll-work-over-interval" in capsys.readouterr().out
    assert main(["advise", quick, "--fail-on", "risk"]) == 0
    assert main(["advise", quick, "--fail-on", "warning"]) == 1
    assert main(["advise", demo]) == 0


def test_cli_json_and_a_config_kafka_would_refuse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A config whose heartbeat breaks Kafka's rule is advised on (not refused) and --json
    carries each finding's code, severity and numbers."""
    path = tmp_path / "c.yaml"
    path.write_text("consumer:\n  settings: {heartbeat.interval.ms: 4000}\n")
    assert main(["advise", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    hb = next(f for f in out["findings"] if f["code"] == "KT103")
    assert (hb["severity"], hb["value"]) == ("warning", 4000)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["advise"], "advise needs a CONFIG, --run FILE or --prometheus URL"),
        (["advise", "--run", "x.json", "--every", "60s"], "--every reads a live Prometheus"),
        (["advise", "--prometheus", "http://127.0.0.1:1", "--window", "soon"],
         "--window: expected a duration like 30s"),
        (["advise", "--prometheus", "http://127.0.0.1:1", "--every", "1s", "--fail-on", "risk"],
         "use one of them"),
        (["advise", "--prometheus", "ftp://nowhere", "--group", "g"],
         "--prometheus: expected http://host[:port] or https://host[:port], got 'ftp://nowhere'"),
        (["advise", "--prometheus", "localhost:9090"], "--prometheus: expected http://host"),
        (["advise", "--prometheus", "http://127.0.0.1:99999"], "--prometheus: expected http://"),
        (["advise", "--prometheus", "file:///etc/hostname"], "(scheme 'file')"),
        (["advise", "--run", "no-such-result.json"], "--run no-such-result.json: not a result"),
        (["advise", "no-such-config.yaml"], "no-such-config.yaml: invalid config"),
        (["advise", "--run", "r.json", "--set", "topic.partitions=3"], "give the CONFIG too"),
    ],
)  # fmt: skip
def test_cli_bad_input_exits_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad arguments or unreadable inputs: one clear message, exit 2, no traceback."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_cli_prometheus_that_does_not_answer_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    """A Prometheus URL nothing answers on is a failure (1), named in one line."""
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["advise", "--prometheus", url]) == 1
    assert f"no answer from Prometheus at {url}" in capsys.readouterr().err


def test_duration_parsing() -> None:
    """Seconds, minutes, hours and milliseconds; zero and words are refused."""
    assert [parse_duration(t) for t in ("90", "30s", "5m", "1h", "500ms")] == [
        90, 30, 300, 3600, 0.5,
    ]  # fmt: skip
    for bad in ("0s", "soon", "-5s"):
        with pytest.raises(ValueError, match="expected a duration"):
            parse_duration(bad)


def test_service_serves_findings_as_metrics_and_json() -> None:
    """A check's findings become `tuner_advice_finding` series and /findings JSON; a finding
    that goes away loses its series; a failed check keeps the last findings and counts."""
    service = AdviceService()
    found = advise(facts({"heartbeat.interval.ms": 4000}))
    service.check(lambda: found)
    value = service.registry.get_sample_value
    labels = {"rule": "KT103", "severity": "warning", "group": "g"}
    assert value("tuner_advice_finding", labels) == 1
    assert value("tuner_advice_findings", {"severity": "warning"}) == sum(
        1 for f in found if f.severity is Severity.WARNING
    )

    def broken() -> tuple[Finding, ...]:
        raise PrometheusError("gone")

    service.check(broken)
    assert value("tuner_advice_finding", labels) == 1
    assert value("tuner_advice_checks_total", {"outcome": "error"}) == 1
    service.check(lambda: ())
    assert value("tuner_advice_finding", labels) is None
    with serving(service, host="127.0.0.1", port=0) as port:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/findings") as response:
            assert json.loads(response.read())["findings"] == []
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as response:
            assert b'tuner_advice_findings{severity="risk"} 0.0' in response.read()


def _advise_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Finding]:
    """`tuner advise … --json`, as code → finding."""
    assert main(["advise", *argv, "--json"]) == 0, capsys.readouterr().err
    out = json.loads(capsys.readouterr().out)
    return {
        f["code"]: Finding(**{**f, "severity": Severity(f["severity"])}) for f in out["findings"]
    }


@pytest.mark.integration
def test_healthy_run_names_no_risk(
    bootstrap_servers: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """50 records of 1 ms per poll, far inside max.poll.interval.ms: `--run` names no risk."""
    spec = small_spec(
        "advhealthy",
        consumer={"members": 1, "processing": {"per_record_ms": 1},
                  "settings": {"max.poll.records": 50}},
        trial={"warmup_s": 1, "measure_s": 4},
    )  # fmt: skip
    result = trial(spec, bootstrap_servers)
    assert result.rebalances == 0
    assert result.poll.records_per_poll_avg == pytest.approx(50, rel=0.02)
    path = tmp_path / "result.json"
    path.write_text(json.dumps(result.to_dict()))
    found = _advise_json(["--run", str(path)], capsys)
    assert not [f for f in found.values() if f.severity is Severity.RISK], found
    assert main(["advise", "--run", str(path), "--fail-on", "risk"]) == 0


REBALANCING_CONFIG = """
topic: {partitions: 4}
consumer:
  members: 2
  processing: {per_record_ms: 10}
  settings: {max.poll.interval.ms: 2000, max.poll.records: 500}
"""
"""The workload `slow_records(500)` runs: 500 records x 10 ms = 5 s per poll against 2 s."""


@pytest.mark.e2e
@pytest.mark.integration
def test_rebalancing_run_found_from_the_run_and_from_prometheus(
    bootstrap_servers: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Batches of 5 s against a 2 s max.poll.interval.ms: `--run` names the poll gap (KT201)
    with the observed gap and the rebalances (KT203); a real Prometheus scraping the run gives
    the same risks from our names and from the Java-compatible names, and `--every`'s service
    serves them as `tuner_advice_*` series that the Prometheus scrapes."""
    spec = small_spec(
        "advrebalance", consumer=slow_records(500), trial={"warmup_s": 1, "measure_s": 8}
    )
    registry = CollectorRegistry()
    advice_port = free_port()
    with (
        metrics.serve(registry, host="127.0.0.1", port=0,
                      java_compatible=True) as exporter_port,
        running_prometheus(tmp_path, {"tuner": exporter_port, "advice": advice_port}) as prom,
    ):  # fmt: skip
        result = trial(spec, bootstrap_servers, registry)
        time.sleep(2)  # two more scrapes of the final values
        assert result.rebalances > 0
        gap = result.poll.interval_ms_max
        assert gap is not None
        path = tmp_path / "result.json"
        path.write_text(json.dumps(result.to_dict()))
        from_run_ = _advise_json(["--run", str(path)], capsys)
        assert from_run_["KT201"].severity is Severity.RISK
        assert (from_run_["KT201"].value, from_run_["KT201"].limit) == (gap, 2000)
        assert f"longest gap between polls {gap:,.0f} ms (run)" in from_run_["KT201"].arithmetic
        assert from_run_["KT203"].value == result.rebalances
        per_poll = result.poll.records_per_poll_avg  # max.poll.records 500 on a backlog
        assert per_poll == pytest.approx(500, rel=0.02)
        assert f"(now {per_poll:,.0f} per poll)" in from_run_["KT201"].change

        config = tmp_path / "c.yaml"
        config.write_text(REBALANCING_CONFIG)
        live = ["--prometheus", prom.url, "--group", result.group_id, "--window", "60s"]
        ours = _advise_json([*live, "--names", "tuner"], capsys)
        java = _advise_json([str(config), *live, "--names", "java"], capsys)
        for found in (ours, java):
            assert found["KT201"].severity is Severity.RISK
            assert found["KT201"].value >= 2000
            assert found["KT203"].severity is Severity.RISK
        assert "(Prometheus, tuner names)" in ours["KT201"].arithmetic
        assert "(Prometheus, Java names)" in java["KT201"].arithmetic
        assert ours["KT201"].group == java["KT201"].group == result.group_id

        service, stop = AdviceService(), threading.Event()

        def check() -> tuple[Finding, ...]:
            return advice.check(None, prometheus_url=prom.url, group=result.group_id,
                                window_s=60)  # fmt: skip

        with serving(service, host="127.0.0.1", port=advice_port):
            watcher = threading.Thread(
                target=watch, args=(service, check), kwargs={"every_s": 1.0, "stop": stop}
            )
            watcher.start()
            try:
                group = result.group_id
                expr = f'tuner_advice_finding{{rule="KT203",severity="risk",group="{group}"}}'
                answer: list[object] = []
                for _ in range(30):
                    answer = prom.query(expr)["data"]["result"]
                    if answer:
                        break
                    time.sleep(0.5)
                assert answer, "Prometheus never scraped the advice service's finding"
            finally:
                stop.set()
                watcher.join(timeout=10)


def test_study_advice_explains_the_recommendation() -> None:
    """rebalance-demo: the defaults' unlimited polls (16.8 s at p99) are a risk, and their run's
    rebalances too; 400 records per poll (4 s of 10 s) clear both."""
    spec = load_config(CONFIGS / "rebalance-demo.yaml")
    found = study_advice(
        spec, {"max.poll.records": 400, "max.poll.interval.ms": 10000},
        default_runs=[measured(100, rebalances=2)], recommended_runs=[measured(100)],
    )  # fmt: skip
    defaults = {f.code: f for f in found.defaults}
    assert defaults["KT101"].severity is Severity.RISK
    assert defaults["KT203"].value == 2
    assert not {"KT101", "KT203"} & {f.code for f in found.recommended}


def test_report_carries_the_advisor_section(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`tuner report --config` writes the defaults' and the recommendation's findings."""
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    synthetic_study(6, storage=storage)
    out = tmp_path / "o"
    argv = ["report", "--storage", storage, "--study", "synthetic", "--out", str(out)]
    assert main([*argv, "--config", str(CONFIGS / "rebalance-demo.yaml")]) == 0
    md = (out / "report.md").read_text()
    assert "## What the advisor says" in md
    assert "| `KT101` | poll-work-over-interval | risk: a full poll takes 16.8 s" in md
    assert main([*argv, "--out", str(tmp_path / "plain")]) == 0
    assert "What the advisor says" not in (tmp_path / "plain" / "report.md").read_text()


def test_prometheus_answers_become_facts_per_group() -> None:
    """Each group in the answers is one group's facts; NaN (a rate without two samples) is no
    value; `auto` falls back to the Java names when ours have no consumer; an error says so."""
    asked: list[str] = []

    def get(url: str) -> object:
        expr = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["query"][0]
        asked.append(expr)
        if "kafka_consumer_" in expr and "== 0" not in expr:
            known = {"time_between_poll_max": "5000", "assigned_partitions": "2"}
            value = next((v for k, v in known.items() if k in expr), "NaN")
            return {"status": "success",
                    "data": {"result": [{"metric": {}, "value": [0, value]}]}}  # fmt: skip
        return {"status": "success", "data": {"result": []}}

    (java,) = prom.read("http://p", group="orders", window_s=60, get=get)
    assert java.group == "orders"
    assert java.observed is not None
    assert java.observed.poll_interval_max_ms == 5000
    assert java.observed.fetch_latency_ms is None
    assert java.settings["session.timeout.ms"] == 45000  # Java's default, not aiokafka's
    assert any('client_id=~".*orders.*"' in e for e in asked)
    with pytest.raises(PrometheusError, match="bad_data"):
        prom.query("http://p", "up", get=lambda _url: {"status": "error", "error": "bad_data"})


def test_cli_service_keeps_serving_through_failed_checks_and_stops_on_ctrl_c() -> None:
    """`--every` with a Prometheus that does not answer: the service serves, counts the failed
    checks, says why on stderr, and Ctrl-C (SIGINT) ends it with exit 0."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tuner.cli", "advise", "--prometheus",
         f"http://127.0.0.1:{free_port()}", "--every", "0.2s", "--port", str(port)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, preexec_fn=sigint_as_in_a_terminal,  # noqa: PLW1509 - only resets one signal
    )  # fmt: skip
    try:
        errors = 0.0
        for _ in range(100):
            time.sleep(0.1)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as response:
                    text = response.read().decode()
            except OSError:
                continue
            failed = 'tuner_advice_checks_total{outcome="error"}'
            line = next(x for x in text.splitlines() if x.startswith(failed))
            errors = float(line.split()[-1])
            if errors >= 2:
                break
        assert errors >= 2
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert f"serving findings on http://127.0.0.1:{port}/metrics" in out
    assert "check failed (the last findings stay served): no answer from Prometheus" in err


def test_a_size_distribution_and_payloads_advise_on_their_mean_size(tmp_path: Path) -> None:
    """The advisor's record size is a distribution's mean, or the payload file's mean value."""
    spread = parse_config(
        {"workload": {"message_bytes": {"distribution": "lognormal", "mean": 800, "p99": 8000}}}
    )
    plain = from_config(parse_config({})).workload
    assert plain is not None
    assert from_config(spread).workload == replace(plain, message_bytes=800)
    (tmp_path / "v.txt").write_text("a" * 100 + "\n" + "b" * 300 + "\n")
    given = parse_config({"workload": {"payloads": {"file": str(tmp_path / "v.txt")}}})
    workload = from_config(given).workload
    assert workload is not None
    assert workload.message_bytes == 200


def test_a_run_laid_on_a_confluent_kafka_config_keeps_librdkafkas_defaults() -> None:
    """A confluent-kafka config with a run's facts over it: what neither states is
    librdkafka's default (45 s session, batches of 500), not aiokafka's (10 s, unlimited)."""
    spec = parse_config({"consumer": {"client": "confluent-kafka"}})
    merged = advice.merge(from_config(spec), from_run(measured(100)))
    assert merged.client == "confluent-kafka"
    assert merged.settings["session.timeout.ms"] == 45000
    assert merged.settings["max.poll.records"] == 500
    assert merged.settings["queued.max.messages.kbytes"] == 65536
    assert merged.settings["fetch.max.wait.ms"] == 500
    aio = advice.merge(from_config(parse_config({})), from_run(measured(100)))
    assert aio.settings["session.timeout.ms"] == 10000


def test_a_blocking_handler_on_confluent_kafka_is_no_heartbeat_risk() -> None:
    """KT102 (loop held past the session) fires for a cpu workload on aiokafka but not on
    confluent-kafka, whose heartbeats run on librdkafka's own thread."""
    consumer = {"processing": {"per_record_ms": 100, "mode": "cpu"},
                "settings": {"max.poll.records": 500}}  # fmt: skip
    codes = {}
    for client in ("aiokafka", "confluent-kafka"):
        spec = parse_config({"consumer": {**consumer, "client": client}})
        codes[client] = {f.code for f in advise(from_config(spec))}
    assert "KT102" in codes["aiokafka"]
    assert "KT102" not in codes["confluent-kafka"]
