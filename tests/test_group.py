"""The consumer group's error bookkeeping, without a broker: members are matched by name."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import sys

import pytest
from prometheus_client import CollectorRegistry

from tuner.consumer.group import ConsumerGroup
from tuner.consumer.member import Failed, failure


def test_an_error_of_m10_does_not_hide_that_m1_exited() -> None:
    """De-duplication matches the member exactly: m10's error is not taken for m1's."""
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(target=sys.exit, args=(1,), name="m1")  # a member that died
    proc.start()
    proc.join(30)
    parent, child = ctx.Pipe()
    child.close()

    async def bookkeeping() -> list[list[str]]:
        group = ConsumerGroup([], registry=CollectorRegistry())
        group._procs.append((proc, parent))
        group._receive(Failed("m10", "RuntimeError: boom"))
        first = group.errors()
        group._receive(Failed("m1", "RuntimeError: again"))
        return [first, group.errors(), group.errors()]

    first, second, third = asyncio.run(bookkeeping())
    assert first == ["member m10: RuntimeError: boom", "member m1: exited with code 1"]
    assert second == ["member m1: RuntimeError: again"]
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
    assert group.errors() == [str(failed)]
