"""What a member tells the parent: its progress, its metrics, and the problems it hit.

The messages cross a pipe from a member process (or a queue from a task), so they are plain
picklable dataclasses; `Problem` is what the group reports upward, `Failed` what a member sends.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from enum import StrEnum

from prometheus_client.metrics_core import Metric

from tuner.consumer.handler import HandlerFailed

MISS_SHARE = 0.1
"""A batch whose run time differs from what was expected at its start by more than this share
(and `MISS_FLOOR_S`) was mispredicted: while it was in flight, its credit was off by up to
that share of its records."""
MISS_FLOOR_S = 0.005
"""Below this a misprediction is the timer's resolution, not the estimate's (a 0 ms model's
batch is credited whole at its start and takes microseconds)."""


def mispredicted(expected_s: float, took_s: float) -> bool:
    """Whether a batch expected to take `expected_s` (0: no expectation yet) and done in
    `took_s` was credited wrongly while in flight (see `Progress.credited`)."""
    return abs(took_s - expected_s) > max(MISS_SHARE * took_s, MISS_FLOOR_S)


@dataclass(frozen=True, slots=True)
class Progress:
    """A member's processed records at `at`, and the batch it is working through.

    Records count as consumed when their batch finishes; a window that ends inside a batch
    would then hold a whole number of batches and its rate would jump by whole batches. The
    parent credits the batch in flight linearly over its planned processing time instead.
    A batch without a plan (`batch_s` 0: a user's handler before its first batch has finished)
    is credited whole at its start; `tuner.trial.window` opens no window while one is in flight.
    """

    at: float
    """`time.monotonic()` of the member (system-wide on Linux, so comparable across processes)."""
    done: dict[str, tuple[int, int]]
    """Topic → (records, value bytes) processed so far."""
    batch: dict[str, tuple[int, int]]
    """Topic → (records, value bytes) of the batch in flight (empty: none)."""
    batch_started: float = 0.0
    batch_s: float = 0.0
    batches: int = 0
    """Non-empty batches finished so far."""
    missed: int = 0
    """Of those, the batches whose run time `batch_s` mispredicted (`mispredicted`): the window
    judges from these whether its edges were credited right (`tuner.trial.window.coarse`)."""

    def credited(self, now: float) -> dict[str, tuple[float, float]]:
        """Topic → (records, bytes) processed by `now`, the batch in flight pro rata."""
        if not self.batch:
            return {t: (float(r), float(b)) for t, (r, b) in self.done.items()}
        share = (
            1.0
            if self.batch_s <= 0
            else min(max((now - self.batch_started) / self.batch_s, 0.0), 1.0)
        )
        out = {t: (float(r), float(b)) for t, (r, b) in self.done.items()}
        for topic, (r, b) in self.batch.items():
            done_r, done_b = out.get(topic, (0.0, 0.0))
            out[topic] = (done_r + share * r, done_b + share * b)
        return out


@dataclass(frozen=True, slots=True)
class Snapshot:
    member: str
    families: list[Metric]
    assignments: int
    progress: Progress


@dataclass(frozen=True, slots=True)
class Progressed:
    member: str
    progress: Progress


class ProblemKind(StrEnum):
    """What went wrong in a member, for callers that treat failures differently."""

    CONSUMER = "consumer"
    """The consumer raised (a broker error, a timeout, the tuner's own code)."""
    AUTHENTICATION = "authentication"
    """The consumer failed after the broker refused its login or TLS handshake."""
    HANDLER = "handler"
    """The user's handler (or its setup or teardown) raised."""
    CRASHED = "crashed"
    """The member's process exited without a word: a signal, or an exit code."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """One failure of one member, as the group reports it; `str()` is the line users see."""

    kind: ProblemKind
    member: str
    message: str

    def __str__(self) -> str:
        return f"member {self.member}: {self.message}"


@dataclass(frozen=True, slots=True)
class Failed:
    member: str
    error: str
    """One line for the trial's errors: the exception and where it was raised."""
    traceback: str = ""
    """The full formatted traceback, for the parent's log (empty if there was no exception);
    for the user's handler, its traceback from the user's code down."""
    kind: ProblemKind = ProblemKind.CONSUMER
    """The group refines CONSUMER to AUTHENTICATION when the member reported refused logins."""

    @property
    def handler(self) -> bool:
        """The user's handler (or its setup or teardown) raised: the trial fails with it."""
        return self.kind is ProblemKind.HANDLER

    def __str__(self) -> str:
        return f"member {self.member}: {self.error}"

    def explained(self) -> str:
        """The one line, and for the user's handler its traceback below it."""
        return f"{self}\n{self.traceback.rstrip()}" if self.handler else str(self)


Message = Snapshot | Progressed | Failed


def failure(member: str, exc: BaseException) -> Failed:
    raised = _handler_failed(exc)
    if raised is not None:
        return Failed(member, raised.summary, raised.user_traceback, kind=ProblemKind.HANDLER)
    return Failed(member, _describe(exc), "".join(traceback.format_exception(exc)))


def _handler_failed(exc: BaseException) -> HandlerFailed | None:
    """The user's handler's failure in `exc` (perhaps inside the task group's exception)."""
    if isinstance(exc, HandlerFailed):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _handler_failed(inner)
            if found is not None:
                return found
    return None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        return _describe(exc.exceptions[0])
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" (at {last[0].filename.rsplit('/', 1)[-1]}:{last[0].lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"
