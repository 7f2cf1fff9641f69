"""The confirmation's arithmetic: medians, paired gains, and the noise verdict."""

from __future__ import annotations

from types import MappingProxyType

from tuner.report import Confirmation, _confirmation_md
from tuner.trial import FetchStats, LatencyMs, OffsetCheck, PollStats, TrialResult


def _result(records_per_s: float, rebalances: int = 0) -> TrialResult:
    return TrialResult(
        group_id="g", settings=MappingProxyType({}), window_s=10, records_consumed=0,
        throughput_records_per_s=records_per_s, throughput_mb_per_s=0,
        e2e_latency_ms=LatencyMs(p50=1, p95=2, p99=3), rebalances=rebalances,
        fetch=FetchStats(requests=0, latency_ms_p50=None, latency_ms_p99=None,
                         records_per_fetch_avg=0, bytes_per_fetch_avg=0),
        poll=PollStats(interval_ms_max=None, idle_ratio=None), lag_max=0,
        backlog_emptied=False, errors=(),
        offsets=OffsetCheck(end_offsets_total=0, committed_total=0, consumed_total=0),
    )  # fmt: skip


def _confirmation(best: list[float], java: list[float], aio: list[float]) -> Confirmation:
    return Confirmation(
        runs={
            "best": tuple(map(_result, best)),
            "java defaults": tuple(map(_result, java)),
            "aiokafka defaults": tuple(map(_result, aio)),
        }
    )


def test_a_consistent_gain_is_called_real() -> None:
    """Best is 50% faster in every pair: the interval excludes zero."""
    c = _confirmation([150, 151, 149, 150, 152], [100, 101, 99, 100, 100], [100] * 5)
    mid, low, high = c.gain("java defaults")
    assert 0.45 < low <= mid <= high < 0.55
    assert "a real difference" in "\n".join(_confirmation_md(c))


def test_a_gain_within_noise_is_called_noise() -> None:
    """Pairs that go both ways give an interval around zero, and the report says so."""
    c = _confirmation([100, 90, 110, 95, 105], [95, 100, 100, 105, 97], [100] * 5)
    _, low, high = c.gain("java defaults")
    assert low <= 0 <= high
    assert "not distinguishable from noise" in "\n".join(_confirmation_md(c))


def test_single_runs_and_stalled_baselines_make_no_interval_claim() -> None:
    """One run each gets no interval; a baseline that processed nothing gets no ratio."""
    c = _confirmation([100], [90], [0])
    text = "\n".join(_confirmation_md(c))
    assert "from a single run each" in text
    assert "processed no records" in text
