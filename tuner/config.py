"""The YAML config, as frozen dataclasses: what a study or a single run is asked to do.

`load_config` turns a file into a `StudySpec` or raises one `ConfigError` that lists
every problem with its field path; nothing is started before a config has loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

SettingValue = int | bool | str
"""A consumer setting's value, keyed elsewhere by its Java property name."""

EMBEDDED = "embedded"
"""`cluster.bootstrap_servers` value that asks for the broker `tuner broker` runs on this machine."""


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
    mode: Literal["local", "master"] = "local"
    expect_workers: int = 0


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


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsSpec:
    host: str = "127.0.0.1"
    port: int = 9400
    """0 picks a free port."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StudySpec:
    cluster: ClusterSpec = field(default_factory=ClusterSpec)
    topic: TopicSpec = field(default_factory=TopicSpec)
    workload: WorkloadSpec = field(default_factory=WorkloadSpec)
    consumer: ConsumerSpec = field(default_factory=ConsumerSpec)
    trial: TrialSpec = field(default_factory=TrialSpec)
    metrics: MetricsSpec = field(default_factory=MetricsSpec)
