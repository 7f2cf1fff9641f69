"""Where trials run: the config's cluster, checked before anything is created, with the
trials' metrics served while they run. `tuner run` and `tuner optimize` both enter it once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

from prometheus_client import CollectorRegistry

from tuner import broker, metrics
from tuner.cluster import admin as cluster
from tuner.cluster.admin import Connection
from tuner.config import StudySpec


@contextlib.contextmanager
def measuring_on(spec: StudySpec, registry: CollectorRegistry) -> Iterator[Connection]:
    """Serve `registry` on the config's metrics port and yield a connection to its cluster,
    one that passed `preflight`.

    With `bootstrap_servers: embedded` the running `tuner broker` is used, or one is started
    for the block. Raises `broker.BrokerError` if it cannot start and `ClusterError` if the
    cluster cannot hold the topic (refused before anything is created on it)."""
    with (
        metrics.serve(
            registry,
            host=spec.metrics.host,
            port=spec.metrics.port,
            java_compatible=spec.metrics.java_compatible,
        ),
        broker.for_cluster(spec.cluster) as bootstrap,
    ):
        conn = Connection(bootstrap_servers=bootstrap, cluster=spec.cluster)
        asyncio.run(cluster.preflight(conn, spec.topic))
        yield conn
