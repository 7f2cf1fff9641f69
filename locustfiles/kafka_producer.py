"""Producer load for Kafka from Locust: `locust -f locustfiles/kafka_producer.py`.

Each Locust process shares one confluent-kafka (librdkafka) producer: `produce()` never blocks
and a greenlet serves delivery reports with `poll(0)`, which fits gevent; a blocking `flush()`
per message would cap a user at a few hundred records/s. Every delivery is counted in Locust's
statistics as a request (type `produce`, name = topic, response time = produce → delivery
report), written in bulk every `FLUSH_EVERY_S` rather than one request event per record, which
cost more than producing the record itself; failures still go through Locust's request event.
Settings come from the command line or the web UI form (the `--kafka-*` options below);
`tuner run` passes the YAML `workload` section the same way. Step and spike load shapes live
in `shapes.py`: `locust -f locustfiles/kafka_producer.py,locustfiles/shapes.py`.
"""

from __future__ import annotations

import collections
import itertools
import math
import os
import random
import signal
import time
from collections.abc import Mapping, Sequence
from typing import Any

import gevent
from confluent_kafka import KafkaError, Message, Producer
from locust import User, constant_throughput, events, task
from locust.env import Environment
from locust.runners import MasterRunner
from locust.stats import StatsEntry, bucket_response_time
from prometheus_client import CollectorRegistry, start_http_server

from tuner.load.runner import SASL_PASSWORD_ENV
from tuner.load.stats import StatsLine
from tuner.metrics import SEND_LATENCY_BUCKETS, ProducerMetrics
from tuner.payloads.pool import Pool, build_pool

BURST = 200
"""Records one unpaced task produces before yielding, so Locust's per-task cost is amortised."""

PACED_TASKS_PER_S = 100

KEY_DRAWS = 1 << 17
"""Keys drawn ahead from the configured distribution and then repeated in that order."""

FLUSH_EVERY_S = 0.05
"""How often deliveries are written to Locust's statistics and the Prometheus counters."""

_registry = CollectorRegistry(auto_describe=False)
_metrics: dict[str, ProducerMetrics] = {}


@events.init_command_line_parser.add_listener
def _add_options(parser: Any) -> None:
    group = parser  # Locust reads include_in_web_ui only on the parser itself
    group.add_argument("--kafka-bootstrap", default="127.0.0.1:9092", help="bootstrap servers")
    group.add_argument("--kafka-topic", default="tuner.quickstart", help="topic to produce to")
    group.add_argument(
        "--payloads", default="",
        help="payload source: a file (one value per line, or records with --payloads-format "
        "records) or a directory (one value per file); empty: random values of --message-bytes",
    )  # fmt: skip
    group.add_argument(
        "--payloads-format", choices=["values", "records"], default="values",
        help='records: one {"key": …, "value": …, "headers": {…}} object per line',
    )  # fmt: skip
    group.add_argument(
        "--payloads-order", choices=["round_robin", "random"], default="round_robin",
        help="the order payloads are written in (random: seeded by --payloads-seed)",
    )  # fmt: skip
    group.add_argument("--payloads-seed", type=int, default=0, help="seed of a random order")
    group.add_argument("--message-bytes", type=int, default=512, help="record value size (mean)")
    group.add_argument(
        "--size-distribution", choices=["constant", "lognormal", "exponential"],
        default="constant", help="value sizes around --message-bytes (without --payloads)",
    )  # fmt: skip
    group.add_argument(
        "--size-tail",
        type=float,
        default=0.0,
        help="lognormal value sizes: their 99th percentile (p99) in bytes",
    )
    group.add_argument(
        "--key-distribution", choices=["uniform", "zipf", "none"], default="uniform",
        help="record keys: uniform over 10,000 keys, zipf (hot keys), or none",
    )  # fmt: skip
    group.add_argument("--acks", choices=["0", "1", "all"], default="1", help="producer acks")
    group.add_argument("--linger-ms", type=int, default=5, help="producer linger.ms")
    group.add_argument(
        "--compression", choices=["none", "gzip", "snappy", "lz4", "zstd"], default="none",
        help="compression.type",
    )  # fmt: skip
    group.add_argument("--batch-bytes", type=int, default=65536, help="producer batch.size")
    group.add_argument(
        "--rate-per-user", type=float, default=0.0, help="records/s per user; 0 = unpaced"
    )
    group.add_argument(
        "--shape", choices=["constant", "step", "spike"], default="constant",
        help="constant users; step: +step-users every step-every-s; spike: spike-users extra",
    )  # fmt: skip
    group.add_argument("--step-users", type=int, default=1, help="users added per step")
    group.add_argument("--step-every-s", type=float, default=10.0, help="seconds per step")
    group.add_argument("--spike-users", type=int, default=0, help="extra users in the spike")
    group.add_argument("--spike-at-s", type=float, default=0.0, help="spike start (s)")
    group.add_argument("--spike-for-s", type=float, default=0.0, help="spike length (s)")
    group.add_argument(
        "--kafka-security-protocol", default="PLAINTEXT",
        choices=["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"],
        help=f"security.protocol; with SASL the password comes from ${SASL_PASSWORD_ENV} only",
    )  # fmt: skip
    group.add_argument(
        "--kafka-sasl-mechanism", default="SCRAM-SHA-512",
        choices=["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"], help="sasl.mechanisms",
    )  # fmt: skip
    group.add_argument("--kafka-sasl-username", default="", help="sasl.username")
    group.add_argument(
        "--kafka-ssl-ca", default="", help="ssl.ca.location: PEM file of the brokers' CA"
    )
    group.add_argument(
        "--metrics-host", default="127.0.0.1", include_in_web_ui=False,
        help="address the metrics port listens on (0.0.0.0 for a Prometheus in a container)",
    )  # fmt: skip
    group.add_argument(
        "--metrics-port", type=int, default=0, include_in_web_ui=False,
        help="serve tuner_producer_* metrics for Prometheus on this port (0 = off)",
    )  # fmt: skip
    group.add_argument(
        "--stats-file", default="", include_in_web_ui=False,
        help="append a JSON line of cumulative counts every second (read by `tuner run`)",
    )  # fmt: skip


def _options(environment: Environment) -> Any:
    """Locust's parsed options, with our `--kafka-*` arguments (always set once Locust runs)."""
    if environment.parsed_options is None:
        raise RuntimeError("kafka_producer needs Locust's command line options")
    return environment.parsed_options


class _Kafka:
    """The one producer of this Locust process, and its delivery bookkeeping."""

    def __init__(self, environment: Environment) -> None:
        opts = _options(environment)
        self.environment = environment
        self.topic: str = opts.kafka_topic
        self.pool = _pool(opts)
        self.next_record = self.pool.writer()
        self.keys = _key_source(opts.key_distribution)
        # librdkafka's threads inherit this mask: with SIGTERM blocked in them, the kernel
        # delivers it to the main thread, where Locust's handler stops the run cleanly;
        # otherwise a librdkafka thread may take it and the process dies with no final stats.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
        try:
            self.producer = self._producer(opts, bootstrap_of(environment))
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        if self.topic not in _metrics:
            _metrics[self.topic] = ProducerMetrics(_registry, topic=self.topic)
        self.metrics = _metrics[self.topic]
        self.sent = 0
        self.failed = 0
        self.last_error = ""
        self._latencies: list[float] = []
        """Seconds from produce() to acknowledgement, of deliveries not yet reported."""
        self._bytes = 0
        """Value bytes of those deliveries."""
        self._errors: list[tuple[float, str]] = []
        self._poller = gevent.spawn(self._poll_forever)

    @staticmethod
    def _producer(opts: Any, bootstrap: str) -> Producer:
        return Producer({
            "bootstrap.servers": bootstrap,
            "acks": opts.acks,
            "linger.ms": opts.linger_ms,
            "compression.type": opts.compression,
            "batch.size": opts.batch_bytes,
            "queue.buffering.max.messages": 500_000,
            "message.timeout.ms": 10_000,
            "client.id": "tuner-locust",
            "partitioner": "murmur2_random",  # Java's (and the prefill's) partition per key
            **security_config(opts, os.environ),
        })  # fmt: skip

    def _poll_forever(self) -> None:
        flushed = time.monotonic()
        while True:
            served = self.producer.poll(0)
            if time.monotonic() - flushed >= FLUSH_EVERY_S:
                self.report()
                flushed = time.monotonic()
            gevent.sleep(0 if served else 0.002)

    def _delivered(self, err: KafkaError | None, msg: Message) -> None:
        """librdkafka's delivery report: only noted here; `report` does the bookkeeping."""
        latency = msg.latency() or 0.0  # produce() → acknowledgement, timed by librdkafka
        if err is None:
            self._latencies.append(latency)
            self._bytes += len(msg)
        else:
            self._errors.append((latency, str(err)))

    def report(self) -> None:
        """Write the deliveries since the last call to Locust's statistics and Prometheus."""
        latencies, self._latencies = self._latencies, []
        errors, self._errors = self._errors, []
        delivered, self._bytes = self._bytes, 0
        size = round(delivered / len(latencies)) if latencies else 0
        if latencies:
            self.sent += len(latencies)
            self.metrics.delivered(latencies, size, total_bytes=delivered)
            stats = self.environment.stats
            entry = stats.entries[(self.topic, "produce")]  # created on first use
            log_requests(entry, stats.total, [lat * 1000 for lat in latencies], size)
        for latency, error in errors:
            self.failed += 1
            self.metrics.errors.inc()
            self.last_error = error
            self.environment.events.request.fire(
                request_type="produce", name=self.topic, response_time=latency * 1000,
                response_length=size, exception=RuntimeError(error), context={},
            )  # fmt: skip

    def produce(self) -> None:
        record = self.next_record()
        key = record.key if self.pool.own_keys else self.keys()
        headers: list[tuple[str, str | bytes | None]] | None = list(record.headers) or None
        while True:
            try:
                self.producer.produce(
                    self.topic, record.value, key=key, headers=headers,
                    on_delivery=self._delivered, timestamp=int(time.time() * 1000),
                )  # fmt: skip
                return
            except BufferError:  # librdkafka's queue is full: let deliveries drain first
                self.producer.poll(0)
                gevent.sleep(0.001)

    def close(self) -> None:
        self._poller.kill()
        self.producer.flush(10)
        self.report()


def security_config(opts: Any, environ: Mapping[str, str]) -> dict[str, str]:
    """librdkafka's security settings from the `--kafka-*` options; the SASL password from
    the environment only (options show in `ps`, the web UI, and travel to workers)."""
    protocol: str = opts.kafka_security_protocol
    conf = {"security.protocol": protocol}
    if protocol.startswith("SASL"):
        password = environ.get(SASL_PASSWORD_ENV, "")
        if not password or not opts.kafka_sasl_username:
            raise RuntimeError(
                f"--kafka-security-protocol {protocol} needs --kafka-sasl-username and the "
                f"password in the environment variable {SASL_PASSWORD_ENV}"
            )
        conf |= {
            "sasl.mechanisms": opts.kafka_sasl_mechanism,
            "sasl.username": opts.kafka_sasl_username,
            "sasl.password": password,
        }
    if protocol.endswith("SSL") and opts.kafka_ssl_ca:
        conf["ssl.ca.location"] = opts.kafka_ssl_ca
    return conf


def log_requests(
    entry: StatsEntry, total: StatsEntry, response_times_ms: Sequence[float], length: int
) -> None:
    """`StatsEntry.log` for many requests at once, into the entry and the total row: the same
    fields end up with the same values as one `log` call per request would give them."""
    now = time.time()
    second = int(now)
    n = len(response_times_ms)
    buckets = collections.Counter(bucket_response_time(ms) for ms in response_times_ms)
    low, high, summed = min(response_times_ms), max(response_times_ms), sum(response_times_ms)
    for e in (entry, total):
        previous = e.last_request_timestamp
        if e.use_response_times_cache and previous and second > int(previous):
            e._cache_response_times(second - 1)  # what `log` does here too
        e.num_requests += n
        e.num_reqs_per_sec[second] += n
        e.last_request_timestamp = now
        e.total_content_length += n * length
        # Locust annotates these as int, yet logs float milliseconds itself (HttpSession)
        e.total_response_time += summed  # type: ignore[assignment]
        e.min_response_time = low if e.min_response_time is None else min(e.min_response_time, low)  # type: ignore[assignment]
        e.max_response_time = max(e.max_response_time, high)  # type: ignore[assignment]
        for bucket, count in buckets.items():
            e.response_times[bucket] += count


def _pool(opts: Any) -> Pool:
    """The records to write, from the `--payloads*`/size options (as the prefill builds them)."""
    distribution = None if opts.size_distribution == "constant" else opts.size_distribution
    return build_pool(
        message_bytes=opts.message_bytes, distribution=distribution,
        p99=opts.size_tail or None, file=opts.payloads or None, fmt=opts.payloads_format,
        order=opts.payloads_order, seed=opts.payloads_seed,
    )  # fmt: skip


def _key_source(kind: str) -> Any:
    rng = random.Random(1)
    if kind == "none":
        return lambda: None
    keys = [b"k%d" % i for i in range(10_000)]
    weights = [1.0 / (rank + 1) for rank in range(len(keys))] if kind == "zipf" else None
    # Drawn once and cycled: a fresh draw per record cost as much as producing it.
    return itertools.cycle(rng.choices(keys, weights, k=KEY_DRAWS)).__next__


_kafka: _Kafka | None = None


@events.test_start.add_listener
def _start(environment: Environment, **_: Any) -> None:
    global _kafka  # noqa: PLW0603 - one producer per Locust process, created per test run
    if isinstance(environment.runner, MasterRunner):
        if _options(environment).stats_file:
            gevent.spawn(_write_master_stats, _options(environment).stats_file, environment)
        return
    _kafka = _Kafka(environment)
    opts = _options(environment)
    if opts.stats_file:
        gevent.spawn(_write_stats, opts.stats_file, _kafka)


@events.init.add_listener
def _show_cluster_as_host(environment: Environment, **_: Any) -> None:
    """The web UI's Host field shows the cluster (Locust warns of a missing host otherwise)."""
    global _shown_host  # noqa: PLW0603 - what the form showed, to tell whether it was edited
    opts = environment.parsed_options
    if opts is not None and not environment.host:
        environment.host = _shown_host = opts.kafka_bootstrap


def bootstrap_of(environment: Environment) -> str:
    """The cluster to produce to: `--kafka-bootstrap`, or the Host field if only it was edited."""
    opts = _options(environment)
    host = (environment.host or "").strip()
    if host and host != _shown_host and opts.kafka_bootstrap == _shown_host:
        return host
    return str(opts.kafka_bootstrap)


_shown_host = ""


@events.init.add_listener
def _serve_metrics(environment: Environment, **_: Any) -> None:
    """Each producing process serves its own counters (give each worker its own port)."""
    opts = environment.parsed_options
    if opts is not None and opts.metrics_port and not isinstance(environment.runner, MasterRunner):
        start_http_server(opts.metrics_port, addr=opts.metrics_host, registry=_registry)


@events.test_stop.add_listener
def _stop(environment: Environment, **_: Any) -> None:
    if _kafka is not None:
        _kafka.close()
        if _options(environment).stats_file:
            _append_stats(_options(environment).stats_file, _kafka)


def _append_stats(path: str, kafka: _Kafka) -> None:
    hist = kafka.metrics.send_latency
    buckets = dict(zip(hist._upper_bounds, _cumulative(hist), strict=True))
    StatsLine(
        at=time.time(), sent=kafka.sent, failed=kafka.failed, last_error=kafka.last_error,
        latency_buckets=buckets,
    ).append_to(path)  # fmt: skip


def _cumulative(hist: Any) -> list[float]:
    total, out = 0.0, []
    for bucket in hist._buckets:  # prometheus-client keeps per-bucket counts here
        total += bucket.get()
        out.append(total)
    return out


def _write_master_stats(path: str, environment: Environment) -> None:
    """On a master, the same lines from the workers' aggregated `produce` statistics."""
    bounds = list(SEND_LATENCY_BUCKETS)
    while True:
        entry = environment.stats.total
        failed = entry.num_failures
        times = sorted(entry.response_times.items())  # rounded ms → count
        cumulative = [float(sum(n for ms, n in times if ms <= b * 1000)) for b in bounds]
        sent = entry.num_requests - failed
        StatsLine(
            at=time.time(), sent=sent, failed=failed, last_error="",
            latency_buckets={**dict(zip(bounds, cumulative, strict=True)), math.inf: float(sent)},
        ).append_to(path)  # fmt: skip
        gevent.sleep(1.0)


def _write_stats(path: str, kafka: _Kafka) -> None:
    while True:
        _append_stats(path, kafka)
        gevent.sleep(1.0)


class KafkaProducerUser(User):
    """Produces records; unpaced (`--rate-per-user 0`) it sends bursts of `BURST`."""

    def on_start(self) -> None:
        rate = float(_options(self.environment).rate_per_user)
        # Locust's per-task cost caps one task loop at a few thousand runs/s, so a high
        # target rate is paced in bursts of `burst` records, ~PACED_TASKS_PER_S times a second.
        self._burst = BURST if rate <= 0 else max(1, int(rate // PACED_TASKS_PER_S))
        self._pace = constant_throughput(rate / self._burst) if rate > 0 else None

    def wait_time(self) -> float:
        """Locust's constant_throughput: the task's own time counts towards the target rate."""
        return 0.0 if self._pace is None else float(self._pace(self))

    @task
    def produce(self) -> None:
        if _kafka is None:
            return
        for _ in range(self._burst):
            _kafka.produce()
