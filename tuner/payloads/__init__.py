"""The user's payloads: records from a file, a directory or a topic sample, or sized values.

Only the Kafka-free parts are imported here (the config loader and the Locust process use
them); `tuner.payloads.sample` reads a topic, `tuner.payloads.summary` describes a workload.
"""

from __future__ import annotations

from tuner.payloads.records import PayloadError, Record, read_records, record_line
from tuner.payloads.sizes import cycle, lognormal_sigma, sized_values

__all__ = [
    "PayloadError", "Record", "cycle", "lognormal_sigma", "read_records", "record_line",
    "sized_values",
]  # fmt: skip
