"""The steady-state phase against the real broker."""

from __future__ import annotations

import multiprocessing
import os
import signal

import pytest

from tests.helpers import small_spec, trial
from tuner.trial.run import Phase, TrialError

pytestmark = pytest.mark.integration


def test_a_member_killed_in_the_steady_window_fails_the_trial(bootstrap_servers: str) -> None:
    """SIGKILL to a member inside the steady window fails the trial naming the member and the
    signal, as in the capacity window, instead of returning a result that is merely infeasible."""
    spec = small_spec(
        "steadykill",
        workload={"prefill_records": 20000, "producer": {"users": 1, "rate_per_user": 200}},
        consumer={"members": 2, "processing": {"per_record_ms": 1, "distribution": "constant"}},
        trial={"warmup_s": 0.5, "measure_s": 2, "steady_s": 5},
    )
    killed: list[int] = []

    def kill(phase: Phase, value: float | None) -> None:
        if phase is Phase.STEADY and value is not None and not killed:
            (member,) = [p for p in multiprocessing.active_children() if p.name == "m0"]
            assert member.pid is not None
            killed.append(member.pid)
            os.kill(member.pid, signal.SIGKILL)

    with pytest.raises(TrialError) as failed:
        trial(spec, bootstrap_servers, observer=kill)
    assert killed
    assert (
        f"member m0 (pid {killed[0]}) was killed by SIGKILL mid-trial: the group lost a member"
        in str(failed.value)
    )
