"""The `tuner` command: exit codes, messages, and `tuner run` end to end on the real broker."""

from __future__ import annotations

import asyncio
import io
import json
import os
import socket
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import optuna
import pytest

from tests.helpers import (
    alive,
    descendants,
    measured,
    one_trial_study,
    synthetic_study,
    topic_exists,
    unique,
)
from tuner import broker, report
from tuner.broker import free_port
from tuner.broker.faults import FaultReport, LeaderChange
from tuner.cli import main
from tuner.cli.exits import broker_failed
from tuner.cli.render import StudyProgress, ablation_line, progress_bar, render_result
from tuner.cluster import admin as cluster
from tuner.cluster.admin import Connection
from tuner.config import ClusterSpec, TopicSpec
from tuner.metrics.phases import Outcome
from tuner.recommend.ablation import ablate
from tuner.search.events import TrialEvent
from tuner.trial.result import OffsetCheck, PollStats
from tuner.trial.run import LatencyMs, Phase, SteadyState


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_bad_config_exits_2_with_every_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A config with several mistakes prints each with its path and exits 2, starting nothing."""
    path = _write(
        tmp_path,
        "topic: {name: orders, partitons: 3}\n"
        "consumer:\n  settings: {heartbeat.interval.ms: 4000}\n",
    )
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert "topic.partitons: unknown key; did you mean 'partitions'?" in err
    assert "consumer.settings.heartbeat.interval.ms: must be less than" in err


def test_kip848_refusals_exit_2_with_the_field_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """group_protocol consumer with aiokafka, and a client assignor under KIP-848, exit 2
    naming each field and why."""
    path = _write(tmp_path, "consumer: {group_protocol: consumer}\n")
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert (
        "consumer.group_protocol: 'consumer' (KIP-848) needs consumer.client: confluent-kafka"
        in err
    )
    assert "aiokafka implements only the classic group protocol" in err
    overrides = ["--set", "consumer.client=confluent-kafka",
                 "--set", "consumer.settings.partition.assignment.strategy=range"]  # fmt: skip
    assert main(["run", str(path), *overrides]) == 2
    err = capsys.readouterr().err
    assert "consumer.settings.partition.assignment.strategy: is not a client setting" in err


def test_missing_env_var_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A `${VAR}` that is not set is named, exit code 2."""
    path = _write(tmp_path, "cluster: {bootstrap_servers: '${KT_NOT_SET_ANYWHERE}'}\n")
    assert main(["run", str(path)]) == 2
    assert "environment variable KT_NOT_SET_ANYWHERE is not set" in capsys.readouterr().err


def test_a_p99_constraint_without_live_load_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`tuner run` with a p99 constraint and no Locust users exits 2, naming field and reason."""
    path = _write(tmp_path, "objective: {constraints: {p99_latency_ms: 200}}\n")
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert "objective.constraints.p99_latency_ms: latency is measured in a steady state" in err


def test_gp_without_pytorch_exits_2_naming_the_extra(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`search.sampler: gp` where PyTorch is not installed (it is an optional extra; here
    hidden, so this holds whether it is installed or not): exit 2 naming `search.sampler` and
    the extra to install, no traceback, no study stored."""
    monkeypatch.setitem(sys.modules, "torch", None)  # what importlib finds for a missing module
    path = _write(tmp_path, "search: {sampler: gp}\n")
    assert main(["optimize", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "search.sampler: 'gp' needs PyTorch, which is not installed" in err
    assert "pip install 'kafka-tuner[gp]'" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out" / "study.db").exists()


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    """`--help` works for the command and each subcommand."""
    for argv in (["--help"], ["run", "--help"], ["broker", "--help"], ["broker", "up", "--help"]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 0
        assert "usage: tuner" in capsys.readouterr().out


@pytest.mark.integration
def test_run_prints_summary_writes_json_and_serves_metrics(
    tmp_path: Path, bootstrap_servers: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`tuner run` measures a real group, prints it, writes the JSON and serves /metrics."""
    port = free_port()
    path = _write(
        tmp_path,
        f"cluster: {{bootstrap_servers: '{bootstrap_servers}'}}\n"
        f"topic: {{name: {unique('cli')}, partitions: 3}}\n"
        "workload: {prefill_records: 30000, message_bytes: 100}\n"
        "consumer:\n  members: 2\n  processing: {per_record_ms: 0.5}\n"
        "  settings: {max.poll.records: 500}\n"
        "trial: {warmup_s: 1, measure_s: 3}\n"
        f"metrics: {{port: {port}}}\n",
    )
    out_json = tmp_path / "r.json"
    scraped: list[str] = []

    import threading  # noqa: PLC0415 - only this test scrapes from a thread

    def scrape() -> None:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as r:
                    body = r.read().decode()
                if "tuner_consumer_records_consumed_total{" in body:
                    scraped.append(body)
                    return
            except OSError:
                pass
            threading.Event().wait(0.2)

    scraper = threading.Thread(target=scrape)
    scraper.start()
    code = main(["run", str(path), "--json", str(out_json), "--quiet"])
    scraper.join()
    out = capsys.readouterr().out
    assert code == 0
    assert "throughput" in out
    assert "rebalances       0" in out
    result = json.loads(out_json.read_text())
    assert 0 < result["offsets"]["consumed_total"] == result["offsets"]["committed_total"]
    assert result["backlog_emptied"] is False
    assert result["throughput_records_per_s"] > 0
    for key in ("settings", "record_age_ms", "fetch", "poll", "lag_max", "errors"):
        assert key in result
    assert result["settings"]["max.poll.records"] == 500
    assert result["settings"]["fetch.max.wait.ms"] == 500  # aiokafka default filled in
    assert scraped, "the exporter never served consumer samples during the run"


def test_the_ablation_line_says_why_a_change_went_back() -> None:
    """A change put back because putting it back was 13.2% faster says so, not just
    "reverted"."""
    (change,) = ablate(
        {"max.poll.records": 2200}, {}, pairs=3,
        run=lambda s: measured(1000 if "max.poll.records" in s else 1132),
    ).changes  # fmt: skip
    assert ablation_line(1, 1, change) == (
        "  ablation 1/1: max.poll.records back to unlimited: +13.2% (reverted: putting it back "
        "raised throughput by more than 3%, its whole 95% interval beyond the tolerance: the "
        "change cost throughput)"
    )


def test_progress_shows_each_trial_and_a_bar_with_eta() -> None:
    """Per trial: its result (the steady state's latency, never the backlog's record age), the
    best so far, the settings tried, then the overall bar."""
    stream = io.StringIO()
    progress = StudyProgress(4, stream=stream, live=False)
    event = TrialEvent(
        number=0, done=1, total=4, state=Outcome.COMPLETE, changed={"max.poll.records": 50},
        value=1234.0, p99_ms=87.0, rebalances=0, reason=None, best_value=1234.0, elapsed_s=30.0,
        record_age_p99_ms=53345.0,
    )  # fmt: skip
    progress.trial(event)
    progress.trial(replace(event, number=1, done=2, state=Outcome.FAILED, value=None,
                           reason="TrialError: boom", elapsed_s=60.0))  # fmt: skip
    progress.phase(Phase.MEASURE, 999.0)  # not a terminal: nothing live
    lines = stream.getvalue().splitlines()
    assert lines[0] == (  # no record age: the backlog's wait is no latency of the settings
        "trial 0: 1,234 records/s, latency p99 87 ms, 0 rebalances | best 1,234 records/s"
    )
    assert lines[1] == "    max.poll.records=50"
    assert lines[2] == "[######------------------] 1/4  25% elapsed 0:30 ETA 1:30"
    assert lines[3].startswith("trial 1: FAILED (TrialError: boom)")
    assert lines[5] == "[############------------] 2/4  50% elapsed 1:00 ETA 1:00"
    assert len(lines) == 6
    live = io.StringIO()
    StudyProgress(4, stream=live, live=True).phase(Phase.MEASURE, 999.0)
    assert "trial 0: measure 999 records/s" in live.getvalue()
    assert progress_bar(3, 3, 3725.0).endswith("100% elapsed 1:02:05 ETA 0:00")
    # The plan's ETA is the whole study's: a full trials bar says what is still to come.
    assert progress_bar(8, 8, 70.0, eta_s=206.0).endswith("100% elapsed 1:10 study ETA 3:26")


def test_a_group_whose_client_reports_no_fetches_is_not_shown_as_fetching_nothing() -> None:
    """A service's members consumed records but their client reported no fetches: the summary
    says fetches were not reported, never "0 requests, 0 records per fetch"; a group that
    reported its fetches keeps the numbers."""
    base = measured(1000.0)
    offsets = OffsetCheck(end_offsets_total=20_000, committed_total=10_000, consumed_total=10_000)
    service = replace(base, fetch=replace(base.fetch, requests=0), offsets=offsets)
    text = render_result(service)
    assert "fetch            not reported: the members' client" in text
    assert "0 requests" not in text
    assert "fetch            1 requests" in render_result(replace(base, offsets=offsets))


def test_a_capacity_trial_shows_record_age_not_latency() -> None:
    """Without a steady state the summary calls the window's percentiles record age, says why,
    and shows no latency; with one, the steady state's latency and whether the group kept up."""
    capacity = replace(measured(1000.0), record_age_ms=LatencyMs(p50=41000, p95=52000, p99=53345))
    text = render_result(capacity)
    assert (
        "record age       p50 41,000.0 ms  p95 52,000.0 ms  p99 53,345.0 ms "
        "(draining a backlog: not a latency the settings cause)"
    ) in text
    assert "e2e latency" not in text
    assert "latency          not measured: it needs a steady state" in text
    steady = SteadyState(
        group_id="g.steady", window_s=4.0, target_records_per_s=500.0, produced=2000,
        consumed=1990, latency_ms=LatencyMs(p50=8.0, p95=15.0, p99=21.5), kept_up=True,
        rebalances=0,
    )  # fmt: skip
    text = render_result(replace(capacity, steady=steady))
    assert (
        "steady state     500 records/s set, 500 produced/s, 498 consumed/s over 4.0 s: kept up"
    ) in text
    latency = "latency          p50 8.0 ms  p95 15.0 ms  p99 21.5 ms (end to end, steady state)"
    assert latency in text
    behind = render_result(replace(capacity, steady=replace(steady, kept_up=False)))
    assert "FELL BEHIND: no steady state, its latency counts as infinite" in behind


def test_a_run_shows_how_long_the_event_loop_was_held() -> None:
    """The poll line names the longest hold of the event loop, what session.timeout.ms bounds."""
    poll = PollStats(interval_ms_max=2100.0, idle_ratio=0.1, loop_blocked_ms_max=8672.0)
    text = render_result(replace(measured(1000.0), poll=poll))
    assert "max interval 2,100.0 ms, idle ratio 0.10, event loop held up to 8,672.0 ms" in text


def test_a_loop_held_across_polls_says_how() -> None:
    """aiokafka hands out prefetched records without yielding: the loop can be held for 2 s
    while polls come 150 ms apart. Both numbers are right; the line says how they fit, and
    that aiokafka's heartbeat waited (librdkafka's do not: its thread sends them)."""
    poll = PollStats(interval_ms_max=154.0, idle_ratio=0.02, loop_blocked_ms_max=2074.1)
    text = render_result(replace(measured(1000.0), poll=poll))
    assert "event loop held up to 2,074.1 ms across polls (polls that found records" in text
    assert "aiokafka's heartbeat task waited that long" in text
    confluent = render_result(replace(measured(1000.0), poll=poll, client="confluent-kafka"))
    assert "its other tasks waited that long" in confluent
    within = replace(poll, loop_blocked_ms_max=150.0)
    assert "across polls" not in render_result(replace(measured(1000.0), poll=within))


def test_a_run_lists_each_fault_after_its_offsets() -> None:
    """Each fault of a run measured through gets its own line after the offsets: broker, how,
    when, the leaders that moved, and the failover (or that there was none in time)."""
    moved = (LeaderChange(partition=0, before=1, after=2, after_s=9.1),)
    faults = (
        FaultReport(broker=1, at_s=1, kill=True, leader_changes=moved, failover_s=9.1),
        FaultReport(broker=3, at_s=4, kill=False, leader_changes=(), failover_s=None),
    )
    lines = render_result(replace(measured(1000.0), faults=faults)).splitlines()
    shown = [line for line in lines if line.startswith("fault ")]
    assert shown == [
        "fault            broker 1 stopped (SIGKILL) at 1 s of the window; leader changes: "
        "p0 1→2 (9.1 s); failover 9.1 s",
        "fault            broker 3 stopped (SIGTERM) at 4 s of the window; leader changes: "
        "none; no failover within 30 s",
    ]
    assert lines.index(shown[0]) > next(i for i, s in enumerate(lines) if s.startswith("offsets"))


def test_a_run_that_waited_on_the_supply_is_not_shown_as_capacity() -> None:
    """A result that measured the supply says so beside its number, with the evidence and the
    prefill that would do."""
    why = "in second 3 of 8, member m0 waited in poll 88% of the time with 3 records left"
    supplied = replace(measured(2001.0), backlog_emptied=True, supply=why)
    text = render_result(supplied, backlog_needed=720000)
    assert (
        f"NOT CAPACITY     this run measured the supply of records, not the consumers: {why}"
        in text
    )
    assert "set workload.prefill_records to 720,000" in text


@pytest.mark.integration
@pytest.mark.slow
def test_run_with_a_fault_prints_what_it_did(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`tuner run` on its own embedded 3-broker cluster, broker 2 stopped 1 s into the window
    and measured through: after the result it prints the broker, how and when it was
    stopped, each partition whose leader moved off it and the failover time; `--json` holds
    the same."""
    port = free_port()
    path = _write(
        tmp_path,
        "cluster: {bootstrap_servers: embedded, brokers: 3}\n"
        f"topic: {{name: {unique('cli-fault')}, partitions: 6, replication_factor: 3}}\n"
        "workload: {prefill_records: 60000, message_bytes: 100}\n"
        "consumer: {members: 2, processing: {per_record_ms: 0.5},"
        " settings: {max.poll.records: 500}}\n"
        "trial:\n  warmup_s: 0.5\n  measure_s: 5\n  measure_through_faults: true\n"
        "  faults: [{stop_broker: 2, at_s: 1}]\n"
        f"metrics: {{port: {port}, producer_port: {free_port()}}}\n",
    )
    out_json = tmp_path / "r.json"
    code = main(["run", str(path), "--json", str(out_json), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    (fault,) = json.loads(out_json.read_text())["faults"]
    assert (fault["broker"], fault["at_s"], fault["kill"]) == (2, 1, False)
    moved = fault["leader_changes"]
    assert moved
    assert all(c["before"] == 2 and c["after"] in {1, 3} for c in moved)
    assert 0 < fault["failover_s"] < 30
    (line,) = (s for s in out.splitlines() if s.startswith("fault "))
    changes = ", ".join(f"p{c['partition']} 2→{c['after']} ({c['after_s']:.1f} s)" for c in moved)
    assert line == (
        "fault            broker 2 stopped (SIGTERM) at 1 s of the window; "
        f"leader changes: {changes}; failover {fault['failover_s']:.1f} s"
    )
    assert out.index("offsets   ") < out.index(line)


def test_no_feasible_trial_exits_1_naming_the_commonest_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`tuner report` on a study without a feasible trial: exit 1, the constraint that failed
    most, and what to change."""
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize")
    for headroom, rebalances in ((0.3, 0), (0.2, 1), (0.1, 0)):
        trial = study.ask()
        trial.set_constraint("rebalances", rebalances)
        trial.set_constraint("max_poll_interval_headroom", headroom)
        study.tell(trial, 100.0)
    failed = study.ask()
    study.tell(failed, state=optuna.trial.TrialState.FAIL)
    code = main(["report", "--storage", storage, "--study", "s", "--out", str(tmp_path / "o")])
    assert code == 1
    err = capsys.readouterr().err
    assert "most common reason: max_poll_interval_headroom (3 trials; then " in err
    assert "rebalances 1" in err
    assert "failed 1" in err
    assert "narrow max.poll.records" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.integration
def test_quiet_optimize_prints_no_progress_lines(
    tmp_path: Path, bootstrap_servers: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`optimize --quiet` on the real broker prints no trial, ablation or confirmation line on
    stderr, but still the final summary on stdout."""
    config = _write(
        tmp_path,
        one_trial_study(
            bootstrap_servers, unique("quiet"), "{prefill_records: 20000, message_bytes: 100}"
        ),
    )
    assert main(["optimize", str(config), "--out", str(tmp_path / "o"), "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert "What to change" in out
    assert "trial 0" not in err
    assert "ablation" not in err
    assert "confirm" not in err


def _study_with_a_bare_trial(storage: str) -> None:
    """A stored study whose one feasible trial lacks the tuner's user attributes."""
    study = optuna.create_study(study_name="bare", storage=storage, direction="maximize")
    trial = study.ask()
    trial.set_constraint("rebalances", 0.0)
    study.tell(trial, 1.0)


def test_report_on_an_unknown_study_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`tuner report --study` with a name the storage lacks: exit 2 and a message naming it."""
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    _study_with_a_bare_trial(storage)
    code = main(["report", "--storage", storage, "--study", "nope", "--out", str(tmp_path)])
    assert code == 2
    assert f"no study 'nope' in {storage}" in capsys.readouterr().err


def test_other_key_errors_are_failures_with_a_traceback_only_on_debug(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A KeyError past loading the study is not "no study": exit 1 and one line; --debug
    adds the traceback."""
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    _study_with_a_bare_trial(storage)
    argv = ["report", "--storage", storage, "--study", "bare", "--out", str(tmp_path / "o")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "no study" not in err
    assert "KeyError: 'settings'" in err
    assert "Traceback" not in err
    assert main(["--debug", *argv]) == 1
    assert "Traceback (most recent call last)" in capsys.readouterr().err


def test_broker_setup_problems_and_failures_differ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No java on PATH is a setup error (exit 2); a broker that failed is a failure (exit 1)."""
    monkeypatch.setenv("PATH", "")
    with pytest.raises(broker.BrokerSetupError, match="no `java` on PATH"):
        broker.check_java()
    assert broker_failed(broker.BrokerSetupError("no java")) == 2
    assert broker_failed(broker.BrokerFailure("did not answer within 90 s")) == 1


@pytest.mark.integration
def test_run_on_a_topic_with_other_partitions_exits_2(
    tmp_path: Path, bootstrap_servers: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """An existing topic whose partition count differs from the config: exit 2, a message
    naming the topic, no traceback."""
    topic = unique("parts")
    conn = Connection(bootstrap_servers=bootstrap_servers, cluster=ClusterSpec())
    asyncio.run(cluster.ensure_topic(conn, TopicSpec(name=topic, partitions=2)))
    path = _write(
        tmp_path,
        f"cluster: {{bootstrap_servers: '{bootstrap_servers}'}}\n"
        f"topic: {{name: {topic}, partitions: 3}}\n"
        "metrics: {port: 0, producer_port: 0}\n",
    )
    try:
        assert main(["run", str(path), "--quiet"]) == 2
    finally:
        asyncio.run(cluster.delete_topic(conn, topic))
    err = capsys.readouterr().err
    assert f"topic {topic!r} has 2 partitions but the config asks for 3" in err
    assert "Traceback" not in err


def test_report_writes_the_best_trial_and_says_ablation_was_not_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`tuner report` runs nothing: the files hold the best trial's settings, all of them."""
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = synthetic_study(6, storage=storage)
    best = report.best_settings(study.best_trial)
    out = tmp_path / "o"
    assert main(["report", "--storage", storage, "--study", "synthetic", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "## What to change" in printed
    assert "## Confirmation" not in printed  # the run ends with the summary; the rest is in files
    assert f"The whole report: {out / 'report.html'}" in printed
    assert "Ablation was not run" in (out / "report.md").read_text()
    properties = (out / "consumer.properties").read_text()
    assert f"fetch.max.wait.ms={best['fetch.max.wait.ms']}\n" in properties


def _valid(bootstrap_servers: str, topic: str) -> str:
    """A config that would run a quick trial on the test broker (`consumer` last, to add to)."""
    return (
        f"cluster: {{bootstrap_servers: '{bootstrap_servers}'}}\n"
        f"topic: {{name: {topic}, partitions: 2}}\n"
        "workload: {prefill_records: 1000, message_bytes: 100}\n"
        "trial: {warmup_s: 0.5, measure_s: 1}\n"
        "metrics: {port: 0, producer_port: 0}\n"
        "consumer:\n  members: 1\n"
    )


BAD_INPUTS: dict[str, tuple[Callable[[str, str], str | bytes], list[str], list[str]]] = {
    # id: (the file, given the broker and a topic name; extra argv; what the message says)
    "empty file": (lambda b, t: "", [], ["c.yaml: the file is empty"]),
    "duplicate key": (
        lambda b, t: f"cluster: {{bootstrap_servers: '{b}'}}\n"
        f"topic:\n  name: {t}\n  partitions: 6\n  partitions: 12\n",
        [],
        ["topic.partitions: duplicate key (line 4 and line 5)"],
    ),
    "binary file": (
        lambda b, t: bytes(range(256)) * 4,
        [],
        ["c.yaml: not a text file: byte 0x80 at offset 128 is not UTF-8"],
    ),
    "bootstrap list": (
        lambda b, t: _valid(b, t).replace(b, "not a host:xx"),
        [],
        ["cluster.bootstrap_servers: must be 'embedded' or host:port"],
    ),
    "replication factor, embedded": (
        lambda b, t: "topic: {replication_factor: 3}\n",
        [],
        ["topic.replication_factor: must be at most cluster.brokers (1) on the embedded cluster"],
    ),
    "replication factor, cluster": (
        lambda b, t: _valid(b, t).replace("2}", "2, replication_factor: 3}"),
        [],
        ["topic.replication_factor: 3 replicas need as many brokers, and the cluster at {b} "
         "has 1"],
    ),
    "50 MB file": (
        lambda b, t: _valid(b, t) + "#" * (50 << 20) + "\n",
        [],
        ["bytes is too large for a config (at most 1,048,576 bytes are read)"],
    ),
    "unknown setting beside a rule": (
        lambda b, t: _valid(b, t) + "  settings: {fetch.min.byte: 5, session.timeout.ms: 9000,"
        " heartbeat.interval.ms: 3000}\n",
        [],
        ["consumer.settings.fetch.min.byte: unknown or unsupported consumer setting",
         "consumer.settings.heartbeat.interval.ms: must be less than session.timeout.ms / 3"],
    ),
    "--set bare property": (
        _valid,
        ["--set", "fetch.min.bytes=500"],
        ["--set fetch.min.bytes=500: fetch: unknown key; did you mean "
         "consumer.settings.fetch.min.bytes?"],
    ),
}  # fmt: skip


@pytest.mark.integration
@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_exits_2_naming_the_field_and_starts_nothing(
    case: str, tmp_path: Path, bootstrap_servers: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each bad input a hostile new user tried: exit 2, the field path in the message, no
    traceback, and nothing started — no process, no topic, no study stored."""
    content, argv, expected = BAD_INPUTS[case]
    topic = unique("bad")
    config = tmp_path / "c.yaml"
    data = content(bootstrap_servers, topic)
    if isinstance(data, bytes):
        config.write_bytes(data)
    else:
        config.write_text(data)
    before = descendants(os.getpid())
    started = time.monotonic()
    code = main(["optimize", str(config), "--out", str(tmp_path / "out"), *argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert time.monotonic() - started < 10
    for text in expected:
        assert text.replace("{b}", bootstrap_servers) in err
    assert "Traceback" not in err
    assert alive(descendants(os.getpid()) - before) == set()
    assert not topic_exists(bootstrap_servers, topic)
    db = tmp_path / "out" / "study.db"
    assert not db.exists() or optuna.get_all_study_summaries(f"sqlite:///{db}") == []


@pytest.mark.integration
def test_a_taken_metrics_port_exits_2_before_anything_starts(
    tmp_path: Path, bootstrap_servers: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`metrics.port` (or, with Locust load, `metrics.producer_port`) already bound: exit 2
    naming the field and the port, before a topic, a study or a process exists."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for field, overrides in (
            ("metrics.port", [f"metrics.port={port}"]),
            ("metrics.producer_port", [f"metrics.producer_port={port}",
                                       "workload.producer.users=1"]),
        ):  # fmt: skip
            topic = unique("port")
            config = tmp_path / "c.yaml"
            config.write_text(_valid(bootstrap_servers, topic))
            before = descendants(os.getpid())
            argv = [a for o in overrides for a in ("--set", o)]
            code = main(["optimize", str(config), "--out", str(tmp_path / "o"), *argv])
            err = capsys.readouterr().err
            assert code == 2, err
            assert f"{field}: 127.0.0.1:{port} is already in use" in err
            assert "Traceback" not in err
            assert alive(descendants(os.getpid()) - before) == set()
            assert not topic_exists(bootstrap_servers, topic)
            assert not (tmp_path / "o" / "study.db").exists()


def test_an_unreachable_bootstrap_address_fails_clearly_in_seconds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A port where nothing listens, and one that accepts connections but never answers
    (a firewall or a wrong service): exit 1 with the address named, well under 30 s each."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # the kernel completes handshakes; nobody ever answers
        closed, mute = free_port(), silent.getsockname()[1]
        for port, says in ((closed, "cannot connect to"), (mute, "no answer from")):
            config = tmp_path / "c.yaml"
            config.write_text(_valid(f"127.0.0.1:{port}", unique("unreachable")))
            started = time.monotonic()
            code = main(["run", str(config), "--quiet"])
            took = time.monotonic() - started
            err = capsys.readouterr().err
            assert code == 1, err
            assert f"{says} the cluster at 127.0.0.1:{port}" in err
            assert "check cluster.bootstrap_servers" in err
            assert "Traceback" not in err
            assert took < 15, took
