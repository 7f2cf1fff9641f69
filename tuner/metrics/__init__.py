"""Every Prometheus metric the tuner exports, and reading windows of them back.

The one place metric names are defined: instruments (`tuner_*`), their Java-client names,
serving them, and the window maths the trial scores with. Callers import from here.
"""

from __future__ import annotations

from tuner.metrics.instruments import (
    PREFIX,
    SEND_LATENCY_BUCKETS,
    ConsumerMetrics,
    ProducerMetrics,
    StudyMetrics,
    observe_many,
)
from tuner.metrics.java import JavaCompatibleCollector
from tuner.metrics.java_names import (
    APP_INFO,
    JAVA_CONSUMER,
    JAVA_COORDINATOR,
    JAVA_FETCH,
    JAVA_MAPPINGS,
    JAVA_NODE,
    JavaMapping,
)
from tuner.metrics.serve import PortInUseError, check_ports, exposed, serve
from tuner.metrics.window import (
    GroupWindow,
    RegistrySnapshot,
    delta_buckets,
    histogram_quantile,
)

__all__ = [
    "APP_INFO", "JAVA_CONSUMER", "JAVA_COORDINATOR", "JAVA_FETCH", "JAVA_MAPPINGS", "JAVA_NODE",
    "PREFIX",
    "SEND_LATENCY_BUCKETS", "ConsumerMetrics", "GroupWindow",
    "JavaCompatibleCollector", "JavaMapping", "PortInUseError", "ProducerMetrics",
    "RegistrySnapshot", "StudyMetrics",
    "check_ports", "delta_buckets", "exposed", "histogram_quantile", "observe_many", "serve",
]  # fmt: skip
