"""`tuner_advice_*`: the advisor's findings as metrics, for alerts and dashboards."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge

ADVICE_PREFIX = "tuner_advice_"
SEVERITIES = ("risk", "warning", "info")


class AdviceMetrics:
    """One series per current finding (value 1, labelled rule, severity and group), counts
    per severity, and how checking went. A finding that goes away loses its series."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._finding = Gauge(
            f"{ADVICE_PREFIX}finding", "A current finding of the advisor (value 1).",
            ("rule", "severity", "group"), registry=registry,
        )  # fmt: skip
        self._findings = Gauge(
            f"{ADVICE_PREFIX}findings", "Current findings, by severity.", ("severity",),
            registry=registry,
        )  # fmt: skip
        self._checks = Counter(
            f"{ADVICE_PREFIX}checks", "Checks made, by outcome (ok, error).", ("outcome",),
            registry=registry,
        )  # fmt: skip
        self._last = Gauge(
            f"{ADVICE_PREFIX}last_check_timestamp_seconds",
            "Unix time of the last successful check.", registry=registry,
        )  # fmt: skip
        for severity in SEVERITIES:
            self._findings.labels(severity).set(0)
        for outcome in ("ok", "error"):
            self._checks.labels(outcome)

    def checked(self, findings: Iterable[tuple[str, str, str]], at: float) -> None:
        """A successful check's findings as (rule, severity, group)."""
        current = set(findings)
        self._finding.clear()
        for rule, severity, group in current:
            self._finding.labels(rule, severity, group).set(1)
        for severity in SEVERITIES:
            self._findings.labels(severity).set(sum(1 for f in current if f[1] == severity))
        self._checks.labels("ok").inc()
        self._last.set(at)

    def failed(self) -> None:
        """A check that could not read its facts; the last findings stay served."""
        self._checks.labels("error").inc()
