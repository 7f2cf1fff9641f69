"""The Kafka cluster the tuner works on: admin, access checks, owned topics and cleanup."""

from __future__ import annotations
