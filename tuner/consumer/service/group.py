"""The team's service as a trial's consumer group: `members` copies of its command, each in
its own process group, measured from what the bootstrap reports.

`ServiceGroup` offers what the trial asks of `ConsumerGroup` (`tuner.consumer.Group`), so
the warm-up, the window and the offsets' cross-check run unchanged. Each member's reports
feed a `ConsumerMetrics` of its own, served through the group's collector: records count as
consumed when the client hands them out (the broker's committed offsets say what the service
finished), and a service's batch is one poll's records, done when it polls again. A batch has
no expected time (`batch_s` 0), so the window's rules treat it as a user's handler's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import signal
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric

from tuner.children import describe_exit
from tuner.clients import CLIENTS, ClientName, client_named
from tuner.config.spec import ServiceSpec, StudySpec
from tuner.consumer.group import GroupError, _GroupCollector
from tuner.consumer.messages import Problem, ProblemKind, Progress
from tuner.consumer.service.meter import MemberMeter
from tuner.consumer.service.plan import REFUSED_EXIT, child_environment, write_plan
from tuner.consumer.service.reports import (
    ReportError,
    ServiceReports,
    ServiceRun,
    follow,
    report_pipe,
)
from tuner.protocol import GroupProtocol
from tuner.settings import SettingValue

log = logging.getLogger(__name__)

CREATE_TIMEOUT_S = 30.0
"""A member that has created no Kafka consumer this long after its start fails the trial."""
HOLD_WAIT_S = 2.0
"""How long a member is given to hold its polls and send its counters before SIGTERM."""
STOP_GRACE_S = 10.0
"""From SIGTERM to a member's process group until SIGKILL."""
OUTPUT_LINES = 5
"""The last lines of a member's output that go into a failed trial's reason."""
OUTPUT_TAIL_BYTES = 64 * 1024
"""How much of the end of a member's output file is read for those lines."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceMember:
    """What the trial reads of a member's spec: its name and group (as `MemberSpec`'s)."""

    member: str
    group_id: str
    handler: None = None
    """A service has no handler of the tuner's (`MemberSpec.handler`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceGroupSpec:
    """Everything a `ServiceGroup` starts its members with."""

    service: ServiceSpec
    bootstrap_servers: str
    group_id: str
    topic: str
    members: int
    settings: Mapping[str, SettingValue]
    record_bytes: int
    """Bytes credited per record consumed (`MemberMeter.record_bytes`)."""
    protocol: GroupProtocol = "classic"
    offset_reset: str = "earliest"
    client: ClientName = "aiokafka"
    """`consumer.client`: the search space, defaults and report are this client's, so the
    service's consumer must be one of its `service_clients`."""


@dataclass(slots=True, kw_only=True)
class _Running:
    """One member process and what the parent made of its reports so far."""

    name: str
    proc: asyncio.subprocess.Process
    control: int
    """The write end of the member's control pipe (a byte asks it to hold its polls)."""
    output: Path
    started: float
    meter: MemberMeter
    reports: ServiceReports = field(default_factory=ServiceReports)
    follower: asyncio.Task[None] | None = None
    broken: str | None = None
    """A line on the pipe that was no report (the bootstrap and the tuner disagree)."""


class _ServiceCollector(_GroupCollector):
    """The group's collector, brought up to the members' latest reports at each collect."""

    def __init__(self, refresh: Callable[[], None]) -> None:
        super().__init__()
        self._refresh = refresh

    def collect(self) -> Iterator[Metric]:
        self._refresh()
        yield from super().collect()


class ServiceGroup:
    """`members` copies of the service's command in the trial's group; `async with` starts
    them and stops them all (SIGTERM to each process group, SIGKILL after `STOP_GRACE_S`),
    however the trial ends."""

    def __init__(self, spec: ServiceGroupSpec, *, registry: CollectorRegistry) -> None:
        self.spec = spec
        self.registry = registry
        self.members = [
            ServiceMember(member=f"m{i}", group_id=spec.group_id) for i in range(spec.members)
        ]
        self.collector = _ServiceCollector(self._refresh)
        self._running: list[_Running] = []
        self._stopping = False
        self._reported = 0
        self._errors: list[Problem] = []
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def command(self) -> str:
        return shlex.join(self.spec.service.command)

    async def __aenter__(self) -> ServiceGroup:
        self._dir = tempfile.TemporaryDirectory(prefix="tuner-service-")
        self.registry.register(self.collector)
        try:
            for member in self.members:
                await self._start(member.member, Path(self._dir.name))
        except BaseException:
            await self._shutdown()
            raise
        return self

    async def _start(self, name: str, workdir: Path) -> None:
        service = self.spec.service
        read_fd, write_fd = report_pipe()
        hold_fd, control = os.pipe()
        os.set_inheritable(hold_fd, True)
        try:
            plan = write_plan(
                workdir / f"{name}.plan.json", service=service,
                bootstrap_servers=self.spec.bootstrap_servers, group_id=self.spec.group_id,
                topic=self.spec.topic, settings=self.spec.settings, report_fd=write_fd,
                control_fd=hold_fd, offset_reset=self.spec.offset_reset,
                protocol=self.spec.protocol,
            )  # fmt: skip
            output = workdir / f"{name}.out"
            with output.open("wb") as out:
                proc = await asyncio.create_subprocess_exec(
                    *service.command, cwd=service.cwd, env=child_environment(service, plan),
                    stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out,
                    pass_fds=(write_fd, hold_fd), start_new_session=True,
                )  # fmt: skip
        except OSError as exc:
            os.close(read_fd)
            os.close(control)
            raise GroupError(f"member {name}: cannot start {self.command}: {exc}") from exc
        finally:
            os.close(write_fd)
            os.close(hold_fd)
        meter = MemberMeter(
            group_id=self.spec.group_id, member=name, topic=self.spec.topic,
            record_bytes=self.spec.record_bytes, protocol=self.spec.protocol,
        )  # fmt: skip
        running = _Running(
            name=name, proc=proc, control=control, output=output, started=time.monotonic(),
            meter=meter,
        )  # fmt: skip
        running.follower = asyncio.create_task(self._follow(running, read_fd), name=name)
        self._running.append(running)

    async def _follow(self, running: _Running, read_fd: int) -> None:
        try:
            await follow(read_fd, running.reports)
        except ReportError as exc:
            running.broken = str(exc)
            self._errors.append(
                Problem(kind=ProblemKind.CONSUMER, member=running.name, message=str(exc))
            )

    def _last_lines(self, running: _Running) -> str:
        try:
            with running.output.open("rb") as out:
                out.seek(max(out.seek(0, os.SEEK_END) - OUTPUT_TAIL_BYTES, 0))
                text = out.read().decode(errors="replace")
        except OSError:
            return ""
        lines = [line for line in text.splitlines() if line.strip()][-OUTPUT_LINES:]
        return " | ".join(lines) if lines else ""

    def _said(self, running: _Running) -> str:
        lines = self._last_lines(running)
        return f"; its last output: {lines}" if lines else "; it wrote no output"

    def _exited(self, running: _Running) -> str | None:
        """Why `running` is no member any more (its exit, in words), or None while it runs."""
        code = running.proc.returncode
        if code is None:
            return None
        if code == REFUSED_EXIT:
            refused = "; ".join(r.message for r in running.reports.refused)
            why = f": {refused}" if refused else ""
            return (
                f"member {running.name}: the tuner's bootstrap stopped {self.command} "
                f"(exit {code}): it would read or write outside the trial{why}"
                f"{self._said(running)}"
            )
        return (
            f"member {running.name}: {self.command} {describe_exit(code)} during the trial"
            f"{self._said(running)}"
        )

    def _check_created(self, running: _Running) -> None:
        for created in running.reports.created:
            if created.client not in client_named(self.spec.client).service_clients:
                runs = next(c.name for c in CLIENTS.values() if created.client in c.service_clients)
                raise GroupError(
                    f"member {running.name}: {self.command} created a {created.client} "
                    f"{created.version} consumer, but consumer.client is {self.spec.client}: "
                    f"set consumer.client: {runs}, so that the search space, the defaults and "
                    "the report are its client's"
                )
        if running.reports.created or time.monotonic() - running.started < CREATE_TIMEOUT_S:
            return
        raise GroupError(
            f"member {running.name}: no Kafka consumer was created by {self.command} within "
            f"{CREATE_TIMEOUT_S:g} s: is consumer.service.topic right, does it use aiokafka, "
            f"confluent-kafka or kafka-python?{self._said(running)}"
        )

    async def wait_until_assigned(self, timeout_s: float = 60.0) -> None:
        """Wait until every member's consumer has handed out records (it has partitions: the
        trial's backlog is there to read). Raises `GroupError` when a member exits, creates
        no consumer within `CREATE_TIMEOUT_S`, or `timeout_s` passes."""
        try:
            async with asyncio.timeout(timeout_s):
                while not all(r.reports.progress().records > 0 for r in self._running):
                    self.check_not_killed()
                    for running in self._running:
                        self._check_created(running)
                    await asyncio.sleep(0.1)
        except TimeoutError:
            got = ", ".join(f"{r.name} {r.reports.progress().records}" for r in self._running)
            raise GroupError(
                f"not every member of {self.command} consumed a record within "
                f"{timeout_s:.0f} s (records per member: {got})"
            ) from None

    def check_not_killed(self) -> None:
        """Raise `GroupError` if a member process has exited: a service runs until it is
        stopped, so the group measured since is not the configuration's."""
        if self._stopping:
            return
        for running in self._running:
            if (why := self._exited(running)) is not None:
                raise GroupError(why)

    def check_handlers(self) -> None:
        """A service runs no handler of the tuner's; its failures end its process."""

    async def check_handlers_return(self, since: float, within_s: float) -> None:
        """A service runs no handler of the tuner's (`ConsumerGroup.check_handlers_return`)."""
        del since, within_s

    def errors(self) -> list[Problem]:
        """Problems reported since the last call (a line on the pipe that was no report)."""
        new = self._errors[self._reported :]
        self._reported = len(self._errors)
        return new

    def progress(self) -> dict[str, Progress]:
        """Each member's progress from its reports; a member that has polled none is absent."""
        self._refresh()
        return dict(self.collector.progress)

    def service_run(self) -> ServiceRun | None:
        """What the first member's service ran and its code passed (every member runs the
        same command)."""
        return self._running[0].reports.service_run() if self._running else None

    def families(self) -> list[Metric]:
        """The members' families as of their latest reports (also after the group stopped)."""
        return list(self.collector.collect())

    def _refresh(self) -> None:
        """Bring each member's instruments and progress up to its latest reports (at collect
        time too: the collector calls it)."""
        now = time.monotonic()
        for running in self._running:
            progress = running.meter.update(running.reports, now)
            if progress is not None:
                self.collector.progress[running.name] = progress
                self.collector.latest[running.name] = running.meter.families()

    async def __aexit__(self, *exc_info: object) -> None:
        await self._shutdown()

    async def _shutdown(self) -> None:
        """SIGTERM to every member's process group, SIGKILL to those left after
        `STOP_GRACE_S`; none outlives the trial, also when this is cancelled (Ctrl-C)."""
        self._stopping = True
        try:
            await self._hold()
            _signal_all(self._running, signal.SIGTERM)
            deadline = time.monotonic() + STOP_GRACE_S
            for running in self._running:
                left = max(deadline - time.monotonic(), 0.0)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(running.proc.wait(), left)
                if running.proc.returncode is None:
                    log.warning(
                        "member %s (%s) did not stop %g s after SIGTERM: killing it",
                        running.name, self.command, STOP_GRACE_S,
                    )  # fmt: skip
        finally:
            # The whole process group: a service's own workers (a forking server) too.
            _signal_all(self._running, signal.SIGKILL)
            for running in self._running:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(running.proc.wait(), 5)
            followers = [r.follower for r in self._running if r.follower is not None]
            if followers:
                _, pending = await asyncio.wait(followers, timeout=5)
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
            for running in self._running:
                with contextlib.suppress(OSError):
                    os.close(running.control)
            self._refresh()
            with contextlib.suppress(KeyError):
                self.registry.unregister(self.collector)
            if self._dir is not None:
                self._dir.cleanup()

    async def _hold(self) -> None:
        """Ask every member to hold its polls, and wait (`HOLD_WAIT_S` at most) until each
        has sent its counters: a member stopped between a poll and its next report would
        have committed records it was never counted for."""
        for running in self._running:
            with contextlib.suppress(OSError):
                os.write(running.control, b"h")
        deadline = time.monotonic() + HOLD_WAIT_S
        while time.monotonic() < deadline and any(  # noqa: ASYNC110 - no event for a report
            r.proc.returncode is None and r.reports.created and not r.reports.held
            for r in self._running
        ):
            await asyncio.sleep(0.02)


def _signal_all(running: Sequence[_Running], sig: signal.Signals) -> None:
    for member in running:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(member.proc.pid, sig)  # its own session: the group's id is its pid


def service_group(
    spec: StudySpec,
    bootstrap_servers: str,
    settings: Mapping[str, SettingValue],
    group_id: str,
    *,
    registry: CollectorRegistry,
) -> ServiceGroup:
    """`spec`'s `consumer.service` as the trial's group `group_id` on its topic."""
    if spec.consumer.service is None:
        raise ValueError("the study runs no service (consumer.service is not given)")
    return ServiceGroup(
        ServiceGroupSpec(
            service=spec.consumer.service, bootstrap_servers=bootstrap_servers,
            group_id=group_id, topic=spec.topic.name, members=spec.consumer.members,
            settings=settings, record_bytes=spec.workload.mean_message_bytes,
            protocol=spec.consumer.group_protocol, client=spec.consumer.client,
        ),
        registry=registry,
    )  # fmt: skip
