"""Writes grafana/dashboards/*.json: the dashboards as code, the JSON checked in beside them.

Each panel is one line of `Panel(...)` below, so a query lives in one place and every dashboard
has the same shape; the tests regenerate the JSON (it must not change) and run every query of
the checked-in JSON through a real Prometheus. Run after editing:  python grafana/build.py
(`--check` only says whether the checked-in JSON is current).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OUT = Path(__file__).parent / "dashboards"
DS = {"type": "prometheus", "uid": "${datasource}"}

C = '{group=~"$group", member=~"$member"}'
"""The consumer panels' selector."""
T = '{group=~"$group", member=~"$member", topic=~"$topic"}'
RATE = "[$__rate_interval]"
S = '{study="$study"}'


@dataclass(frozen=True)
class Panel:
    title: str
    targets: tuple[tuple[str, str], ...]
    """(PromQL, legend) pairs."""
    unit: str = "short"
    kind: str = "timeseries"
    description: str = ""
    width: int = 8
    overrides: tuple[dict[str, Any], ...] = field(default=())


def dashed(series: str) -> dict[str, Any]:
    """Draw a series as a dashed red line: the configured limit a measurement is compared with."""
    return {
        "matcher": {"id": "byName", "options": series},
        "properties": [
            {"id": "color", "value": {"mode": "fixed", "fixedColor": "red"}},
            {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
        ],
    }


def quantile(q: float, histogram: str, by: str = "") -> str:
    keys = f"{by}, le" if by else "le"
    return f"histogram_quantile({q}, sum by ({keys}) (rate({histogram}_bucket{C}{RATE})))"


def per_event(histogram: str) -> str:
    """Average observed value per event over the interval (e.g. records per fetch)."""
    return f"sum(rate({histogram}_sum{C}{RATE})) / sum(rate({histogram}_count{C}{RATE}))"


CONSUMER_ROWS: tuple[tuple[str, tuple[Panel, ...]], ...] = (
    ("Overview", (
        Panel("Records/s consumed vs produced", (
            (f"sum(rate(tuner_consumer_records_consumed_total{T}{RATE}))", "consumed"),
            (f'sum(rate(tuner_producer_records_sent_total{{topic=~"$topic"}}{RATE}))',
             "produced (Locust)"),
        ), unit="ops"),
        Panel("Lag (records)", (
            (f"sum by (topic) (tuner_consumer_lag_records{T})", "{{topic}}"),
        )),
        Panel("Rebalances", (
            (f"sum by (member) (increase(tuner_consumer_rebalances_total{C}{RATE}))",
             "{{member}}"),
        ), description="Rebalances each member took part in after its first assignment."),
    )),
    ("Fetch", (
        Panel("Fetch requests/s", (
            (f"sum by (member) (rate(tuner_consumer_fetch_requests_total{C}{RATE}))",
             "{{member}}"),
        ), unit="reqps"),
        Panel("Fetch latency", (
            (quantile(0.5, "tuner_consumer_fetch_latency_seconds"), "p50"),
            (quantile(0.99, "tuner_consumer_fetch_latency_seconds"), "p99"),
            (f"max(tuner_consumer_fetch_max_wait_seconds{C})", "fetch.max.wait.ms"),
        ), unit="s", overrides=(dashed("fetch.max.wait.ms"),),
            description="A p99 on the dashed line with few records per fetch: starved fetches."),
        Panel("Records and bytes per fetch", (
            (per_event("tuner_consumer_fetch_records"), "records"),
            (per_event("tuner_consumer_fetch_bytes"), "bytes"),
        )),
    )),
    ("Poll", (
        Panel("Time between polls: max vs max.poll.interval.ms", (
            (f"max by (member) (tuner_consumer_poll_interval_max_seconds{C})", "{{member}}"),
            (f"max(tuner_consumer_max_poll_interval_seconds{C})", "max.poll.interval.ms"),
        ), unit="s", overrides=(dashed("max.poll.interval.ms"),),
            description="A member whose gap reaches the dashed line is dropped from the group."),
        Panel("Records per poll", ((per_event("tuner_consumer_poll_records"), "records"),)),
        Panel("Poll idle ratio", (
            (f"avg by (member) (tuner_consumer_poll_idle_ratio{C})", "{{member}}"),
        ), unit="percentunit", description="Near 1: waiting for records; near 0: busy."),
        Panel("Processing time per batch", (
            (quantile(0.5, "tuner_consumer_processing_seconds"), "p50"),
            (quantile(0.99, "tuner_consumer_processing_seconds"), "p99"),
        ), unit="s"),
        Panel("End-to-end latency", (
            (quantile(0.5, "tuner_consumer_e2e_latency_seconds"), "p50"),
            (quantile(0.99, "tuner_consumer_e2e_latency_seconds"), "p99"),
        ), unit="s", description="Record timestamp to processed. A group draining a backlog "
            "(a trial's capacity window) shows the records' age here, not a latency; the "
            "steady-state group (<group>.steady) shows the latency the settings cause."),
    )),
    ("Group", (
        Panel("Assigned partitions per member", (
            (f"sum by (member) (tuner_consumer_assigned_partitions{C})", "{{member}}"),
        )),
        Panel("Rebalance duration", (
            (quantile(0.5, "tuner_consumer_rebalance_duration_seconds"), "p50"),
            (quantile(0.99, "tuner_consumer_rebalance_duration_seconds"), "p99"),
        ), unit="s", description="From partitions revoked to assigned again."),
        Panel("Commit latency p99", (
            (quantile(0.99, "tuner_consumer_commit_latency_seconds"), "p99"),
        ), unit="s"),
    )),
    ("Producer (Locust)", (
        Panel("Sends/s", (
            (f'sum by (topic) (rate(tuner_producer_records_sent_total{{topic=~"$topic"}}{RATE}))',
             "{{topic}}"),
            (f'sum by (topic) (rate(tuner_producer_errors_total{{topic=~"$topic"}}{RATE}))',
             "errors {{topic}}"),
        ), unit="ops", width=12),
        Panel("Send latency", tuple(
            (f"histogram_quantile({q}, sum by (le) (rate("
             f'tuner_producer_send_latency_seconds_bucket{{topic=~"$topic"}}{RATE})))', f"p{p}")
            for q, p in ((0.5, 50), (0.99, 99))
        ), unit="s", width=12, description="produce() to the broker's acknowledgement."),
    )),
)  # fmt: skip

STUDY_ROWS: tuple[tuple[str, tuple[Panel, ...]], ...] = (
    ("Study", (
        Panel("Trial in flight", ((f"tuner_trial_number{S}", "trial"),), kind="stat", width=4),
        Panel("Best feasible records/s", ((f"tuner_study_best_objective{S}", "best"),),
              kind="stat", unit="ops", width=4),
        Panel("Trials by state", ((f"sum by (state) (tuner_study_trials_total{S})",
                                   "{{state}}"),), kind="stat", width=8,
              description="complete = feasible; infeasible = rebalanced or broke a constraint."),
        Panel("Settings of the trial in flight", ((f"tuner_trial_info{S}", "{{setting}}"),),
              kind="table", width=8),
    )),
    ("Progress", (
        Panel("Records/s per trial and best so far", (
            (f"tuner_trial_objective{S}", "trial ({{state}})"),
            (f"tuner_study_best_objective{S}", "best so far"),
        ), unit="ops", width=12),
        Panel("Consumed records/s of the running trial", (
            ('sum(rate(tuner_consumer_records_consumed_total{group=~"$group"}'
             f"{RATE}))", "consumed"),
        ), unit="ops", width=12),
    )),
)  # fmt: skip


def _variable(name: str, query: str, *, multi: bool = True) -> dict[str, Any]:
    return {
        "name": name,
        "label": name,
        "type": "query",
        "datasource": DS,
        "query": {"query": query, "refId": f"{name}-values"},
        "definition": query,
        "refresh": 2,
        "multi": multi,
        "includeAll": multi,
        "allValue": ".*",
        "current": {"text": "All", "value": "$__all"} if multi else {},
        "sort": 1,
    }


def _panels(rows: tuple[tuple[str, tuple[Panel, ...]], ...]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    y, ident = 0, 1
    for title, panels in rows:
        out.append({"type": "row", "title": title, "id": ident, "collapsed": False,
                    "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})  # fmt: skip
        ident, y, x = ident + 1, y + 1, 0
        for p in panels:
            if x + p.width > 24:
                x, y = 0, y + 8
            panel: dict[str, Any] = {
                "type": p.kind,
                "title": p.title,
                "id": ident,
                "datasource": DS,
                "gridPos": {"h": 8, "w": p.width, "x": x, "y": y},
                "fieldConfig": {"defaults": {"unit": p.unit}, "overrides": list(p.overrides)},
                "targets": [
                    {
                        "refId": chr(ord("A") + i),
                        "datasource": DS,
                        "expr": expr,
                        "legendFormat": legend,
                        **({"format": "table", "instant": True} if p.kind == "table" else {}),
                    }
                    for i, (expr, legend) in enumerate(p.targets)
                ],
            }
            if p.description:
                panel["description"] = p.description
            out.append(panel)
            ident, x = ident + 1, x + p.width
        y += 8
    return out


def _dashboard(
    uid: str, title: str, rows: tuple[tuple[str, tuple[Panel, ...]], ...],
    variables: list[dict[str, Any]], annotations: list[dict[str, Any]],
) -> dict[str, Any]:  # fmt: skip
    datasource = {"name": "datasource", "label": "Prometheus", "type": "datasource",
                  "query": "prometheus", "current": {}}  # fmt: skip
    return {
        "uid": uid,
        "title": title,
        "tags": ["kafka", "kafka-tuner"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "5s",
        "time": {"from": "now-15m", "to": "now"},
        "templating": {"list": [datasource, *variables]},
        "annotations": {"list": annotations},
        "panels": _panels(rows),
    }


TRIAL_ANNOTATION = {
    "name": "Trials",
    "datasource": DS,
    "enable": True,
    "iconColor": "purple",
    "expr": "changes(tuner_trial_number[1m]) > 0",
    "step": "5s",
    "titleFormat": "trial started",
    "textFormat": "study {{study}}",
}


def dashboards() -> dict[str, dict[str, Any]]:
    """File name → dashboard JSON model."""
    consumer = _dashboard(
        "kafka-tuner-consumer",
        "Kafka consumer tuning",
        CONSUMER_ROWS,
        [
            _variable("group", "label_values(tuner_consumer_fetch_requests_total, group)"),
            _variable(
                "member",
                'label_values(tuner_consumer_fetch_requests_total{group=~"$group"}, member)',
            ),
            _variable(
                "topic",
                'label_values(tuner_consumer_records_consumed_total{group=~"$group"}, topic)',
            ),
        ],
        [TRIAL_ANNOTATION],
    )
    study = _dashboard(
        "kafka-tuner-study",
        "kafka-tuner study",
        STUDY_ROWS,
        [
            _variable("study", "label_values(tuner_trial_number, study)", multi=False),
            _variable(  # a trial's group id is <topic prefix><study>.t<number>
                "group",
                'label_values(tuner_consumer_fetch_requests_total{group=~".*$study.*"}, group)',
            ),
        ],
        [TRIAL_ANNOTATION],
    )
    return {"consumer-tuning.json": consumer, "study.json": study}


def render(model: dict[str, Any]) -> str:
    return json.dumps(model, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the JSON; with `--check`, write nothing and exit 1 if any file would change."""
    check = "--check" in (sys.argv[1:] if argv is None else argv)
    stale = []
    OUT.mkdir(exist_ok=True)
    for name, model in dashboards().items():
        path = OUT / name
        text = render(model)
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
            continue
        path.write_text(text)
        print(f"wrote grafana/dashboards/{name}")
    if stale:
        print(f"out of date: {', '.join(stale)}; run python grafana/build.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
