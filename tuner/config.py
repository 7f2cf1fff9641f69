"""The YAML config, as frozen dataclasses: what a study or a single run is asked to do.

`load_config` turns a file into a `StudySpec` or raises one `ConfigError` that lists
every problem with its field path; nothing is started before a config has loaded.
"""

from __future__ import annotations

import collections.abc
import copy
import dataclasses
import difflib
import importlib.util
import os
import re
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, Union, cast, get_args, get_origin, get_type_hints

import yaml

from tuner.settings import ParameterSpec, SettingValue, check_parameters, validate_settings

__all__ = [  # ParameterSpec and SettingValue are re-exported: the specs below are made of them
    "DEFAULT_STEADY_S", "EMBEDDED", "ClusterSpec", "ConfigError", "ConfirmSpec",
    "ConstraintsSpec", "ConsumerSpec", "LocustSpec", "MetricsSpec", "ObjectiveSpec",
    "ParameterSpec", "ProcessingSpec", "ProducerSpec", "SearchSpec", "SecuritySpec",
    "SettingValue", "ShapeSpec", "StudyMetaSpec", "StudySpec", "TopicSpec", "TrialSpec",
    "WorkloadSpec", "load_config", "parse_config",
]  # fmt: skip

EMBEDDED = "embedded"
"""`cluster.bootstrap_servers` value for the broker `tuner broker` runs on this machine."""
DEFAULT_STEADY_S = 10.0
"""The steady-state window when the objective needs latency and `trial.steady_s` is 0."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SecuritySpec:
    """How to reach a secured cluster; the password comes from `${ENV_VAR}` and is never shown."""

    protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterSpec:
    bootstrap_servers: str = EMBEDDED
    security: SecuritySpec = field(default_factory=SecuritySpec)
    topic_prefix: str = "tuner."
    """Only topics whose name starts with this are ever created, written or deleted."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicSpec:
    name: str = "tuner.quickstart"
    partitions: int = 6
    replication_factor: int = 1
    create: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class ProducerSpec:
    """Live producer load that Locust drives during a trial (`users: 0` means prefill only)."""

    users: int = 0
    spawn_rate: float = 10.0
    rate_per_user: float = 0.0
    """Target records/s per user; 0 means as fast as the producer can go."""
    acks: Literal["0", "1", "all"] = "1"
    linger_ms: int = 5
    compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = "none"
    batch_bytes: int = 65536


@dataclass(frozen=True, slots=True, kw_only=True)
class ShapeSpec:
    """Locust load shape: constant users, a step ramp, or a spike."""

    kind: Literal["constant", "step", "spike"] = "constant"
    step_users: int = 1
    step_every_s: float = 10.0
    spike_users: int = 0
    spike_at_s: float = 0.0
    spike_for_s: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class LocustSpec:
    """`master`: the trial's Locust only coordinates; `expect_workers` workers produce."""

    mode: Literal["local", "master"] = "local"
    expect_workers: int = 0
    master_port: int = 5557


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkloadSpec:
    message_bytes: int = 512
    prefill_records: int = 200_000
    key_distribution: Literal["uniform", "zipf", "none"] = "uniform"
    producer: ProducerSpec = field(default_factory=ProducerSpec)
    shape: ShapeSpec = field(default_factory=ShapeSpec)
    locust: LocustSpec = field(default_factory=LocustSpec)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessingSpec:
    """Simulated per-record work; `async` awaits (yields the loop), `cpu` burns CPU in the loop."""

    per_record_ms: float = 0.0
    distribution: Literal["constant", "exponential", "lognormal"] = "constant"
    p99_ms: float | None = None
    """Lognormal only: the 99th percentile per record; sets the spread around `per_record_ms`."""
    mode: Literal["async", "cpu"] = "async"
    per_batch_ms: float = 0.0
    """A fixed cost per processed batch (a database write or a commit round trip per poll)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerSpec:
    members: int = 3
    isolation: Literal["process", "task"] = "process"
    processing: ProcessingSpec = field(default_factory=ProcessingSpec)
    settings: Mapping[str, SettingValue] = field(default_factory=lambda: MappingProxyType({}))
    """Kafka (Java) property names → values; what a plain `tuner run` uses."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TrialSpec:
    warmup_s: float = 5.0
    measure_s: float = 20.0
    steady_s: float = 0.0
    """A steady-state window after the capacity window, where end-to-end latency is measured
    (live load at a set rate, no backlog); 0 = none, unless the objective needs latency
    (then `DEFAULT_STEADY_S`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsSpec:
    host: str = "127.0.0.1"
    port: int = 9400
    """0 picks a free port."""
    producer_port: int = 9401
    """Where the Locust process serves `tuner_producer_*` (0 = not served)."""
    java_compatible: bool = False
    """Also serve the Java client's metric names (as the JMX exporter gives them)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchSpec:
    trials: int = 20
    timeout_s: float | None = None
    sampler: Literal["tpe", "gp", "random", "grid"] = "tpe"
    seed: int | None = None
    n_startup_trials: int = 5
    pruner: Literal["none", "median", "halving"] = "median"
    """Stops hopeless trials early from their per-second throughput (after the startup trials)."""
    parameters: Mapping[str, ParameterSpec] | None = None
    """Kafka property → range; None searches the default space of `tuner.space`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConstraintsSpec:
    p99_latency_ms: float | None = None
    """The steady-state p99 end-to-end latency must stay under this (see `trial.steady_s`)."""
    max_poll_interval_headroom: float | None = None
    """Longest time between polls must stay under this fraction of max.poll.interval.ms."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectiveSpec:
    maximize: Literal["throughput"] = "throughput"
    minimize: Literal["p99_latency"] | None = None
    """Set it for a two-objective study: the result is a Pareto front of throughput against
    the steady-state p99 end-to-end latency (pruning is off then: Optuna prunes
    single-objective studies only)."""
    constraints: ConstraintsSpec = field(default_factory=ConstraintsSpec)

    @property
    def multi(self) -> bool:
        return self.minimize is not None

    @property
    def needs_latency(self) -> bool:
        """Whether a trial's steady-state latency is scored (an objective or a constraint)."""
        return self.minimize == "p99_latency" or self.constraints.p99_latency_ms is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfirmSpec:
    repeats: int = 3
    ablation_pairs: int = 2
    """Interleaved pairs per setting when ablating the best trial to its smallest change
    (2 x pairs runs per setting that differs from the baseline); 0 skips the ablation."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StudyMetaSpec:
    name: str = "tuner-study"
    storage: str | None = None
    """Optuna storage URL; None = a SQLite file in the output directory."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StudySpec:
    cluster: ClusterSpec = field(default_factory=ClusterSpec)
    topic: TopicSpec = field(default_factory=TopicSpec)
    workload: WorkloadSpec = field(default_factory=WorkloadSpec)
    consumer: ConsumerSpec = field(default_factory=ConsumerSpec)
    trial: TrialSpec = field(default_factory=TrialSpec)
    metrics: MetricsSpec = field(default_factory=MetricsSpec)
    search: SearchSpec = field(default_factory=SearchSpec)
    objective: ObjectiveSpec = field(default_factory=ObjectiveSpec)
    confirm: ConfirmSpec = field(default_factory=ConfirmSpec)
    study: StudyMetaSpec = field(default_factory=StudyMetaSpec)

    @property
    def steady_s(self) -> float:
        """The steady-state window a trial runs: `trial.steady_s`, or `DEFAULT_STEADY_S` when
        the objective needs latency and none is set."""
        if self.trial.steady_s > 0 or not self.objective.needs_latency:
            return self.trial.steady_s
        return DEFAULT_STEADY_S


# --- loading and validation ---------------------------------------------------------------


class ConfigError(Exception):
    """The config has problems; `problems` lists each as `path: message`."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))


def load_config(
    path: str | os.PathLike[str],
    *,
    overrides: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
) -> StudySpec:
    """Read a YAML config into a `StudySpec`, or raise one `ConfigError` with every problem."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError([f"cannot read {os.fspath(path)}: {exc.strerror or exc}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{os.fspath(path)}: not valid YAML{where}: {problem}"]) from None
    return parse_config({} if data is None else data, overrides=overrides, environ=environ)


def parse_config(
    data: object,
    *,
    overrides: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
) -> StudySpec:
    """Validate already-parsed YAML (plus `KEY=VALUE` overrides) into a `StudySpec`."""
    problems: list[str] = []
    if not isinstance(data, dict):
        raise ConfigError([f"the config must be a mapping of sections, got {_show(data)}"])
    data = copy.deepcopy(data)
    for item in overrides:
        _apply_override(data, item, problems)
    data = _substitute_env(data, "", os.environ if environ is None else environ, problems)
    spec = cast(StudySpec, _build(StudySpec, data, "", problems))
    _check_spec(spec, problems)
    if problems:
        raise ConfigError(problems)
    return spec


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _substitute_env(
    value: object, path: str, env: Mapping[str, str], problems: list[str]
) -> object:
    if isinstance(value, dict):
        return {k: _substitute_env(v, _join(path, str(k)), env, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute_env(v, f"{path}[{i}]", env, problems) for i, v in enumerate(value)]
    if isinstance(value, str):

        def lookup(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                problems.append(f"{path}: environment variable {name} is not set")
                return ""
            return env[name]

        return _ENV.sub(lookup, value)
    return value


def _apply_override(data: dict[str, Any], item: str, problems: list[str]) -> None:
    key, sep, raw = item.partition("=")
    if not sep or not key:
        problems.append(f"--set {item}: expected KEY=VALUE, e.g. consumer.members=2")
        return
    try:
        value = yaml.safe_load(raw) if raw else ""
    except yaml.YAMLError:
        value = raw
    parts = key.split(".")
    if parts[:2] == ["consumer", "settings"] and len(parts) > 2:
        parts = [*parts[:2], ".".join(parts[2:])]  # Kafka property names contain dots
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            problems.append(f"--set {item}: {part} is not a section")
            return
        node = child
    node[parts[-1]] = value


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _show(value: object) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _build(cls: type[Any], data: object, path: str, problems: list[str]) -> object:
    """A dataclass from a mapping: unknown keys, wrong types and bad choices become problems."""
    where = path or "the config"
    if data is None:
        data = {}
    if not isinstance(data, dict):
        problems.append(f"{where}: must be a mapping, got {_show(data)}")
        return None
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(str(key), sorted(known), n=1)
            hint = (
                f"; did you mean {close[0]!r}?"
                if close
                else f"; allowed: {', '.join(sorted(known))}"
            )
            problems.append(f"{_join(path, str(key))}: unknown key{hint}")
    kwargs: dict[str, object] = {}
    for f in fields(cls):
        if f.name in data:
            before = len(problems)
            value = _convert(hints[f.name], data[f.name], _join(path, f.name), problems)
            if len(problems) == before:  # a bad field keeps its default, so checks go on
                kwargs[f.name] = value
    return cls(**kwargs)


def _convert(hint: Any, value: object, path: str, problems: list[str]) -> object:
    if dataclasses.is_dataclass(hint):
        return _build(cast(type[Any], hint), value, path, problems)
    origin = get_origin(hint)
    args = get_args(hint)
    if origin is Literal:
        if value not in args:
            allowed = ", ".join(_show(a) for a in args)
            problems.append(f"{path}: must be one of {allowed}; got {_show(value)}")
        return value
    if origin in (types.UnionType, Union):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if inner == [int, bool, str] or set(inner) == {int, bool, str}:  # SettingValue
            return value
        return _convert(inner[0], value, path, problems)
    if origin is collections.abc.Mapping and dataclasses.is_dataclass(args[1]):
        if not isinstance(value, dict):
            problems.append(f"{path}: must be a mapping, got {_show(value)}")
            return None
        return MappingProxyType({
            str(k): _build(cast(type[Any], args[1]), v, f"{path}.{k}", problems)
            for k, v in value.items()
        })  # fmt: skip
    if origin is tuple:
        if not isinstance(value, list):
            problems.append(f"{path}: must be a list, got {_show(value)}")
            return None
        return tuple(value)
    if origin is collections.abc.Mapping:
        if not isinstance(value, dict):
            problems.append(
                f"{path}: must be a mapping of Kafka property names, got {_show(value)}"
            )
            return None
        return MappingProxyType(dict(value))
    if hint is bool:
        if not isinstance(value, bool):
            problems.append(f"{path}: must be true or false, got {_show(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{path}: must be an integer, got {_show(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(f"{path}: must be a number, got {_show(value)}")
            return value
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            problems.append(f"{path}: must be a string, got {_show(value)}")
        return value
    return value  # pragma: no cover - every field type above is handled


_TOPIC_NAME = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")


def _check_spec(spec: StudySpec, problems: list[str]) -> None:
    """Ranges and rules that need more than one field's type."""

    def need(ok: bool, path: str, message: str, value: object) -> None:
        if not ok:
            problems.append(f"{path}: {message}, got {_show(value)}")

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
        for name in spec.search.parameters:
            if name in c.settings:
                problems.append(
                    f"search.parameters.{name}: also fixed by consumer.settings.{name} "
                    f"({_show(c.settings[name])}): search it or fix it, not both"
                )
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
