"""Stored trial results read back: a `to_dict` through JSON, also from an older version."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from tests.helpers import measured
from tuner.broker.faults import FaultReport, LeaderChange
from tuner.load.runner import ProducerStats
from tuner.trial.result import LatencyMs, SteadyState, TrialResult


def _full() -> TrialResult:
    """A result with every optional part filled in (producer, intervals, steady state, a
    broker fault)."""
    return dataclasses.replace(
        measured(1234.5, rebalances=1, settings={"max.poll.records": 500, "fetch.max.bytes": None}),
        errors=("member m0: boom",),
        producer=ProducerStats(records_sent=10, records_per_s=1.0, send_latency_ms_p50=None,
                               send_latency_ms_p99=2.5, failures=0),
        intervals_records_per_s=(1200.0, 1269.0),
        steady=SteadyState(group_id="s", window_s=10, target_records_per_s=100, produced=1000,
                           consumed=998, latency_ms=LatencyMs(p50=4, p95=8, p99=None),
                           kept_up=True, rebalances=0),
        faults=(FaultReport(broker=1, at_s=5, kill=False, failover_s=0.4, leader_changes=(
            LeaderChange(partition=0, before=1, after=2, after_s=0.4),)),),
    )  # fmt: skip


def _stored(result: TrialResult) -> dict[str, Any]:
    """What Optuna keeps as the trial's user attribute: the dict through JSON."""
    stored: dict[str, Any] = json.loads(json.dumps(result.to_dict()))
    return stored


def test_a_stored_result_reads_back_equal() -> None:
    for result in (_full(), measured(10.0)):
        back = TrialResult.from_dict(_stored(result))
        assert back == result
        assert isinstance(back.errors, tuple)
        assert back.steady is None or isinstance(back.steady.latency_ms, LatencyMs)


def test_a_result_stored_before_record_age_and_steady_state_reads_back() -> None:
    """Older studies call the capacity window's record age `e2e_latency_ms` and have no
    steady state."""
    stored = _stored(_full())
    stored["e2e_latency_ms"] = stored.pop("record_age_ms")
    del stored["steady"]
    back = TrialResult.from_dict(stored)
    assert back == dataclasses.replace(_full(), steady=None)
    assert back.record_age_ms == LatencyMs(p50=1, p95=2, p99=3)
