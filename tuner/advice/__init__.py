"""The advisor: what is risky in a consumer group's settings, why, and what to change.

Facts come from a config, a run's result or a live Prometheus (`facts`, `prometheus`); one
small function per rule turns them into findings with stable codes (`rules`); `serve` keeps
watching a Prometheus and serves the findings as metrics and JSON.
"""

from __future__ import annotations

from tuner.advice.check import check
from tuner.advice.facts import Facts, Observed, Workload, combine, from_config, from_run, merge
from tuner.advice.findings import Finding, Severity, at_least
from tuner.advice.prometheus import PrometheusError, parse_duration, url_problem
from tuner.advice.rules import RULES, advise
from tuner.advice.study import StudyAdvice, study_advice

__all__ = [
    "RULES", "Facts", "Finding", "Observed", "PrometheusError", "Severity", "StudyAdvice",
    "Workload",
    "advise", "at_least", "check", "combine", "from_config", "from_run", "merge",
    "parse_duration", "study_advice", "url_problem",
]  # fmt: skip
