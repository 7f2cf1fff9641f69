"""The embedded Apache Kafka broker: one KRaft node on 127.0.0.1 (or a cluster of several), its
jars, and the detached brokers `tuner broker` keeps.

`embedded` runs a broker (behind the network proxy when a profile asks), `multi` a controller
and several brokers, `jars` finds what they run, `properties` writes their configs, `security`
and `tls` add the SASL_SSL and SSL listeners of `--secure` with their certificates, `detached`
keeps them running between commands and picks the bootstrap address a run uses.
"""

from __future__ import annotations

from tuner.broker.detached import (
    DEFAULT_PORT,
    bootstrap_for,
    controllable,
    down,
    for_cluster,
    is_our_proxy,
    release_at,
    reusable,
    running,
    status,
    up,
)
from tuner.broker.embedded import (
    HEAP,
    START_TIMEOUT_S,
    BrokerInfo,
    EmbeddedBroker,
    NodeInfo,
    answers,
    free_port,
    port_in_use,
)
from tuner.broker.errors import BrokerError, BrokerFailure, BrokerSetupError
from tuner.broker.jars import (
    cache_dir,
    check_java,
    classpath,
    resolved_version,
    tools_classpath,
)
from tuner.broker.multi import EmbeddedCluster, live_broker_ids
from tuner.broker.properties import ShapedListener, server_properties
from tuner.config.topology import KAFKA_VERSION, MAX_BROKERS, TESTED_VERSIONS

__all__ = [
    "DEFAULT_PORT",
    "HEAP",
    "KAFKA_VERSION",
    "MAX_BROKERS",
    "START_TIMEOUT_S",
    "TESTED_VERSIONS",
    "BrokerError",
    "BrokerFailure",
    "BrokerInfo",
    "BrokerSetupError",
    "EmbeddedBroker",
    "EmbeddedCluster",
    "NodeInfo",
    "ShapedListener",
    "answers",
    "bootstrap_for",
    "cache_dir",
    "check_java",
    "classpath",
    "controllable",
    "down",
    "for_cluster",
    "free_port",
    "is_our_proxy",
    "live_broker_ids",
    "port_in_use",
    "release_at",
    "resolved_version",
    "reusable",
    "running",
    "server_properties",
    "status",
    "tools_classpath",
    "up",
]  # fmt: skip
