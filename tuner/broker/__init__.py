"""The embedded Apache Kafka broker: one KRaft node on 127.0.0.1, its jars, and the one detached
broker `tuner broker` keeps.

`embedded` runs a broker (behind the network proxy when a profile asks), `jars` finds what it
runs, `properties` writes its config, `security` and `tls` add the SASL_SSL and SSL listeners
of `--secure` with their certificates, `detached` keeps one running between commands and picks
the bootstrap address a run uses.
"""

from __future__ import annotations

from tuner.broker.detached import (
    DEFAULT_PORT,
    bootstrap_for,
    down,
    for_cluster,
    is_our_proxy,
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
    answers,
    free_port,
    port_in_use,
)
from tuner.broker.errors import BrokerError, BrokerFailure, BrokerSetupError
from tuner.broker.jars import KAFKA_VERSION, cache_dir, check_java, classpath
from tuner.broker.properties import ShapedListener, server_properties

__all__ = [
    "DEFAULT_PORT", "HEAP", "KAFKA_VERSION", "START_TIMEOUT_S", "BrokerError", "BrokerFailure",
    "BrokerInfo", "BrokerSetupError", "EmbeddedBroker", "ShapedListener", "answers",
    "bootstrap_for", "cache_dir", "check_java", "classpath", "down", "for_cluster", "free_port",
    "is_our_proxy", "port_in_use", "reusable", "running", "server_properties", "status", "up",
]  # fmt: skip
