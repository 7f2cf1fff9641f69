"""The rules a config must follow beyond each field's type: ranges and fields that go together."""

from __future__ import annotations

import importlib.util
import re

from tuner.config.spec import EMBEDDED, NetworkSpec, StudySpec
from tuner.settings import check_parameters, validate_settings


def show(value: object) -> str:
    """A value as a problem message quotes it: strings in quotes, the rest as they print."""
    return repr(value) if isinstance(value, str) else str(value)


_TOPIC_NAME = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")


def check_spec(spec: StudySpec, problems: list[str]) -> None:
    """Ranges and rules that need more than one field's type."""

    def need(ok: bool, path: str, message: str, value: object) -> None:
        if not ok:
            problems.append(f"{path}: {message}, got {show(value)}")

    c, t, w, p = spec.consumer, spec.topic, spec.workload, spec.workload.producer
    need(
        bool(spec.cluster.bootstrap_servers.strip()),
        "cluster.bootstrap_servers",
        "must be 'embedded' or host:port[,host:port…]",
        spec.cluster.bootstrap_servers,
    )
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
    need(
        1 <= w.message_bytes <= 10 << 20,
        "workload.message_bytes",
        "must be in [1, 10485760]",
        w.message_bytes,
    )
    need(w.prefill_records >= 0, "workload.prefill_records", "must be >= 0", w.prefill_records)
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
    need(
        0 <= spec.metrics.port <= 65535, "metrics.port", "must be in [0, 65535]", spec.metrics.port
    )
    need(spec.search.trials >= 1, "search.trials", "must be >= 1", spec.search.trials)
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
    if spec.search.parameters is not None:
        for name, message in check_parameters(spec.search.parameters):
            problems.append(f"search.parameters.{name}: {message}")
    if spec.search.sampler == "gp" and importlib.util.find_spec("torch") is None:
        problems.append(
            "search.sampler: 'gp' needs PyTorch, which is not installed "
            "(pip install torch), or use 'tpe'"
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
    for name, message in validate_settings(c.settings):
        problems.append(f"consumer.settings.{name}: {message}")
    _check_network(spec, problems)


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
