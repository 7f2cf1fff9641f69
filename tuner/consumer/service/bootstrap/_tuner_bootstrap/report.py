"""What the wrapped consumers tell the tuner: JSON lines on an inherited pipe.

Each consumer's poll counters are cumulative, so a line that is dropped (the pipe full: the
service must never block on the tuner) loses resolution, not records. A consumer's counters
go out at most every `INTERVAL_S`, from a daemon thread as well as after a poll, so the last
batch of a service that then works on it for long is reported too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Collection
from typing import Any

INTERVAL_S = 0.1
"""The least time between two poll reports of one consumer (about 10 lines a second)."""
HELD_POLL_S = 0.1
"""How long a held poll of `Meter.holding` waits before it returns nothing."""
RETRY_S = 1.0
"""How long a line that must arrive (created, closed, refused) waits for a full pipe."""


class Meter:
    """One consumer's poll counters: calls, records handed out, and the time spent inside
    poll and between polls (`time.monotonic()`, system-wide on Linux, so the tuner compares
    it with its own clock)."""

    def __init__(self, reporter: Reporter, consumer: int) -> None:
        self.reporter = reporter
        self.consumer = consumer
        self.polls = 0
        self.records = 0
        self.in_poll_s = 0.0
        self.between_s = 0.0
        self.max_batch = 0
        self.batches = 0
        """Polls that returned records."""
        self.last_records = 0
        """What the last poll returned: the service's batch in flight until it polls again."""
        self.last_start = 0.0
        self.last_return = 0.0
        self.last_gap_s = 0.0
        self.dirty = False
        self.sent = 0.0
        self.seen: set[tuple[str, str]] = set()
        """The per-call arguments already recorded."""
        self.closed = False
        self.assignment: Callable[[], Collection[Any]] | None = None
        """The consumer's own `assignment()`, read when a poll's counters go out (at most
        every `INTERVAL_S`: confluent-kafka's builds a list each call)."""
        self.partitions: int | None = None
        """Partitions assigned when last read (None: not read yet)."""
        self.assignments = 0
        self.rebalances = 0
        """Rebalances after the first assignment, from the client's own callbacks, counted as
        the tuner's own members count them (`revoked`, `assigned`)."""
        self.revoking = False

    def start(self) -> float:
        """A poll call begins: the gap since the last one returned ends here. Once the tuner
        has asked to hold, no poll begins (the service is stopped next)."""
        if self.reporter.held.is_set():
            threading.Event().wait()
        return self._started()

    async def start_async(self) -> float:
        """`start` of an asyncio client: once held, the poll waits without holding the event
        loop, so the service's own stop (its SIGTERM handler), which cancels the poll, and its
        last commit run on it, as in production."""
        if self.reporter.held.is_set():
            await asyncio.Event().wait()
        return self._started()

    def holding(self) -> bool:
        """`start` of a client whose stop needs the thread that polls: once held, the poll
        waits `HELD_POLL_S` and hands out nothing (True), so the service's loop goes on
        polling nothing until it stops."""
        if not self.reporter.held.is_set():
            return False
        time.sleep(HELD_POLL_S)
        return True

    def _started(self) -> float:
        now = time.monotonic()
        if self.last_return:
            self.last_gap_s = now - self.last_return
        return now

    def done(self, started: float, records: int) -> None:
        """A poll call returned `records` records."""
        now = time.monotonic()
        with self.reporter.lock:
            self.polls += 1
            self.records += records
            self.in_poll_s += now - started
            if self.last_return:
                self.between_s += started - self.last_return
            self.max_batch = max(self.max_batch, records)
            self.batches += records > 0
            self.last_records = records
            self.last_start, self.last_return, self.dirty = started, now, True
        # A poll that handed out records while the count says 0 read it before the group
        # had joined (kafka-python's first polls return empty while it joins): read it again.
        stale = records > 0 and not self.partitions
        if now - self.sent >= INTERVAL_S or self.reporter.held.is_set() or stale:
            self._read_assignment()
            self.reporter.flush(self)

    def revoked(self) -> None:
        """The client takes partitions back: a rebalance starts (one that never completes
        counts too), once the consumer has had an assignment. The count goes out with the
        next poll's counters or the flushing thread's (cumulative: it is never lost)."""
        with self.reporter.lock:
            if self.assignments > 0 and not self.revoking:
                self.rebalances += 1
                self.dirty = True
            self.revoking = True

    def assigned(self, partitions: int) -> None:
        """The client hands partitions out. An incremental protocol (cooperative-sticky,
        KIP-848) only adds, with no revoke before when the consumer only gains: that change
        counts here."""
        with self.reporter.lock:
            if self.assignments > 0 and not self.revoking and partitions:
                self.rebalances += 1
            if partitions or self.assignments == 0:
                self.assignments += 1
            self.revoking, self.dirty = False, True

    def _read_assignment(self) -> None:
        if self.assignment is None:
            return
        with contextlib.suppress(Exception):  # closed, or mid-rebalance: the last count stands
            self.partitions = len(self.assignment())

    def line(self) -> dict[str, Any]:
        """The counters as a `polls` line (the caller holds the lock)."""
        return {
            "kind": "polls", "consumer": self.consumer, "polls": self.polls,
            "records": self.records, "in_poll_s": self.in_poll_s, "between_s": self.between_s,
            "max_batch": self.max_batch, "batches": self.batches,
            "last_records": self.last_records, "partitions": self.partitions,
            "rebalances": self.rebalances,
            "last_start": self.last_start,
            "last_return": self.last_return, "last_gap_s": self.last_gap_s,
        }  # fmt: skip


class Reporter:
    """The pipe to the tuner, shared by every consumer of the process."""

    def __init__(self, fd: int | None) -> None:
        self.fd = fd
        self.lock = threading.Lock()
        self.write_lock = threading.Lock()
        self.meters: list[Meter] = []
        self.thread: threading.Thread | None = None
        self.held = threading.Event()
        """Set when the tuner asked to hold the polls (`hold_on`)."""
        if fd is not None:
            os.set_blocking(fd, False)
            os.register_at_fork(after_in_child=self._forked)

    def meter(self) -> Meter:
        """A new consumer's counters; the first one starts the flushing thread."""
        with self.lock:
            meter = Meter(self, len(self.meters))
            self.meters.append(meter)
        if self.thread is None and self.fd is not None:
            self.thread = threading.Thread(target=self._run, name="tuner-report", daemon=True)
            self.thread.start()
        return meter

    def hold_on(self, control_fd: int | None) -> None:
        """Listen on the tuner's control pipe: a byte on it holds every poll from then on,
        after which each consumer's counters go out at once and a `held` line says so, so
        that what the service consumed is all counted before the tuner stops it (a commit
        it makes next is of records counted already). The pipe's end (the tuner is gone)
        stops the service as SIGTERM would: it must not outlive its trial."""
        if control_fd is None:
            return

        def listen() -> None:
            try:
                got = os.read(control_fd, 1)
            except OSError:
                got = b""
            if not got:
                os.kill(os.getpid(), signal.SIGTERM)
                return
            self.held.set()
            for meter in list(self.meters):
                self.flush(meter)
            self.event(None, "held")

        threading.Thread(target=listen, name="tuner-control", daemon=True).start()

    def event(self, meter: Meter | None, kind: str, **fields: object) -> None:
        """A line that must arrive: it waits (briefly) for room in the pipe."""
        line = {"kind": kind, **({"consumer": meter.consumer} if meter else {}), **fields}
        self._write(line, wait_s=RETRY_S)

    def flush(self, meter: Meter) -> None:
        """Send `meter`'s counters if they changed."""
        with self.lock:
            if not meter.dirty:
                return
            line, meter.dirty, meter.sent = meter.line(), False, time.monotonic()
        self._write(line, wait_s=0.0)

    def _run(self) -> None:
        while True:
            time.sleep(INTERVAL_S)
            for meter in list(self.meters):
                if time.monotonic() - meter.sent >= INTERVAL_S:
                    self.flush(meter)

    def _write(self, line: dict[str, Any], *, wait_s: float) -> None:
        if self.fd is None:
            return
        line |= {"pid": os.getpid(), "at": time.monotonic()}
        data = (json.dumps(line, separators=(",", ":")) + "\n").encode()
        deadline = time.monotonic() + wait_s
        with self.write_lock:  # a line longer than PIPE_BUF may go in parts: keep them together
            whole = len(data)
            while data and self.fd is not None:
                try:
                    data = data[os.write(self.fd, data) :]
                except BlockingIOError:
                    if len(data) == whole and time.monotonic() >= deadline:
                        return  # nothing of it is out yet: drop it (counters are cumulative)
                    time.sleep(0.001)  # part of it is out: the rest must follow
                except OSError:
                    self.fd = None  # the tuner is gone: the service goes on unreported

    def _forked(self) -> None:
        """A forked child (a worker of the service) reports its own consumers, from its own
        thread."""
        self.lock, self.write_lock = threading.Lock(), threading.Lock()
        self.meters, self.thread = [], None
        self.held = threading.Event()
