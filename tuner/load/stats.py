"""The line the Locust producer appends to its stats file every second, and reading it back.

One definition for both ends: the locustfile writes it (and must stay light: this module
imports only the standard library), `tuner.load.runner` parses it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class StatsLine:
    """Cumulative producer counts at one instant; a window is the difference of two lines."""

    at: float
    """Unix time the line was written."""
    sent: int
    failed: int
    last_error: str
    latency_buckets: Mapping[float, float]
    """Cumulative send-latency histogram: bucket upper bound `le` (seconds, inf last) → count."""

    def format(self) -> str:
        """One JSON line, without the newline."""
        return json.dumps({
            "t": self.at, "sent": self.sent, "failed": self.failed,
            "last_error": self.last_error,
            "latency_buckets": {_le(b): c for b, c in self.latency_buckets.items()},
        })  # fmt: skip

    @classmethod
    def parse(cls, line: str) -> StatsLine:
        """The line's counts; `ValueError` for a line that is partly written or not ours."""
        try:
            data = json.loads(line)
            return cls(
                at=float(data["t"]),
                sent=int(data["sent"]),
                failed=int(data["failed"]),
                last_error=str(data["last_error"]),
                latency_buckets={float(k): float(v) for k, v in data["latency_buckets"].items()},
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a stats line: {line[:80]!r}") from exc

    def append_to(self, path: str) -> None:
        with open(path, "a") as out:
            out.write(self.format() + "\n")


def _le(bound: float) -> str:
    return "inf" if math.isinf(bound) else str(bound)
