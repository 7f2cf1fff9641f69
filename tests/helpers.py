"""Small builders shared by the tests (not fixtures: plain functions with explicit inputs)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import math
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import optuna
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from optuna.samplers._gp.sampler import _get_constraint_vals_and_feasibility
from prometheus_client import CollectorRegistry

from tuner.advice import Finding, from_config, from_run, merge, rules
from tuner.broker import KAFKA_VERSION, free_port
from tuner.cluster.admin import Connection, ensure_topic
from tuner.config import ClusterSpec, StudySpec, TopicSpec, parse_config
from tuner.search import space
from tuner.search.study import RESULT_ATTR, SETTINGS_ATTR
from tuner.trial.run import (
    FetchStats,
    LatencyMs,
    Observer,
    OffsetCheck,
    PollStats,
    TrialResult,
    run_trial,
)


def unique(prefix: str) -> str:
    """A topic or group name no other test uses: `tuner.<prefix>.<random>`."""
    return f"tuner.{prefix}.{uuid.uuid4().hex[:8]}"


def empty_group(bootstrap_servers: str, group: str) -> None:
    """A classic group that committed an offset and whose one member left (on a topic of its
    own): what a killed run's group is once its members' sessions expired."""

    async def main() -> None:
        topic = unique("commits")
        conn = Connection(bootstrap_servers=bootstrap_servers, cluster=ClusterSpec())
        await ensure_topic(conn, TopicSpec(name=topic, partitions=1, create=True))
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers, group_id=group, enable_auto_commit=False
        )
        await consumer.start()
        try:
            consumer.assign([TopicPartition(topic, 0)])
            await consumer.commit({TopicPartition(topic, 0): 0})
        finally:
            await consumer.stop()

    asyncio.run(main())


async def cluster_groups(bootstrap_servers: str) -> set[str]:
    """Every consumer group on the cluster, whatever its name."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        return {g[0] for g in await admin.list_consumer_groups()}
    finally:
        await admin.close()


def one_trial_study(bootstrap_servers: str, topic: str, workload: str) -> str:
    """The YAML of the quickest whole study: one trial of one member, one ablation pair, one
    confirmation run; `workload` is the section's flow mapping."""
    return (
        f"cluster: {{bootstrap_servers: '{bootstrap_servers}'}}\n"
        f"topic: {{name: {topic}, partitions: 2}}\n"
        f"workload: {workload}\n"
        "consumer: {members: 1, processing: {per_record_ms: 0.5}}\n"
        "trial: {warmup_s: 0.5, measure_s: 2}\n"
        "metrics: {port: 0, producer_port: 0}\n"
        "search: {trials: 1, sampler: random, parameters: "
        "{max.poll.records: {low: 10, high: 1000, log: true}}}\n"
        "confirm: {repeats: 1, ablation_pairs: 1}\n"
        f"study: {{name: {unique('study')}}}\n"
    )


def small_spec(name: str, **sections: Any) -> StudySpec:
    """A quick trial: its own topic, 2 members, a small backlog, short windows."""
    data: dict[str, Any] = {
        "topic": {"name": unique(name), "partitions": 4},
        "workload": {"message_bytes": 200, "prefill_records": 20000},
        "consumer": {"members": 2},
        "trial": {"warmup_s": 1, "measure_s": 4},
        "metrics": {"port": 0, "producer_port": 0},
    }
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value}
    return parse_config(data)


def slow_records(max_poll_records: int | None = None) -> dict[str, Any]:
    """A `consumer` section of 10 ms records and a 2 s max.poll.interval.ms: 500 records per
    poll overrun it (the group rebalances), 20 stay well inside."""
    settings: dict[str, Any] = {"max.poll.interval.ms": 2000}
    if max_poll_records is not None:
        settings["max.poll.records"] = max_poll_records
    return {"processing": {"per_record_ms": 10}, "settings": settings}


def held_loop_trial(spec: StudySpec, bootstrap_servers: str) -> tuple[TrialResult, float]:
    """One trial of `spec` and the longest time a member's event loop was held in it (ms)."""
    result = trial(spec, bootstrap_servers)
    blocked = result.poll.loop_blocked_ms_max
    assert blocked is not None
    return result, blocked


def kt102_on_a_short_session(spec: StudySpec, result: TrialResult) -> Finding:
    """KT102 from the config and the run laid on it, against a 1 s session.timeout.ms."""
    facts = merge(from_config(spec), from_run(result))
    short = replace(facts, settings={**facts.settings, "session.timeout.ms": 1000})
    found = rules.loop_blocked_past_session(short)
    assert found is not None
    return found


def trial(
    spec: StudySpec,
    bootstrap_servers: str,
    registry: CollectorRegistry | None = None,
    *,
    alongside: Callable[[], Coroutine[Any, Any, None]] | None = None,
    observer: Observer | None = None,
) -> TrialResult:
    """Run one trial of `spec` with a fresh group id; `alongside` runs in the same loop,
    `observer` sees its phases."""

    async def main() -> TrialResult:
        run = run_trial(
            spec,
            bootstrap_servers=bootstrap_servers,
            settings=spec.consumer.settings,
            group_id=unique("group"),
            registry=registry or CollectorRegistry(),
            observer=observer,
        )
        if alongside is None:
            return await run
        async with asyncio.TaskGroup() as tasks:
            side = tasks.create_task(alongside())
            result = await run
            side.cancel()
        return result

    return asyncio.run(main())


async def trickle(bootstrap_servers: str, topic: str, *, per_s: float, after_s: float) -> None:
    """Produce one small record every 1/per_s seconds after `after_s`, until cancelled."""
    await asyncio.sleep(after_s)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, linger_ms=0)
    await producer.start()
    try:
        while True:
            await producer.send_and_wait(topic, b"t" * 100)
            await asyncio.sleep(1 / per_s)
    finally:
        await producer.stop()


def measured(
    records_per_s: float,
    *,
    rebalances: int = 0,
    backlog_emptied: bool = False,
    settings: Mapping[str, object] | None = None,
) -> TrialResult:
    """A trial result with these numbers (10 s window) and plain values elsewhere."""
    return TrialResult(
        group_id="g", settings=dict(settings or {}), window_s=10,  # type: ignore[arg-type]
        records_consumed=int(records_per_s * 10), throughput_records_per_s=records_per_s,
        throughput_mb_per_s=records_per_s / 1000, record_age_ms=LatencyMs(p50=1, p95=2, p99=3),
        rebalances=rebalances,
        fetch=FetchStats(requests=1, latency_ms_p50=None, latency_ms_p99=None,
                         records_per_fetch_avg=0, bytes_per_fetch_avg=0),
        poll=PollStats(interval_ms_max=None, idle_ratio=None), lag_max=0,
        backlog_emptied=backlog_emptied, errors=(),
        offsets=OffsetCheck(end_offsets_total=0, committed_total=0, consumed_total=0),
        kafka_version=KAFKA_VERSION,
    )  # fmt: skip


def synthetic_study(trials: int = 24, *, seed: int = 0, storage: str | None = None) -> optuna.Study:
    """An in-memory study of the default search space, told as `tuner optimize` tells it:
    throughput rises with max.poll.records and fetch.min.bytes; every fifth trial rebalances."""
    study = optuna.create_study(
        study_name="synthetic",
        storage=storage,
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed),
    )
    for i in range(trials):
        trial = study.ask()
        settings = space.suggest(trial, space.DEFAULT_SEARCH)
        rps = (
            1000.0 + int(settings["max.poll.records"]) * 3 + int(settings["fetch.min.bytes"]) / 500
        )
        result = measured(rps, rebalances=int(i % 5 == 4), settings=settings)
        trial.set_user_attr(SETTINGS_ATTR, settings)
        trial.set_constraint("rebalances", float(result.rebalances))
        trial.set_user_attr(RESULT_ATTR, result.to_dict())
        study.tell(trial, [rps])
    return study


CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def get_json(url: str) -> Any:
    """The JSON answer; a Prometheus error (bad PromQL) fails with Prometheus's own message."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback only
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"{urllib.parse.unquote(url)}: {exc.read().decode()}") from None


class Prometheus:
    """The HTTP API of a running Prometheus server."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"

    def query(self, expr: str) -> Any:
        return get_json(f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}")

    def query_range(self, expr: str, start: float, end: float, step: float = 1.0) -> Any:
        args = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
        return get_json(f"{self.url}/api/v1/query_range?{args}")

    def label_values(self, label: str, match: str, start: float, end: float) -> list[str]:
        args = urllib.parse.urlencode({"match[]": match, "start": start, "end": end})
        values: list[str] = get_json(f"{self.url}/api/v1/label/{label}/values?{args}")["data"]
        return values

    def firing(self) -> set[str]:
        alerts = get_json(f"{self.url}/api/v1/alerts")["data"]["alerts"]
        return {a["labels"]["alertname"] for a in alerts if a["state"] == "firing"}


def grafana_value(values: list[str]) -> str:
    """A multi-value variable with "All" selected, as Grafana's Prometheus datasource writes
    it into a query: each value regex-escaped (the backslash doubled for the PromQL string),
    several values as one alternation."""
    escaped = [re.sub(r"([$^*{}\[\]'+?.()|\\])", r"\\\\\1", v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def grafana_substitute(expr: str, values: Mapping[str, str]) -> str:
    """Grafana's part: the template variables' values, the rate interval, the interval."""
    expr = expr.replace("$__rate_interval", "4s").replace("$__interval", "2s")
    for name, value in values.items():
        expr = expr.replace(f"${name}", value)
    assert "$" not in expr, expr
    return expr


def has_finite_data(answer: Any) -> bool:
    """A range query's answer holds at least one finite value."""
    return any(
        math.isfinite(float(v)) for series in answer["data"]["result"] for _, v in series["values"]
    )


@contextlib.contextmanager
def running_prometheus(workdir: Path, jobs: Mapping[str, int]) -> Iterator[Prometheus]:
    """Debian's Prometheus with configs/prometheus.yml, its rules and its jobs (their labels
    too), each job scraping its port on 127.0.0.1 every second."""
    config = yaml.safe_load((CONFIGS / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    shipped = {job["job_name"]: job for job in config["scrape_configs"]}
    config["scrape_configs"] = [
        {
            **shipped.get(job, {}),
            "job_name": job,
            "static_configs": [
                {**static, "targets": [f"127.0.0.1:{port}"]}
                for static in shipped.get(job, {}).get("static_configs", [{}])[:1]
            ],
        }
        for job, port in jobs.items()
    ]
    shutil.copy(CONFIGS / "alerts.yml", workdir / "alerts.yml")
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    proc = subprocess.Popen(
        ["prometheus", f"--config.file={workdir / 'prometheus.yml'}",
         f"--storage.tsdb.path={workdir / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    server = Prometheus(port)
    try:
        for _ in range(100):
            try:  # 503 (an OSError here) until the TSDB is loaded and rules are ready
                with urllib.request.urlopen(f"{server.url}/-/ready", timeout=2):  # noqa: S310 - loopback only
                    break
            except OSError:
                time.sleep(0.2)
        yield server
    finally:
        proc.terminate()
        proc.wait(timeout=30)


Process = tuple[int, int]
"""(pid, start time in clock ticks): a pid the kernel reuses later is another process."""


def _stat(pid: int) -> tuple[int, str, int] | None:
    """(parent pid, state, start time) from /proc/PID/stat, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # the command name may hold spaces
    return int(fields[1]), fields[0], int(fields[19])


def descendants(pid: int) -> set[Process]:
    """Every process below `pid` right now: children, theirs, and so on."""
    parents: dict[int, list[Process]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            parents.setdefault(stat[0], []).append((int(entry.name), stat[2]))
    found: set[Process] = set()
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.add(child)
            todo.append(child[0])
    return found


def alive(procs: set[Process]) -> set[Process]:
    """Those still running: not gone, not a zombie, not a new process on a reused pid."""
    out = set()
    for pid, started in procs:
        stat = _stat(pid)
        if stat is not None and stat[2] == started and stat[1] != "Z":
            out.add((pid, started))
    return out


def wait_all_gone(procs: set[Process], timeout_s: float) -> set[Process]:
    """Wait until none of `procs` runs; returns those still running at the deadline."""
    deadline = time.monotonic() + timeout_s
    while (left := alive(procs)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def topic_exists(bootstrap_servers: str, topic: str) -> bool:
    async def listed() -> bool:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
        await admin.start()
        try:
            return topic in await admin.list_topics()
        finally:
            await admin.close()

    return asyncio.run(listed())


def cmdline(pid: int) -> str:
    """The process's command line, arguments joined by spaces ("" if it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def gp_constraint_check(study: optuna.Study) -> tuple[Any, Any]:
    """Optuna's own check of a study's constraints that GPSampler (`search.sampler: gp`) runs
    before it fits, importable without PyTorch: (values, feasible) per trial, or ValueError
    unless every trial was told the same constraint names. Optuna 5.1 dropped its `study`."""
    check: Any = _get_constraint_vals_and_feasibility
    if "study" in inspect.signature(check).parameters:
        return check(study, study.trials)  # type: ignore[no-any-return]
    return check(study.trials)  # type: ignore[no-any-return]


def gp_search_space(trials: list[optuna.trial.FrozenTrial]) -> set[str]:
    """The parameters GPSampler models (its intersection search space, pruned trials
    included, one-valued ones left out); any other is drawn at random, outside the model."""
    found = optuna.search_space.intersection_search_space(trials, include_pruned=True)
    return {name for name, distribution in found.items() if not distribution.single()}


def study_config(path: Path, bootstrap_servers: str, name: str, trials: int) -> Path:
    """A quick study's YAML: 1 member, a 5,000-record backlog, 2 s windows, random search."""
    path.write_text(
        f"cluster: {{bootstrap_servers: '{bootstrap_servers}'}}\n"
        f"topic: {{name: {unique(name)}, partitions: 2}}\n"
        "workload: {prefill_records: 5000, message_bytes: 100}\n"
        "consumer: {members: 1, processing: {per_record_ms: 1}}\n"
        "trial: {warmup_s: 0.5, measure_s: 2}\n"
        "metrics: {port: 0, producer_port: 0}\n"
        f"search: {{trials: {trials}, sampler: random, seed: 3, parameters: "
        "{max.poll.records: {low: 10, high: 1000, log: true}}}\n"
        "confirm: {repeats: 1}\n"
        f"study: {{name: {unique(name)}}}\n"
    )
    return path


def sigint_as_in_a_terminal() -> None:
    """For `Popen(preexec_fn=…)`: SIGINT back to its default in the child, as in a terminal. A
    shell that starts the test run as a background job ignores SIGINT, its children inherit
    that, and Python then installs no KeyboardInterrupt: a Ctrl-C test would measure the
    shell, not the tool."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def assert_stuck(result: TrialResult) -> None:
    """A member inside one batch all window: its open gap is the longest one, it was busy, and
    the lag comes from the broker's offsets (the members' readings are from before the batch)."""
    window_ms = result.window_s * 1000
    gap = result.poll.interval_ms_max
    assert gap is not None
    assert gap >= window_ms, result.poll
    assert result.poll.idle_ratio is not None
    assert result.poll.idle_ratio < 0.5, result.poll
    behind = result.offsets.end_offsets_total - result.offsets.committed_total
    partitions = result.work.partitions if result.work else 1
    assert result.lag_max >= behind / partitions > 0  # the one most behind: at least the mean
    assert result.lag_from_broker
    open_gap = result.poll.open_gap_ms_max
    assert open_gap is not None
    assert gap >= open_gap >= window_ms, result.poll
