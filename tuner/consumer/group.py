"""A consumer group of instrumented members, each in its own OS process by default.

Separate processes, as in production: a CPU-bound handler that blocks one member's event loop
must not stall the other members' heartbeats. Each member keeps a private registry and sends
its metric families to the parent every `SNAPSHOT_EVERY_S`; the parent serves them through one
collector. Samples carry distinct `member` labels, so merging is concatenation — cheaper than
prometheus-client's multiprocess mode, which writes every observation to an mmap file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as Pipe
from types import TracebackType
from typing import Any, ClassVar, Literal

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from tuner.cluster import Connection
from tuner.config import ClusterSpec, ProcessingSpec
from tuner.consumer.instrumented import InstrumentedConsumer, batch_totals
from tuner.consumer.processing import ProcessingModel
from tuner.metrics import PREFIX, ConsumerMetrics

log = logging.getLogger(__name__)

SNAPSHOT_EVERY_S = 0.5
PROGRESS_EVERY_S = 0.02
"""A batch start is told to the parent at least this often (bounds the edge error of a window)."""
POLL_TIMEOUT_MS = 200
STOP_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberSpec:
    """Everything one member needs; picklable, so it crosses into a spawned process."""

    bootstrap_servers: str
    cluster: ClusterSpec
    topic: str
    group_id: str
    member: str
    consumer_kwargs: dict[str, Any] = field(default_factory=dict)
    """aiokafka keyword arguments from `tuner.space.to_aiokafka_kwargs` (plus offset reset)."""
    processing: ProcessingSpec = field(default_factory=ProcessingSpec)
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class Progress:
    """A member's processed records at `at`, and the batch it is working through.

    Records count as consumed when their batch finishes; a window that ends inside a batch
    would then hold a whole number of batches and its rate would jump by whole batches. The
    parent credits the batch in flight linearly over its planned processing time instead.
    """

    at: float
    """`time.monotonic()` of the member (system-wide on Linux, so comparable across processes)."""
    done: dict[str, tuple[int, int]]
    """Topic → (records, value bytes) processed so far."""
    batch: dict[str, tuple[int, int]]
    """Topic → (records, value bytes) of the batch in flight (empty: none)."""
    batch_started: float = 0.0
    batch_s: float = 0.0

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
class _Snapshot:
    member: str
    families: list[Metric]
    assignments: int
    progress: Progress


@dataclass(frozen=True, slots=True)
class _Progressed:
    member: str
    progress: Progress


@dataclass(frozen=True, slots=True)
class _Failed:
    member: str
    error: str
    """One line for the trial's errors: the exception and where it was raised."""
    traceback: str = ""
    """The full formatted traceback, for the parent's log (empty if there was no exception)."""

    def __str__(self) -> str:
        return f"member {self.member}: {self.error}"


Message = _Snapshot | _Progressed | _Failed


class _Reporter:
    """What a member tells its parent: full snapshots every `SNAPSHOT_EVERY_S`, and the start
    of each batch (a `Progress`) at least every `PROGRESS_EVERY_S`."""

    def __init__(
        self, member: str, registry: CollectorRegistry, send: Callable[[Message], None]
    ) -> None:
        self.member, self.registry, self.send = member, registry, send
        self.assignments: Callable[[], int] = lambda: 0
        self.done: dict[str, tuple[int, int]] = {}
        self.progress = Progress(at=time.monotonic(), done={}, batch={})
        self.reported_at = self.progressed_at = 0.0

    def due(self) -> bool:
        return time.monotonic() - self.reported_at >= SNAPSHOT_EVERY_S

    def report(self) -> None:
        self.reported_at = self.progressed_at = time.monotonic()
        snapshot = _Snapshot(
            self.member, list(self.registry.collect()), self.assignments(), self.progress
        )
        self.send(snapshot)

    def batch_started(self, totals: dict[str, tuple[int, int]], work_s: float) -> None:
        now = time.monotonic()
        self.progress = Progress(
            at=now, done=dict(self.done), batch=totals, batch_started=now, batch_s=work_s
        )
        if work_s >= SNAPSHOT_EVERY_S or self.due():
            self.report()  # the parent must see this poll before a batch that takes long
        elif totals and (
            work_s >= PROGRESS_EVERY_S or now - self.progressed_at >= PROGRESS_EVERY_S
        ):
            self.progressed_at = now
            self.send(_Progressed(self.member, self.progress))

    def batch_done(self, totals: dict[str, tuple[int, int]]) -> None:
        for topic, (records, nbytes) in totals.items():
            r, b = self.done.get(topic, (0, 0))
            self.done[topic] = (r + records, b + nbytes)
        self.progress = Progress(at=time.monotonic(), done=dict(self.done), batch={})


async def run_member(
    spec: MemberSpec, send: Callable[[Message], None], stopped: Callable[[], bool]
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
    kwargs = {
        **Connection(bootstrap_servers=spec.bootstrap_servers, cluster=spec.cluster).kwargs(),
        "group_id": spec.group_id,
        "client_id": f"{spec.group_id}.{spec.member}",
        **spec.consumer_kwargs,
    }
    manual_commit = not kwargs.get("enable_auto_commit", True)
    consumer = InstrumentedConsumer(spec.topic, metrics=metrics, **kwargs)
    reporter = _Reporter(spec.member, registry, send)
    reporter.assignments = lambda: consumer.assignments

    async def report_while_idle() -> None:
        while True:
            if reporter.due():
                reporter.report()
            await asyncio.sleep(SNAPSHOT_EVERY_S / 2)

    await consumer.start()
    try:
        async with asyncio.TaskGroup() as tasks:
            idle_reports = tasks.create_task(report_while_idle())
            while not stopped():
                batch = await consumer.getmany(timeout_ms=POLL_TIMEOUT_MS)
                totals = batch_totals(batch)
                count = sum(r for r, _ in totals.values())
                work_s = model.draw_s(count)
                reporter.batch_started(totals, work_s)
                started = time.monotonic()
                await model.spend(work_s, stopped)
                consumer.processed(batch, time.monotonic() - started, totals)
                reporter.batch_done(totals)
                if manual_commit and count:
                    await consumer.commit()
                if reporter.due():
                    reporter.report()
            idle_reports.cancel()
    finally:
        try:
            async with asyncio.timeout(STOP_TIMEOUT_S / 2):
                await consumer.stop()
        except TimeoutError:
            send(
                _Failed(
                    spec.member,
                    "the consumer did not leave the group within "
                    f"{STOP_TIMEOUT_S / 2:.0f} s (its final commit may be lost)",
                )
            )
        finally:
            reporter.report()


def _member_process(spec: MemberSpec, pipe: Pipe) -> None:
    """Entry point of a spawned member: one event loop, stopped by any message on the pipe."""
    logging.basicConfig(level=logging.WARNING)
    # aiokafka logs every retry during joins at ERROR; real failures reach the parent as errors.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)

    def stopped() -> bool:  # "stop", or EOF when the parent is gone: stop either way
        return pipe.poll()

    try:
        asyncio.run(run_member(spec, pipe.send, stopped))
    except BaseException as exc:  # everything, even Ctrl-C, is reported to the parent
        with contextlib.suppress(OSError):
            pipe.send(_failure(spec.member, exc))
        raise SystemExit(1) from None


def _failure(member: str, exc: BaseException) -> _Failed:
    return _Failed(member, _describe(exc), "".join(traceback.format_exception(exc)))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        return _describe(exc.exceptions[0])
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" (at {last[0].filename.rsplit('/', 1)[-1]}:{last[0].lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"


class _GroupCollector(Collector):
    """Serves the latest families each member sent, merged by family name.

    The consumed-records and -bytes counters come from each member's latest `Progress`, with
    the batch in flight credited pro rata at collect time (see `Progress`).
    """

    CREDITED: ClassVar[dict[str, int]] = {
        f"{PREFIX}records_consumed_total": 0,
        f"{PREFIX}bytes_consumed_total": 1,
    }

    def __init__(self) -> None:
        self.latest: dict[str, list[Metric]] = {}
        self.progress: dict[str, Progress] = {}

    def collect(self) -> Iterator[Metric]:
        now = time.monotonic()
        merged: dict[str, Metric] = {}
        for member, families in list(self.latest.items()):
            progress = self.progress.get(member)
            credited = progress.credited(now) if progress else {}
            for family in families:
                target = merged.get(family.name)
                if target is None:
                    target = Metric(family.name, family.documentation, family.type, family.unit)
                    merged[family.name] = target
                for sample in family.samples:
                    index = self.CREDITED.get(sample.name)
                    topic = sample.labels.get("topic", "")
                    if index is not None and topic in credited:
                        value = max(sample.value, credited[topic][index])
                        sample = sample._replace(value=value)  # noqa: PLW2901 - the credited copy
                    target.samples.append(sample)
        yield from merged.values()


def _process_context() -> multiprocessing.context.ForkServerContext:
    """Forkserver: each member is forked from a clean server process that has already
    imported aiokafka and this module, so a member starts in milliseconds instead of
    re-importing everything (a trial's start-up cost), and never inherits a running loop."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
    return ctx


class ConsumerGroup:
    """Run `members` in one consumer group; `async with` starts them and stops them all."""

    def __init__(
        self,
        members: Sequence[MemberSpec],
        *,
        registry: CollectorRegistry,
        isolation: Literal["process", "task"] = "process",
    ) -> None:
        self.members = list(members)
        self.registry = registry
        self.isolation = isolation
        self.collector = _GroupCollector()
        self._joined: dict[str, int] = {}
        self._errors: list[_Failed] = []
        self._reported = 0
        self._procs: list[tuple[Any, Pipe]] = []
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def _receive(self, message: Message) -> None:
        if isinstance(message, _Snapshot):
            self.collector.latest[message.member] = message.families
            self.collector.progress[message.member] = message.progress
            self._joined[message.member] = message.assignments
        elif isinstance(message, _Progressed):
            self.collector.progress[message.member] = message.progress
        else:
            self._errors.append(message)
            if message.traceback:
                # The traceback only where --debug asks for it; the trial reports the one line.
                detail = f"\n{message.traceback}" if log.isEnabledFor(logging.DEBUG) else ""
                log.error("member %s failed: %s%s", message.member, message.error, detail)

    async def __aenter__(self) -> ConsumerGroup:
        self.registry.register(self.collector)
        try:
            if self.isolation == "process":
                self._start_processes()
            else:
                for spec in self.members:
                    self._tasks.append(
                        asyncio.create_task(self._run_task_member(spec), name=spec.member)
                    )
        except BaseException:
            await self._shutdown()
            raise
        return self

    async def _run_task_member(self, spec: MemberSpec) -> None:
        try:
            await run_member(spec, self._receive, self._stop.is_set)
        except Exception as exc:  # a member's failure is reported to the trial, not raised
            self._receive(_failure(spec.member, exc))

    def _start_processes(self) -> None:
        ctx = _process_context()
        loop = asyncio.get_running_loop()
        for spec in self.members:
            parent_end, child_end = ctx.Pipe(duplex=True)
            proc = ctx.Process(
                target=_member_process, args=(spec, child_end), name=spec.member, daemon=True
            )
            proc.start()
            child_end.close()
            self._procs.append((proc, parent_end))
            loop.add_reader(parent_end.fileno(), self._drain, parent_end)

    def _drain(self, pipe: Pipe) -> None:
        try:
            while pipe.poll():
                self._receive(pipe.recv())
        except (EOFError, OSError):
            asyncio.get_running_loop().remove_reader(pipe.fileno())

    async def wait_until_assigned(self, timeout_s: float = 60.0) -> None:
        """Wait until every member has joined the group and received an assignment.

        Not "until balanced": a group whose batches overrun `max.poll.interval.ms` never
        settles, and measuring exactly that is the point.
        """
        try:
            async with asyncio.timeout(timeout_s):
                while len(self._joined) < len(self.members) or min(self._joined.values()) < 1:
                    if self._errors:
                        raise GroupError("; ".join(map(str, self._errors)))
                    self._check_alive()
                    await asyncio.sleep(0.1)
        except TimeoutError:
            raise GroupError(
                f"not every member joined the group within {timeout_s:.0f} s "
                f"(assignments per member: {self._joined or 'none'})"
            ) from None

    def _check_alive(self) -> None:
        for proc, _ in self._procs:
            if proc.exitcode is not None and not self._stop.is_set():
                raise GroupError(f"member {proc.name} exited with code {proc.exitcode}")

    def errors(self) -> list[str]:
        """Errors reported since the last call (member crashes, consumer exceptions)."""
        for proc, pipe in self._procs:
            if proc.exitcode not in (None, 0) and not self._stop.is_set():
                self._drain(pipe)
                if not any(e.member == proc.name for e in self._errors):
                    self._errors.append(_Failed(proc.name, f"exited with code {proc.exitcode}"))
        new = self._errors[self._reported :]
        self._reported = len(self._errors)
        return [str(e) for e in new]

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._shutdown()

    async def _shutdown(self) -> None:
        """Ask every member to stop (final commit, leave group), then terminate stragglers."""
        self._stop.set()
        for _, pipe in self._procs:
            with contextlib.suppress(OSError):
                pipe.send("stop")
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for proc, _ in self._procs:
            while proc.is_alive() and time.monotonic() < deadline:  # noqa: ASYNC110 - no event for a process exit
                await asyncio.sleep(0.05)
            if proc.is_alive():
                log.warning("member %s did not stop in time; terminating it", proc.name)
                proc.terminate()
                await asyncio.to_thread(proc.join, 5)
            if proc.is_alive():
                proc.kill()
                await asyncio.to_thread(proc.join, 5)
        loop = asyncio.get_running_loop()
        for _, pipe in self._procs:
            with contextlib.suppress(OSError, ValueError):
                self._drain(pipe)
                loop.remove_reader(pipe.fileno())
                pipe.close()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=STOP_TIMEOUT_S)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        with contextlib.suppress(KeyError):
            self.registry.unregister(self.collector)

    def families(self) -> list[Metric]:
        """The members' last reported families (also after the group has stopped)."""
        return list(self.collector.collect())


class GroupError(Exception):
    """The group could not form or lost a member."""
