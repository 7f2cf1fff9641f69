"""The YAML config, as frozen dataclasses: what a study or a single run is asked to do."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from tuner.clients import ClientName
from tuner.protocol import GroupProtocol
from tuner.settings import ParameterSpec, SettingValue

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
class NetworkSpec:
    """The path between the clients and the embedded broker: round trip, its spread, bandwidth.

    Each direction is delayed by half of `rtt_ms`, plus up to ±`jitter_ms`/2 (never reordering
    bytes); `bandwidth_mbit` caps each direction, shared by all connections (None: uncapped).
    """

    rtt_ms: float = 0.0
    jitter_ms: float = 0.0
    bandwidth_mbit: float | None = None

    def describe(self) -> str:
        """`RTT 20 ms ±2 ms, 100 Mbit/s`: how reports and `tuner run` name the profile."""
        jitter = f" ±{self.jitter_ms:g} ms" if self.jitter_ms else ""
        bandwidth = (
            "uncapped bandwidth"
            if self.bandwidth_mbit is None
            else f"{self.bandwidth_mbit:g} Mbit/s"
        )
        return f"RTT {self.rtt_ms:g} ms{jitter}, {bandwidth}"


def describe_path(network: NetworkSpec | None) -> str:
    """The path between clients and broker as reports name it."""
    if network is None:
        return "loopback, no network profile"
    return f"{network.describe()}, through the network proxy"


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterSpec:
    bootstrap_servers: str = EMBEDDED
    security: SecuritySpec = field(default_factory=SecuritySpec)
    topic_prefix: str = "tuner."
    """Only topics whose name starts with this are ever created, written or deleted."""
    network: NetworkSpec | None = None
    """Embedded broker only: clients reach it through a proxy with this delay and bandwidth."""
    brokers: int = 1
    """Embedded only: how many brokers the cluster `tuner` starts has (1, or 3 for replicated
    topics and `trial.faults`); a running `tuner broker up --brokers N` is used if N matches."""
    kafka_version: str | None = None
    """Embedded only: the Apache Kafka release the tuner starts (None: `KAFKA_HOME`'s, else the
    default `tuner.broker.KAFKA_VERSION`); a running `tuner broker` is used if it runs it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicSpec:
    name: str = "tuner.quickstart"
    partitions: int = 6
    replication_factor: int = 1
    min_insync_replicas: int | None = None
    """Set on the topic when it is created (None: the broker's default, 1)."""
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
class SizeSpec:
    """Record value sizes drawn from a distribution (`message_bytes: {distribution: …}`)."""

    distribution: Literal["lognormal", "exponential"] = "lognormal"
    mean: float = 512.0
    p99: float | None = None
    """Lognormal only (and required there): the 99th percentile, which sets the spread."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PayloadsSpec:
    """The user's records: a file or directory (`file`), or a read-only sample of a topic.

    The loader resolves `file` against the config file's directory. After a topic is sampled,
    `file` names the local sample and `topic` still says where it came from.
    """

    file: str | None = None
    format: Literal["values", "records"] = "values"
    """`values`: each line (or each file of a directory) is one value, as it is; `records`:
    each line is `{"key": …, "value": …, "headers": {…}}`."""
    topic: str | None = None
    sample_records: int = 10_000
    order: Literal["round_robin", "random"] = "round_robin"
    seed: int = 0
    """The seed of `order: random`."""

    @property
    def file_format(self) -> Literal["values", "records"]:
        """How `file` reads: a topic's sample keeps keys and headers, as `records`."""
        return "records" if self.topic is not None else self.format

    def describe(self) -> str:
        """`file samples.jsonl (values)` or `topic orders (a sample of 10,000 records)`."""
        if self.topic is not None:
            return f"topic {self.topic!r} (a read-only sample of {self.sample_records:,} records)"
        return f"file {self.file} ({self.format})"


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkloadSpec:
    message_bytes: int | SizeSpec = 512
    """A fixed value size, or a distribution of sizes; unused with `payloads`."""
    payloads: PayloadsSpec | None = None
    prefill_records: int | None = None
    """The backlog a trial starts from; None: sized from the group's measured rate (a small
    first backlog, topped up before the window). Either way it is grown when it runs short."""
    key_distribution: Literal["uniform", "zipf", "none"] = "uniform"
    producer: ProducerSpec = field(default_factory=ProducerSpec)
    shape: ShapeSpec = field(default_factory=ShapeSpec)
    locust: LocustSpec = field(default_factory=LocustSpec)

    @property
    def mean_message_bytes(self) -> int:
        """The mean value size: what sizes a backlog in bytes and what advisor facts use (the
        loader sets it to the payloads' mean when there are payloads)."""
        size = self.message_bytes
        return size if isinstance(size, int) else max(1, round(size.mean))


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
class HandlerSpec:
    """The user's batch handler, instead of the processing model: `file.py:function` (a file
    relative to the config file) or `package.module:function`.

    `setup` and `teardown` run once per member process, before it joins the group and after
    it has left; a bare name refers to the function's module. Any of the three may be `async`.
    """

    function: str = ""
    setup: str | None = None
    teardown: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceSpec:
    """The team's own consumer process, run unchanged as each member of the group.

    The tuner injects itself at the child interpreter's start (`tuner.consumer.service`):
    the trial's cluster, group, topic and settings replace the service's own, so the service
    needs no change and never touches its production group or topics.
    """

    command: tuple[str, ...] = ()
    """The command line as its words (`command: faststream run billing:app` is split as a
    shell would split it); it runs in the service's own interpreter and virtualenv."""
    topic: str = ""
    """The topic the service's code subscribes to; inside a trial it becomes the trial's."""
    cwd: str | None = None
    """Where the command runs, relative to the config file (default: the config's directory);
    the loader makes it absolute."""
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """Extra environment variables for the service (the tuner's own environment is passed
    on too)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerSpec:
    members: int = 3
    client: ClientName = "aiokafka"
    """Which Python client the members are: each is measured for real, with its own defaults."""
    group_protocol: GroupProtocol = "classic"
    """`consumer`: KIP-848's protocol (confluent-kafka only); the broker assigns partitions,
    and session.timeout.ms / heartbeat.interval.ms become the group's configs."""
    isolation: Literal["process", "task"] = "process"
    processing: ProcessingSpec = field(default_factory=ProcessingSpec)
    handler: HandlerSpec | None = None
    """The user's own code processes each batch (then `processing` must not be given)."""
    service: ServiceSpec | None = None
    """The team's own service process is each member (then neither `handler` nor
    `processing` may be given)."""
    settings: Mapping[str, SettingValue] = field(default_factory=lambda: MappingProxyType({}))
    """Kafka (Java) property names → values; what a plain `tuner run` uses."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultSpec:
    """A broker of the embedded multi-broker cluster stopped mid-trial; it is restarted after
    the trial, so the next one runs on every broker again."""

    stop_broker: int = 0
    """The broker's id: 1…`cluster.brokers` (`tuner broker up --brokers N` numbers them from
    its first port)."""
    at_s: float = 0.0
    """Seconds after the measurement window starts."""
    kill: bool = False
    """SIGKILL, a crash the controller notices when the broker's session expires; default
    SIGTERM, Kafka's controlled shutdown, which moves the broker's leaders first."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TrialSpec:
    warmup_s: float = 5.0
    measure_s: float = 20.0
    faults: tuple[FaultSpec, ...] = ()
    measure_through_faults: bool = False
    """False: a trial with a fault is failed, its reason naming the broker and the leader
    changes seen. True: it is measured, with the failover time in its result."""
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
    """Kafka property → range; None searches the default space of `tuner.search.space`."""


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
    """Interleaved pairs each setting that differs from the baseline starts with when ablating
    the best trial to its smallest change (more, up to `tuner.recommend.judge.MAX_PAIRS`, while
    its effect is close to the tolerance); 0 skips the ablation."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StudyMetaSpec:
    name: str = "tuner-study"
    storage: str | None = None
    """Optuna storage URL; None = a SQLite file in the output directory."""
    budget: str | None = None
    """How long the whole study may take (`10m`, `1h30m`, `900s`): the trials, ablation pairs
    and confirmation repeats are planned to end within it (`tuner.search.budget`); None: as
    `search` and `confirm` say."""


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
