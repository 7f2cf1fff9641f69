"""What a running trial tells its observer (the phase it entered, each second's rate), and how
a trial ended."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum


class Phase(StrEnum):
    TOPIC = "topic"
    PREFILL = "prefill"
    LOAD = "load"
    JOIN = "join"
    WARMUP = "warm-up"
    MEASURE = "measure"
    STEADY_JOIN = "steady-state join"
    STEADY_WARMUP = "steady-state warm-up"
    STEADY = "steady state"
    STOP = "stop"


Observer = Callable[[Phase, float | None], None]
"""Called on each phase change (value None) and each second of a window (records/s so far):
`Phase.MEASURE` for the capacity window, `Phase.STEADY` for the steady-state window."""


class Outcome(StrEnum):
    """How a trial ended, as the progress lines, the study metrics and the CLI say it."""

    COMPLETE = "complete"
    INFEASIBLE = "infeasible"
    PRUNED = "pruned"
    FAILED = "failed"
