"""Durations as a user writes them: `90s`, `10m`, `1h30m`, or seconds."""

from __future__ import annotations

import math
import re

_UNITS = {"s": 1, "m": 60, "h": 3600}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smh])")


def duration_s(text: str) -> float:
    """Seconds in `90s`, `10m`, `1h30m` or a plain number of seconds; `ValueError` otherwise."""
    stripped = text.strip().lower()
    try:
        seconds = float(stripped)
    except ValueError:
        parts = _DURATION.findall(stripped)
        if not parts or _DURATION.sub("", stripped).strip():
            raise ValueError(
                f"{text!r} is not a duration: write it like 90s, 10m or 1h30m"
            ) from None
        seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{text!r}: a budget must be more than 0 seconds")
    return seconds
