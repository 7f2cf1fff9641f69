"""The rules a config must follow beyond each field's type: ranges and fields that go together."""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import re

from tuner.clients import client_named
from tuner.config.duration import duration_s
from tuner.config.payloads import payload_problems
from tuner.config.service import service_problems
from tuner.config.spec import EMBEDDED, NetworkSpec, StudySpec
from tuner.config.topology import topology_problems
from tuner.librdkafka import split_settings
from tuner.settings import check_parameters, validate_settings


def show(value: object) -> str:
    """A value as a problem message quotes it: strings in quotes, the rest as they print."""
    return repr(value) if isinstance(value, str) else str(value)


_TOPIC_NAME = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")
_LABEL = r"[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?"
_HOST = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*\.?$")


def bootstrap_problem(servers: str) -> str | None:
    """What is wrong with a `host:port[,host:port…]` list (IPv6 as `[addr]:port`), or None.

    aiokafka and librdkafka both take this form; checked here, a typo is a config problem
    instead of a `ValueError` from deep inside the client.
    """
    for raw in servers.split(","):
        entry = raw.strip()
        if not entry:
            return "an empty entry"
        if entry.startswith("["):
            address, bracket, rest = entry[1:].partition("]")
            host_ok = bool(bracket) and _is_ipv6(address)
            colon, port = rest[:1] == ":", rest[1:]
        else:
            host, sep, port = entry.rpartition(":")
            host_ok, colon = not sep or bool(_HOST.match(host)), bool(sep)
        if not host_ok:
            return f"{entry!r} is not a host name or IP address with a port"
        if not colon or not port:
            return f"{entry!r} has no port"
        if not (port.isdigit() and 1 <= int(port) <= 65535):
            return f"{entry!r}: the port must be a number in [1, 65535]"
    return None


def _is_ipv6(address: str) -> bool:
    try:
        ipaddress.IPv6Address(address)
    except ValueError:
        return False
    return True


def _budget_problems(spec: StudySpec) -> list[str]:
    if spec.study.budget is None:
        return []
    try:
        duration_s(spec.study.budget)
    except ValueError as exc:
        return [f"study.budget: {exc}"]
    return []


def check_spec(spec: StudySpec, problems: list[str], *, rules: bool = True) -> None:
    """Ranges and rules that need more than one field's type; `rules=False` leaves out the
    cross-setting rules of the consumer settings (`tuner advise` reports them as findings)."""

    def need(ok: bool, path: str, message: str, value: object) -> None:
        if not ok:
            problems.append(f"{path}: {message}, got {show(value)}")

    c, t, w, p = spec.consumer, spec.topic, spec.workload, spec.workload.producer
    _check_cluster(spec, problems)
    prefix = spec.cluster.topic_prefix
    need(bool(prefix), "cluster.topic_prefix", "must not be empty", prefix)
    need(
        bool(_TOPIC_NAME.match(t.name)),
        "topic.name",
        "must be 1-249 characters of [a-zA-Z0-9._-]",
        t.name,
    )
    need(
        t.name.startswith(prefix),
        "topic.name",
        f"must start with cluster.topic_prefix {prefix!r} (the tuner never touches other topics)",
        t.name,
    )
    need(1 <= t.partitions <= 10000, "topic.partitions", "must be in [1, 10000]", t.partitions)
    need(
        t.replication_factor >= 1, "topic.replication_factor", "must be >= 1", t.replication_factor
    )
    problems.extend(payload_problems(w))
    need(
        w.prefill_records is None or w.prefill_records >= 0,
        "workload.prefill_records",
        "must be >= 0 (leave it out to size the backlog from the measured rate)",
        w.prefill_records,
    )
    for name in ("users", "linger_ms", "batch_bytes", "expect_workers"):
        section = w.locust if name == "expect_workers" else p
        value = getattr(section, name)
        path = f"workload.{'locust' if name == 'expect_workers' else 'producer'}.{name}"
        need(value >= 0, path, "must be >= 0", value)
    need(p.spawn_rate > 0, "workload.producer.spawn_rate", "must be > 0", p.spawn_rate)
    need(
        p.rate_per_user >= 0,
        "workload.producer.rate_per_user",
        "must be >= 0 (0 = unpaced)",
        p.rate_per_user,
    )
    need(1 <= c.members <= 64, "consumer.members", "must be an integer in [1, 64]", c.members)
    proc = c.processing
    need(
        proc.per_record_ms >= 0,
        "consumer.processing.per_record_ms",
        "must be >= 0",
        proc.per_record_ms,
    )
    need(
        proc.per_batch_ms >= 0,
        "consumer.processing.per_batch_ms",
        "must be >= 0",
        proc.per_batch_ms,
    )
    if proc.p99_ms is not None:
        need(
            proc.distribution == "lognormal",
            "consumer.processing.p99_ms",
            "only applies to distribution: lognormal",
            proc.p99_ms,
        )
        need(
            proc.p99_ms >= proc.per_record_ms,
            "consumer.processing.p99_ms",
            f"must be >= per_record_ms ({proc.per_record_ms})",
            proc.p99_ms,
        )
    need(spec.trial.warmup_s >= 0, "trial.warmup_s", "must be >= 0", spec.trial.warmup_s)
    need(spec.trial.measure_s > 0, "trial.measure_s", "must be > 0", spec.trial.measure_s)
    need(spec.trial.steady_s >= 0, "trial.steady_s", "must be >= 0 (0 = none)", spec.trial.steady_s)
    _check_steady(spec, problems)
    _check_metrics(spec, problems)
    need(spec.search.trials >= 1, "search.trials", "must be >= 1", spec.search.trials)
    problems.extend(_budget_problems(spec))
    need(spec.confirm.repeats >= 1, "confirm.repeats", "must be >= 1", spec.confirm.repeats)
    need(
        spec.confirm.ablation_pairs >= 0,
        "confirm.ablation_pairs",
        "must be >= 0 (0 skips the ablation)",
        spec.confirm.ablation_pairs,
    )
    headroom = spec.objective.constraints.max_poll_interval_headroom
    if headroom is not None:
        need(
            0 < headroom <= 1,
            "objective.constraints.max_poll_interval_headroom",
            "must be in (0, 1]",
            headroom,
        )
    _check_parameters(spec, problems)
    if spec.search.sampler == "gp" and importlib.util.find_spec("torch") is None:
        problems.append(
            "search.sampler: 'gp' needs PyTorch, which is not installed "
            "(pip install 'kafka-tuner[gp]'), or use 'tpe'"
        )
    sec = spec.cluster.security
    if sec.protocol.startswith("SASL"):
        need(
            sec.sasl_mechanism is not None,
            "cluster.security.sasl_mechanism",
            f"is required with protocol {sec.protocol}",
            sec.sasl_mechanism,
        )
        need(
            bool(sec.username),
            "cluster.security.username",
            f"is required with protocol {sec.protocol}",
            sec.username,
        )
        need(
            bool(sec.password),
            "cluster.security.password",
            "is required with SASL; use ${ENV_VAR}",
            "(empty)",
        )
    _check_security(spec, problems)
    _check_client(spec, problems, rules=rules)
    _check_network(spec, problems)


def _check_parameters(spec: StudySpec, problems: list[str]) -> None:
    if spec.search.parameters is None:
        return
    java_params, _ = split_settings(spec.search.parameters)
    for name, message in check_parameters(java_params):
        problems.append(f"search.parameters.{name}: {message}")
    client = client_named(spec.consumer.client)
    for name, message in client.parameter_problems(spec.search.parameters):
        problems.append(f"search.parameters.{name}: {message}")


def _check_client(spec: StudySpec, problems: list[str], *, rules: bool) -> None:
    """The settings, as the chosen client takes them: a setting only the other client has is
    a problem, not something silently dropped; and the service the members run, if any."""
    c = spec.consumer
    if c.service is not None:
        problems.extend(service_problems(c.service))
    java_settings, _ = split_settings(c.settings)
    for name, message in validate_settings(java_settings, rules=rules):
        problems.append(f"consumer.settings.{name}: {message}")
    client = client_named(c.client)
    for name, message in client.setting_problems(c.settings):
        problems.append(f"consumer.settings.{name}: {message}")
    for path, message in client.protocol_problems(c.group_protocol, c.settings, rules=rules):
        problems.append(f"{path}: {message}")
    if client.blocking_poll and c.isolation == "task":
        problems.append(
            "consumer.isolation: 'task' runs members in one event loop, which a blocking "
            f"{c.client} {client.poll_call} would stall: use 'process' with client {c.client!r}"
        )


def _check_network(spec: StudySpec, problems: list[str]) -> None:
    network = spec.cluster.network
    if network is None:
        return
    if spec.cluster.bootstrap_servers != EMBEDDED:
        problems.append(
            "cluster.network: shapes the path to the embedded broker only: set "
            "cluster.bootstrap_servers to 'embedded' or remove cluster.network; got "
            f"bootstrap_servers {spec.cluster.bootstrap_servers!r}"
        )
    problems.extend(network_problems(network, "cluster.network."))


MAX_RTT_MS = 10_000.0


def network_problems(network: NetworkSpec, prefix: str) -> list[str]:
    """What is wrong with a network profile, each as `<prefix><field>: message`; `tuner broker
    up --rtt-ms …` checks its options with the same rules (prefix `--`, dashes)."""
    problems: list[str] = []
    sep = "-" if prefix == "--" else "_"

    def need(ok: bool, name: str, message: str, value: object) -> None:
        if not ok:
            problems.append(f"{prefix}{name.replace('_', sep)}: {message}, got {show(value)}")

    rtt, jitter, bandwidth = network.rtt_ms, network.jitter_ms, network.bandwidth_mbit
    need(0 <= rtt <= MAX_RTT_MS, "rtt_ms", f"must be in [0, {MAX_RTT_MS:g}] ms", rtt)
    need(
        0 <= jitter <= max(rtt, 0.0),
        "jitter_ms",
        f"must be in [0, rtt_ms] (rtt_ms is {rtt:g}: a delay cannot go below zero)",
        jitter,
    )
    if bandwidth is not None:
        need(bandwidth > 0, "bandwidth_mbit", "must be > 0 (leave it out for uncapped)", bandwidth)
    return problems


def _check_security(spec: StudySpec, problems: list[str]) -> None:
    sec = spec.cluster.security
    if sec.protocol != "PLAINTEXT" and spec.cluster.bootstrap_servers == EMBEDDED:
        problems.append(
            f"cluster.security.protocol: the embedded broker speaks PLAINTEXT, got "
            f"{sec.protocol!r}; for a secured one run `tuner broker up --secure` and set "
            "cluster.bootstrap_servers to the listener it prints"
        )
    if sec.ssl_cafile is not None:
        if not sec.protocol.endswith("SSL"):
            problems.append(
                f"cluster.security.ssl_cafile: used only with SSL or SASL_SSL, "
                f"got protocol {sec.protocol!r}"
            )
        elif not os.access(sec.ssl_cafile, os.R_OK):
            problems.append(
                f"cluster.security.ssl_cafile: no readable file {sec.ssl_cafile!r} "
                "(the PEM file of the CA that signed the brokers' certificates)"
            )


def _check_metrics(spec: StudySpec, problems: list[str]) -> None:
    """Ports in range; the exporter and Locust's own cannot share one (0 picks a free one)."""
    m = spec.metrics
    for field, port in (("metrics.port", m.port), ("metrics.producer_port", m.producer_port)):
        if not 0 <= port <= 65535:
            problems.append(f"{field}: must be in [0, 65535], got {port}")
    if m.port == m.producer_port != 0:
        problems.append(
            f"metrics.producer_port: must differ from metrics.port (Locust serves its own "
            f"metrics there), got {m.producer_port}"
        )


def _check_cluster(spec: StudySpec, problems: list[str]) -> None:
    """The address, and what the embedded cluster and the faults can do (`topology`)."""
    problems.extend(topology_problems(spec))
    servers = spec.cluster.bootstrap_servers
    if servers == EMBEDDED:
        return
    wrong = bootstrap_problem(servers)
    if wrong is not None:
        problems.append(
            f"cluster.bootstrap_servers: must be 'embedded' or host:port[,host:port…]; "
            f"{wrong}, got {show(servers)}"
        )


STEADY_REASON = (
    "latency is measured in a steady state, under live load at a set rate and with no "
    "backlog: set workload.producer.users > 0 and workload.producer.rate_per_user > 0"
)


def _check_steady(spec: StudySpec, problems: list[str]) -> None:
    """Latency objectives and a steady-state window need paced live load: without it the only
    latency there is, is the age of backlog records, which no consumer setting causes."""
    p, o = spec.workload.producer, spec.objective
    paced = p.users > 0 and p.rate_per_user > 0
    load = f"got users {p.users}, rate_per_user {p.rate_per_user:g}"
    asking = [
        (o.minimize is not None, "objective.minimize"),
        (o.constraints.p99_latency_ms is not None, "objective.constraints.p99_latency_ms"),
        (spec.trial.steady_s > 0, "trial.steady_s"),
    ]
    for asked, path in asking:
        if asked and not paced:
            problems.append(f"{path}: {STEADY_REASON} ({load})")
    if any(asked for asked, _ in asking) and spec.workload.shape.kind != "constant":
        problems.append(
            f"workload.shape.kind: a steady state needs a constant load for "
            f"{next(path for asked, path in asking if asked)}, got {spec.workload.shape.kind!r}"
        )
