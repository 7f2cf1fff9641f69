"""An aiokafka group member: poll with `getmany()`, process, commit, report.

aiokafka heartbeats from a task on the member's own event loop, so the loop is probed: a
timer's lateness is how long processing held it (and with it the heartbeats). The reporter,
the watchdog and leaving the group are every member's (`tuner.consumer.member`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry

from tuner.cluster.admin import Connection
from tuner.consumer.handler import UserHandler
from tuner.consumer.instrumented import InstrumentedConsumer, batch_totals
from tuner.consumer.member import (
    POLL_TIMEOUT_MS,
    SNAPSHOT_EVERY_S,
    MemberSpec,
    _Reporter,
    _watched,
    leave,
    work_through,
)
from tuner.consumer.messages import Message
from tuner.consumer.processing import ProcessingModel
from tuner.metrics import ConsumerMetrics

LOOP_PROBE_S = 0.05
"""How often a timer checks that the event loop is free: a blocked loop shows, to within this,
as the timer's lateness."""


async def run_aiokafka_member(
    spec: MemberSpec,
    send: Callable[[Message], None],
    stopped: Callable[[], bool],
    *,
    watch: bool = False,
) -> None:
    """Consume until `stopped()`: poll, process, commit (if auto-commit is off), report.

    Reporting and the stop check also happen inline between batches: when records are
    prefetched, `getmany` returns without yielding, and a `cpu` handler never yields either,
    so a background task alone would starve exactly when the interesting things happen.
    """
    registry = CollectorRegistry(auto_describe=False)
    metrics = ConsumerMetrics(registry, group=spec.group_id, member=spec.member)
    metrics.consumed(spec.topic, 0, 0)  # the series exists from the start: zero is a value
    model = ProcessingModel(spec.processing, seed=spec.seed)
    app = UserHandler(spec.handler) if spec.handler is not None else None
    kwargs = _consumer_kwargs(spec)
    manual_commit = not kwargs.get("enable_auto_commit", True)
    consumer = InstrumentedConsumer(spec.topic, metrics=metrics, **kwargs)
    reporter = _Reporter(spec.member, registry, send)
    reporter.assignments = lambda: consumer.assignments

    async def report_while_idle() -> None:
        while True:
            if reporter.due():
                reporter.report()
            await asyncio.sleep(SNAPSHOT_EVERY_S / 2)

    try:
        if app is not None:
            await app.setup()  # before joining: the group does not wait on it
        await consumer.start()  # inside: a start the broker refuses still sends its counts
        with _watched(reporter, watch):
            async with asyncio.TaskGroup() as tasks:
                idle_reports = tasks.create_task(report_while_idle())
                probe = tasks.create_task(_probe_loop(consumer))
                while not stopped():
                    batch = await consumer.getmany(timeout_ms=POLL_TIMEOUT_MS)
                    totals = batch_totals(batch)
                    seconds, blocked_s = await work_through(
                        batch, totals, app or model, reporter, stopped
                    )
                    consumer.processed(batch, seconds, totals, blocked_s)
                    reporter.batch_done(totals)
                    if manual_commit and any(r for r, _ in totals.values()):
                        await consumer.commit()
                    if reporter.due():
                        reporter.report()
                idle_reports.cancel()
                probe.cancel()
    finally:
        await leave(consumer.stop(), spec.member, send, reporter, app)


async def _probe_loop(consumer: InstrumentedConsumer) -> None:
    """Time a timer on the loop, forever: its lateness is how long the loop was held."""
    try:
        while True:
            consumer.expect_loop(time.perf_counter() + LOOP_PROBE_S)
            await asyncio.sleep(LOOP_PROBE_S)
            consumer.check_loop()
    finally:
        consumer.expect_loop(None)  # no timer: a stopped probe is no held loop


def _consumer_kwargs(spec: MemberSpec) -> dict[str, Any]:
    return {
        **Connection(bootstrap_servers=spec.bootstrap_servers, cluster=spec.cluster).kwargs(),
        "group_id": spec.group_id,
        "client_id": f"{spec.group_id}.{spec.member}",
        **spec.consumer_kwargs,
    }
