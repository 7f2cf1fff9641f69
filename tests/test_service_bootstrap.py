"""A team's service run unchanged with the bootstrap injected: the trial's group, topic and
settings replace the service's own, and what it consumed reaches the parent."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import cluster_groups, topic_exists, unique
from tuner.cluster.admin import Connection, committed_offsets, ensure_topic
from tuner.cluster.prefill import prefill
from tuner.config import ClusterSpec, TopicSpec
from tuner.config.spec import ServiceSpec, WorkloadSpec
from tuner.consumer.service import (
    BOOTSTRAP_DIR,
    PLAN_ENV,
    REFUSED_EXIT,
    ReportError,
    ServiceReports,
    child_environment,
    follow,
    parse_report,
    report_pipe,
    write_plan,
)
from tuner.settings import SettingValue

SERVICES = Path(__file__).parent / "services"
SERVICE_PYTHON = os.environ.get("TUNER_TEST_SERVICE_PYTHON", sys.executable)
"""The interpreter the services run in: set it to another virtualenv's python to check the
bootstrap against the client versions installed there."""
RECORDS = 240
TRIAL_BATCH = 7
"""The trial's max.poll.records: the services ask for 100 per call (and 50 in kafka-python's
constructor)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Ran:
    reports: ServiceReports
    returncode: int
    stderr: str
    committed: dict[int, int]


async def _run_service(
    tmp_path: Path,
    bootstrap_servers: str,
    script: str,
    *,
    settings: Mapping[str, SettingValue],
    env: Mapping[str, str] | None = None,
    records: int = RECORDS,
) -> tuple[Ran, str, str]:
    """Write `records` to a new trial topic, run the service on it until the trial's group has
    committed them all (or it exits), then Ctrl-C it; (what happened, topic, group)."""
    conn = Connection(bootstrap_servers=bootstrap_servers, cluster=ClusterSpec())
    topic, group = unique("svc"), unique("svc-group")
    await ensure_topic(conn, TopicSpec(name=topic, partitions=2, create=True))
    await prefill(conn, topic, WorkloadSpec(message_bytes=100), records=records)
    service = ServiceSpec(command=(SERVICE_PYTHON, script), topic="orders", env=env or {})
    read_fd, write_fd = report_pipe()
    plan = write_plan(
        tmp_path / "plan.json", service=service, bootstrap_servers=bootstrap_servers,
        group_id=group, topic=topic, settings=settings, report_fd=write_fd,
    )  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        *service.command, env=child_environment(service, plan), pass_fds=(write_fd,),
        stderr=subprocess.PIPE, cwd=SERVICES,
    )  # fmt: skip
    subprocess_stderr = proc.stderr
    assert subprocess_stderr is not None
    reports = ServiceReports()
    reading = asyncio.create_task(follow(read_fd, reports))
    os.close(write_fd)
    committed: dict[int, int] = {}
    async with asyncio.timeout(30):
        while proc.returncode is None:
            with contextlib.suppress(Exception):  # the group exists once it has joined
                committed = await committed_offsets(conn, group, topic)
            if sum(committed.values()) >= records:
                proc.send_signal(signal.SIGINT)
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 0.2)
        stderr = (await subprocess_stderr.read()).decode()
        await proc.wait()
        await reading
    assert proc.returncode is not None
    return Ran(reports=reports, returncode=proc.returncode, stderr=stderr,
               committed=committed), topic, group  # fmt: skip


def _ran_in_the_trial(ran: Ran, bootstrap_servers: str, group: str, topic: str) -> None:
    """The trial's group committed every record, no group "billing" exists, no poll handed
    out more than the trial's max.poll.records, the consumer was created in the trial's
    group on its topic and closed, and it reported the topic's 2 partitions assigned."""
    assert ran.returncode == 0, ran.stderr
    assert sum(ran.committed.values()) == RECORDS
    groups = asyncio.run(cluster_groups(bootstrap_servers))
    assert group in groups
    assert "billing" not in groups
    progress = ran.reports.progress()
    assert progress.records == RECORDS
    assert 0 < progress.max_batch <= TRIAL_BATCH
    assert progress.polls >= RECORDS // TRIAL_BATCH
    assert progress.in_poll_s > 0
    assert (progress.created, progress.closed) == (1, 1)
    (created,) = ran.reports.created
    assert (created.group_id, created.topic) == (group, topic)
    assert [p.partitions for p in ran.reports.polled.values()] == [2]


SETTINGS: dict[str, SettingValue] = {"max.poll.records": TRIAL_BATCH, "fetch.max.wait.ms": 100}


@pytest.mark.integration
@pytest.mark.parametrize(
    ("script", "client", "passed"),
    [("billing_kafka_python.py", "kafka-python", [("poll", {"max_records": 100})]),
     ("billing_aiokafka.py", "aiokafka", [("getmany", {"max_records": 100})]),
     ("billing_aiokafka_iter.py", "aiokafka", [])],
)  # fmt: skip
def test_a_service_runs_in_the_trials_group_on_its_topic_with_its_batch_size(
    tmp_path: Path,
    bootstrap_servers: str,
    script: str,
    client: str,
    passed: list[tuple[str, dict[str, object]]],
) -> None:
    """A kafka-python poll loop's, an aiokafka getmany loop's and an `async for` loop's own
    cluster, group "billing", topic "orders" and `max_records=100` are replaced by the trial's
    (`_ran_in_the_trial`), and the parent reads what the service passed."""
    ran, topic, group = asyncio.run(
        _run_service(tmp_path, bootstrap_servers, script, settings=SETTINGS)
    )
    _ran_in_the_trial(ran, bootstrap_servers, group, topic)
    (created,) = ran.reports.created
    assert created.client == client
    assert created.passed["topics"] == ["orders"]
    kwargs = created.passed["kwargs"]
    assert isinstance(kwargs, dict)
    assert (kwargs["group_id"], kwargs["bootstrap_servers"]) == (
        "billing", "kafka.billing.internal:9092",
    )  # fmt: skip
    assert [(p.call, dict(p.arguments)) for p in ran.reports.passed] == passed


@pytest.mark.integration
def test_a_confluent_kafka_service_runs_in_the_trials_group_with_its_batch_size(
    tmp_path: Path, bootstrap_servers: str
) -> None:
    """A confluent-kafka consume loop's conf (group.id "billing") and subscription to "orders"
    are replaced, and its `consume(num_messages=100)` hands out the trial's batch."""
    ran, topic, group = asyncio.run(
        _run_service(tmp_path, bootstrap_servers, "billing_confluent.py", settings=SETTINGS)
    )
    _ran_in_the_trial(ran, bootstrap_servers, group, topic)
    (created,) = ran.reports.created
    assert created.client == "confluent-kafka"
    conf = created.passed["conf"]
    assert isinstance(conf, dict)
    assert conf["group.id"] == "billing"
    assert [(p.call, dict(p.arguments)) for p in ran.reports.passed] == [
        ("consume", {"num_messages": 100})
    ]


@pytest.mark.integration
@pytest.mark.parametrize(("mode", "named"), [("topics", "'payments'"), ("pattern", "'^orders.*'")])
def test_a_service_that_reads_another_topic_is_stopped_naming_it(
    tmp_path: Path, bootstrap_servers: str, mode: str, named: str
) -> None:
    """A subscription to a topic besides `service.topic`, or to a pattern, ends the service
    with REFUSED_EXIT and the topic or pattern named on stderr and in the report."""
    ran = _refused(
        tmp_path, bootstrap_servers, "other_topics.py", {"BILLING_SUBSCRIBE": mode}, named
    )
    assert ran.committed == {}


def _refused(
    tmp_path: Path, bootstrap_servers: str, script: str, env: Mapping[str, str], named: str
) -> Ran:
    """Run `script`, which the bootstrap must stop with REFUSED_EXIT and `named` on stderr
    and in its `refused` report."""
    ran, _, _ = asyncio.run(
        _run_service(tmp_path, bootstrap_servers, script, settings={}, env=env, records=1)
    )
    assert ran.returncode == REFUSED_EXIT, ran.stderr
    assert named in ran.stderr
    (refused,) = ran.reports.refused
    assert named in refused.message
    return ran


@pytest.mark.integration
@pytest.mark.parametrize(
    ("write", "named"),
    [("aiokafka-produce", "produces to 'invoices' in AIOKafkaProducer.send()"),
     ("aiokafka-create", "creates the topic 'invoices' in AIOKafkaAdminClient.create_topics()"),
     ("confluent-produce", "produces to 'invoices' in Producer.produce()"),
     ("confluent-create", "creates the topic 'invoices' in AdminClient.create_topics()"),
     ("confluent-delete", "calls AdminClient.delete_topics()"),
     ("kafka-python-produce", "produces to 'invoices' in KafkaProducer.send()")],
)  # fmt: skip
def test_a_service_that_writes_to_the_cluster_is_stopped_naming_what(
    tmp_path: Path, bootstrap_servers: str, write: str, named: str
) -> None:
    """A record produced, a topic created or deleted, with any client's producer or admin
    client: the service ends with REFUSED_EXIT and the call named, and nothing was written
    (the clients were on the trial's cluster, not the service's own, which does not exist)."""
    _refused(tmp_path, bootstrap_servers, "writes.py", {"BILLING_WRITE": write}, named)
    assert not topic_exists(bootstrap_servers, "invoices")


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_the_bootstrap_imports_only_the_standard_library() -> None:
    """Every module of the bootstrap imports the standard library or the bootstrap itself:
    it runs in the service's interpreter, where neither the tuner nor its packages exist."""
    files = sorted(BOOTSTRAP_DIR.rglob("*.py"))
    assert len(files) >= 5
    foreign = {
        f"{path.relative_to(BOOTSTRAP_DIR)}: {name}"
        for path in files
        for name in _imports(path) - {"_tuner_bootstrap", "__future__"}
        if name not in sys.stdlib_module_names
    }
    assert foreign == set()


def _constant(path: Path, name: str) -> object:
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == name:
            return ast.literal_eval(node.value)
    raise AssertionError(f"{name} not in {path}")


def test_the_bootstrap_and_the_tuner_agree_on_the_variable_and_the_exit_codes() -> None:
    """The plan's variable and the refusal's exit code are spelt once on each side."""
    site, plan = BOOTSTRAP_DIR / "sitecustomize.py", BOOTSTRAP_DIR / "_tuner_bootstrap/plan.py"
    assert _constant(site, "PLAN_ENV") == PLAN_ENV
    assert _constant(site, "BROKEN_EXIT") == REFUSED_EXIT
    assert _constant(plan, "REFUSED_EXIT") == REFUSED_EXIT


def test_the_bootstrap_chains_to_the_environments_own_sitecustomize(tmp_path: Path) -> None:
    """Without a plan the bootstrap does nothing but run the next `sitecustomize` on the path
    (the service's environment's own); a plan it cannot read stops the process."""
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.stderr.write('theirs ran\\n')\n")
    service = ServiceSpec(command=(sys.executable,), topic="orders")
    env = child_environment(service, tmp_path / "plan.json", {"PYTHONPATH": str(tmp_path)})
    del env[PLAN_ENV]
    code = "import sys; print(sys.modules['sitecustomize'].__file__)"
    ran = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert ran.stdout.strip() == str(BOOTSTRAP_DIR / "sitecustomize.py")
    assert ran.stderr == "theirs ran\n"
    env[PLAN_ENV] = str(tmp_path / "missing.json")
    ran = subprocess.run([sys.executable, "-c", "print('ran')"], env=env, capture_output=True,
                         text=True, check=False)  # fmt: skip
    assert ran.returncode == REFUSED_EXIT
    assert ran.stdout == ""
    assert "missing.json" in ran.stderr


def test_the_plan_holds_each_clients_configuration_of_the_settings(tmp_path: Path) -> None:
    """aiokafka and kafka-python get keyword arguments (an assignor as classes to import),
    confluent-kafka librdkafka's properties; a librdkafka-only setting only there."""
    service = ServiceSpec(command=("x",), topic="orders")
    settings: dict[str, SettingValue] = {
        "max.poll.records": 7, "partition.assignment.strategy": "range",
        "queued.min.messages": 1000,
    }  # fmt: skip
    path = write_plan(tmp_path / "p.json", service=service, bootstrap_servers="b:1",
                      group_id="g", topic="t", settings=settings, report_fd=None)  # fmt: skip
    plan = json.loads(path.read_text())
    assert (plan["service_topic"], plan["trial_topic"], plan["max_records"]) == ("orders", "t", 7)
    clients = plan["clients"]
    assert clients["aiokafka"]["max_poll_records"] == 7
    assert clients["aiokafka"]["partition_assignment_strategy"] == {
        "classes": ["aiokafka.coordinator.assignors.range:RangePartitionAssignor"]
    }
    assert clients["kafka-python"]["partition_assignment_strategy"] == {
        "classes": ["kafka.coordinator.assignors.range:RangePartitionAssignor"]
    }
    assert "queued_min_messages" not in clients["kafka-python"]
    assert clients["confluent-kafka"]["queued.min.messages"] == 1000
    assert clients["confluent-kafka"]["partition.assignment.strategy"] == "range"


def _polls(pid: int, consumer: int, records: int, last_return: float, gap: float) -> str:
    return json.dumps({
        "kind": "polls", "pid": pid, "consumer": consumer, "at": last_return, "polls": 3,
        "records": records, "in_poll_s": 0.5, "between_s": 0.25, "max_batch": records,
        "last_start": last_return - 0.1, "last_return": last_return, "last_gap_s": gap,
    })  # fmt: skip


def test_the_latest_counters_of_each_consumer_add_up_and_a_stuck_service_shows_its_gap() -> None:
    """A later line of a consumer replaces its earlier one (counters are cumulative); two
    consumers (one per process of a forking service) add up; the gap since the last poll is
    open until the next report, and the last gap is the consumer's that polled last."""
    reports = ServiceReports()
    for line in (_polls(1, 0, 10, 100.0, 0.5), _polls(1, 0, 30, 101.0, 0.25),
                 _polls(2, 0, 5, 100.5, 2.0)):  # fmt: skip
        reports.add(parse_report(line))
    progress = reports.progress()
    assert (progress.records, progress.polls, progress.max_batch) == (35, 6, 30)
    assert (progress.in_poll_s, progress.between_s) == (1.0, 0.5)
    assert (progress.last_return, progress.last_gap_s) == (101.0, 0.25)
    assert progress.open_gap_s(now=104.0) == 3.0


@pytest.mark.parametrize("line", ['{"kind": "polls", "pid": 1}', "Traceback (", '{"kind": "x"}'])
def test_a_line_that_is_no_report_is_an_error_that_quotes_it(line: str) -> None:
    """A truncated report, a stray print on the pipe and an unknown kind each raise
    `ReportError` with the line in its message."""
    with pytest.raises(ReportError, match="not a service report") as caught:
        parse_report(line)
    assert line[:10] in str(caught.value)


def test_the_reports_go_only_to_the_pipe_the_tuner_gave(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process that holds another file under the plan's `report_fd` (a worker started by
    spawn, which inherits no pipe) reports nothing rather than write into that file."""
    spec = importlib.util.spec_from_file_location(
        "_tuner_bootstrap_plan", BOOTSTRAP_DIR / "_tuner_bootstrap" / "plan.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclass looks itself up
    spec.loader.exec_module(module)
    read_fd, write_fd = report_pipe()
    service = ServiceSpec(command=("x",), topic="orders")
    path = write_plan(tmp_path / "p.json", service=service, bootstrap_servers="b:1",
                      group_id="g", topic="t", settings={}, report_fd=write_fd)  # fmt: skip
    try:
        assert module.load(str(path)).report_pipe() == write_fd
        with (tmp_path / "other").open("w") as other:
            os.dup2(other.fileno(), write_fd)  # the number now names another file
            assert module.load(str(path)).report_pipe() is None
    finally:
        os.close(read_fd)
        os.close(write_fd)
