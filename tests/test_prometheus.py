"""The shipped Prometheus config and rules, checked by promtool and run by a real Prometheus."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from tests.helpers import (
    CONFIGS,
    Prometheus,
    grafana_substitute,
    grafana_value,
    has_finite_data,
    running_prometheus,
    slow_records,
    small_spec,
    trial,
)
from tuner import metrics
from tuner.broker import free_port
from tuner.metrics import APP_INFO
from tuner.trial.measure import run_standalone


def test_promtool_accepts_config_and_rules() -> None:
    """`promtool check config` (which loads the rules too) and `check rules` pass."""
    for args in (["check", "config", "prometheus.yml"], ["check", "rules", "alerts.yml"]):
        done = subprocess.run(
            ["promtool", *args], cwd=CONFIGS, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def exporter() -> Iterator[tuple[CollectorRegistry, int]]:
    """The tuner's exporter on a free port, as `tuner run` serves it."""
    registry = CollectorRegistry()
    with metrics.serve(registry, host="127.0.0.1", port=0) as port:
        yield registry, port


@pytest.fixture
def prometheus(tmp_path: Path, exporter: tuple[CollectorRegistry, int]) -> Iterator[Prometheus]:
    """Debian's Prometheus with our rules, scraping the exporter every second."""
    with running_prometheus(tmp_path, {"tuner": exporter[1]}) as server:
        yield server


def _rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((CONFIGS / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


@pytest.mark.e2e
@pytest.mark.integration
def test_rules_evaluate_and_rebalance_alert_fires(
    bootstrap_servers: str,
    exporter: tuple[CollectorRegistry, int],
    prometheus: Prometheus,
) -> None:
    """During a run whose batches overrun max.poll.interval.ms, every rule parses, the
    recording rule has data, and KafkaConsumerRebalancing fires."""
    spec = small_spec(
        "promrebalance",
        consumer=slow_records(500),
        trial={"warmup_s": 1, "measure_s": 10},
    )
    seen: dict[str, Any] = {"firing": set(), "exprs": {}}

    async def watch() -> None:
        while True:
            await asyncio.sleep(1)
            seen["firing"] |= await asyncio.to_thread(prometheus.firing)
            for rule in _rules():
                result = await asyncio.to_thread(prometheus.query, rule["expr"])
                if result["data"]["result"] or rule["expr"] not in seen["exprs"]:
                    seen["exprs"][rule["expr"]] = result

    result = trial(spec, bootstrap_servers, exporter[0], alongside=watch)
    assert result.rebalances > 0
    for expr, answer in seen["exprs"].items():
        assert answer["status"] == "success", expr
    recording = next(r for r in _rules() if "record" in r)
    assert seen["exprs"][recording["expr"]]["data"]["result"], "no data for the recording rule"
    # A rebalance late in the window is scraped and evaluated after the run: the exporter
    # still serves the run's counters, so give Prometheus a few of its 1 s rounds.
    deadline = time.monotonic() + 10
    while "KafkaConsumerRebalancing" not in seen["firing"] and time.monotonic() < deadline:
        time.sleep(1)
        seen["firing"] |= prometheus.firing()
    assert "KafkaConsumerRebalancing" in seen["firing"]


@pytest.mark.e2e
@pytest.mark.integration
def test_healthy_run_fires_no_rebalance_alert(
    bootstrap_servers: str,
    exporter: tuple[CollectorRegistry, int],
    prometheus: Prometheus,
) -> None:
    """Small batches well inside max.poll.interval.ms: the rebalance alert stays silent."""
    spec = small_spec(
        "promhealthy",
        consumer={
            "members": 1,
            "processing": {"per_record_ms": 1},
            "settings": {"max.poll.records": 50},
        },
        trial={"warmup_s": 1, "measure_s": 8},
    )
    firing: set[str] = set()
    samples: list[Any] = []

    async def watch() -> None:
        while True:
            await asyncio.sleep(1)
            firing.update(await asyncio.to_thread(prometheus.firing))
            samples.append(
                await asyncio.to_thread(prometheus.query, "tuner_consumer_rebalances_total")
            )

    result = trial(spec, bootstrap_servers, exporter[0], alongside=watch)
    assert result.rebalances == 0
    assert any(s["data"]["result"] for s in samples), "Prometheus never scraped the consumer"
    assert "KafkaConsumerRebalancing" not in firing


# --- dashboards written for the Java client ------------------------------------------------
# The client-side panels of Confluent's "Kafka Consumer" dashboard (confluentinc/
# jmx-monitoring-stacks, jmxexporter-prometheus-grafana/.../dashboards/kafka-consumer.json, at
# 2081c529), as PromQL with that dashboard's variables. Written out here (the dashboard is not
# part of this project); rows "System" (JVM) and "Consumer Lag" (Confluent Server's
# broker-side metric) are not a Python client's to fill.
_BY = 'client_id=~"$client_id", env="$env", instance=~"$instance"'
_BY_POLL = 'client_id=~"$client_id", env="$env", instance="$instance"'  # `=`, as it has
_FETCH = "kafka_consumer_consumer_fetch_manager_metrics_"
_COORD = "kafka_consumer_consumer_coordinator_metrics_"
_CONSUMER = "kafka_consumer_consumer_metrics_"
JAVA_DASHBOARD_PANELS = (
    ("Commit rate (stat)", f"{_COORD}commit_rate{{{_BY}}}"),
    ("Average fetch throttle time", f"{_FETCH}fetch_throttle_time_avg{{{_BY}}}"),
    ("Failed auth rate", f"{_CONSUMER}failed_authentication_rate{{{_BY}}}"),
    (
        "Rebalance rate per hour",
        f"{_COORD}rebalance_rate_per_hour{{{_BY}}}"
        f" + {_COORD}failed_rebalance_rate_per_hour{{{_BY}}}",
    ),
    (
        "Bytes consumed rate",
        f'rate({_FETCH}bytes_consumed_total{{topic=~"$topic", {_BY}}}[$__rate_interval])',
    ),
    (
        "Rate of records consumed",
        f'rate({_FETCH}records_consumed_total{{topic=~"$topic", {_BY}}}[$__rate_interval])',
    ),
    (
        "Bytes consumed rate per topic",
        f'sum(rate({_FETCH}bytes_consumed_total{{topic!="", {_BY}}}[$__rate_interval])) by (topic)',
    ),
    (
        "Rate of records consumed per topic",
        f"sum by (topic) "
        f'(rate({_FETCH}records_consumed_total{{topic!="", {_BY}}}[$__rate_interval]))',
    ),
    ("Fetch request rate", f"rate({_FETCH}fetch_total{{{_BY}}}[$__rate_interval])"),
    ("Fetch size avg", f'{_FETCH}fetch_size_avg{{topic=~"$topic", {_BY}}}'),
    ("Fetch latency average", f"{_FETCH}fetch_latency_avg{{{_BY}}}"),
    ("Fetch latency max", f"{_FETCH}fetch_latency_max{{{_BY}}}"),
    ("Average time between poll()", f"{_CONSUMER}time_between_poll_avg{{{_BY_POLL}}}"),
    ("Max time between poll()", f"{_CONSUMER}time_between_poll_max{{{_BY_POLL}}}"),
    ("Last poll() seconds ago", f"{_CONSUMER}last_poll_seconds_ago{{{_BY_POLL}}}"),
    ("Average ratio poll idle", f"{_CONSUMER}poll_idle_ratio_avg{{{_BY_POLL}}}"),
    ("Commit latency average", f"{_COORD}commit_latency_avg{{{_BY}}}"),
    ("Commit rate", f"{_COORD}commit_rate{{{_BY}}}"),
    ("Current connection count", f"{_CONSUMER}connection_count{{{_BY}}}"),
    ("Node response rate", f"kafka_consumer_consumer_node_metrics_response_rate{{{_BY}}}"),
)
JAVA_RUN_CONSUMER = {
    "members": 2,
    "processing": {"per_record_ms": 1},
    "settings": {"max.poll.records": 100},
}
"""The group the Java-dashboard tests run: two members, 1 ms records, 100 per poll."""
EXPORTER_1X_NAMES = {  # JMX exporter 1.x drops `_total` from gauges and `_info` from app-info
    f"{_FETCH}bytes_consumed_total{{": f"{_FETCH}bytes_consumed{{",
    f"{_FETCH}records_consumed_total{{": f"{_FETCH}records_consumed{{",
    f"{_FETCH}fetch_total{{": f"{_FETCH}fetch{{",
}


@pytest.mark.e2e
@pytest.mark.integration
def test_confluent_java_consumer_dashboard_panels_have_data(
    bootstrap_servers: str, tmp_path: Path
) -> None:
    """A live `tuner run` with java_compatible: true, scraped by a real Prometheus with our
    job config: the dashboard's variables list the members (app-info under both exporter
    generations, query_result by client_id too), and each of its client-side panels returns
    data with the variables resolved as Grafana resolves them, under exporter 0.x and 1.x
    names; the Java per-topic count agrees with the tuner's own."""
    port = free_port()
    spec = small_spec(
        "javadash",
        cluster={"bootstrap_servers": bootstrap_servers},
        consumer=JAVA_RUN_CONSUMER,
        trial={"warmup_s": 1, "measure_s": 7},
        metrics={"port": port, "java_compatible": True},
    )
    with running_prometheus(tmp_path, {"tuner": port}) as prom:
        start = time.time()
        run_standalone(spec)
        end = time.time()
        for app_info in APP_INFO:
            client_ids = prom.label_values("client_id", app_info, start, end)
            assert len(client_ids) == 2, (app_info, client_ids)
            by_client = prom.query_range(f"count({app_info}) by (client_id)", start, end)
            assert {s["metric"]["client_id"] for s in by_client["data"]["result"]} == set(
                client_ids
            )
        variables = _dashboard_variables(prom, client_ids, start, end)
        for title, expr_0x in JAVA_DASHBOARD_PANELS:
            expr_1x = expr_0x
            for old, new in EXPORTER_1X_NAMES.items():
                expr_1x = expr_1x.replace(old, new)
            for expr in (grafana_substitute(e, variables) for e in (expr_0x, expr_1x)):
                assert has_finite_data(prom.query_range(expr, start, end)), f"{title}: {expr}"
        per_topic = grafana_substitute(
            dict(JAVA_DASHBOARD_PANELS)["Rate of records consumed per topic"], variables
        )
        topics = [
            s["metric"]["topic"] for s in prom.query_range(per_topic, start, end)["data"]["result"]
        ]
        assert topics == [spec.topic.name.replace(".", "_")]
        java_total = f'sum({_FETCH}records_consumed_total{{topic!=""}})'
        tuner_total = "sum(tuner_consumer_records_consumed_total)"
        java, tuner = (_series(prom, e, start, end) for e in (java_total, tuner_total))
        last = max(java.keys() & tuner.keys())  # the same scrape serves both names
        # Both read the members' counts in one scrape, a moment apart; the batch in flight is
        # credited pro rata, so they differ by less than one batch (100 records) per member.
        assert abs(java[last] - tuner[last]) < 2 * 100
        assert tuner[last] > 0


def _dashboard_variables(
    prom: Prometheus, client_ids: list[str], start: float, end: float
) -> dict[str, str]:
    """The dashboard's variables, resolved as Grafana resolves them ("All" selected)."""
    return {
        "env": grafana_value(prom.label_values("env", '{env!=""}', start, end)),
        "client_id": grafana_value(client_ids),
        "instance": grafana_value(prom.label_values("instance", APP_INFO[0], start, end)),
        "topic": grafana_value(prom.label_values("topic", '{topic!=""}', start, end)),
    }


@pytest.mark.e2e
@pytest.mark.integration
def test_a_late_prometheus_has_every_java_rate_from_its_first_scrape(
    bootstrap_servers: str, tmp_path: Path
) -> None:
    """A Prometheus that starts scraping a `java_compatible` run mid-way (an HA pair's second
    server, a restarted one) gets, at its first scrape of each member, every Java rate of
    the member and data in each Confluent dashboard panel that reads the client's values
    directly (the five that wrap a total in PromQL's rate() need two scrapes of any
    exporter, and have data from its second): the exporter keeps its rates on its own
    clock, not between scrapes."""
    spec = small_spec(
        "javafirst",
        cluster={"bootstrap_servers": bootstrap_servers},
        consumer={
            **JAVA_RUN_CONSUMER,  # and commits every second, so some precede the first scrape
            "settings": {"max.poll.records": 100, "auto.commit.interval.ms": 1000},
        },
        trial={"warmup_s": 1, "measure_s": 12},  # Prometheus starts mid-way: time to scrape
    )
    registry = CollectorRegistry()
    with contextlib.ExitStack() as stack:
        port = stack.enter_context(
            metrics.serve(registry, host="127.0.0.1", port=0, java_compatible=True)
        )
        started: list[Prometheus] = []

        async def scrape_late() -> None:
            while not _all_committed(registry, members=2):  # noqa: ASYNC110 - counts in a registry; no event to await
                await asyncio.sleep(0.2)
            server = running_prometheus(tmp_path, {"tuner": port})
            started.append(await asyncio.to_thread(stack.enter_context, server))

        start = time.time()
        result = trial(spec, bootstrap_servers, registry, alongside=scrape_late)
        end = time.time()
        assert result.records_consumed > 0
        (prom,) = started
        client_ids = prom.label_values("client_id", APP_INFO[0], start, end)
        assert len(client_ids) == 2, client_ids
        variables = _dashboard_variables(prom, client_ids, start, end)
        direct = [(t, e) for t, e in JAVA_DASHBOARD_PANELS if "rate(" not in e]
        assert len(direct) == 15
        rates = [m.name for m in metrics.JAVA_MAPPINGS if "_rate" in m.name]
        for client_id in client_ids:
            raw = prom.query(f'{APP_INFO[0]}{{client_id="{client_id}"}}[5m]')
            times = sorted(float(t) for s in raw["data"]["result"] for t, _ in s["values"])
            assert len(times) >= 2, f"{client_id}: scraped {len(times)} time(s) during the run"
            first, second = times[:2]
            one = {**variables, "client_id": grafana_value([client_id])}
            for title, expr in direct:
                answer = prom.query_range(grafana_substitute(expr, one), first, first)
                assert has_finite_data(answer), f"{client_id} first scrape: {title}: {expr}"
            for title, expr in JAVA_DASHBOARD_PANELS:
                answer = prom.query_range(grafana_substitute(expr, one), second, second)
                assert has_finite_data(answer), f"{client_id} second scrape: {title}: {expr}"
            for name in rates:
                answer = prom.query_range(f'{name}{{client_id="{client_id}"}}', first, first)
                assert has_finite_data(answer), f"{client_id} first scrape: no {name}"


def _all_committed(registry: CollectorRegistry, *, members: int) -> bool:
    """Every member has fetched, consumed and committed: each average has something to say."""
    commits = [
        s.value
        for f in registry.collect()
        for s in f.samples
        if s.name == "tuner_consumer_commit_latency_seconds_count"
    ]
    return len(commits) == members and min(commits) > 0


def _series(prom: Prometheus, expr: str, start: float, end: float) -> dict[float, float]:
    """Timestamp → value of a one-series range query."""
    (series,) = prom.query_range(expr, start, end)["data"]["result"]
    return {float(t): float(v) for t, v in series["values"]}
