"""kafka-tuner: measure and tune aiokafka consumer groups against a real Kafka cluster."""

from __future__ import annotations

__version__ = "0.1.0"
