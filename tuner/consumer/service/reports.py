"""What a service's bootstrap reports, as typed values: JSON lines from the member's pipe.

A consumer inside the service is keyed by (pid, its number in that process): a service may
create several (one per subscriber) or fork workers. Poll counters arrive cumulative, at most
about ten lines a second per consumer, so the latest line of each says everything so far.
Times are the child's `time.monotonic()`, system-wide on Linux, so they compare with ours.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ConsumerKey = tuple[int, int]
"""(pid, the consumer's number in its process)."""


class ReportError(ValueError):
    """A line that is not a report of the bootstrap (named in the message)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Created:
    """The service created a consumer: which client, and what its code passed."""

    key: ConsumerKey
    at: float
    client: str
    version: str
    group_id: str
    """The trial's group, which the consumer runs in."""
    topic: str
    passed: Mapping[str, object]
    """What the service's code passed (topics, keyword arguments or conf), secrets masked."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Passed:
    """A per-call argument the trial's settings replaced (first time each value is seen)."""

    key: ConsumerKey
    at: float
    call: str
    arguments: Mapping[str, object]


@dataclass(frozen=True, slots=True, kw_only=True)
class Polled:
    """A consumer's poll counters so far."""

    key: ConsumerKey
    at: float
    polls: int
    records: int
    """Records the client handed out (consumed, in the tuner's sense)."""
    in_poll_s: float
    between_s: float
    """Time from each poll's return to the next one's start, summed."""
    max_batch: int
    last_start: float
    last_return: float
    last_gap_s: float
    """The gap before the last poll began (0 before the second poll)."""
    batches: int = 0
    """Polls that returned records."""
    last_records: int = 0
    """What the last poll returned: the service's batch in flight until it polls again."""
    partitions: int | None = None
    """Partitions assigned to the consumer when its counters were sent (None: not read)."""
    rebalances: int = 0
    """Rebalances after its first assignment, from the client's own rebalance callbacks."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Closed:
    key: ConsumerKey
    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Refused:
    """The bootstrap stopped the service (another topic, a pattern): the reason, verbatim."""

    pid: int
    at: float
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Held:
    """The process holds every poll from now on, its counters sent (the tuner asked)."""

    pid: int
    at: float


Report = Created | Passed | Polled | Closed | Refused | Held

IDENTITY = frozenset({
    "topics", "bootstrap_servers", "group_id", "bootstrap.servers", "group.id", "client_id",
    "client.id",
})  # fmt: skip
"""What the service passed that names where it runs, not how: the trial replaces it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceRun:
    """What a service's members ran: the client they built, and the settings the service's
    own code passed — its baseline, the trial's settings replacing those they set."""

    client: str
    version: str
    passed: tuple[str, ...] = ()
    """`name=value` of each setting the code passed to the consumer (keywords, or librdkafka's
    configuration) and `call(name=value)` of each per-call one, as the service spells them;
    what it passed at the client's own defaults, as None or as an object is left out."""
    at_defaults: int = 0
    """How many keywords the code passed at the client's own defaults (left out of `passed`)."""

    def line(self) -> str:
        """`kafka-python 2.2.15; its code sets max_poll_records=50, poll(max_records=100)`."""
        sets = ", ".join(self.passed) if self.passed else "nothing over the client's defaults"
        more = f" ({self.at_defaults} more at {self.client}'s defaults)" if self.at_defaults else ""
        return f"{self.client} {self.version}; its code sets {sets}{more}"


def parse_report(line: str | bytes) -> Report:
    """One line of the pipe as its report; a line that is none raises `ReportError`."""
    try:
        raw = json.loads(line)
        return _report(raw)
    except (ValueError, KeyError, TypeError) as error:
        text = line.decode(errors="replace") if isinstance(line, bytes) else line
        raise ReportError(f"not a service report ({error!r}): {text[:200]!r}") from error


def _report(raw: dict[str, Any]) -> Report:
    kind, at = raw["kind"], float(raw["at"])
    if kind == "refused":
        return Refused(pid=int(raw["pid"]), at=at, message=str(raw["message"]))
    if kind == "held":
        return Held(pid=int(raw["pid"]), at=at)
    key = (int(raw["pid"]), int(raw["consumer"]))
    if kind == "created":
        return Created(
            key=key, at=at, client=str(raw["client"]), version=str(raw["version"]),
            group_id=str(raw["group_id"]), topic=str(raw["topic"]), passed=dict(raw["passed"]),
        )  # fmt: skip
    if kind == "passed":
        return Passed(key=key, at=at, call=str(raw["call"]), arguments=dict(raw["arguments"]))
    if kind == "polls":
        return Polled(
            key=key, at=at, polls=int(raw["polls"]), records=int(raw["records"]),
            in_poll_s=float(raw["in_poll_s"]), between_s=float(raw["between_s"]),
            max_batch=int(raw["max_batch"]), last_start=float(raw["last_start"]),
            last_return=float(raw["last_return"]), last_gap_s=float(raw["last_gap_s"]),
            batches=int(raw.get("batches", 0)), last_records=int(raw.get("last_records", 0)),
            partitions=None if raw.get("partitions") is None else int(raw["partitions"]),
            rebalances=int(raw.get("rebalances", 0)),
        )  # fmt: skip
    if kind == "closed":
        return Closed(key=key, at=at)
    raise ValueError(f"unknown kind {kind!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceProgress:
    """One service process's consumers together, as of its latest reports."""

    records: int
    polls: int
    in_poll_s: float
    between_s: float
    max_batch: int
    last_return: float
    """The latest poll return of any consumer (0: none yet)."""
    last_gap_s: float
    """The last poll gap of the consumer that polled last."""
    created: int
    closed: int

    def open_gap_s(self, now: float) -> float:
        """How long no consumer has polled at `now` (a stuck service's gap, still open)."""
        return max(now - self.last_return, 0.0) if self.last_return else 0.0


@dataclass(slots=True)
class ServiceReports:
    """Everything one member process reported, kept as it arrives."""

    created: list[Created] = field(default_factory=list)
    passed: list[Passed] = field(default_factory=list)
    polled: dict[ConsumerKey, Polled] = field(default_factory=dict)
    closed: list[Closed] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    held: list[Held] = field(default_factory=list)

    def add(self, report: Report) -> None:
        match report:
            case Created():
                self.created.append(report)
            case Passed():
                self.passed.append(report)
            case Polled():
                self.polled[report.key] = report
            case Closed():
                self.closed.append(report)
            case Refused():
                self.refused.append(report)
            case Held():
                self.held.append(report)

    def service_run(self) -> ServiceRun | None:
        """The first consumer's client and what the service's code passed to it (None: no
        consumer yet). Values that are objects (a deserializer, a callback) are left out."""
        if not self.created:
            return None
        first = self.created[0]
        given: list[str] = []
        for section in ("kwargs", "conf"):
            values = first.passed.get(section)
            if isinstance(values, dict):
                given += [f"{k}={v}" for k, v in values.items() if _a_setting(k, v)]
        given += [
            f"{p.call}({k}={v})" for p in self.passed if p.key == first.key
            for k, v in p.arguments.items()
        ]  # fmt: skip
        same = first.passed.get("at_defaults")
        return ServiceRun(
            client=first.client,
            version=first.version,
            passed=tuple(dict.fromkeys(given)),
            at_defaults=len(same) if isinstance(same, list) else 0,
        )

    def progress(self) -> ServiceProgress:
        polled = list(self.polled.values())
        last = max(polled, key=lambda p: p.last_return, default=None)
        return ServiceProgress(
            records=sum(p.records for p in polled), polls=sum(p.polls for p in polled),
            in_poll_s=sum(p.in_poll_s for p in polled),
            between_s=sum(p.between_s for p in polled),
            max_batch=max((p.max_batch for p in polled), default=0),
            last_return=last.last_return if last else 0.0,
            last_gap_s=last.last_gap_s if last else 0.0,
            created=len(self.created), closed=len(self.closed),
        )  # fmt: skip


def _a_setting(name: str, value: object) -> bool:
    """A value the report can say: not where the service runs (the trial replaces it), not
    None (the client decides), not an object's repr (a deserializer, an assignor class)."""
    return name not in IDENTITY and value is not None and not _an_object(value)


def _an_object(value: object) -> bool:
    if isinstance(value, list):
        return any(_an_object(v) for v in value)
    return isinstance(value, str) and value.startswith("<")


def report_pipe() -> tuple[int, int]:
    """(read end, write end): the write end is inheritable, for the child's `pass_fds`; the
    parent closes its copy once the child runs."""
    read_fd, write_fd = os.pipe()
    os.set_inheritable(write_fd, True)
    return read_fd, write_fd


async def follow(read_fd: int, reports: ServiceReports) -> None:
    """Read the pipe into `reports` until every writer has closed it (the member exited);
    closes `read_fd`. A line that is no report raises `ReportError`."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_fd, "rb", buffering=0)
    )
    try:
        while line := await reader.readline():
            reports.add(parse_report(line))
    finally:
        transport.close()
