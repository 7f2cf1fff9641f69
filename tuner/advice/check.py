"""One check: facts from the sources given, every rule over each group."""

from __future__ import annotations

from typing import Literal

from tuner.advice import prometheus
from tuner.advice.facts import Facts, combine
from tuner.advice.findings import Finding
from tuner.advice.rules import advise


def check(
    base: Facts | None,
    *,
    prometheus_url: str | None = None,
    names: prometheus.Names | Literal["auto"] = "auto",
    group: str | None = None,
    window_s: float = 300.0,
) -> tuple[Finding, ...]:
    """The findings for `base` (a config and/or a run), or for each group a Prometheus has,
    with `base` filling in what it does not know. Raises `PrometheusError` when Prometheus
    does not answer or has no consumer of that group."""
    live: tuple[Facts, ...] = ()
    if prometheus_url is not None:
        live = prometheus.read(prometheus_url, names=names, group=group, window_s=window_s)
        if not live:
            which = f" of group {group!r}" if group else ""
            raise prometheus.PrometheusError(
                f"Prometheus at {prometheus_url} has no consumer metrics{which} "
                f"(tuner_consumer_* or kafka_consumer_*) in the last {window_s:g} s"
            )
    return tuple(f for facts in combine(base, live) for f in advise(facts))
