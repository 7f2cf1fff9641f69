"""The Locust producer's stats line: written by the locustfile, read by `tuner.load.runner`."""

from __future__ import annotations

import pytest

from tuner.load.stats import StatsLine


def test_stats_line_round_trips() -> None:
    """What the locustfile writes is what `tuner.load.runner` reads back, inf bucket included; a
    half-written line is a ValueError, not a wrong count."""
    line = StatsLine(
        at=1700000000.25, sent=1234, failed=2, last_error="KafkaError: timed out",
        latency_buckets={0.001: 10.0, 0.5: 1200.0, float("inf"): 1234.0},
    )  # fmt: skip
    text = line.format()
    assert "\n" not in text
    assert StatsLine.parse(text) == line
    with pytest.raises(ValueError, match=r"not a stats line|Expecting|Unterminated"):
        StatsLine.parse(text[: len(text) // 2])
    with pytest.raises(ValueError, match="not a stats line"):
        StatsLine.parse('{"t": 1}')
