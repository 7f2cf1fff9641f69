"""The user's payloads: records from a file, a directory or a topic sample, or sized values.

Kafka-free and config-free (the config loader and the Locust process import it): reading a
topic's sample is `tuner.cluster.sample`, a workload's pool and summary `tuner.cluster.workload`.
"""

from __future__ import annotations

from tuner.payloads.records import PayloadError, Record, read_records, record_line
from tuner.payloads.sizes import cycle, lognormal_sigma, sized_values

__all__ = [
    "PayloadError", "Record", "cycle", "lognormal_sigma", "read_records", "record_line",
    "sized_values",
]  # fmt: skip
