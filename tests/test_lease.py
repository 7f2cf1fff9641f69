"""Workers sharing one study: a turn per cluster and one budget, on a real PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

from tests.helpers import study_config, topic_exists, unique
from tuner.broker import EmbeddedBroker
from tuner.config import load_config
from tuner.search import clean
from tuner.search.lease import Coordinator
from tuner.search.optimize import _fail_abandoned
from tuner.search.study import CLUSTER_ATTR, WORKER_ATTR, fail_reason, open_storage


@pytest.fixture(scope="module")
def second_broker() -> Iterator[EmbeddedBroker]:
    """Another real single-node broker: a second worker's cluster of its own."""
    with EmbeddedBroker(heap="512m") as b:
        yield b


def _worker(config: Path, storage: str, bootstrap: str, out: Path) -> subprocess.Popen[str]:
    argv = ["optimize", str(config), "--storage", storage, "--worker", "--quiet", "--out",
            str(out), "--set", f"cluster.bootstrap_servers={bootstrap}"]  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "tuner.cli", *argv],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _window(t: FrozenTrial) -> tuple[datetime, datetime]:
    assert t.datetime_start is not None
    assert t.datetime_complete is not None
    return t.datetime_start, t.datetime_complete


def _overlaps(trials: list[FrozenTrial]) -> list[tuple[int, int]]:
    """Pairs of trials on one cluster whose ask-to-tell windows overlap."""
    found = []
    for a in trials:
        for b in trials:
            same = a.user_attrs[CLUSTER_ATTR] == b.user_attrs[CLUSTER_ATTR]
            if a.number < b.number and same:
                (a0, a1), (b0, b1) = _window(a), _window(b)
                if a0 < b1 and b0 < a1:
                    found.append((a.number, b.number))
    return found


@pytest.mark.integration
@pytest.mark.slow
def test_three_workers_on_two_clusters_share_one_postgres_budget(
    bootstrap_servers: str, second_broker: EmbeddedBroker, postgres_url: str, tmp_path: Path
) -> None:
    """Two workers on one broker and a third on its own broker, one PostgreSQL study of 6
    trials: exactly 6 trials, all complete, unique numbers, each naming its cluster and worker;
    the two workers on one cluster take turns (each gets trials, no two windows there overlap)
    while the other cluster measures at the same time."""
    config = study_config(tmp_path / "c.yaml", bootstrap_servers, "shared", trials=6)
    study_name = load_config(config).study.name
    clusters = [bootstrap_servers, bootstrap_servers, second_broker.bootstrap_servers]
    workers = [_worker(config, postgres_url, c, tmp_path / f"w{i}") for i, c in enumerate(clusters)]
    for w in workers:
        _, err = w.communicate(timeout=280)
        assert w.returncode == 0, err[-2000:]
    study = optuna.load_study(study_name=study_name, storage=open_storage(postgres_url))
    trials = study.trials
    assert len(trials) == 6
    assert sorted(t.number for t in trials) == list(range(6))
    assert all(t.state == TrialState.COMPLETE for t in trials), [t.state for t in trials]
    assert {t.user_attrs[CLUSTER_ATTR] for t in trials} <= set(clusters)
    assert {t.user_attrs[CLUSTER_ATTR] for t in trials} == set(clusters), "a cluster did nothing"
    assert len({t.user_attrs[WORKER_ATTR] for t in trials}) == 3, "a worker got no turn"
    assert _overlaps(trials) == []
    crossed = [
        (a.number, b.number)
        for a in trials
        for b in trials
        if a.user_attrs[CLUSTER_ATTR] != b.user_attrs[CLUSTER_ATTR]
        and _window(a)[0] < _window(b)[1]
        and _window(b)[0] < _window(a)[1]
    ]
    assert crossed, "the two clusters never measured at the same time"


_HOLD = """
import sys, time
from tuner.search.lease import Coordinator
with Coordinator(sys.argv[1], study=sys.argv[2], lease_s=2.0).turn(sys.argv[3]) as turn:
    turn.measuring(int(sys.argv[4]))
    print("holding", flush=True)
    time.sleep(600)
"""


@pytest.mark.integration
def test_a_killed_holders_lease_is_taken_over_and_its_trial_failed(
    postgres_url: str,
) -> None:
    """A worker SIGKILLed while holding a cluster's lease: another worker waits, takes the
    lease over once it expires, learns which trial was left running, and that trial is told
    FAIL with the reason naming the cluster."""
    name, cluster = unique("killed"), f"127.0.0.1:{uuid.uuid4().int % 60000}"
    study = optuna.create_study(study_name=name, storage=open_storage(postgres_url))
    running = study.ask()
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, postgres_url, name, cluster, str(running.number)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "holding"
        holder.kill()
        holder.wait(10)
        other = Coordinator(postgres_url, study=name, lease_s=2.0)
        began = time.monotonic()
        with other.turn(cluster) as turn:
            waited_s = time.monotonic() - began
            assert turn.taken_over is not None
            assert turn.taken_over.trial_number == running.number
            _fail_abandoned(study, turn.taken_over, cluster)
        other.close()
    finally:
        holder.kill()
        holder.wait(10)
    assert 0 < waited_s < 2.0 + 1.5
    failed = study.trials[running.number]
    assert failed.state == TrialState.FAIL
    assert f"stopped renewing the lease on {cluster} mid-trial" in str(
        fail_reason(failed, study.user_attrs)
    )


def test_a_held_lease_makes_the_next_worker_wait(postgres_url: str) -> None:
    """While one worker holds a cluster's lease (renewed), another cannot take it; after the
    release the waiting worker gets it before the one that released it, nothing taken over."""
    cluster = f"127.0.0.1:{uuid.uuid4().int % 60000}"
    first = Coordinator(postgres_url, study="s", lease_s=1.0)
    second = Coordinator(postgres_url, study="s", lease_s=1.0)
    with first.turn(cluster):
        time.sleep(2.5)  # past the lease's length: only renewal keeps it
        assert second._try_acquire(cluster) == (False, None)
    assert first._try_acquire(cluster) == (False, None), "the waiter's turn comes first"
    assert second._try_acquire(cluster) == (True, None)
    first.close()
    second.close()


def test_the_budget_is_shared(postgres_url: str) -> None:
    """Claims from two workers stop at the budget; the study's own count is never undercut."""
    name = unique("budget")
    a, b = (Coordinator(postgres_url, study=name) for _ in range(2))
    claims = [c.claim(budget=3, taken=0) for c in (a, b, a, b)]
    assert claims == [True, True, True, False]
    other = unique("budget")
    c = Coordinator(postgres_url, study=other)
    assert c.claim(budget=3, taken=3) is False
    assert c.claim(budget=5, taken=3) is True
    for x in (a, b, c):
        x.close()


def test_a_journal_keeps_its_leases_beside_it(tmp_path: Path) -> None:
    """With `journal:FILE` the leases live in an SQLite file next to it."""
    c = Coordinator(f"journal:{tmp_path / 'j.log'}", study="s")
    assert c.claim(budget=1, taken=0) is True
    c.close()
    assert (tmp_path / "j.log.leases.db").exists()


def _trial_states(storage: str, name: str) -> list[TrialState]:
    try:
        study = optuna.load_study(study_name=name, storage=open_storage(storage))
    except KeyError:
        return []
    return [t.state for t in study.trials]


@pytest.mark.integration
@pytest.mark.slow
def test_a_worker_killed_mid_trial_leaves_a_failed_trial_the_other_takes_over(
    bootstrap_servers: str, postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Worker A is SIGKILLed inside trial 0; `clean` deletes the study topic it left; worker B
    on the same cluster waits for A's lease to expire, takes it over, marks trial 0 failed
    naming the cluster, and spends the rest of the 2-trial budget: trial 1 completes."""
    config = study_config(tmp_path / "c.yaml", bootstrap_servers, "killed", trials=2)
    config.write_text(config.read_text().replace("measure_s: 2", "measure_s: 20"))
    name = load_config(config).study.name
    a = _worker(config, postgres_url, bootstrap_servers, tmp_path / "a")
    try:
        deadline = time.monotonic() + 90
        while _trial_states(postgres_url, name) != [TrialState.RUNNING]:
            assert time.monotonic() < deadline, "trial 0 never started"
            time.sleep(0.2)
        time.sleep(2)
        a.kill()
        a.wait(10)
    finally:
        a.kill()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # no other temp dir is looked at
    left = [t for t in clean.clean().topics if t.startswith(load_config(config).topic.name)]
    assert len(left) == 1, left
    assert not topic_exists(bootstrap_servers, left[0].split(" at ")[0])
    config.write_text(config.read_text().replace("measure_s: 20", "measure_s: 2"))
    b = _worker(config, postgres_url, bootstrap_servers, tmp_path / "b")
    _, err = b.communicate(timeout=200)
    assert b.returncode == 0, err[-2000:]
    study = optuna.load_study(study_name=name, storage=open_storage(postgres_url))
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.COMPLETE]
    reason = str(fail_reason(study.trials[0], study.user_attrs))
    assert f"stopped renewing the lease on {bootstrap_servers} mid-trial" in reason
    assert study.trials[1].user_attrs[CLUSTER_ATTR] == bootstrap_servers
