"""A profile from a live Prometheus: per-member work at each step of a range, by our names or
the Java client's. Those export no processing time: it is the time between polls not spent
waiting in poll, `time-between-poll-avg · (1 - poll-idle-ratio-avg)`, averages over the
client's 30 s sample window, so a window of minutes or more is needed; nor whether processing
blocks the loop (`--mode` says it)."""

from __future__ import annotations

import math
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any, Literal

from tuner.advice.prometheus import Get, _get_json, ask, query
from tuner.metrics import JAVA_CONSUMER, JAVA_COORDINATOR, JAVA_FETCH, PREFIX
from tuner.profile.cost import Estimate, WorkSample, fit
from tuner.profile.observed import Profile, ProfileError

Names = Literal["tuner", "java"]


def _range(
    url: str, expr: str, *, start: float, end: float, step_s: float, get: Get
) -> dict[tuple[str, float], float]:
    """A range query's matrix as (member label, time) → value (NaN points left out)."""
    params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step_s:g}"}
    target = f"{url.rstrip('/')}/api/v1/query_range?{urllib.parse.urlencode(params)}"
    out: dict[tuple[str, float], float] = {}
    for item in ask(url, expr, target, get=get):
        member = item["metric"].get("member") or item["metric"].get("client_id", "")
        for at, text in item["values"]:
            value = float(text)
            if math.isfinite(value):
                out[(member, float(at))] = value
    return out


def _selector(names: Names, group: str, extra: str = "") -> str:
    """The group's series: our `group` label, or Java client ids containing the group's name."""

    def quoted(text: str) -> str:
        return text.replace("\\", "\\\\").replace('"', '\\"')

    if names == "tuner":
        return f'{{group="{quoted(group)}"{extra}}}'
    return f'{{client_id=~".*{quoted(re.escape(group))}.*"{extra}}}'


def _work_queries(names: Names, group: str, step_s: float) -> dict[str, str]:
    """Each member's work per step. Rates over two steps: a range of one step may hold a
    single scrape (no rate at all) when the step is near the scrape interval."""
    s, r = _selector(names, group), f"[{2 * step_s:g}s]"
    if names == "tuner":
        p = PREFIX
        return {
            key: f"rate({p}{family}{s}{r}) * {step_s:g}"
            for key, family in (
                ("records", "processing_records_total"),
                ("batches", "processing_seconds_count"),
                ("seconds", "processing_seconds_sum"),
                ("blocked", "processing_blocked_seconds_total"),
            )
        }
    client = _selector(names, group, ', topic=""')
    between = f"avg_over_time({JAVA_CONSUMER}time_between_poll_avg{s}{r}) / 1000"
    return {
        "records": f"rate({JAVA_FETCH}records_consumed_total{client}{r}) * {step_s:g}",
        "batches": f"{step_s:g} / ({between})",
        "seconds": f"(1 - avg_over_time({JAVA_CONSUMER}poll_idle_ratio_avg{s}{r})) * {step_s:g}",
    }


def _shape_queries(names: Names, group: str, window_s: float) -> dict[str, str]:
    s, r = _selector(names, group), f"[{max(int(window_s), 1)}s]"
    if names == "tuner":
        p = PREFIX
        return {
            "members": f"count(last_over_time({p}assigned_partitions{s}{r}))",
            "partitions": f"sum(last_over_time({p}assigned_partitions{s}{r}))",
            "bytes_per_record": f"sum(increase({p}bytes_consumed_total{s}{r})) / "
            f"sum(increase({p}records_consumed_total{s}{r}))",
            "rate": f"sum(rate({p}records_consumed_total{s}{r}))",
            "records_per_poll": f"sum(rate({p}poll_records_sum{s}{r})) / "
            f"sum(rate({p}poll_records_count{s}{r}))",
            "max.poll.interval.ms": f"max(last_over_time({p}max_poll_interval_seconds{s}{r}))"
            " * 1000",
            "fetch.max.wait.ms": f"max(last_over_time({p}fetch_max_wait_seconds{s}{r})) * 1000",
        }
    client = _selector(names, group, ', topic=""')
    return {
        "members": f"count(last_over_time({JAVA_COORDINATOR}assigned_partitions{s}{r}))",
        "partitions": f"sum(last_over_time({JAVA_COORDINATOR}assigned_partitions{s}{r}))",
        "bytes_per_record": f"sum(avg_over_time({JAVA_FETCH}bytes_consumed_rate{client}{r})) / "
        f"sum(avg_over_time({JAVA_FETCH}records_consumed_rate{client}{r}))",
        "rate": f"sum(avg_over_time({JAVA_FETCH}records_consumed_rate{client}{r}))",
        "records_per_poll": f"sum(avg_over_time({JAVA_FETCH}records_consumed_rate{client}{r}) * "
        f"on(client_id) avg_over_time({JAVA_CONSUMER}time_between_poll_avg{s}{r})) / 1000 / "
        f"count(last_over_time({JAVA_COORDINATOR}assigned_partitions{s}{r}))",
    }


def from_prometheus(
    url: str,
    *,
    group: str,
    names: Names | Literal["auto"] = "auto",
    window_s: float = 3600.0,
    step_s: float = 30.0,
    mode: Literal["async", "cpu"] | None = None,
    get: Get = _get_json,
    now: float | None = None,
) -> Profile:
    """The profile of `group` over the last `window_s` (PrometheusError: no answer; ProfileError:
    no such group). `mode` states what the metrics cannot tell (Java names have no CPU time)."""
    end = time.time() if now is None else now
    if names == "auto":
        shape = _shape(url, "tuner", group, window_s, get)
        names = "tuner" if shape.get("members") else "java"
    shape = _shape(url, names, group, window_s, get)
    if not shape.get("members"):
        raise ProfileError(
            f"Prometheus at {url} has no member of consumer group {group!r} in the last "
            f"{window_s:g} s ({names} names)"
        )
    columns = {
        key: _range(url, expr, start=end - window_s, end=end, step_s=step_s, get=get)
        for key, expr in _work_queries(names, group, step_s).items()
    }
    samples = [
        WorkSample(
            records=records,
            batches=columns["batches"].get(key, 0.0),
            seconds=columns["seconds"].get(key, 0.0),
            blocked_seconds=columns["blocked"].get(key) if "blocked" in columns else None,
        )
        for key, records in sorted(columns["records"].items())
    ]
    source = f"Prometheus {url}, {names} names, last {window_s:g} s in {step_s:g} s steps"
    try:
        cost = fit(samples, source=source)
    except ValueError as exc:
        raise ProfileError(str(exc)) from None
    if mode is not None:
        cost = _stated_mode(cost, mode)
    return _profile(shape, names, group, source, cost)


def _shape(url: str, names: Names, group: str, window_s: float, get: Get) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, expr in _shape_queries(names, group, window_s).items():
        values = query(url, expr, get=get)
        if values:
            out[key] = next(iter(values.values()))
    return out


def _stated_mode(cost: Any, mode: Literal["async", "cpu"]) -> Any:
    from dataclasses import replace  # noqa: PLC0415 - only when the user states the mode

    stated = Estimate(value=math.nan, source="stated with --mode", sure="as the user said")
    return replace(cost, mode=mode, mode_estimate=stated)


def _profile(
    shape: Mapping[str, float], names: Names, group: str, source: str, cost: Any
) -> Profile:
    where = f"{names} names over the window"
    settings = {
        key: round(shape[key]) for key in ("max.poll.interval.ms", "fetch.max.wait.ms")
        if key in shape
    }  # fmt: skip
    return Profile(
        source=source,
        group=group,
        members=Estimate(value=shape["members"], source=f"members seen ({where})", sure="exact"),
        partitions=_estimate(shape, "partitions", f"assigned partitions summed ({where})",
                             "exact if every member was assigned at the end"),
        message_bytes=_estimate(shape, "bytes_per_record", f"bytes / records ({where})",
                                "exact (the mean value size)")
        or Estimate(value=0.0, source="no record consumed", sure="unknown"),
        input_records_per_s=_estimate(shape, "rate", f"records consumed per second ({where})",
                                      "the input rate only if the group kept up (lag not growing)"),
        records_per_poll=_estimate(shape, "records_per_poll", f"records per poll ({where})",
                                   "measured (empty polls included)"),
        cost=cost,
        settings=settings,
        settings_source="the gauges the members export" if settings else "",
    )  # fmt: skip


def _estimate(shape: Mapping[str, float], key: str, source: str, sure: str) -> Estimate | None:
    return Estimate(value=shape[key], source=source, sure=sure) if shape.get(key) else None
