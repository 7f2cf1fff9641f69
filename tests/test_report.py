"""The report: the confirmation's arithmetic and refusals, the files, and the page itself."""

from __future__ import annotations

import csv
import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import optuna
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.helpers import measured, synthetic_study
from tuner import report
from tuner.cluster.workload import PayloadSummary
from tuner.config import NetworkSpec, SettingValue, parse_config
from tuner.config.topology import KAFKA_VERSION
from tuner.consumer.service import ServiceRun
from tuner.recommend.ablation import Ablation, ablate
from tuner.recommend.confirmation import Candidate, Confirmation, paired_gain, t_quantile
from tuner.report import changes
from tuner.report.document import plain
from tuner.report.files import _settings_files
from tuner.search import space
from tuner.search.objective import Constraint
from tuner.search.study import CLIENT_ATTR, FIXED_ATTR, RESULT_ATTR, outcome_of
from tuner.trial.run import PollStats, TrialResult

PICTURES = (
    "history.png",
    "importances.png",
    "slice.png",
    "contour.png",
    "throughput_vs_rebalances.png",
)


def _write(
    out_dir: Path,
    study: optuna.Study,
    confirmation: Confirmation | None = None,
    *,
    ablation: Ablation | None = None,
) -> report.Written:
    """`report.write` of the study's best trial, as `tuner optimize` hands it over."""
    outcome = outcome_of(study)
    assert outcome.best is not None
    chosen = report.Recommendation(best=outcome.best, ablation=ablation, confirmation=confirmation)
    return report.write(out_dir, outcome, chosen)


def _confirmation(
    best: list[float], java: list[float], aio: list[float], *, emptied: Candidate | None = None
) -> report.Confirmation:
    """Runs with these throughputs; every run of configuration `emptied` ran out of backlog."""
    lists = {Candidate.BEST: best, Candidate.JAVA_DEFAULTS: java, Candidate.AIOKAFKA_DEFAULTS: aio}
    return report.Confirmation(
        runs={
            name: tuple(measured(v, backlog_emptied=name == emptied) for v in values)
            for name, values in lists.items()
        }
    )


def test_t_quantile_matches_the_table() -> None:
    """The 95% two-sided Student t values for 2 and 4 degrees of freedom are the textbook ones."""
    assert t_quantile(0.95, 2) == pytest.approx(4.303, abs=1e-3)
    assert t_quantile(0.95, 4) == pytest.approx(2.776, abs=1e-3)


def test_gain_is_a_t_interval_on_log_ratios() -> None:
    """Three pairs: exp(mean ± t·sd/√3) - 1 of the log ratios, by hand."""
    gain = paired_gain([110, 120, 130], [100, 100, 100])
    logs = [math.log(1.1), math.log(1.2), math.log(1.3)]
    mean = sum(logs) / 3
    sd = math.sqrt(sum((x - mean) ** 2 for x in logs) / 2)
    half = 4.3027 * sd / math.sqrt(3)
    assert gain.pairs == 3
    assert gain.estimate == pytest.approx(math.expm1(mean))
    assert gain.interval is not None
    assert gain.interval[0] == pytest.approx(math.expm1(mean - half), rel=1e-3)
    assert gain.interval[1] == pytest.approx(math.expm1(mean + half), rel=1e-3)


def test_three_runs_give_wider_than_their_extremes() -> None:
    """With three runs the interval is wider than the min and max ratio (a bootstrap's answer)."""
    gain = paired_gain([110, 120, 130], [100, 100, 100])
    assert gain.interval is not None
    assert gain.interval[0] < 0.10
    assert gain.interval[1] > 0.30


def test_fewer_than_three_pairs_are_too_few_to_tell() -> None:
    """Two pairs give an estimate but no interval, and the words say so."""
    gain = paired_gain([150, 160], [100, 100])
    assert gain.interval is None
    assert "too few runs to tell" in gain.describe()
    assert "interval" not in gain.describe().split(":")[0]


def test_a_consistent_gain_is_called_real() -> None:
    """Best is 50% faster in every pair: the interval excludes zero and the report says real."""
    c = _confirmation([150, 151, 149, 150, 152], [100, 101, 99, 100, 100], [100] * 5)
    gain = c.gain(Candidate.JAVA_DEFAULTS)
    assert gain.interval is not None
    assert 0.45 < gain.interval[0] <= gain.estimate <= gain.interval[1] < 0.55
    assert "a real difference" in c.verdict(Candidate.JAVA_DEFAULTS)


def test_a_gain_within_noise_is_called_noise() -> None:
    """Pairs that go both ways give an interval around zero, and the verdict says noise."""
    c = _confirmation([100, 90, 110, 95, 105], [95, 100, 100, 105, 97], [100] * 5)
    assert c.gain(Candidate.JAVA_DEFAULTS).is_noise
    assert "not distinguishable from noise" in c.verdict(Candidate.JAVA_DEFAULTS)


def test_a_baseline_that_ran_out_of_backlog_gets_no_gain() -> None:
    """The emptied configuration is named with the fix; the other comparison still gets a gain."""
    c = _confirmation([150] * 3, [100] * 3, [100] * 3, emptied=Candidate.AIOKAFKA_DEFAULTS)
    verdict = c.verdict(Candidate.AIOKAFKA_DEFAULTS)
    assert "aiokafka defaults ran out" in verdict
    assert "measured the supply" in verdict
    assert "raise workload.prefill_records" in verdict
    assert "%" not in verdict
    assert "+50%" in c.verdict(Candidate.JAVA_DEFAULTS)


def test_best_that_ran_out_of_backlog_is_compared_with_nothing() -> None:
    """A best configuration whose backlog ran out gives no gain against either default."""
    c = _confirmation([150] * 3, [100] * 3, [100] * 3, emptied=Candidate.BEST)
    for baseline in (Candidate.JAVA_DEFAULTS, Candidate.AIOKAFKA_DEFAULTS):
        assert "backlog of best ran out" in c.verdict(baseline)
        assert "%" not in c.verdict(baseline)


def test_a_configuration_that_processed_nothing_gets_no_ratio() -> None:
    """A run with zero records refuses the comparison instead of dividing by zero."""
    c = _confirmation([100, 100, 100], [90, 90, 90], [80, 0, 80])
    verdict = c.verdict(Candidate.AIOKAFKA_DEFAULTS)
    assert "processed 0 records in run 2 of 3" in verdict
    assert "%" not in verdict


def test_write_draws_every_picture_for_the_default_space(tmp_path: Path) -> None:
    """24 trials of the 8-setting default space: every PNG and report.html are written."""
    study = synthetic_study(24)
    c = _confirmation([150, 152, 149], [100, 101, 99], [120, 118, 121])
    written = _write(tmp_path, study, c)
    for name in (*PICTURES, "report.html", "report.md"):
        assert (tmp_path / name).stat().st_size > 0, name
        assert tmp_path / name in written.paths
    assert "No picture" not in (tmp_path / "report.md").read_text()


def test_the_report_is_written_from_what_the_process_held(tmp_path: Path) -> None:
    """Read once, a stored study's report needs its storage no more (the file is gone), and a
    result the process held is the one written, not the trial's stored attribute."""
    db = tmp_path / "study.db"
    study = synthetic_study(8, storage=f"sqlite:///{db}")
    best = study.best_trial
    held = replace(measured(4321.0), rebalances=7)
    outcome = outcome_of(study, storage=f"sqlite:///{db}", held={best.number: held})
    db.unlink()
    report.write(tmp_path / "out", outcome, report.Recommendation(best=best))
    with (tmp_path / "out" / "trials.csv").open() as f:
        rows = {int(row["number"]): row for row in csv.DictReader(f)}
    assert rows[best.number]["rebalances"] == "7"
    assert rows[best.number]["records_per_s"] == str(best.values[0])
    assert "7 rebalances in its window" in (tmp_path / "out" / "report.md").read_text()


def test_a_picture_that_fails_is_named_in_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A contour plot that raises (as without scipy) costs only that picture, said with why."""

    def broken(*args: object, **kwargs: object) -> None:
        raise NameError("name 'scipy' is not defined")

    monkeypatch.setattr(optuna.visualization.matplotlib, "plot_contour", broken)
    study = synthetic_study(24)
    written = _write(tmp_path, study)
    assert not (tmp_path / "contour.png").exists()
    assert (tmp_path / "slice.png") in written.paths
    assert (tmp_path / "report.html").exists()
    for page in ("report.md", "report.html"):
        text = (tmp_path / page).read_text()
        assert "No picture contour.png: NameError: name " in text
        assert "scipy" in text.split("No picture contour.png")[1][:40]
    assert any(r.levelname == "WARNING" and "contour.png" in r.getMessage() for r in caplog.records)


def test_the_recommendation_lists_only_changed_settings_first(tmp_path: Path) -> None:
    """The first section shows the changed settings and the confirmed gain with its interval."""
    study = synthetic_study(24)
    c = _confirmation([150] * 3, [100] * 3, [100] * 3)
    written = _write(tmp_path, study, c)
    md = (tmp_path / "report.md").read_text()
    title, first, second = md.split("\n## ")[:3]
    assert first.startswith("What to change")
    assert written.summary == f"{title}\n## {first}".rstrip()
    assert second.split("\n")[0] not in written.summary
    assert "`max.poll.records`" in first
    assert "against aiokafka defaults: +50% throughput (95% interval" in first
    assert "enable.auto.commit" not in first  # not searched, so not changed


def test_the_ablation_section_lists_kept_changes_and_the_timeouts(tmp_path: Path) -> None:
    """Beside "What to change": the kept change with its why and interval, the put-back ones,
    the failover/detection table, in report.md and report.html; the files hold the ablation."""
    study = synthetic_study(24)
    best = report.best_settings(study.best_trial)
    calls = itertools.count()

    def run(settings: Mapping[str, SettingValue]) -> TrialResult:
        mine = space.effective_settings(settings)["max.poll.records"] == best["max.poll.records"]
        return measured(1000 * (1 + 0.01 * (next(calls) % 3)) * (1.5 if mine else 1.0))

    ablation = ablate(best, {}, run=run, pairs=3)
    _write(tmp_path, study, ablation=ablation)
    md = (tmp_path / "report.md").read_text()
    what, why = md.split("\n## ")[1:3]
    assert "`max.poll.records`" in what
    assert "`session.timeout.ms`" not in what
    assert why.startswith("Why each change (ablation)")
    assert (
        f"- `max.poll.records={best['max.poll.records']}` (default unlimited): bounds the "
        "records one poll hands out, so one batch's processing stays inside "
        "max.poll.interval.ms. Measured: putting it back -3"
    ) in why
    assert "(95% interval -" in why
    assert "Put back (no measurable effect):" in why
    assert f"- `session.timeout.ms=10000` (best trial: {best['session.timeout.ms']}): " in why
    assert "| recommendation | 10 s | 300 s |" in why  # as fast, shorter or not: put back
    assert "| aiokafka defaults | 10 s | 300 s |" in why
    assert "| Java defaults | 45 s | 300 s |" in why
    properties = (tmp_path / "consumer.properties").read_text()
    assert f"max.poll.records={best['max.poll.records']}\n" in properties
    assert "\nsession.timeout.ms=" not in properties
    assert "## Which settings mattered (PED-ANOVA importances)\n\n| setting | importance |" in md
    html = (tmp_path / "report.html").read_text()
    assert "<section class=lead><h2>Why each change (ablation)</h2>" in html
    assert "<th>failover time (session.timeout.ms)</th>" in html
    assert "<tr><td>Java defaults</td><td>45 s</td><td>300 s</td></tr>" in html


def test_a_report_without_ablation_says_so_and_keeps_the_best_trial(tmp_path: Path) -> None:
    """`tuner report` runs nothing: it writes the best trial's settings and says so."""
    study = synthetic_study(24)
    best = report.best_settings(study.best_trial)
    _write(tmp_path, study)
    md = (tmp_path / "report.md").read_text()
    assert "Ablation was not run: these are the best trial's settings, all of them" in md
    seconds = f"{int(best['session.timeout.ms']) / 1000:g} s"
    assert f"| recommendation | {seconds} |" in md
    properties = (tmp_path / "consumer.properties").read_text()
    assert f"session.timeout.ms={best['session.timeout.ms']}\n" in properties


def test_trials_csv_says_what_errors_made_a_trial_infeasible(tmp_path: Path) -> None:
    """An infeasible trial's `fail_reason` is only the constraint ("errors"); the errors column
    carries what the members reported, which the printed advice sends the reader to."""
    study = synthetic_study(3)
    erring = replace(measured(900), errors=("member m2: the consumer did not leave the group",))
    trial = study.ask()
    trial.set_user_attr(RESULT_ATTR, erring.to_dict())
    trial.set_constraint(Constraint.ERRORS, 1.0)
    study.tell(trial, [900.0])
    _write(tmp_path, study)
    with (tmp_path / "trials.csv").open() as f:
        rows = {int(row["number"]): row for row in csv.DictReader(f)}
    assert rows[3]["errors"] == "member m2: the consumer did not leave the group"
    assert rows[0]["errors"] == ""


def _set_lines(path: Path) -> list[str]:
    """The lines of a settings file that set something (not its comments)."""
    return [line for line in path.read_text().splitlines() if line and not line.startswith("#")]


def test_a_study_that_found_nothing_writes_files_that_change_nothing(tmp_path: Path) -> None:
    """Every change as fast put back: the files set only the fixed max.poll.interval.ms (no
    aiokafka default written as a Java setting), and the report shows no importances: the
    differences between trials were noise."""
    study = synthetic_study(24)
    fixed: dict[str, SettingValue] = {"max.poll.interval.ms": 5000}
    study.set_user_attr(FIXED_ATTR, fixed)
    best = {**report.best_settings(study.best_trial), **fixed}
    ablation = ablate(best, fixed, run=lambda settings: measured(1000), pairs=2)
    written = _write(tmp_path, study, ablation=ablation)
    java = (tmp_path / "consumer.properties").read_text()
    assert _set_lines(tmp_path / "consumer.properties") == ["max.poll.interval.ms=5000"]
    assert "# No setting measurably helped: this file changes nothing." in java
    assert "#   session.timeout.ms: aiokafka 10000, Java 45000" in java
    assert "RoundRobinAssignor" not in java
    assert _set_lines(tmp_path / "librdkafka.properties") == ["max.poll.interval.ms=5000"]
    assert json.loads((tmp_path / "aiokafka.json").read_text()) == {"max_poll_interval_ms": 5000}
    assert json.loads((tmp_path / "summary.json").read_text())["settings"] == fixed
    md = (tmp_path / "report.md").read_text()
    assert "Change nothing: keep the rest as is" in md
    assert "no setting measurably helped, so the differences between trials were noise" in md
    assert "| setting | importance |" not in md
    assert "mattered most" not in md
    assert tmp_path / "importances.png" not in written.paths


def test_each_client_file_sets_only_what_means_the_same(tmp_path: Path) -> None:
    """Four kept changes: Java gets all four (auto-commit off with the note that the
    application must commit); librdkafka fetch.wait.max.ms and auto-commit, with
    max.poll.records (no batch size: queued.min.messages) and the eager sticky assignor
    (librdkafka's is cooperative) as comments; each file says it was measured on aiokafka."""
    study = synthetic_study(24)
    best: dict[str, SettingValue] = {
        "max.poll.records": 2200, "fetch.max.wait.ms": 100,
        "partition.assignment.strategy": "sticky", "enable.auto.commit": False,
    }  # fmt: skip

    def run(settings: Mapping[str, SettingValue]) -> TrialResult:
        return measured(1000 * 1.2 ** sum(settings.get(k) == v for k, v in best.items()))

    ablation = ablate(best, {}, run=run, pairs=2)
    _write(tmp_path, study, ablation=ablation)
    assert set(_set_lines(tmp_path / "consumer.properties")) == {
        "fetch.max.wait.ms=100", "max.poll.records=2200", "enable.auto.commit=false",
        "partition.assignment.strategy=org.apache.kafka.clients.consumer.StickyAssignor",
    }  # fmt: skip
    assert "yours must commit itself" in (tmp_path / "consumer.properties").read_text()
    assert set(_set_lines(tmp_path / "librdkafka.properties")) == {
        "fetch.wait.max.ms=100", "enable.auto.commit=false",
    }  # fmt: skip
    rd = (tmp_path / "librdkafka.properties").read_text()
    assert "#   max.poll.records=2200: librdkafka has no poll batch size" in rd
    assert "queued.min.messages" in rd
    assert "#   partition.assignment.strategy=sticky: librdkafka's only sticky assignor" in rd
    for name in ("consumer.properties", "librdkafka.properties", "consumer_snippet.py"):
        assert "Measured on aiokafka" in (tmp_path / name).read_text() or name.endswith(".py")
    assert json.loads((tmp_path / "aiokafka.json").read_text()) == {
        "enable_auto_commit": False, "fetch_max_wait_ms": 100, "max_poll_records": 2200,
        "partition_assignment_strategy": "sticky",
    }  # fmt: skip
    assert "| setting | importance |" in (tmp_path / "report.md").read_text()


def test_a_change_that_cost_throughput_is_not_called_no_effect(tmp_path: Path) -> None:
    """Putting max.poll.records back is 13.2% faster in 3 pairs: the report lists it as put back
    because the change cost throughput, beside the number, never under "no measurable
    effect"."""
    study = synthetic_study(24)

    def run(settings: Mapping[str, SettingValue]) -> TrialResult:
        return measured(1000 if "max.poll.records" in settings else 1132)

    ablation = ablate({"max.poll.records": 2200}, {}, run=run, pairs=3)
    _write(tmp_path, study, ablation=ablation)
    md = (tmp_path / "report.md").read_text()
    assert "Put back (no measurable effect)" not in md
    assert (
        "Put back (the change cost throughput):\n\n- `max.poll.records=unlimited` (best trial: "
        "2200): putting it back +13.2% throughput (95% interval +13.2% to +13.2%); putting it "
        "back raised throughput by more than 3%, its whole 95% interval beyond the tolerance: "
        "the change cost throughput."
    ) in md
    assert _set_lines(tmp_path / "consumer.properties") == []


@pytest.mark.e2e
def test_report_html_is_a_real_page(tmp_path: Path, browser: WebDriver) -> None:
    """In Chromium: tables with header cells, real headings, loaded images, no raw Markdown."""
    study = synthetic_study(24)
    c = _confirmation([150, 152, 149], [100, 101, 99], [120, 118, 121])
    _write(tmp_path, study, c)
    browser.get((tmp_path / "report.html").as_uri())
    tables = browser.find_elements(By.TAG_NAME, "table")
    assert len(tables) >= 4
    headers = [th.text for th in tables[0].find_elements(By.TAG_NAME, "th")]
    assert "setting" in headers
    assert "kafka-tuner recommendation" in browser.find_element(By.TAG_NAME, "h1").text
    h2 = [h.text for h in browser.find_elements(By.TAG_NAME, "h2")]
    assert h2[0] == "What to change"
    assert any(h.startswith("Which settings mattered") for h in h2)
    images = browser.find_elements(By.TAG_NAME, "img")
    assert len(images) == len(PICTURES)
    for img in images:
        assert browser.execute_script("return arguments[0].naturalWidth", img) > 0
    page = browser.find_element(By.TAG_NAME, "body").text
    assert "|---|" not in page
    assert "## " not in page
    assert "max.poll.records" in page


def test_a_faster_baseline_that_breaks_a_constraint_is_named() -> None:
    """aiokafka's defaults are 2% faster but poll every 4.1 s against a 5 s limit with 50%
    headroom asked: the verdict gives the gain and says which constraint the defaults broke."""
    limit = {"max.poll.interval.ms": 5000}
    objective = parse_config(
        {"objective": {"constraints": {"max_poll_interval_headroom": 0.5}}}
    ).objective

    def run(rate: float, gap_ms: float) -> TrialResult:
        return replace(
            measured(rate, settings=limit),
            poll=PollStats(interval_ms_max=gap_ms, idle_ratio=None),
        )

    c = Confirmation(
        runs={
            Candidate.BEST: tuple(run(2855 + i, 2300) for i in range(3)),
            Candidate.JAVA_DEFAULTS: tuple(run(2480 + i, 700) for i in range(3)),
            Candidate.AIOKAFKA_DEFAULTS: tuple(run(2915 + i, 4100) for i in range(3)),
        },
        objective=objective,
    )
    text = c.verdict(Candidate.AIOKAFKA_DEFAULTS)
    assert text.startswith("against aiokafka defaults: -2% throughput")
    assert "max_poll_interval_headroom in run 1, 2, 3 of 3" in text
    assert c.broken(Candidate.AIOKAFKA_DEFAULTS) == {
        Constraint.MAX_POLL_INTERVAL_HEADROOM: [1, 2, 3]
    }
    assert "(longest gap between polls 4,100 ms against 5000 ms)" in text
    assert "broke" not in c.verdict(Candidate.JAVA_DEFAULTS)


def test_the_report_names_the_network_it_was_measured_under(tmp_path: Path) -> None:
    """The recommendation says which network profile its numbers come from, the best trial's
    result's: loopback without one, the RTT and bandwidth with one."""
    study = synthetic_study(8)
    _write(tmp_path, study)
    assert "Measured under: loopback, no network profile." in (tmp_path / "report.md").read_text()
    outcome = outcome_of(study)
    assert outcome.best is not None
    best = outcome.best
    shaped = replace(
        outcome.results[best.number],
        network=NetworkSpec(rtt_ms=40, jitter_ms=4, bandwidth_mbit=200),
    )
    report.write(
        tmp_path,
        replace(outcome, results={**outcome.results, best.number: shaped}),
        report.Recommendation(best=best),
    )
    assert (
        "Measured under: RTT 40 ms ±4 ms, 200 Mbit/s, through the network proxy."
        in (tmp_path / "report.md").read_text()
    )


def test_the_report_says_what_the_records_were(tmp_path: Path) -> None:
    """The payloads of the best trial (source, count, sizes, compression ratio) are named in
    the report, from its result."""
    study = synthetic_study(8)
    summary = PayloadSummary(
        source="topic 'orders' (a read-only sample of 10,000 records)", count=9876, p50_bytes=640,
        p99_bytes=7200, mean_bytes=810.4, compression="zstd", compression_ratio=3.14,
    )  # fmt: skip
    best = study.best_trial
    stored = TrialResult.from_dict(best.user_attrs[RESULT_ATTR])
    assert TrialResult.from_dict(replace(stored, payloads=summary).to_dict()).payloads == summary
    outcome = outcome_of(study)
    results = {**outcome.results, best.number: replace(stored, payloads=summary)}
    report.write(tmp_path, replace(outcome, results=results), report.Recommendation(best=best))
    assert (
        "Records: topic 'orders' (a read-only sample of 10,000 records): 9,876 records, value "
        "size p50 640 B, p99 7,200 B, mean 810 B, zstd compression ratio 3.14x."
    ) in (tmp_path / "report.md").read_text()


def test_a_confluent_kafka_study_writes_librdkafka_files_of_what_it_measured() -> None:
    """A KIP-848 confluent-kafka recommendation: librdkafka.properties under librdkafka's
    names, the consume() batch and the group's session as instructions (never properties),
    a snippet that compiles, and the Java file only as comments."""
    study = optuna.create_study()
    study.set_user_attr(CLIENT_ATTR, {"client": "confluent-kafka", "group_protocol": "consumer"})
    study.set_user_attr(FIXED_ATTR, {"fetch.min.bytes": 1000})
    settings = {
        "fetch.max.wait.ms": 100, "max.poll.records": 2000, "queued.min.messages": 5000,
        "session.timeout.ms": 6000, "fetch.max.bytes": 52428800, "fetch.min.bytes": 1000,
    }  # fmt: skip
    chosen, texts = _settings_files(outcome_of(study), settings, "the best trial")
    assert dict(chosen.changes) == {
        "fetch.max.wait.ms": 100, "max.poll.records": 2000, "queued.min.messages": 5000,
        "session.timeout.ms": 6000,
    }  # fmt: skip
    props = texts["librdkafka.properties"].splitlines()
    assert [line for line in props if not line.startswith("#")] == [
        "group.protocol=consumer", "fetch.min.bytes=1000", "fetch.wait.max.ms=100",
        "queued.min.messages=5000",
    ]  # fmt: skip
    assert "# pass num_messages=2000 to consume() (measured as max.poll.records)" in props
    assert any(line.startswith("# consumer.session.timeout.ms=6000: a group") for line in props)
    compile(texts["confluent_kafka_snippet.py"], "snippet", "exec")
    assert "consume(num_messages=2000" in texts["confluent_kafka_snippet.py"]
    java = texts["consumer.properties"].splitlines()
    assert all(line.startswith("#") for line in java)
    assert "# fetch.max.wait.ms=100" in java
    assert "aiokafka.json" not in texts


def measured_meaning(name: str) -> str:
    return report.MeasuredClient(client="confluent-kafka").meaning(name)


def test_a_confluent_kafka_report_names_the_client_protocol_and_its_own_defaults(
    tmp_path: Path,
) -> None:
    """A KIP-848 confluent-kafka study: the title names client and protocol, the baseline is
    "confluent-kafka defaults" (not aiokafka's), the defaults column and the timeouts table
    are librdkafka's (45 s session), and summary.json says which client ran."""
    study = synthetic_study(24)
    study.set_user_attr(CLIENT_ATTR, {"client": "confluent-kafka", "group_protocol": "consumer"})
    confirmation = replace(
        _confirmation([150] * 3, [100] * 3, [100] * 3),
        measured=report.MeasuredClient(client="confluent-kafka", protocol="consumer"),
    )
    _write(tmp_path, study, confirmation)
    md = (tmp_path / "report.md").read_text()
    title, first = md.split("\n## ")[:2]
    assert "confluent-kafka, group protocol consumer (KIP-848)" in title
    assert "against confluent-kafka defaults: +50% throughput" in first
    assert "aiokafka default" not in first
    assert "| setting | set to | confluent-kafka default | Java default |" in first
    assert "| confluent-kafka defaults | 45 s | 300 s |" in md
    assert measured_meaning("queued.min.messages").startswith("librdkafka prefetches")
    assert measured_meaning("max.poll.records").startswith("records per consume() call")
    assert "| confluent-kafka defaults | 100 |" in md
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["client"], summary["group_protocol"]) == ("confluent-kafka", "consumer")
    assert summary["kafka_version"] == KAFKA_VERSION  # the release the trials recorded
    assert f"(KIP-848), Apache Kafka {KAFKA_VERSION}" in title
    assert summary["baseline"] == "confluent-kafka defaults"
    assert set(summary["against"]) == {"java defaults", "confluent-kafka defaults"}
    assert summary["against"]["confluent-kafka defaults"]["label"] == "confluent-kafka defaults"
    props = (tmp_path / "librdkafka.properties").read_text()
    assert "# Measured on confluent-kafka, group protocol consumer (KIP-848): " in props


def test_a_service_studys_baseline_is_the_services_own_settings(tmp_path: Path) -> None:
    """A service's baseline runs with nothing overridden, so it is the service's own settings
    (what its code passes over the client's defaults), not the client's defaults: the title,
    the headline and summary.json say so; the timeouts table's row of values stays the
    client's defaults, named as such."""
    study = synthetic_study(24)
    study.set_user_attr(CLIENT_ATTR, {
        "client": "aiokafka", "group_protocol": "classic", "service": "python worker.py",
    })  # fmt: skip
    measured = report.MeasuredClient(client="aiokafka", service="python worker.py")
    confirmation = replace(_confirmation([150] * 3, [100] * 3, [100] * 3), measured=measured)
    _write(tmp_path, study, confirmation)
    md = (tmp_path / "report.md").read_text()
    title, first = md.split("\n## ")[:2]
    assert "measured on your service `python worker.py` on aiokafka, group protocol" in title
    assert "against your service's own settings: +50% throughput" in first
    assert "| aiokafka defaults | 10 s | 300 s |" in md
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["baseline"] == "your service's own settings"
    assert set(summary["against"]) == {"java defaults", "your service's own settings"}


def test_a_service_studys_report_says_what_the_services_code_sets() -> None:
    """The baseline of a service study is what its code sets: the report lists it as the
    service spells it; a study of the tuner's own members says nothing of the kind."""
    run = ServiceRun(client="kafka-python", version="2.2.15",
                     passed=("max_poll_records=50", "poll(max_records=100)"))  # fmt: skip
    said = plain(changes.service_settings(replace(measured(100.0), service=run)) or ())
    assert said.startswith("Your service (kafka-python 2.2.15) runs with what its own code "
                           "sets: max_poll_records=50, poll(max_records=100).")  # fmt: skip
    assert changes.service_settings(measured(100.0)) is None
    assert (
        "nothing over the client's defaults"
        in run.__class__(client="aiokafka", version="0.14.0").line()
    )


def test_an_aiokafka_report_still_names_aiokafka() -> None:
    """A study without a recorded client measured aiokafka, on the classic protocol."""
    measured_on = report.MeasuredClient.of(outcome_of(optuna.create_study()))
    assert measured_on.describe() == "aiokafka, group protocol classic"
    assert measured_on.defaults()["session.timeout.ms"] == 10000
    assert _confirmation([1.0], [1.0], [1.0]).label(Candidate.AIOKAFKA_DEFAULTS) == (
        "aiokafka defaults"
    )
