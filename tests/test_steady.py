"""The steady-state phase against the real broker."""

from __future__ import annotations

import multiprocessing
import os
import signal
import textwrap
from pathlib import Path

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


def test_a_handler_raising_in_the_steady_window_fails_the_trial_with_its_error(
    bootstrap_servers: str, tmp_path: Path
) -> None:
    """A handler that raises only once the steady group has joined fails the trial with the
    handler's error, as in the capacity window, instead of returning a merely infeasible result."""
    mark = tmp_path / "steady"
    handler = tmp_path / "late.py"
    handler.write_text(
        textwrap.dedent(f"""\
        import time
        from pathlib import Path

        def handle(records):
            if Path({str(mark)!r}).exists():
                raise ValueError(f"late failure at offset {{records[0].offset}}")
            time.sleep(0.001 * len(records))  # the backlog outlasts the capacity window
        """)
    )
    spec = small_spec(
        "steadyhandler",
        workload={"prefill_records": 20000, "producer": {"users": 1, "rate_per_user": 200}},
        consumer={
            "members": 1,
            "handler": f"{handler}:handle",
            "settings": {"max.poll.records": 100},
        },
        trial={"warmup_s": 0.5, "measure_s": 2, "steady_s": 4},
    )
    phases: list[Phase] = []

    def steady_joins(phase: Phase, _: float | None) -> None:
        phases.append(phase)
        if phase is Phase.STEADY_JOIN:
            mark.touch()

    with pytest.raises(TrialError) as failed:
        trial(spec, bootstrap_servers, observer=steady_joins)
    assert Phase.STEADY_JOIN in phases, str(failed.value)
    assert "member m0: the handler late.py:handle raised ValueError: late failure at offset" in str(
        failed.value
    )
