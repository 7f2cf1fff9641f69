"""What the `tuner run` and `tuner optimize` commands share: loading the config, checking the
ports, saying that a broker starts, and turning a cluster's refusal into an exit code."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from tuner import broker, metrics
from tuner.cli.exits import EXIT_BAD_INPUT, EXIT_FAILURE
from tuner.cli.exits import err as _err
from tuner.cluster.access import AccessError, redact_in_logs
from tuner.cluster.admin import ClusterError, UnreachableError
from tuner.cluster.sample import PayloadTopicDeniedError
from tuner.config import EMBEDDED, ConfigError, StudySpec, describe_path, load_config


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def cluster_mismatch(exc: ClusterError, *, debug: bool) -> int:
    """The cluster disagrees with the config (a topic's partition count, a missing topic, too
    few brokers) or refuses its credentials, certificate, protocol or (an ACL) an operation on
    the payload topic: bad input, since only the config or the cluster's ACLs fix it. A
    cluster that did not answer at all is a failure. Under `--debug` the traceback comes
    first, with the client's own error that caused it."""
    if debug:
        traceback.print_exception(exc)
    if isinstance(exc, UnreachableError):
        _err(str(exc))
        return EXIT_FAILURE
    what = (
        "refused the connection"
        if isinstance(exc, AccessError)
        else "refused access"
        if isinstance(exc, PayloadTopicDeniedError)
        else "does not match the config"
    )
    _err(f"the cluster {what}: {exc}")
    return EXIT_BAD_INPUT


def ports_free(spec: StudySpec) -> bool:
    """Whether the metrics ports are free (else says which is taken): checked before a broker,
    topic or process is started, since binding them comes after."""
    try:
        metrics.check_ports(spec.metrics, producer=spec.workload.producer.users > 0)
    except metrics.PortInUseError as exc:
        _err(str(exc))
        return False
    return True


def load_spec(path: Path, overrides: Sequence[str] = ()) -> StudySpec | None:
    """The config, or None after printing every problem in it."""
    try:
        spec = load_config(path, overrides=overrides)
    except ConfigError as exc:
        _err(f"{path}: invalid config:\n{exc}")
        return None
    redact_in_logs(spec.cluster.security.password)
    return spec


def say_broker_start(spec: StudySpec, quiet: bool) -> None:
    """The embedded broker takes seconds to start (and a minute to fetch its jars the first
    time): say so rather than sit silent."""
    network = spec.cluster.network
    if (
        not quiet
        and spec.cluster.bootstrap_servers == EMBEDDED
        and broker.reusable(network, spec.cluster.brokers, spec.cluster.kafka_version) is None
    ):
        try:
            release = broker.resolved_version(spec.cluster.kafka_version)
        except broker.BrokerError:
            return  # the start fails next, saying why
        print(
            f"starting Apache Kafka {release} "
            "on 127.0.0.1 for this run "
            f"(network: {describe_path(network)}; `tuner broker up` keeps one running) …",
            file=sys.stderr,
            flush=True,
        )
