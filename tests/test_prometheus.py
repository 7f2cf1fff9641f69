"""The shipped Prometheus config and rules, checked by promtool and run by a real Prometheus."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from tests.helpers import CONFIGS, Prometheus, running_prometheus, slow_records, small_spec, trial
from tuner import metrics


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
