"""`tuner optimize` / `tuner report` on the real broker, with small budgets."""

from __future__ import annotations

import asyncio
import csv
import json
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from optuna.study import StudyDirection
from optuna.trial import TrialState

from tests.helpers import (
    Process,
    alive,
    cmdline,
    descendants,
    gp_constraint_check,
    gp_search_space,
    sigint_as_in_a_terminal,
    small_spec,
    unique,
    wait_all_gone,
)
from tests.helpers import study_config as _write_config
from tuner import broker, report
from tuner.broker import EmbeddedBroker, bootstrap_for, free_port
from tuner.cli import main
from tuner.config import StudySpec, load_config
from tuner.recommend.bench import bench
from tuner.recommend.confirm import confirm_on
from tuner.report import Candidate
from tuner.search import space
from tuner.search.optimize import StudyExistsError, _budget_left, _reporter, optimize
from tuner.search.samplers import make_sampler
from tuner.search.study import (
    FAIL_REASON_ATTR,
    RESULT_ATTR,
    SETTINGS_ATTR,
    open_storage,
    pareto_front,
)
from tuner.trial.run import Phase


def _spec(bootstrap_servers: str, name: str, **sections: Any) -> StudySpec:
    base: dict[str, Any] = {
        "cluster": {"bootstrap_servers": bootstrap_servers},
        "workload": {"prefill_records": 20000, "message_bytes": 100},
        "consumer": {
            "members": 1,
            "processing": {"per_record_ms": 2},
            "settings": {"max.poll.interval.ms": 3000},
        },
        "trial": {"warmup_s": 1, "measure_s": 4},
        "search": {
            "trials": 3,
            "seed": 7,
            "sampler": "random",
            "parameters": {"max.poll.records": {"low": 10, "high": 5000, "log": True}},
        },
        "confirm": {"repeats": 1},
        "study": {"name": unique(name)},
    }
    for key, value in sections.items():
        base[key] = {**base.get(key, {}), **value}
    return small_spec(name, **base)


@pytest.mark.integration
def test_study_writes_every_file_with_the_best_settings(
    bootstrap_servers: str, tmp_path: Path
) -> None:
    """A study runs end to end; every output file parses and holds the best feasible trial."""
    spec = _spec(bootstrap_servers, "files")
    outcome = optimize(spec, out_dir=tmp_path)
    assert outcome.best is not None
    study = optuna.load_study(study_name=spec.study.name, storage=outcome.storage)
    assert len(study.trials) == 3
    code = main(["report", "--storage", outcome.storage, "--study", spec.study.name,
                 "--out", str(tmp_path / "r")])  # fmt: skip
    assert code == 0
    out = tmp_path / "r"
    best = report.best_settings(outcome.best)
    props = dict(
        line.split("=", 1)
        for line in (out / "consumer.properties").read_text().splitlines()
        if not line.startswith("#")
    )
    assert props["max.poll.records"] == str(best["max.poll.records"])
    assert props["max.poll.interval.ms"] == "3000"
    assert (
        json.loads((out / "aiokafka.json").read_text())["max_poll_records"]
        == best["max.poll.records"]
    )
    assert "#   max.poll.records=" in (out / "librdkafka.properties").read_text()
    compile((out / "consumer_snippet.py").read_text(), "snippet", "exec")
    rows = list(csv.DictReader((out / "trials.csv").open()))
    assert len(rows) == 3
    assert f"trial #{outcome.best.number} " in (out / "report.md").read_text()
    page = (out / "report.html").read_text()
    assert "<table" in page
    assert "<pre" not in page
    for name in ("history.png", "importances.png", "slice.png", "throughput_vs_rebalances.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert page.count("data:image/png;base64,") >= 4


@pytest.mark.integration
def test_two_objectives_give_a_pareto_front_and_any_point_can_be_reported(
    bootstrap_servers: str, tmp_path: Path
) -> None:
    """`objective.minimize: p99_latency`: Optuna is told (throughput, steady-state p99) per
    trial, the report lists the feasible front, recommends its fastest point, and `--trial N`
    reports another."""
    spec = _spec(
        bootstrap_servers, "pareto", objective={"minimize": "p99_latency"},
        workload={"producer": {"users": 1, "rate_per_user": 100}},
        trial={"warmup_s": 1, "measure_s": 4, "steady_s": 3},
    )  # fmt: skip
    outcome = optimize(spec, out_dir=tmp_path)
    study = optuna.load_study(study_name=spec.study.name, storage=outcome.storage)
    assert study.directions == [StudyDirection.MAXIMIZE, StudyDirection.MINIMIZE]
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert complete
    for t in complete:
        result = t.user_attrs[RESULT_ATTR]
        steady = result["steady"]
        p99 = steady["latency_ms"]["p99"] if steady["kept_up"] else float("inf")
        assert t.values == [result["throughput_records_per_s"], p99]
        age = result["record_age_ms"]["p99"]
        assert age is None or t.values[1] < age
    front = pareto_front(study)
    assert front
    assert outcome.best is not None
    assert outcome.best.values[0] == max(t.values[0] for t in front)
    feasible = [t for t in complete if all(c <= 0 for c in t.constraints.values())]
    assert all("rebalances" in t.constraints for t in complete)
    for t in front:  # nobody feasible beats a front point on both objectives
        assert t in feasible
        assert not any(o.values[0] > t.values[0] and o.values[1] < t.values[1] for o in feasible)
    other = front[-1]
    out = tmp_path / "r"
    code = main(["report", "--storage", outcome.storage, "--study", spec.study.name,
                 "--out", str(out), "--trial", str(other.number)])  # fmt: skip
    assert code == 0
    text = (out / "report.md").read_text()
    assert "## Pareto front" in text
    for t in front:
        assert f"| #{t.number}" in text
    fastest = other.number == outcome.best.number  # a front of one point
    said = "was the fastest feasible trial" if fastest else "was chosen with --trial"
    assert f"Why: trial #{other.number} {said}" in text
    props = (out / "consumer.properties").read_text()
    assert f"max.poll.records={other.user_attrs[SETTINGS_ATTR]['max.poll.records']}" in props
    assert (out / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    assert "p99_latency_ms" in (out / "trials.csv").read_text().splitlines()[0]
    bad = main(["report", "--storage", outcome.storage, "--study", spec.study.name,
                "--out", str(out), "--trial", "99"])  # fmt: skip
    assert bad == 2


@pytest.mark.integration
def test_a_second_run_needs_resume_and_continues_the_count(
    bootstrap_servers: str, tmp_path: Path
) -> None:
    """Without --resume an existing study is refused; with it, trials continue, none repeated."""
    spec = _spec(bootstrap_servers, "resume", search={"trials": 1})
    optimize(spec, out_dir=tmp_path)
    refused = rf"study {re.escape(repr(spec.study.name))} already exists in .*: add --resume"
    with pytest.raises(StudyExistsError, match=refused):
        optimize(spec, out_dir=tmp_path)
    more = _spec(bootstrap_servers, "resume", search={"trials": 2}, study={"name": spec.study.name})
    outcome = optimize(more, out_dir=tmp_path, resume=True)
    study = optuna.load_study(study_name=spec.study.name, storage=outcome.storage)
    assert [t.number for t in study.trials] == [0, 1]


@pytest.mark.integration
@pytest.mark.slow
def test_recommendation_beats_defaults_that_rebalance(
    bootstrap_servers: str, tmp_path: Path
) -> None:
    """Slow records + a 3 s max.poll.interval.ms: unlimited max.poll.records rebalances, and
    the recommendation is feasible in confirmation and processes no less than the defaults."""
    spec = _spec(bootstrap_servers, "demo", search={"trials": 4})
    outcome = optimize(spec, out_dir=tmp_path)
    assert outcome.best is not None
    with (
        bootstrap_for(spec.cluster.bootstrap_servers) as bootstrap,
        bench(
            spec, bootstrap_servers=bootstrap, backlog_records=spec.workload.prefill_records or 0
        ) as on_bench,
    ):
        confirmation = confirm_on(on_bench, report.best_settings(outcome.best))
    assert confirmation.rebalances(Candidate.BEST) == 0
    assert confirmation.rebalances(Candidate.AIOKAFKA_DEFAULTS) > 0
    assert _topics_named(bootstrap_servers, spec.topic.name) == []  # trial and confirm topics
    # Processing continues while a group rebalances, so the records/s can be the same: the
    # gain is the stable group, never a lower rate.
    assert confirmation.median_throughput(Candidate.BEST) >= 0.97 * confirmation.median_throughput(
        Candidate.AIOKAFKA_DEFAULTS
    )


def _topics_named(bootstrap_servers: str, prefix: str) -> list[str]:
    async def listed() -> list[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
        await admin.start()
        try:
            return sorted(t for t in await admin.list_topics() if t.startswith(prefix))
        finally:
            await admin.close()

    return asyncio.run(listed())


def _tuner(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tuner.cli", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=sigint_as_in_a_terminal,  # noqa: PLW1509 - only resets one signal
    )  # fmt: skip


def _numbers(storage: str, config: Path) -> list[tuple[int, str]]:
    """(number, state) of the study's trials; empty while the study is not created yet."""
    spec = load_config(config)
    try:
        study = optuna.load_study(study_name=spec.study.name, storage=open_storage(storage))
    except KeyError:
        return []
    return [(t.number, t.state.name) for t in study.trials]


@pytest.mark.integration
@pytest.mark.slow
def test_ctrl_c_leaves_a_study_that_resumes(bootstrap_servers: str, tmp_path: Path) -> None:
    """SIGINT mid-study exits 130 with a resume hint; --resume runs the rest, no number reused."""
    config = _write_config(tmp_path / "c.yaml", bootstrap_servers, "sigint", trials=3)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    proc = _tuner("optimize", str(config), "--storage", storage, "--out", str(tmp_path))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if any(state == "COMPLETE" for _, state in _numbers(storage, config)):
            break
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "--resume" in err
    before = _numbers(storage, config)
    assert "RUNNING" not in {state for _, state in before}
    resumed = _tuner("optimize", str(config), "--storage", storage, "--out", str(tmp_path),
                     "--resume", "--quiet")  # fmt: skip
    resumed.communicate(timeout=300)
    after = _numbers(storage, config)
    numbers = [n for n, _ in after]
    assert numbers == list(range(len(after)))
    assert after[: len(before)] == before
    assert sum(1 for _, state in after if state == "COMPLETE") >= 1
    assert len(after) == 3


@pytest.mark.integration
def test_sigterm_mid_trial_cleans_up_as_ctrl_c_does(bootstrap_servers: str, tmp_path: Path) -> None:
    """SIGTERM (what `timeout`, systemd and Kubernetes send) inside a trial with Locust load:
    exit 143 with the resume hint, the trial told FAIL, every process and the study's topic
    gone."""
    config = _write_config(tmp_path / "c.yaml", bootstrap_servers, "sigterm", trials=2)
    config.write_text(
        config.read_text()
        .replace("measure_s: 2", "measure_s: 30")
        .replace(
            "message_bytes: 100}", "message_bytes: 100, producer: {users: 1, rate_per_user: 100}}"
        )
    )
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    proc = _tuner("optimize", str(config), "--storage", storage, "--out", str(tmp_path))
    try:
        running = _wait_for_locust_and_members(proc.pid, members=1)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    assert "interrupted; the study is saved. Resume with:" in err
    assert "--resume" in err
    assert wait_all_gone(running, timeout_s=5) == set()
    assert _numbers(storage, config) == [(0, "FAIL")]
    spec = load_config(config)
    study = optuna.load_study(study_name=spec.study.name, storage=storage)
    assert study.trials[0].user_attrs[FAIL_REASON_ATTR] == "interrupted"
    assert _topics_named(bootstrap_servers, spec.topic.name) == []


@pytest.mark.integration
@pytest.mark.slow
def test_sigkill_mid_trial_leaves_no_member_locust_or_broker(tmp_path: Path) -> None:
    """`tuner optimize` on the embedded broker it started, killed with SIGKILL inside a trial
    with Locust load and two members: no process it started outlives it by more than a few
    seconds (members, Locust, the broker's JVM)."""
    cache = tmp_path / "cache"
    jars = broker.cache_dir() / f"kafka-{broker.KAFKA_VERSION}"
    if jars.is_dir():  # the jars already fetched, not a second download; no `tuner broker` state
        (cache / "kafka-tuner").mkdir(parents=True)
        (cache / "kafka-tuner" / jars.name).symlink_to(jars)
    config = _write_config(tmp_path / "c.yaml", "embedded", "sigkill", trials=2)
    config.write_text(
        config.read_text()
        .replace("measure_s: 2", "measure_s: 30")
        .replace("members: 1", "members: 2")
        .replace(
            "message_bytes: 100}", "message_bytes: 100, producer: {users: 1, rate_per_user: 100}}"
        )
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "tuner.cli", "optimize", str(config), "--out", str(tmp_path),
         "--quiet"],
        env={**os.environ, "XDG_CACHE_HOME": str(cache)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    running: set[Process] = set()
    data_dirs: set[Path] = set()
    try:
        running = _wait_for_locust_and_members(proc.pid, members=2, timeout_s=150)
        data_dirs = {Path(arg).parent for pid, _ in running for arg in cmdline(pid).split()
                     if arg.endswith("server.properties")}  # fmt: skip
        assert data_dirs, "no broker JVM below the tuner"
        proc.kill()
        proc.wait()
        survivors = wait_all_gone(running, timeout_s=10)
        assert survivors == set(), [cmdline(pid)[:120] for pid, _ in survivors]
    finally:
        proc.kill()
        for pid, _ in alive(running):
            os.kill(pid, signal.SIGKILL)
        for data_dir in data_dirs:  # what a SIGKILLed tuner cannot delete itself
            shutil.rmtree(data_dir, ignore_errors=True)


def _wait_for_locust_and_members(pid: int, *, members: int, timeout_s: float = 90) -> set[Process]:
    """The processes below `pid` once Locust and `members` group members all run."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        procs = descendants(pid)
        lines = [cmdline(p) for p, _ in procs]
        members_up = sum(1 for line in lines if "forkserver" in line) - 1  # the server itself
        if any(" -m locust " in line for line in lines) and members_up >= members:
            return procs
        time.sleep(0.2)
    raise AssertionError(f"no Locust and {members} members below pid {pid} in {timeout_s} s")


@pytest.mark.integration
def test_a_member_killed_mid_window_fails_that_trial_and_the_study_goes_on(
    bootstrap_servers: str, tmp_path: Path
) -> None:
    """SIGKILL to one member process inside trial 0's window: that trial fails naming the
    member and the signal, the next trial completes."""
    spec = _spec(bootstrap_servers, "memberkill", consumer={"members": 2},
                 search={"trials": 2})  # fmt: skip

    def m0() -> int:
        (member,) = [p for p in multiprocessing.active_children() if p.name == "m0"]
        assert member.pid is not None
        return member.pid

    killed, reason = _kill_in_first_window(spec, tmp_path, m0)
    assert (
        f"member m0 (pid {killed}) was killed by SIGKILL mid-trial: the group lost a member"
        in reason
    )


@pytest.mark.integration
def test_locust_killed_mid_trial_fails_that_trial_and_leaves_no_process(
    bootstrap_servers: str, tmp_path: Path
) -> None:
    """SIGKILL to the Locust process inside trial 0: that trial fails naming Locust and the
    signal, the next trial completes with its own Locust, and no Locust is left running."""
    spec = _spec(bootstrap_servers, "locustkill", search={"trials": 2},
                 workload={"producer": {"users": 1, "rate_per_user": 100}})  # fmt: skip

    def locusts() -> set[Process]:
        return {p for p in descendants(os.getpid()) if " -m locust " in cmdline(p[0])}

    def locust() -> int:
        ((pid, _),) = locusts()
        return pid

    killed, reason = _kill_in_first_window(spec, tmp_path, locust)
    assert f"Locust (pid {killed}) was killed by SIGKILL mid-trial" in reason
    assert alive(locusts()) == set()


def _kill_in_first_window(
    spec: StudySpec, tmp_path: Path, victim: Callable[[], int]
) -> tuple[int, str]:
    """Run the two-trial study, SIGKILL `victim()` in the first second of trial 0's window;
    trial 0 must fail and trial 1 complete. Returns the pid killed and trial 0's reason."""
    killed: list[int] = []

    def kill(phase: Phase, value: float | None) -> None:
        if phase is Phase.MEASURE and value is not None and not killed:
            killed.append(victim())
            os.kill(killed[0], signal.SIGKILL)

    outcome = optimize(spec, out_dir=tmp_path, on_phase=kill)
    study = optuna.load_study(study_name=spec.study.name, storage=outcome.storage)
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.COMPLETE]
    return killed[0], str(study.trials[0].user_attrs[FAIL_REASON_ATTR])


@pytest.mark.integration
@pytest.mark.slow
def test_two_workers_share_one_study(bootstrap_servers: str, tmp_path: Path) -> None:
    """Two `--worker` processes on one journal storage finish the budget, numbers unique."""
    config = _write_config(tmp_path / "c.yaml", bootstrap_servers, "workers", trials=4)
    storage = f"journal:{tmp_path / 'journal.log'}"
    argv = ["optimize", str(config), "--storage", storage, "--worker", "--quiet", "--out"]
    workers = [_tuner(*argv, str(tmp_path / f"w{i}")) for i in range(2)]
    for worker in workers:
        worker.communicate(timeout=300)
        assert worker.returncode == 0
    trials = _numbers(storage, config)
    numbers = [n for n, _ in trials]
    assert len(numbers) == len(set(numbers))
    assert len(trials) == 4
    assert all(state == "COMPLETE" for _, state in trials)


def test_pruner_hook_stops_a_trial_slower_than_the_median() -> None:
    """Our per-second reports reach Optuna's MedianPruner, which prunes a clearly slower trial."""
    study = optuna.create_study(
        direction="maximize",
        pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=1),
    )
    first = study.ask()
    fast = _reporter(first)
    for _ in range(4):
        fast(Phase.MEASURE, 1000.0)
    study.tell(first, 1000.0)
    slow = _reporter(study.ask())
    slow(Phase.MEASURE, 10.0)  # warm-up step: never pruned
    slow(Phase.WARMUP, None)  # other phases are not reports
    with pytest.raises(optuna.TrialPruned, match="pruned at second 2"):
        slow(Phase.MEASURE, 10.0)


def _measuring_after_a_complete(storage: str, config: Path) -> bool:
    """Whether a trial has completed and the running one has reported a second of its window
    (a trial reports its running throughput to Optuna each second it measures)."""
    spec = load_config(config)
    try:
        study = optuna.load_study(study_name=spec.study.name, storage=open_storage(storage))
    except KeyError:
        return False
    states = {t.state.name for t in study.trials}
    running = [t for t in study.trials if t.state.name == "RUNNING"]
    return "COMPLETE" in states and any(t.intermediate_values for t in running)


@pytest.mark.integration
@pytest.mark.slow
def test_broker_lost_mid_study_fails_that_trial_and_the_study_goes_on(tmp_path: Path) -> None:
    """Stop the broker during a trial and start it again: that trial is FAIL with its reason,
    and the study completes the trials after it."""
    port = free_port()
    first = EmbeddedBroker(port=port)
    first.start()
    bootstrap = first.bootstrap_servers
    config = _write_config(tmp_path / "c.yaml", bootstrap, "brokerloss", trials=3)
    config.write_text(config.read_text().replace("measure_s: 2", "measure_s: 6"))
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    proc = _tuner("optimize", str(config), "--storage", storage, "--out", str(tmp_path),
                  "--worker", "--quiet")  # fmt: skip  # the trials, not the confirmation
    second: EmbeddedBroker | None = None
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not _measuring_after_a_complete(storage, config):
            time.sleep(0.3)
        first.stop()  # inside the running trial's window: it has reported a measured second
        second = EmbeddedBroker(port=port)
        second.start()
        proc.communicate(timeout=400)
    finally:
        proc.kill()
        first.stop()
        if second is not None:
            second.stop()
    states = [state for _, state in _numbers(storage, config)]
    assert "FAIL" in states
    assert states.index("FAIL") < len(states) - 1
    assert states[-1] == "COMPLETE"
    spec = load_config(config)
    study = optuna.load_study(study_name=spec.study.name, storage=storage)
    failed = next(t for t in study.trials if t.state.name == "FAIL")
    assert failed.user_attrs[FAIL_REASON_ATTR]


def test_grid_search_ends_when_the_grid_is_covered() -> None:
    """Told through ask/tell, the grid sampler neither raises (Optuna's own calls study.stop())
    nor lets the loop repeat points once each has run, whatever the trial budget."""
    spec = small_spec(
        "grid",
        search={"trials": 5, "sampler": "grid",
                "parameters": {"max.poll.records": {"choices": [10, 20]}}},
    )  # fmt: skip
    sampler = make_sampler(spec)
    study = optuna.create_study(sampler=sampler, direction="maximize")
    seen = []
    while _budget_left(study, study.trials, spec, sampler, time.monotonic()):
        trial = study.ask()
        seen.append(space.suggest(trial, spec.search.parameters or {})["max.poll.records"])
        study.tell(trial, 1.0)
    assert sorted(seen) == [10, 20]


@pytest.mark.integration
def test_a_study_meets_what_the_gp_sampler_needs(bootstrap_servers: str, tmp_path: Path) -> None:
    """A real study with a constraint, run by TPE (GPSampler needs PyTorch, an optional
    extra): all 4 trials complete and pass what GPSampler (`search.sampler: gp`) checks of a
    study — Optuna's own check that every trial was told the same constraint names (it fails
    a trial otherwise) — and share one search space, the one it would model."""
    spec = _spec(
        bootstrap_servers, "gpcontract",
        search={"sampler": "tpe", "n_startup_trials": 2, "trials": 4, "pruner": "none"},
        trial={"warmup_s": 1, "measure_s": 3},
        objective={"constraints": {"max_poll_interval_headroom": 0.5}},
    )  # fmt: skip
    outcome = optimize(spec, out_dir=tmp_path)
    study = optuna.load_study(study_name=spec.study.name, storage=outcome.storage)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 4, [
        t.user_attrs.get(FAIL_REASON_ATTR) for t in study.trials
    ]
    values, _ = gp_constraint_check(study)
    assert values.shape == (4, len(study.trials[0].constraints))
    assert "max_poll_interval_headroom" in study.trials[0].constraints
    assert gp_search_space(study.trials) == {"max.poll.records"}
