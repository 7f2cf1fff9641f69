"""The consumer group's error bookkeeping, without a broker: members are matched by name."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import sys

import pytest
from prometheus_client import CollectorRegistry

from tuner.consumer.group import ConsumerGroup
from tuner.consumer.handler import HandlerFailed
from tuner.consumer.messages import Failed, Problem, ProblemKind, failure


def test_an_error_of_m10_does_not_hide_that_m1_exited() -> None:
    """De-duplication matches the member exactly: m10's error is not taken for m1's."""
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(target=sys.exit, args=(1,), name="m1")  # a member that died
    proc.start()
    proc.join(30)
    parent, child = ctx.Pipe()
    child.close()

    async def bookkeeping() -> list[list[Problem]]:
        group = ConsumerGroup([], registry=CollectorRegistry())
        group._procs.append((proc, parent))
        group._receive(Failed("m10", "RuntimeError: boom"))
        first = group.errors()
        group._receive(Failed("m1", "RuntimeError: again"))
        return [first, group.errors(), group.errors()]

    first, second, third = asyncio.run(bookkeeping())
    assert first == [
        Problem(kind=ProblemKind.CONSUMER, member="m10", message="RuntimeError: boom"),
        Problem(kind=ProblemKind.CRASHED, member="m1", message="exited with code 1"),
    ]
    assert [str(p) for p in first] == [
        "member m10: RuntimeError: boom",
        "member m1: exited with code 1",
    ]
    assert second == [
        Problem(kind=ProblemKind.CONSUMER, member="m1", message="RuntimeError: again")
    ]
    assert third == []


def test_a_crash_keeps_one_line_for_the_trial_and_logs_the_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The trial's error is one line; the parent logs every frame at ERROR when debugging."""

    def inner() -> None:
        raise ValueError("deep down")

    def outer() -> None:
        inner()

    try:
        outer()
    except ValueError as exc:
        failed = failure("m2", exc)
    assert failed.error.startswith("ValueError: deep down (at test_group.py:")
    assert "\n" not in failed.error
    assert "in outer" in failed.traceback
    assert "in inner" in failed.traceback
    group = ConsumerGroup([], registry=CollectorRegistry())
    with caplog.at_level(logging.DEBUG, logger="tuner.consumer.group"):
        group._receive(failed)
    (record,) = caplog.records
    assert record.levelno == logging.ERROR
    assert "in outer" in record.getMessage()
    (problem,) = group.errors()
    assert problem.kind is ProblemKind.CONSUMER
    assert str(problem) == str(failed)


def test_the_users_handler_raising_is_a_handler_problem() -> None:
    """A failure of the user's handler reaches the group as a HANDLER problem whose text is the
    handler's one line, so the trial can fail with it rather than count a consumer error."""
    try:
        raise ValueError("bad order")
    except ValueError as exc:
        failed = failure("m0", HandlerFailed("handler", "orders.py:handle", exc))
    group = ConsumerGroup([], registry=CollectorRegistry())
    group._receive(failed)
    (problem,) = group.errors()
    assert problem.kind is ProblemKind.HANDLER
    assert problem.member == "m0"
    assert problem.message.startswith("the handler orders.py:handle raised ValueError: bad order")
