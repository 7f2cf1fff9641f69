"""`consumer.handler`: the user's own code in each member, on the real broker."""

from __future__ import annotations

import asyncio
import csv
import json
import multiprocessing
import sqlite3
import textwrap
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState
from prometheus_client import CollectorRegistry

from tests.helpers import (
    Process,
    alive,
    held_loop_trial,
    kt102_on_a_short_session,
    small_spec,
    trial,
    unique,
    wait_all_gone,
)
from tuner.advice import from_config
from tuner.cli import main
from tuner.config import ConfigError, load_config, parse_config
from tuner.metrics import PREFIX
from tuner.search.optimize import optimize
from tuner.search.study import FAIL_REASON_ATTR
from tuner.trial.run import Phase, TrialError, run_trial

EXAMPLES = Path(__file__).parent.parent / "examples"


def _module(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(body))
    return path


def _config(folder: Path, handler: object, **consumer: Any) -> Path:
    path = folder / "study.yaml"
    path.write_text(
        "cluster: {bootstrap_servers: '127.0.0.1:1'}\n"
        f"consumer: {{handler: {handler}, {', '.join(f'{k}: {v}' for k, v in consumer.items())}}}\n"
        "metrics: {port: 0, producer_port: 0}\n"
    )
    return path


def test_handler_file_is_relative_to_the_config_and_hooks_default_to_its_module(
    tmp_path: Path,
) -> None:
    """`handler: {function: h.py:handle, setup: start}` loads h.py beside the config file; a
    bare `setup` name is a function of the same module."""
    _module(tmp_path, "h.py", "def handle(records): pass\ndef start(): pass\n")
    spec = load_config(_config(tmp_path, "{function: h.py:handle, setup: start}"))
    assert spec.consumer.handler is not None
    assert spec.consumer.handler.function == f"{tmp_path / 'h.py'}:handle"
    assert spec.consumer.handler.setup == f"{tmp_path / 'h.py'}:start"
    assert spec.consumer.handler.teardown is None


def test_handler_and_processing_together_are_refused() -> None:
    """Both `consumer.handler` and `consumer.processing`: one problem naming both paths."""
    with pytest.raises(ConfigError) as caught:
        parse_config({
            "consumer": {"handler": "json:loads", "processing": {"per_record_ms": 1}}
        })  # fmt: skip
    (problem,) = caught.value.problems
    assert problem.startswith("consumer.handler: ")
    assert "consumer.processing" in problem


def test_a_config_with_a_model_takes_a_handler_from_set_without_its_processing() -> None:
    """`--set consumer.handler=… --set consumer.processing=null` turns a model's config into a
    handler's."""
    spec = parse_config(
        {"consumer": {"processing": {"per_record_ms": 1}}},
        overrides=["consumer.handler=json:loads", "consumer.processing=null"],
    )
    assert spec.consumer.handler is not None
    assert spec.consumer.handler.function == "json:loads"
    assert spec.consumer.processing.per_record_ms == 0


def test_handler_that_cannot_be_imported_exits_2_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A handler module whose import fails: exit 2, `consumer.handler` and the import error's
    message (nothing reaches the unreachable cluster in the config)."""
    _module(tmp_path, "h.py", "import not_a_module_anywhere\ndef handle(records): pass\n")
    assert main(["run", str(_config(tmp_path, "h.py:handle"))]) == 2
    err = capsys.readouterr().err
    assert "consumer.handler: importing" in err
    assert "ModuleNotFoundError: No module named 'not_a_module_anywhere' (h.py:1)" in err


def test_handler_missing_file_or_package_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A handler file that does not exist, and a package that does not: exit 2 for each."""
    assert main(["run", str(_config(tmp_path, "nowhere.py:handle"))]) == 2
    assert "consumer.handler: no file" in capsys.readouterr().err
    assert main(["run", str(_config(tmp_path, "no_such_pkg.mod:handle"))]) == 2
    assert "No module named 'no_such_pkg'" in capsys.readouterr().err


def test_handler_that_is_not_callable_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A name that is not callable (or absent, for teardown): exit 2, one problem each."""
    _module(tmp_path, "h.py", "handle = 42\n")
    path = _config(tmp_path, "{function: h.py:handle, teardown: close}")
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert "consumer.handler: 'h.py:handle' is not callable: it is a int" in err
    assert "consumer.handler.teardown: " in err
    assert "'h.py:close': the module has no attribute 'close'" in err


def test_a_plain_def_handler_is_a_cpu_workload_for_the_advisor(tmp_path: Path) -> None:
    """A plain `def` handler holds the event loop: the advisor's workload mode is `cpu`; an
    `async def` one is `async`."""
    _module(tmp_path, "h.py", "def handle(records): pass\nasync def ahandle(records): pass\n")
    modes = []
    for name in ("handle", "ahandle"):
        spec = load_config(_config(tmp_path, f"h.py:{name}"))
        workload = from_config(spec).workload
        assert workload is not None
        modes.append(workload.mode)
    assert modes == ["cpu", "async"]


@pytest.mark.integration
def test_example_sqlite_handler_writes_every_consumed_record(
    bootstrap_servers: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shipped SQLite handler in one member: the rows it wrote for the trial's group equal
    the records the group consumed and committed, and processing time is the handler's."""
    monkeypatch.setenv("SQLITE_HANDLER_DIR", str(tmp_path))
    spec = small_spec(
        "sqlite",
        cluster={"bootstrap_servers": bootstrap_servers},
        consumer={
            "members": 1,
            "handler": {
                "function": f"{EXAMPLES / 'sqlite_handler.py'}:handle",
                "setup": "open_db",
                "teardown": "close_db",
            },
            "settings": {"max.poll.records": 500},
        },
    )
    registry = CollectorRegistry()
    processing_s: list[float] = []

    async def watch() -> None:
        while True:
            await asyncio.sleep(0.5)
            processing_s.append(sum(
                sample.value
                for family in registry.collect()
                for sample in family.samples
                if sample.name == f"{PREFIX}processing_seconds_sum"
            ))  # fmt: skip

    result = trial(spec, bootstrap_servers, registry, alongside=watch)
    with sqlite3.connect(tmp_path / "m0.sqlite") as db:
        (rows,) = db.execute(
            "SELECT count(*) FROM records WHERE grp = ? AND topic = ?",
            (result.group_id, spec.topic.name),
        ).fetchone()
    assert result.errors == ()
    assert result.rebalances == 0
    assert rows == result.offsets.consumed_total == result.offsets.committed_total > 0
    assert max(processing_s) > 0  # the handler's real time, served as the model's would be


@pytest.mark.integration
def test_handler_exception_fails_that_trial_with_its_traceback_and_the_study_goes_on(
    bootstrap_servers: str, tmp_path: Path
) -> None:
    """A handler that raises in trial 0 only: trial 0 fails with the handler's traceback (in
    the study and trials.csv), trial 1 completes."""
    handler = _module(
        tmp_path,
        "flaky.py",
        f"""\
        import asyncio
        from pathlib import Path

        MARK = Path({str(tmp_path / "raised")!r})

        def parse(record):
            raise ValueError(f"cannot parse offset {{record.offset}}")

        async def handle(records):
            if not MARK.exists():
                MARK.touch()
                parse(records[0])
            await asyncio.sleep(0.001 * len(records))  # the backlog outlasts the window
        """,
    )
    spec = small_spec(
        "flaky",
        cluster={"bootstrap_servers": bootstrap_servers},
        consumer={"members": 1, "handler": f"{handler}:handle"},
        search={"trials": 2, "seed": 3, "sampler": "random",
                "parameters": {"max.poll.records": {"low": 100, "high": 1000}}},
        confirm={"repeats": 1, "ablation_pairs": 0},
        study={"name": unique("flaky")},
    )  # fmt: skip
    outcome = optimize(spec, out_dir=tmp_path / "out")
    study = optuna.load_study(study_name=spec.study.name, storage=outcome.storage)
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.COMPLETE]
    reason = str(study.trials[0].user_attrs[FAIL_REASON_ATTR])
    assert "member m0: the handler flaky.py:handle raised ValueError: cannot parse offset" in reason
    assert "(at flaky.py:7)" in reason
    assert 'File "' in reason
    assert "in parse" in reason
    out = tmp_path / "report"
    assert main(["report", "--storage", outcome.storage, "--study", spec.study.name,
                 "--out", str(out)]) == 0  # fmt: skip
    with (out / "trials.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert "in parse" in rows[0]["fail_reason"]


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["def", "async def"])
def test_hanging_handler_is_named_and_no_member_outlives_the_trial(
    bootstrap_servers: str, tmp_path: Path, kind: str
) -> None:
    """A handler that stops returning mid-trial (blocking the loop, or awaiting for ever):
    the trial fails naming the member and the handler, well before the 30 s a member is
    given to stop, and no member process is left."""
    sleep = "time.sleep({})" if kind == "def" else "await asyncio.sleep({})"
    handler = _module(
        tmp_path,
        "stuck.py",
        f"""\
        import asyncio
        import time

        first = None

        {kind} handle(records):
            global first
            first = first or time.monotonic()
            {sleep.format(0.01)}  # 2,000 records/s: the backlog lasts the whole trial
            if time.monotonic() - first > 2.5:
                {sleep.format(3600)}
        """,
    )
    spec = small_spec(
        "hang",
        cluster={"bootstrap_servers": bootstrap_servers},
        consumer={"handler": f"{handler}:handle", "settings": {"max.poll.records": 20}},
    )
    members: set[Process] = set()

    def observe(phase: Phase, value: float | None) -> None:
        if phase is Phase.WARMUP and not members:
            for proc in multiprocessing.active_children():
                if proc.name in {"m0", "m1"} and proc.pid is not None:
                    stat = Path(f"/proc/{proc.pid}/stat").read_text()
                    members.add((proc.pid, int(stat[stat.rindex(")") + 2 :].split()[19])))

    started = time.monotonic()
    with pytest.raises(TrialError) as caught:
        asyncio.run(
            run_trial(
                spec,
                bootstrap_servers=bootstrap_servers,
                settings=spec.consumer.settings,
                group_id=unique("hang"),
                registry=CollectorRegistry(),
                observer=observe,
            )
        )
    took = time.monotonic() - started
    assert "the handler stuck.py:handle has not returned for" in str(caught.value)
    assert "it hangs" in str(caught.value)
    assert len(members) == 2
    assert alive(members) == set() or wait_all_gone(members, 1.0) == set()
    assert took < 25, f"the trial took {took:.1f} s"


COMMIT_SPY = """\
import asyncio
import json
import os

from aiokafka.admin import AIOKafkaAdminClient

admin = None


async def setup():
    global admin
    admin = AIOKafkaAdminClient(bootstrap_servers=os.environ["KT_TEST_BOOTSTRAP"])
    await admin.start()


async def teardown():
    await admin.close()


async def handle(records):
    first, last = {}, {}
    for record in records:
        first.setdefault(record.partition, record.offset)
        last[record.partition] = record.offset
    await asyncio.sleep(0.3)  # three auto-commit intervals
    committed = await admin.list_consumer_group_offsets(os.environ["TUNER_GROUP"])
    seen = {tp.partition: meta.offset for tp, meta in committed.items()}
    with open(os.environ["KT_TEST_COMMITS"], "a") as out:
        for p in last:
            out.write(json.dumps([first[p], last[p], seen.get(p, -1)]) + "\\n")
"""


@pytest.mark.integration
@pytest.mark.parametrize("auto_commit", [False, True])
def test_offsets_are_committed_after_the_handler_returns_unless_auto_commit_runs_meanwhile(
    bootstrap_servers: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, auto_commit: bool
) -> None:
    """Read from the broker inside an async handler, 0.3 s into its batch: with auto-commit off
    no offset of the batch is committed yet (the member commits when the handler returns);
    with auto-commit every 100 ms the whole batch already is, while the handler still works."""
    handler = _module(tmp_path, "spy.py", COMMIT_SPY)
    commits = tmp_path / "commits.jsonl"
    monkeypatch.setenv("KT_TEST_BOOTSTRAP", bootstrap_servers)
    monkeypatch.setenv("KT_TEST_COMMITS", str(commits))
    spec = small_spec(
        "commits",
        workload={"prefill_records": 3000},
        consumer={"members": 1, "handler": {"function": f"{handler}:handle", "setup": "setup",
                                            "teardown": "teardown"},
                  "settings": {"max.poll.records": 20, "enable.auto.commit": auto_commit,
                               "auto.commit.interval.ms": 100}},
        trial={"warmup_s": 1, "measure_s": 2},
    )  # fmt: skip
    result = trial(spec, bootstrap_servers)
    assert result.errors == ()
    seen = [json.loads(line) for line in commits.read_text().splitlines()]
    assert len(seen) >= 5
    if auto_commit:
        assert sum(committed > last for _first, last, committed in seen) >= len(seen) // 2
    else:
        assert all(committed <= first for first, _last, committed in seen)
    assert result.offsets.committed_total == result.offsets.consumed_total > 0


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["def", "async def"])
def test_a_plain_def_handler_holds_the_loop_and_the_advisor_goes_by_it(
    bootstrap_servers: str, tmp_path: Path, kind: str
) -> None:
    """A plain `def` handler that works 8 ms per record holds the member's event loop (and its
    heartbeats) for its whole batch: a run measures about 800 ms for 100 records, and the
    advisor, given the config and the run, says KT102 by that measurement; the same work
    awaited in an `async def` leaves the loop free."""
    wait = "time.sleep" if kind == "def" else "await asyncio.sleep"
    handler = _module(tmp_path, "work.py", f"""\
        import asyncio
        import time

        {kind} handle(records):
            {wait}(0.008 * len(records))
        """)  # fmt: skip
    spec = small_spec(
        "loophold",
        consumer={"members": 1, "handler": f"{handler}:handle",
                  "settings": {"max.poll.records": 100, "enable.auto.commit": False}},
        trial={"warmup_s": 1, "measure_s": 4},
    )  # fmt: skip
    result, blocked = held_loop_trial(spec, bootstrap_servers)
    if kind == "async def":
        assert blocked < 200
        return
    assert blocked == pytest.approx(800, rel=0.25)
    workload = from_config(spec).workload
    assert workload is not None
    assert workload.mode == "cpu"
    found = kt102_on_a_short_session(spec, result)
    assert found.value == blocked
    assert f"the event loop was held up to {blocked:,.0f} ms (run" in found.arithmetic


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["def", "async def"])
def test_confluent_kafka_members_run_the_handler_on_their_messages(
    bootstrap_servers: str, tmp_path: Path, kind: str
) -> None:
    """With client confluent-kafka the handler gets each `consume()` batch as a list of
    confluent_kafka `Message`s, after its setup and before its teardown: the records it saw
    equal the records the group consumed and committed."""
    handler = _module(
        tmp_path,
        "counting.py",
        f"""\
        import asyncio
        import os
        from pathlib import Path

        seen = {{"records": 0, "types": set(), "setup": False}}

        def setup():
            seen["setup"] = True

        {kind} handle(records):
            assert seen["setup"]
            seen["records"] += len(records)
            seen["types"].update(type(r).__module__ + "." + type(r).__name__ for r in records)
            seen["types"].update(type(r.offset()).__name__ for r in records[:1])

        def teardown():
            out = Path({str(tmp_path)!r}) / os.environ["TUNER_MEMBER"]
            out.write_text(f"{{seen['records']}} {{' '.join(sorted(seen['types']))}}")
        """,
    )
    spec = small_spec(
        "rdhandler",
        cluster={"bootstrap_servers": bootstrap_servers},
        consumer={
            "client": "confluent-kafka",
            "members": 1,
            "handler": {"function": f"{handler}:handle", "setup": "setup", "teardown": "teardown"},
        },
    )
    result = trial(spec, bootstrap_servers)
    records, *types = (tmp_path / "m0").read_text().split()
    assert result.errors == ()
    assert types == ["confluent_kafka.cimpl.Message", "int"]
    assert int(records) == result.offsets.consumed_total == result.offsets.committed_total > 0


@pytest.mark.integration
def test_a_raising_handler_on_confluent_kafka_fails_the_trial_with_its_traceback(
    bootstrap_servers: str, tmp_path: Path
) -> None:
    """A confluent-kafka member whose handler raises fails the trial with the handler's one
    line and its traceback from the user's code down, as an aiokafka member does."""
    handler = _module(
        tmp_path,
        "broken.py",
        """\
        def parse(record):
            raise ValueError(f"cannot parse offset {record.offset()}")

        def handle(records):
            parse(records[0])
        """,
    )
    spec = small_spec(
        "rdbroken",
        cluster={"bootstrap_servers": bootstrap_servers},
        consumer={"client": "confluent-kafka", "members": 1, "handler": f"{handler}:handle"},
    )
    with pytest.raises(TrialError) as caught:
        trial(spec, bootstrap_servers)
    reason = str(caught.value)
    assert "member m0: the handler broken.py:handle raised ValueError: cannot parse" in reason
    assert "(at broken.py:2)" in reason
    assert "in parse" in reason
