"""The Grafana dashboards, provisioning and compose file; every panel query run by a real
Prometheus against a live `tuner optimize` with Locust load."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import (
    CONFIGS,
    Prometheus,
    grafana_substitute,
    has_finite_data,
    running_prometheus,
    slow_records,
    small_spec,
    unique,
)
from tuner.advice.serve import DEFAULT_PORT as ADVICE_PORT
from tuner.broker import free_port
from tuner.config import load_config
from tuner.metrics import JAVA_MAPPINGS
from tuner.search.events import TrialEvent
from tuner.search.optimize import optimize

ROOT = Path(__file__).resolve().parents[1]
DASHBOARDS = ROOT / "grafana" / "dashboards"
ARTIFACTS = ROOT / "test-artifacts"


def _dashboard(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DASHBOARDS / name).read_text())  # JSON is YAML
    return loaded


def _targets(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(panel title, PromQL) of every query of every panel."""
    for panel in dashboard["panels"]:
        for target in panel.get("targets", ()):
            yield panel["title"], target["expr"]


def _variables(dashboard: dict[str, Any]) -> dict[str, str]:
    return {
        v["name"]: v["query"]["query"]
        for v in dashboard["templating"]["list"]
        if v["type"] == "query"
    }


def test_checked_in_json_is_what_the_generator_writes() -> None:
    """Dashboards are code: `grafana/build.py --check` finds nothing to regenerate."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "grafana" / "build.py"), "--check"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_consumer_dashboard_rows_and_variables() -> None:
    """Rows in the order the issue gives, variables for group, member and topic, and the
    configured limits drawn beside what they limit."""
    board = _dashboard("consumer-tuning.json")
    rows = [p["title"] for p in board["panels"] if p["type"] == "row"]
    assert rows == ["Overview", "Fetch", "Poll", "Group", "Producer (Locust)"]
    assert set(_variables(board)) == {"group", "member", "topic"}
    exprs = dict(_targets(board))
    assert "tuner_consumer_fetch_max_wait_seconds" in exprs["Fetch latency"]
    assert "tuner_consumer_max_poll_interval_seconds" in " ".join(
        e for t, e in _targets(board) if t.startswith("Time between polls")
    )
    assert board["annotations"]["list"][0]["expr"].startswith("changes(tuner_trial_number")


def test_compose_file_validates() -> None:
    """docker-compose.yml parses, every mounted file exists, host ports are distinct, and its
    Prometheus config keeps the jobs and rules of configs/prometheus.yml (not started here:
    there is no Docker engine in CI)."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"kafka", "prometheus", "grafana"}
    host_ports = []
    for name, service in services.items():
        for volume in service.get("volumes", ()):
            source = volume.split(":")[0]
            assert (ROOT / source).exists(), f"{name}: {source} does not exist"
        host_ports += [int(p.split(":")[0]) for p in service.get("ports", ())]
    spec = load_config(CONFIGS / "compose.yaml")
    host_ports += [spec.metrics.port, spec.metrics.producer_port]
    assert len(host_ports) == len(set(host_ports)), host_ports
    assert spec.cluster.bootstrap_servers == "localhost:" + services["kafka"]["ports"][0][:4]
    assert spec.metrics.host == "0.0.0.0"  # noqa: S104 - the container must reach it

    ours = yaml.safe_load((CONFIGS / "prometheus-compose.yml").read_text())
    base = yaml.safe_load((CONFIGS / "prometheus.yml").read_text())
    assert ours["rule_files"] == base["rule_files"]
    assert [j["job_name"] for j in ours["scrape_configs"]] == [
        j["job_name"] for j in base["scrape_configs"]
    ]
    targets = [t for j in ours["scrape_configs"] for t in j["static_configs"][0]["targets"]]
    assert targets == [
        f"host.docker.internal:{spec.metrics.port}",
        f"host.docker.internal:{spec.metrics.producer_port}",
        f"host.docker.internal:{ADVICE_PORT}",
    ]
    check = subprocess.run(
        ["promtool", "check", "config", "prometheus-compose.yml"],
        cwd=CONFIGS, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr

    provisioning = ROOT / "grafana" / "provisioning"
    source = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    url = source["datasources"][0]["url"]
    assert url == f"http://prometheus:{services['prometheus']['ports'][0].split(':')[1]}"
    provider = yaml.safe_load((provisioning / "dashboards" / "kafka-tuner.yml").read_text())
    mounts = dict(v.split(":")[:2] for v in services["grafana"]["volumes"])
    assert mounts["./grafana/dashboards"] == provider["providers"][0]["options"]["path"]
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"


@pytest.mark.e2e
@pytest.mark.integration
def test_every_panel_query_returns_data_from_a_live_study(
    bootstrap_servers: str, tmp_path: Path
) -> None:
    """A two-trial study (one healthy grid point, one whose batches overrun
    max.poll.interval.ms) with Locust load, scraped by a real Prometheus: every variable,
    annotation and panel query of both dashboards, every rule and every Java-compatible name
    returns finite data. Also draws the README picture from those same queries."""
    port, producer_port = free_port(), free_port()
    study_name = unique("grafana").replace(".", "-")
    spec = small_spec(
        "grafana",
        cluster={"bootstrap_servers": bootstrap_servers},
        workload={"prefill_records": 20000, "producer": {"users": 1, "rate_per_user": 2000}},
        consumer=slow_records(),
        trial={"warmup_s": 1, "measure_s": 10},
        metrics={"port": port, "producer_port": producer_port, "java_compatible": True},
        search={
            "trials": 2, "sampler": "grid", "seed": 1, "pruner": "none",
            "parameters": {"max.poll.records": {"choices": [5, 500]}},
        },
        study={"name": study_name},
    )  # fmt: skip

    def let_prometheus_scrape(_: TrialEvent) -> None:
        time.sleep(2.5)  # the exporter closes with the study: two scrapes of the last values

    with running_prometheus(tmp_path, {"tuner": port, "locust-producer": producer_port}) as prom:
        start = time.time()
        outcome = optimize(spec, out_dir=tmp_path / "out", on_trial=let_prometheus_scrape)
        end = time.time() + 1
        assert outcome.best is not None  # the healthy grid point is feasible
        _check_dashboards(prom, start, end, study_name)
        _check_rules_and_java_names(prom, start, end)


def _check_dashboards(prom: Prometheus, start: float, end: float, study: str) -> None:
    answers: dict[str, dict[str, Any]] = {}
    for name in ("consumer-tuning.json", "study.json"):
        board = _dashboard(name)
        values: dict[str, str] = {"study": study}
        for variable, query in _variables(board).items():
            metric, label = re.fullmatch(r"label_values\((.*), (\w+)\)", query).groups()  # type: ignore[union-attr]
            found = prom.label_values(label, grafana_substitute(metric, values), start, end)
            assert found, f"{name}: variable {variable} has no values"
            if variable != "study":
                # as Grafana sends a multi-value: a regex, its backslashes escaped for PromQL
                values[variable] = "(" + "|".join(re.escape(v) for v in found) + ")"
                values[variable] = values[variable].replace("\\", "\\\\")
        for annotation in board["annotations"]["list"]:
            answer = prom.query_range(grafana_substitute(annotation["expr"], values), start, end)
            assert answer["data"]["result"], f"{name}: annotation {annotation['name']}: no data"
        for title, expr in _targets(board):
            answer = prom.query_range(grafana_substitute(expr, values), start, end)
            assert answer["status"] == "success", (title, expr)
            assert has_finite_data(answer), f"{name}: panel {title!r}: no data for {expr}"
            answers[expr] = answer
    _draw(answers, _dashboard("consumer-tuning.json"), start, ARTIFACTS / "consumer-dashboard.png")


def _check_rules_and_java_names(prom: Prometheus, start: float, end: float) -> None:
    groups = yaml.safe_load((CONFIGS / "alerts.yml").read_text())["groups"]
    for rule in (r for g in groups for r in g["rules"]):
        assert prom.query_range(rule["expr"], start, end)["status"] == "success", rule
    for mapping in JAVA_MAPPINGS:
        answer = prom.query_range(mapping.name, start, end)
        assert has_finite_data(answer), f"no data for {mapping.name}"
        assert all("client_id" in s["metric"] for s in answer["data"]["result"])


def _draw(
    answers: dict[str, dict[str, Any]], board: dict[str, Any], start: float, path: Path
) -> None:
    """The key consumer panels as a PNG, from the PromQL results above (no Grafana here)."""
    import matplotlib  # noqa: PLC0415 - only this test draws

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    wanted = [
        "Records/s consumed vs produced", "Rebalances", "Fetch latency",
        "Time between polls: max vs max.poll.interval.ms", "Records per poll",
        "Assigned partitions per member",
    ]  # fmt: skip
    panels = {p["title"]: p for p in board["panels"] if p["title"] in wanted}
    figure, axes = plt.subplots(2, 3, figsize=(15, 7))
    for ax, title in zip(axes.flat, wanted, strict=True):
        for target in panels[title]["targets"]:
            for series in answers[target["expr"]]["data"]["result"]:
                xs = [float(t) - start for t, _ in series["values"]]
                ys = [float(v) for _, v in series["values"]]
                label = _legend(target["legendFormat"], series["metric"])
                dashed = label in ("fetch.max.wait.ms", "max.poll.interval.ms")
                ax.plot(xs, ys, label=label, linestyle="--" if dashed else "-",
                        color="red" if dashed else None)  # fmt: skip
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("seconds", fontsize=8)
        ax.legend(fontsize=7)
    figure.suptitle(
        "Kafka consumer tuning dashboard, drawn with matplotlib from its own PromQL queries over "
        "a two-trial tuner optimize run (a real Prometheus; not a Grafana screenshot)",
        fontsize=10,
    )
    figure.tight_layout()
    path.parent.mkdir(exist_ok=True)
    figure.savefig(path, dpi=80)
    plt.close(figure)


def _legend(template: str, labels: dict[str, str]) -> str:
    """Grafana's `{{label}}` legend format."""
    return re.sub(r"\{\{(\w+)\}\}", lambda m: labels.get(m[1], ""), template)
