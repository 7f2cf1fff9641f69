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
from typing import Any, Literal

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from tuner.cluster import Connection
from tuner.config import ClusterSpec, ProcessingSpec
from tuner.consumer.instrumented import InstrumentedConsumer
from tuner.consumer.processing import ProcessingModel
from tuner.metrics import ConsumerMetrics

log = logging.getLogger(__name__)

SNAPSHOT_EVERY_S = 0.5
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
class _Snapshot:
    member: str
    families: list[Metric]
    assignments: int


@dataclass(frozen=True, slots=True)
class _Failed:
    member: str
    error: str
    """One line for the trial's errors: the exception and where it was raised."""
    traceback: str = ""
    """The full formatted traceback, for the parent's log (empty if there was no exception)."""

    def __str__(self) -> str:
        return f"member {self.member}: {self.error}"


Message = _Snapshot | _Failed


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
    model = ProcessingModel(spec.processing, seed=spec.seed)
    kwargs = {
        **Connection(bootstrap_servers=spec.bootstrap_servers, cluster=spec.cluster).kwargs(),
        "group_id": spec.group_id,
        "client_id": f"{spec.group_id}.{spec.member}",
        **spec.consumer_kwargs,
    }
    manual_commit = not kwargs.get("enable_auto_commit", True)
    consumer = InstrumentedConsumer(spec.topic, metrics=metrics, **kwargs)
    reported_at = 0.0

    def report() -> None:
        nonlocal reported_at
        reported_at = time.monotonic()
        send(_Snapshot(spec.member, list(registry.collect()), consumer.assignments))

    async def report_while_idle() -> None:
        while True:
            if time.monotonic() - reported_at >= SNAPSHOT_EVERY_S:
                report()
            await asyncio.sleep(SNAPSHOT_EVERY_S / 2)

    await consumer.start()
    try:
        async with asyncio.TaskGroup() as tasks:
            reporter = tasks.create_task(report_while_idle())
            while not stopped():
                batch = await consumer.getmany(timeout_ms=POLL_TIMEOUT_MS)
                count = sum(len(records) for records in batch.values())
                work_s = model.draw_s(count)
                if work_s >= SNAPSHOT_EVERY_S or time.monotonic() - reported_at >= SNAPSHOT_EVERY_S:
                    report()  # the parent must see this poll before a batch that takes long
                started = time.perf_counter()
                await model.spend(work_s)
                consumer.processed(batch, time.perf_counter() - started)
                if manual_commit and count:
                    await consumer.commit()
                if time.monotonic() - reported_at >= SNAPSHOT_EVERY_S:
                    report()
            reporter.cancel()
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
            report()


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
    """Serves the latest families each member sent, merged by family name."""

    def __init__(self) -> None:
        self.latest: dict[str, list[Metric]] = {}

    def collect(self) -> Iterator[Metric]:
        merged: dict[str, Metric] = {}
        for families in list(self.latest.values()):
            for family in families:
                target = merged.get(family.name)
                if target is None:
                    target = Metric(family.name, family.documentation, family.type, family.unit)
                    merged[family.name] = target
                target.samples.extend(family.samples)
        yield from merged.values()


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
            self._joined[message.member] = message.assignments
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
        ctx = multiprocessing.get_context("spawn")  # never fork a process that runs a loop
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
