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
from collections.abc import Iterator, Sequence
from dataclasses import replace
from multiprocessing.connection import Connection as Pipe
from types import TracebackType
from typing import Any, ClassVar, Literal, Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from tuner.children import describe_exit
from tuner.clients import CLIENTS
from tuner.config import handler as refs
from tuner.consumer.member import STOP_TIMEOUT_S, MemberSpec, member_process, run_member
from tuner.consumer.messages import (
    Failed,
    Message,
    Problem,
    ProblemKind,
    Progress,
    Progressed,
    Snapshot,
    failure,
)
from tuner.metrics import PREFIX

log = logging.getLogger(__name__)


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
    imported this module and every client's member loop (with its client library), so a
    member starts in milliseconds instead of re-importing everything (a trial's start-up
    cost), and never inherits a running loop."""
    ctx = multiprocessing.get_context("forkserver")
    loops = (client.member_loop.partition(":")[0] for client in CLIENTS.values())
    ctx.set_forkserver_preload([__name__, *loops])
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
        self._errors: list[Failed] = []
        self._reported = 0
        self._procs: list[tuple[Any, Pipe]] = []
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._hung: set[str] = set()

    def _receive(self, message: Message) -> None:
        if isinstance(message, Snapshot):
            self.collector.latest[message.member] = message.families
            self.collector.progress[message.member] = message.progress
            self._joined[message.member] = message.assignments
        elif isinstance(message, Progressed):
            self.collector.progress[message.member] = message.progress
        else:
            if message.kind is ProblemKind.CONSUMER and self._refused_logins(message.member):
                message = replace(message, kind=ProblemKind.AUTHENTICATION)
            self._errors.append(message)
            if message.traceback:
                # The traceback only where --debug asks for it; the trial reports the one line.
                detail = f"\n{message.traceback}" if log.isEnabledFor(logging.DEBUG) else ""
                log.error("member %s failed: %s%s", message.member, message.error, detail)

    def _refused_logins(self, member: str) -> float:
        """Failed authentications `member` reported (a member sends its counts before its
        failure: aiokafka logs a refused login and raises only "Unable to bootstrap")."""
        name = f"{PREFIX}failed_authentications_total"
        families = self.collector.latest.get(member, [])
        return sum(s.value for f in families for s in f.samples if s.name == name)

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
            self._receive(failure(spec.member, exc))

    def _start_processes(self) -> None:
        ctx = _process_context()
        loop = asyncio.get_running_loop()
        for spec in self.members:
            parent_end, child_end = ctx.Pipe(duplex=True)
            proc = ctx.Process(
                target=member_process, args=(spec, child_end), name=spec.member, daemon=True
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
                        raise GroupError("; ".join(e.explained() for e in self._errors))
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
                raise GroupError(f"member {proc.name} {describe_exit(proc.exitcode)}")

    def check_not_killed(self) -> None:
        """Raise `GroupError` if a member process was killed by a signal (from outside: the
        OOM killer, an operator): the group measured since is not the configuration's. A
        member that failed on its own reports its error instead (see `errors`)."""
        for proc, _ in self._procs:
            if proc.exitcode is not None and proc.exitcode < 0 and not self._stop.is_set():
                raise GroupError(
                    f"member {proc.name} (pid {proc.pid}) {describe_exit(proc.exitcode)} "
                    "mid-trial: the group lost a member, so the window did not measure "
                    f"{len(self.members)} members"
                )

    def check_handlers(self) -> None:
        """Raise `GroupError` if the user's handler (or its setup) raised in some member: the
        trial fails with the handler's traceback."""
        for failed in self._errors:
            if failed.handler:
                raise GroupError(failed.explained())

    async def check_handlers_return(self, since: float, within_s: float) -> None:
        """Wait up to `within_s` for every member running the user's handler to have done
        something (returned from a batch, or polled) after `since` (the window's end, as
        `time.monotonic()`); raise `GroupError` naming those that have not: their handler
        hangs, and the window did not measure them. Those members are stopped at once when
        the group ends, instead of after `STOP_TIMEOUT_S`."""
        deadline = time.monotonic() + within_s

        def stuck() -> list[str]:
            return [
                spec.member
                for spec in self.members
                if spec.handler is not None
                and (progress := self.collector.progress.get(spec.member)) is not None
                and progress.at < since
            ]

        while stuck() and time.monotonic() < deadline:
            self.check_handlers()
            await asyncio.sleep(0.05)
        now, hung = time.monotonic(), []
        for member in stuck():
            self._hung.add(member)
            progress = self.collector.progress[member]
            spec = next(s for s in self.members if s.member == member)
            function = refs.short(spec.handler.function) if spec.handler else "?"
            records = sum(r for r, _ in progress.batch.values())
            batch = f" on a batch of {records} records" if records else ""
            hung.append(
                f"member {member}: the handler {function} has not returned for "
                f"{now - progress.at:.1f} s{batch}, at the window's end and {within_s:g} s "
                "after it: it hangs, or one batch takes longer than trial.measure_s"
            )
        if hung:
            raise GroupError("; ".join(hung))

    def errors(self) -> list[Problem]:
        """Problems reported since the last call (member crashes, consumer exceptions, refused
        logins, the user's handler raising), each naming its member and kind."""
        for proc, pipe in self._procs:
            if proc.exitcode not in (None, 0) and not self._stop.is_set():
                self._drain(pipe)
                if not any(e.member == proc.name for e in self._errors):
                    self._errors.append(
                        Failed(proc.name, describe_exit(proc.exitcode), kind=ProblemKind.CRASHED)
                    )
        new = self._errors[self._reported :]
        self._reported = len(self._errors)
        return [Problem(kind=e.kind, member=e.member, message=e.error) for e in new]

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
            # A hung handler never reads the stop message: waiting for it would only delay.
            while proc.is_alive() and time.monotonic() < deadline and proc.name not in self._hung:  # noqa: ASYNC110 - no event for a process exit
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
            wait_s = 1.0 if self._hung else STOP_TIMEOUT_S
            _, pending = await asyncio.wait(self._tasks, timeout=wait_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        with contextlib.suppress(KeyError):
            self.registry.unregister(self.collector)

    def progress(self) -> dict[str, Progress]:
        """Each member's latest progress (its batches finished, the batch in flight), by name;
        a member that has reported none yet is absent."""
        return dict(self.collector.progress)

    def families(self) -> list[Metric]:
        """The members' last reported families (also after the group has stopped)."""
        return list(self.collector.collect())


class GroupError(Exception):
    """The group could not form or lost a member."""


class GroupMember(Protocol):
    """What the trial reads of a member's spec (`MemberSpec`, a service's `ServiceMember`)."""

    @property
    def member(self) -> str: ...
    @property
    def group_id(self) -> str: ...


class Group(Protocol):
    """What a trial asks of the group it measures: `ConsumerGroup` (the tuner's members) and
    `tuner.consumer.service.ServiceGroup` (the team's service) both give it."""

    @property
    def members(self) -> Sequence[GroupMember]: ...
    async def __aenter__(self) -> Group: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
    async def wait_until_assigned(self, timeout_s: float = 60.0) -> None: ...
    def check_not_killed(self) -> None: ...
    def check_handlers(self) -> None: ...
    async def check_handlers_return(self, since: float, within_s: float) -> None: ...
    def errors(self) -> list[Problem]: ...
    def progress(self) -> dict[str, Progress]: ...
    def families(self) -> list[Metric]: ...
