"""Facts from a live Prometheus: our `tuner_consumer_*` names or the Java client's
`kafka_consumer_*` names (as the JMX exporter writes them), one `Facts` per consumer group.

The Java client exports no settings, so Java-named facts assume Java's defaults unless a
config states them; our names carry `max.poll.interval.ms` and `fetch.max.wait.ms`, and each
member's client and group protocol (`client_info`), whose defaults fill the rest. Gauges are
read as their last value in the window, so members that stopped inside it still count.
"""

from __future__ import annotations

import json
import math
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any, Literal

from tuner.advice.facts import Facts, Observed, client_settings
from tuner.clients import CLIENTS, ClientName
from tuner.metrics import JAVA_CONSUMER, JAVA_COORDINATOR, JAVA_FETCH, PREFIX
from tuner.protocol import GroupProtocol
from tuner.settings import java_defaults

Names = Literal["tuner", "java"]
Get = Callable[[str], Any]
"""URL → parsed JSON answer (raises OSError or ValueError)."""


class PrometheusError(Exception):
    """Prometheus did not answer, or refused a query."""


def parse_duration(text: str) -> float:
    """`90`, `30s`, `5m`, `1h` → seconds; ValueError for anything else or for zero."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)?", text.strip())
    if match is None or float(match.group(1)) <= 0:
        raise ValueError(f"expected a duration like 30s, 5m or 1h, got {text!r}")
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[match.group(2) or "s"]
    return float(match.group(1)) * scale


def url_problem(text: str) -> str | None:
    """What makes `text` not a Prometheus address (`http(s)://host[:port]`, optionally under a
    path prefix), or None. Checked before asking: urllib would otherwise try `ftp://` or read a
    `file://` path, and the failure would read as a Prometheus that did not answer."""
    shape = "expected http://host[:port] or https://host[:port]"
    try:
        parts = urllib.parse.urlsplit(text)
        port = parts.port
    except ValueError as exc:  # a port that is not a number, or out of range
        return f"{shape}, got {text!r} ({exc})"
    if parts.scheme not in ("http", "https"):
        return f"{shape}, got {text!r} (scheme {parts.scheme or 'missing'!r})"
    if not parts.hostname:
        return f"{shape}, got {text!r} (no host)"
    if parts.query or parts.fragment:
        return f"{shape}, got {text!r} (a query or fragment cannot prefix the API's paths)"
    if port == 0:
        return f"{shape}, got {text!r} (port 0)"
    return None


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - the user's own Prometheus URL
        return json.loads(response.read())


def _promql(text: str) -> str:
    """`text` inside a PromQL double-quoted string."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _count_in(series: str, r: str) -> str:
    """How much a total grew inside the range: its increase, or, for a consumer that started
    inside the range (no sample in the range before), all of it: `increase` alone would miss
    what happened before the first scrape."""
    born = f"last_over_time({series}{r}) unless last_over_time({series}{r} offset {r[1:-1]})"
    return f"max by (group) (({born}) or increase({series}{r}))"


def _queries(names: Names, group: str | None, window_s: float) -> dict[str, str]:
    """What each fact is, in PromQL over the window, aggregated by the `group` label."""
    r = f"[{max(int(window_s), 1)}s]"
    if names == "tuner":
        s = f'{{group="{_promql(group)}"}}' if group else ""
    else:
        s = f'{{client_id=~".*{_promql(re.escape(group))}.*"}}' if group else ""

    def over(how: str, agg: str, name: str, tail: str = "") -> str:
        return f"{agg} by (group) ({how}_over_time({name}{s}{r}){tail})"

    if names == "tuner":
        p = PREFIX

        def ratio(family: str) -> str:
            return (
                f"sum by (group) (rate({p}{family}_sum{s}{r})) / "
                f"sum by (group) (rate({p}{family}_count{s}{r}))"
            )

        return {
            "members": over("last", "count", f"{p}assigned_partitions"),
            "idle_members": over("last", "count", f"{p}assigned_partitions", " == 0"),
            "gap_ms": over("max", "max", f"{p}poll_interval_max_seconds") + " * 1000",
            "loop_ms": over("max", "max", f"{p}event_loop_blocked_max_seconds") + " * 1000",
            "max.poll.interval.ms": over("last", "max", f"{p}max_poll_interval_seconds")
            + " * 1000",
            "fetch.max.wait.ms": over("last", "max", f"{p}fetch_max_wait_seconds") + " * 1000",
            "fetch_latency_ms": ratio("fetch_latency_seconds") + " * 1000",
            "records_per_fetch": ratio("fetch_records"),
            "records_per_poll": ratio("poll_records"),
            "idle_ratio": over("last", "avg", f"{p}poll_idle_ratio"),
            "rebalances": _count_in(f"{p}rebalances_total{s}", r),
            "lag_max": over("last", "max", f"{p}lag_records"),
            "lag_growth": f"sum by (group) (deriv({p}lag_records{s}{r}))",
        }
    coordinator, consumer, fetch = JAVA_COORDINATOR, JAVA_CONSUMER, JAVA_FETCH
    return {
        "members": over("last", "count", f"{coordinator}assigned_partitions"),
        "idle_members": over("last", "count", f"{coordinator}assigned_partitions", " == 0"),
        "gap_ms": over("max", "max", f"{consumer}time_between_poll_max"),
        "fetch_latency_ms": over("avg", "avg", f"{fetch}fetch_latency_avg"),
        "records_per_fetch": over("avg", "avg", f"{fetch}records_per_request_avg"),
        "idle_ratio": over("last", "avg", f"{consumer}poll_idle_ratio_avg"),
        "rebalances": _count_in(f"{coordinator}rebalance_total{s}", r),
        "lag_max": over("last", "max", f"{fetch}records_lag_max"),
        "lag_growth": f"sum by (group) (deriv({fetch}records_lag_max{s}{r}))",
    }


def ask(url: str, expr: str, target: str, *, get: Get = _get_json) -> list[Any]:
    """The `result` of Prometheus' answer at `target` (an API URL asking `expr`), or a
    PrometheusError that says whether Prometheus was unreachable or refused the query."""
    try:
        answer = get(target)
    except urllib.error.HTTPError as exc:
        raise PrometheusError(f"{url} refused {expr!r}: {exc.read().decode()[:300]}") from None
    except (OSError, ValueError) as exc:
        raise PrometheusError(f"no answer from Prometheus at {url}: {exc}") from None
    if answer.get("status") != "success":
        raise PrometheusError(f"{url} refused {expr!r}: {answer.get('error')}")
    result: list[Any] = answer["data"]["result"]
    return result


def instant(url: str, expr: str, *, get: Get = _get_json) -> list[Any]:
    """The `result` of an instant query: one item per series, its labels and its value."""
    target = f"{url.rstrip('/')}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    return ask(url, expr, target, get=get)


def query(url: str, expr: str, *, get: Get = _get_json) -> dict[str, float]:
    """An instant query's vector as group label → value (`""` when there is no such label)."""
    out: dict[str, float] = {}
    for item in instant(url, expr, get=get):
        value = float(item["value"][1])
        if not math.isnan(value):  # NaN: a rate over a range without two samples
            out[item["metric"].get("group", "")] = value
    return out


def read(
    url: str,
    *,
    names: Names | Literal["auto"] = "auto",
    group: str | None = None,
    window_s: float = 300.0,
    get: Get = _get_json,
) -> tuple[Facts, ...]:
    """One `Facts` per consumer group Prometheus has members of (none: an empty tuple).
    `auto` reads our names, and the Java names when ours have no consumer."""
    if names == "auto":
        return read(url, names="tuner", group=group, window_s=window_s, get=get) or read(
            url, names="java", group=group, window_s=window_s, get=get
        )
    values = {
        key: query(url, expr, get=get) for key, expr in _queries(names, group, window_s).items()
    }
    clients = clients_of(url, group, window_s, get=get) if names == "tuner" else {}
    facts = []
    for key in sorted(values["members"]):
        name = key or group or ""
        v = {k: value.get(key) for k, value in values.items()}
        facts.append(_facts(names, name, v, window_s, clients.get(key)))
    return tuple(facts)


_PROTOCOLS: Mapping[str, GroupProtocol] = {"classic": "classic", "consumer": "consumer"}


def clients_of(
    url: str, group: str | None, window_s: float, *, get: Get = _get_json
) -> dict[str, tuple[ClientName, GroupProtocol]]:
    """Group → the client and group protocol most of its members said they run (the
    `client_info` family); a group whose members do not say is left out."""
    s = f'{{group="{_promql(group)}"}}' if group else ""
    expr = (
        "count by (group, client, group_protocol) "
        f"(last_over_time({PREFIX}client_info{s}[{max(int(window_s), 1)}s]))"
    )
    counted: dict[str, tuple[float, ClientName, GroupProtocol]] = {}
    for item in instant(url, expr, get=get):
        labels, members = item["metric"], float(item["value"][1])
        named = CLIENTS.get(labels.get("client", ""))
        client = None if named is None else named.name
        protocol = _PROTOCOLS.get(labels.get("group_protocol", ""))
        key = labels.get("group", "")
        if client is None or protocol is None or members <= counted.get(key, (0.0,))[0]:
            continue
        counted[key] = (members, client, protocol)
    return {key: (client, protocol) for key, (_, client, protocol) in counted.items()}


def _facts(
    names: Names,
    group: str,
    v: Mapping[str, float | None],
    window_s: float,
    client: tuple[ClientName, GroupProtocol] | None = None,
) -> Facts:
    source = "Prometheus, tuner names" if names == "tuner" else "Prometheus, Java names"
    observed = Observed(
        source=source,
        window_s=window_s,
        poll_interval_max_ms=v.get("gap_ms"),
        loop_blocked_max_ms=v.get("loop_ms"),
        records_per_poll=v.get("records_per_poll"),
        records_per_fetch=v.get("records_per_fetch"),
        fetch_latency_ms=v.get("fetch_latency_ms"),
        idle_ratio=v.get("idle_ratio"),
        rebalances=v.get("rebalances"),
        lag_max=v.get("lag_max"),
        lag_growth_per_s=v.get("lag_growth"),
        members=int(v.get("members") or 0),
        idle_members=int(v.get("idle_members") or 0),
    )
    if names == "java":
        return Facts(group=group, settings=dict(java_defaults()), observed=observed)
    stated = {
        name: round(value)
        for name in ("max.poll.interval.ms", "fetch.max.wait.ms")
        if (value := v.get(name)) is not None
    }
    named: ClientName | None = None if client is None else client[0]
    protocol: GroupProtocol = "classic" if client is None else client[1]
    return Facts(
        group=group,
        settings=client_settings(named, protocol, stated),
        given=frozenset(stated),
        observed=observed,
        client=named,
        group_protocol=protocol,
    )
