"""The ablation's judgement of one step, from plain values: noise never keeps a change."""

from __future__ import annotations

import pytest

from tests.helpers import measured
from tuner.recommend.confirmation import Gain, paired_gain
from tuner.recommend.judge import Verdict, judge, throughput
from tuner.trial.run import TrialResult


def _runs(*records_per_s: float, rebalances: int = 0) -> list[TrialResult]:
    return [measured(r, rebalances=rebalances) for r in records_per_s]


def test_a_cost_of_five_percent_over_two_pairs_asks_for_more_pairs_and_is_not_kept() -> None:
    """Putting it back cost 4.8% over 2 pairs (no interval): the step measures another pair;
    with none left, or with an interval that reaches inside the 3% tolerance, the baseline
    wins and the reason says the effect was not clear of the tolerance."""
    two = Gain(pairs=2, estimate=-0.048, interval=None)
    assert throughput(two, more=True) is None
    verdict, reason = throughput(two, more=False) or (None, "")
    assert verdict is Verdict.NO_EFFECT
    assert not verdict.kept
    assert reason == (
        "putting it back seemed to cost more than 3% throughput, but not clear of the tolerance "
        "(no interval from 2 pairs; it takes 3): the baseline wins"
    )
    wide = paired_gain([930, 990, 920, 970, 950, 955], [1000] * 6)
    assert wide.estimate == pytest.approx(-0.048, abs=0.002)
    assert wide.interval is not None
    assert wide.interval[1] > -0.03
    said = throughput(wide, more=False)
    assert said is not None
    assert said[0] is Verdict.NO_EFFECT
    assert "its 95% interval reaches within the tolerance" in said[1]


def test_a_clear_fifteen_percent_cost_is_kept() -> None:
    """Three pairs 15% apart with a narrow spread: the whole interval lies beyond -3%."""
    judged = judge(_runs(1000, 1010, 990), _runs(850, 860, 845), group=("max.poll.records",))
    assert judged is not None
    verdict, reverting, reason = judged
    assert verdict is Verdict.COSTS
    assert verdict.kept
    assert reverting is not None
    assert reverting.estimate == pytest.approx(-0.148, abs=0.002)
    assert "its whole 95% interval beyond the tolerance" in reason


def test_a_liveness_setting_with_no_rebalance_is_never_kept_for_throughput() -> None:
    """max.poll.interval.ms put back "costs" 20% in runs where no member was evicted or stuck:
    a timeout that never fired cannot have done that, so it goes back; with a failover goal,
    or a rebalance in the step's runs, throughput decides again."""
    ours, theirs = _runs(1000, 1000, 1000), _runs(800, 800, 800)
    for group in (("max.poll.interval.ms",), ("session.timeout.ms", "heartbeat.interval.ms")):
        judged = judge(ours, theirs, group=group)
        assert judged is not None
        assert judged[0] is Verdict.NO_TROUBLE
        assert not judged[0].kept
        assert "kept only for trouble it prevents, never for a throughput difference" in judged[2]
    goal = judge(ours, theirs, group=("max.poll.interval.ms",), failover_goal=True)
    assert goal is not None
    assert goal[0] is Verdict.COSTS
    stuck = judge(_runs(1000, 1000, 1000, rebalances=1), theirs, group=("max.poll.interval.ms",))
    assert stuck is not None
    assert stuck[0] is Verdict.COSTS
    trouble = judge(ours, _runs(1000, 1000, 1000, rebalances=1), group=("max.poll.interval.ms",))
    assert trouble is not None
    assert trouble[0] is Verdict.TROUBLE


def test_a_setting_that_is_not_liveness_is_judged_on_throughput() -> None:
    """fetch.min.bytes with the same 20% is kept: only the timeouts need a rebalance."""
    judged = judge(_runs(1000, 1000, 1000), _runs(800, 800, 800), group=("fetch.min.bytes",))
    assert judged is not None
    assert judged[0] is Verdict.COSTS
