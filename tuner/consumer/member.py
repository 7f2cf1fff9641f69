"""One group member: poll, process, commit, and tell the parent what it did.

The same code runs as an asyncio task or in its own process (`member_process`); either way
it reports through `send`, so the group merges members the same whichever isolation it uses.
What every member shares is here (its spec, the reporter and watchdog, working through a
batch, leaving); the loop around its client's poll is the client's (`ConsumerClient.
member_loop`: `tuner.consumer.aiokafka`, `tuner.consumer.confluent`).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from multiprocessing import forkserver
from multiprocessing.connection import Connection as Pipe
from typing import Any, Protocol

from prometheus_client import CollectorRegistry

from tuner import children
from tuner.clients import ClientName, ConsumerClient, client_named
from tuner.config import ClusterSpec, HandlerSpec, ProcessingSpec
from tuner.consumer import auth_failures
from tuner.consumer.handler import UserHandler
from tuner.consumer.messages import (
    Failed,
    Message,
    Progress,
    Progressed,
    Snapshot,
    failure,
    mispredicted,
)
from tuner.consumer.processing import ProcessingModel

SNAPSHOT_EVERY_S = 0.5
PROGRESS_EVERY_S = 0.02
"""A batch start is told to the parent at least this often (bounds the edge error of a window)."""
POLL_TIMEOUT_MS = 200
STOP_TIMEOUT_S = 30.0
WATCHDOG_EVERY_S = 0.1
WATCHDOG_AFTER_S = 1.5 * SNAPSHOT_EVERY_S
"""The watchdog reports for a loop silent this long: the loop's own cadence is
`SNAPSHOT_EVERY_S`, checked between batches and polls."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberSpec:
    """Everything one member needs; picklable, so it crosses into a spawned process."""

    bootstrap_servers: str
    cluster: ClusterSpec
    topic: str
    group_id: str
    member: str
    consumer_kwargs: dict[str, Any] = field(default_factory=dict)
    """The client's own configuration, from `ConsumerClient.member_config` (aiokafka keyword
    arguments, or librdkafka properties for confluent-kafka)."""
    client: ClientName = "aiokafka"
    batch_records: int = 500
    """confluent-kafka: records asked of each `consume()` (aiokafka: `max_poll_records`)."""
    processing: ProcessingSpec = field(default_factory=ProcessingSpec)
    handler: HandlerSpec | None = None
    """The user's handler, imported in the member; None runs the processing model."""
    seed: int | None = None
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    """The tuner's environment when the trial began, which the user's handler sees (the
    process that forks members may have started long before)."""
    tuner_pid: int = field(default_factory=os.getpid)
    """The process that made this spec: a member forked after it died stops at once."""


class _Reporter:
    """What a member tells its parent: full snapshots every `SNAPSHOT_EVERY_S`, and the start
    of each batch (a `Progress`) at least every `PROGRESS_EVERY_S`.

    The member's loop reports, and its `_Watchdog` thread when the loop has not for a while:
    sends are serialised by a lock (a pipe's messages must not interleave)."""

    def __init__(
        self, member: str, registry: CollectorRegistry, send: Callable[[Message], None]
    ) -> None:
        self.member, self.registry, self._send = member, registry, send
        self._lock = threading.Lock()
        self.assignments: Callable[[], int] = lambda: 0
        self.done: dict[str, tuple[int, int]] = {}
        self.progress = Progress(at=time.monotonic(), done={}, batch={})
        self.reported_at = self.progressed_at = 0.0

    def due(self, every_s: float = SNAPSHOT_EVERY_S) -> bool:
        return time.monotonic() - self.reported_at >= every_s

    def send(self, message: Message) -> None:
        with self._lock:
            self._send(message)

    def report(self) -> None:
        with self._lock:
            self.reported_at = self.progressed_at = time.monotonic()
            snapshot = Snapshot(
                self.member, list(self.registry.collect()), self.assignments(), self.progress
            )
            self._send(snapshot)

    def batch_started(self, totals: dict[str, tuple[int, int]], work_s: float) -> None:
        now, last = time.monotonic(), self.progress
        self.progress = Progress(
            at=now, done=dict(self.done), batch=totals, batch_started=now, batch_s=work_s,
            batches=last.batches, missed=last.missed,
        )  # fmt: skip
        if work_s >= SNAPSHOT_EVERY_S or self.due():
            self.report()  # the parent must see this poll before a batch that takes long
        elif totals and (
            work_s >= PROGRESS_EVERY_S or now - self.progressed_at >= PROGRESS_EVERY_S
        ):
            self.progressed_at = now
            self.send(Progressed(self.member, self.progress))

    def batch_done(self, totals: dict[str, tuple[int, int]]) -> None:
        """The batch `batch_started` announced is done: its records count, and whether its
        expected run time held (the parent's in-flight credit rests on it)."""
        for topic, (records, nbytes) in totals.items():
            r, b = self.done.get(topic, (0, 0))
            self.done[topic] = (r + records, b + nbytes)
        now, last = time.monotonic(), self.progress
        done = any(r for r, _ in totals.values())
        missed = done and mispredicted(last.batch_s, now - last.batch_started)
        self.progress = Progress(
            at=now, done=dict(self.done), batch={},
            batches=last.batches + done, missed=last.missed + missed,
        )  # fmt: skip


class _Watchdog:
    """A thread that sends the member's report when its loop has not for `WATCHDOG_AFTER_S`.

    A batch that holds the event loop (a blocking handler, `mode: cpu`), or one of a client
    whose loop runs no reporting task (confluent-kafka's), would otherwise leave the parent
    with the member's last report from before the batch: no open gap, no held loop, an idle
    ratio of the polls before it. The report's gauges are read as it is made, so this one
    carries the gap and the hold so far. Only for a member in its own process: a task member
    shares the parent's loop, and a held loop holds the parent too.
    """

    def __init__(self, reporter: _Reporter) -> None:
        self._reporter = reporter
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tuner-watchdog", daemon=True)

    def __enter__(self) -> _Watchdog:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(WATCHDOG_EVERY_S):
            if self._reporter.due(WATCHDOG_AFTER_S):
                with contextlib.suppress(OSError):  # the parent is gone: the loop will see it
                    self._reporter.report()


def _watched(reporter: _Reporter, watch: bool) -> contextlib.AbstractContextManager[object]:
    return _Watchdog(reporter) if watch else contextlib.nullcontext()


class MemberLoop(Protocol):
    """One client's member loop: consume until `stopped()`, reporting through `send`."""

    def __call__(
        self,
        spec: MemberSpec,
        send: Callable[[Message], None],
        stopped: Callable[[], bool],
        *,
        watch: bool = False,
    ) -> Awaitable[None]: ...


def member_loop(client: ConsumerClient) -> MemberLoop:
    """The loop `client.member_loop` names (`module:function`), imported when a member starts.

    The loops live here in `tuner.consumer`, not with their clients: a loop needs the
    config's specs, the metrics and the reporter, and `tuner.clients` sits below all of them
    (the config's checks ask the clients for their rules). The client names its loop, and
    only a member imports it: confluent_kafka stays out of a process that runs aiokafka."""
    module, _, function = client.member_loop.partition(":")
    loop: MemberLoop = getattr(importlib.import_module(module), function)
    return loop


async def run_member(
    spec: MemberSpec,
    send: Callable[[Message], None],
    stopped: Callable[[], bool],
    *,
    watch: bool = False,
) -> None:
    """Consume until `stopped()` with the member loop of the client `spec.client` names.
    `watch`: a `_Watchdog` thread reports while the loop cannot (a member in its own process)."""
    await member_loop(client_named(spec.client))(spec, send, stopped, watch=watch)


async def work_through(
    batch: Any,
    totals: dict[str, tuple[int, int]],
    work: UserHandler | ProcessingModel,
    reporter: _Reporter,
    stopped: Callable[[], bool],
) -> tuple[float, float]:
    """Process a polled batch (`totals`: topic → records, bytes) with the user's handler or
    the model, telling the parent when it starts; returns the seconds it took, and how many of
    them passed before the event loop ran anything else (all of them for blocking work)."""
    count = sum(r for r, _ in totals.values())
    work_s = work.draw_s(count) if isinstance(work, ProcessingModel) else work.expected_s(count)
    reporter.batch_started(totals, work_s)
    started, loop_ran = time.monotonic(), list[float]()
    stamp = asyncio.get_running_loop().call_soon(_stamp, loop_ran)
    await _process(batch, count, work_s, work, stopped)
    ended = time.monotonic()
    stamp.cancel()
    return ended - started, (loop_ran[0] if loop_ran else ended) - started


async def leave(
    stop: Awaitable[None],
    member: str,
    send: Callable[[Message], None],
    reporter: _Reporter,
    app: UserHandler | None = None,
) -> None:
    """Await the consumer leaving its group (its final commit first), at most half of
    `STOP_TIMEOUT_S`, then send the member's last report and run the user's teardown."""
    try:
        async with asyncio.timeout(STOP_TIMEOUT_S / 2):
            await stop
    except TimeoutError:
        send(
            Failed(
                member,
                "the consumer did not leave the group within "
                f"{STOP_TIMEOUT_S / 2:.0f} s (its final commit may be lost)",
            )
        )
    finally:
        reporter.report()
        if app is not None:
            await app.teardown()


async def _process(
    batch: dict[Any, list[Any]] | list[Any],
    count: int,
    work_s: float,
    work: UserHandler | ProcessingModel,
    stopped: Callable[[], bool],
) -> None:
    """The user's handler on a non-empty batch, or the model's time for it."""
    if isinstance(work, ProcessingModel):
        await work.spend(work_s, stopped)
    elif count:
        await work.handle(batch)


def _stamp(into: list[float]) -> None:
    """When the event loop next ran a callback: until then, processing blocked it."""
    into.append(time.monotonic())


def _release_forkserver() -> None:
    """Close this member's copy of the forkserver's "alive" pipe. The forkserver exits when
    every holder of it is gone, and hands it to each process it forks so that one could fork in
    turn; a member never does, and holding it kept the forkserver, so the member itself (by
    `die_with_parent`), alive after a SIGKILLed tuner, leaving the group on a dying broker."""
    server = getattr(forkserver, "_forkserver", None)
    fd = getattr(server, "_forkserver_alive_fd", None)
    if isinstance(fd, int):
        with contextlib.suppress(OSError):
            os.close(fd)
        server._forkserver_alive_fd = None  # type: ignore[union-attr]


def member_process(spec: MemberSpec, pipe: Pipe) -> None:
    """Entry point of a spawned member: one event loop, stopped by any message on the pipe."""
    # The forkserver that forked this member exits when the tuner does (even on SIGKILL); this
    # member then goes at once, instead of consuming for an absent parent or leaving its group
    # gracefully on a broker that is going too.
    children.die_with_parent(signal.SIGKILL)
    _release_forkserver()
    if not children.running(spec.tuner_pid):
        return  # forked as the tuner died, before the request above could take effect
    logging.basicConfig(level=logging.WARNING)
    # aiokafka logs every retry during joins at ERROR; real failures reach the parent as errors.
    auth_failures.quiet()

    def stopped() -> bool:  # "stop", or EOF when the parent is gone: stop either way
        return pipe.poll()

    os.environ.update(spec.environ)
    # The user's handler may name its per-member resources (a file per member) after these.
    os.environ["TUNER_MEMBER"], os.environ["TUNER_GROUP"] = spec.member, spec.group_id
    try:
        asyncio.run(run_member(spec, pipe.send, stopped, watch=True))
    except BaseException as exc:  # everything, even Ctrl-C, is reported to the parent
        with contextlib.suppress(OSError):
            pipe.send(failure(spec.member, exc))
        raise SystemExit(1) from None
