"""The poll timing both clients' members share: the gap between polls (the one still open
included), the wait inside each, and the sliding-window maximum the `*_max` gauges show."""

from __future__ import annotations

import collections
import threading
import time

from tuner.metrics import ConsumerMetrics

MAX_WINDOW_S = 30.0
"""Like the Java client's `*-max` metrics (time-between-poll-max, fetch-latency-max): the
maximum over the last 30 s (`metrics.sample.window.ms` x `metrics.num.samples`)."""
IDLE_DECAY = 0.9


class WindowMax:
    """The largest value added in the last `window_s` seconds, as a sliding-window maximum.

    The deque keeps only values no later, larger one has superseded, so each `add` costs O(1)
    amortised (a scan of every value cost 0.4 ms per poll at thousands of polls/s).
    """

    def __init__(self, window_s: float = MAX_WINDOW_S) -> None:
        self.window_s = window_s
        self._values: collections.deque[tuple[float, float]] = collections.deque()

    def add(self, now: float, value: float) -> float:
        """Add `value` observed at `now` (monotonic seconds); return the window's maximum."""
        values = self._values
        while values and values[-1][1] <= value:
            values.pop()
        values.append((now, value))
        while values[0][0] < now - self.window_s:
            values.popleft()
        return values[0][1]


class PollTimer:
    """Times the gap between polls and the wait inside each, into the poll families; the
    same for every client, so the families mean the same whichever client fed them.

    The longest gap, the idle ratio and the open gap are read when the member reports (gauge
    functions), not set at each poll: a member inside one long batch has not polled, and its
    gap so far (now - its last poll) is the longest one and busy time while it lasts. Set at
    each poll they showed the poll before the batch (a gap of 0, idle 1.0) for as long as the
    batch held the member. The report may be read from the member's watchdog thread, so the
    state is guarded by a lock.
    """

    def __init__(self, metrics: ConsumerMetrics) -> None:
        self.metrics = metrics
        self._lock = threading.Lock()
        self._last_poll: float | None = None
        self._last_return: float | None = None
        self._polling = self._closed = False
        self._poll_max = WindowMax()
        self._idle = 0.0
        self._busy = 0.0
        metrics.poll_interval_max.set_function(self._interval_max)
        metrics.poll_idle_ratio.set_function(self._idle_ratio)
        metrics.poll_gap_open.set_function(lambda: self.open_s(time.perf_counter()))

    def called(self) -> float:
        """A poll starts now: observe the gap since the previous one; returns the time."""
        called = time.perf_counter()
        with self._lock:
            if self._last_poll is not None:
                interval = called - self._last_poll
                self.metrics.poll_interval.observe(interval)
                self._poll_max.add(called, interval)
            if self._last_return is not None:
                self._busy = self._busy * IDLE_DECAY + (called - self._last_return)
            self._polling = True
        return called

    def returned(self, called: float) -> float:
        """The poll started at `called` returned now: update the idle ratio; returns the time."""
        returned = time.perf_counter()
        with self._lock:
            self._idle = self._idle * IDLE_DECAY + (returned - called)
            self._last_poll, self._last_return = called, returned
            self._polling = False
        self.metrics.last_poll.set_to_current_time()
        return returned

    def close(self) -> None:
        """The member stops polling on purpose (it leaves the group): no gap is open after."""
        with self._lock:
            self._closed = True

    def open_s(self, now: float) -> float:
        """How long the member has gone without polling by `now` (`time.perf_counter()`):
        since its last poll began, while it works on what that poll returned; 0 inside a poll,
        before the first one and after `close`."""
        last = self._last_poll
        if last is None or self._polling or self._closed:
            return 0.0
        return max(now - last, 0.0)

    def _interval_max(self) -> float:
        now = time.perf_counter()
        with self._lock:
            return self._poll_max.add(now, self.open_s(now))

    def _idle_ratio(self) -> float:
        now = time.perf_counter()
        with self._lock:
            busy = self._busy
            if self._last_return is not None and self.open_s(now) > 0:
                busy += now - self._last_return  # the batch so far: busy, not idle
            total = self._idle + busy
            return self._idle / total if total > 0 else 0.0
