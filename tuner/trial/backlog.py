"""The backlog kept ahead of the group: written before it joins, topped up before the window.

A user knows their consumer, not how many records a window needs. A trial's topic is filled
before the group joins (`tuner.trial.supply.first_backlog`: small until a rate is known), the
group's consumption is sampled from its join on (the records its members report consumed, ten
times a second), and once it has joined the topic is topped up so that the group still has
`SAFETY` times warm-up, window and margin ahead of it. A `workload.prefill_records` the user
gave is a fixed backlog: sampled for the next attempt's size, never topped up. The rates seen go
into `Rates`, which the next attempt, the next trial and the bench size from
(`tuner.trial.measure`).

When the topic cannot be topped up while the group reads (the prefill producer is not clearly
faster than the group, or the top-up ran out of time), `ready` raises `Undersized` before any
window is measured: the caller writes the backlog for the rate seen before a new group joins,
which costs a join and a warm-up, not a window that would have run dry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from types import TracebackType

from prometheus_client import CollectorRegistry

from tuner.cluster import prefill
from tuner.cluster.admin import Connection, end_offsets
from tuner.config import StudySpec
from tuner.metrics import PREFIX, RegistrySnapshot
from tuner.trial import supply

log = logging.getLogger(__name__)


class Undersized(Exception):
    """The backlog could not be got ahead of the group while it read; the message says why."""


SAMPLE_EVERY_S = 0.1
PRODUCER_RATE_OVER_S = 0.5
"""A write shorter than this says little of the producer's rate (its round trips dominate)."""
RATE_OVER_S = 1.0
"""The consumption rate is the fastest over any `RATE_OVER_S` of the samples (shorter
stretches see a batch's credit land at once)."""


@dataclass(slots=True, kw_only=True)
class Rates:
    """The fastest the group was seen to consume on one workload (the trials of a study change
    the settings, so the fastest is what a backlog must be sized for), the prefill producer's
    latest rate, and why the last top-up fell short (None: it did not)."""

    consumed_per_s: float = 0.0
    produced_per_s: float = 0.0
    shortfall: str | None = None

    def saw(self, *, consumed_per_s: float) -> None:
        self.consumed_per_s = max(self.consumed_per_s, consumed_per_s)

    def wrote(self, written: prefill.Written) -> None:
        """Note the producer's rate from a write long enough to show it: the latest, not the
        fastest (beside a group reading, the producer is slower than on an idle machine)."""
        if written.seconds >= PRODUCER_RATE_OVER_S:
            self.produced_per_s = written.records_per_s


async def fill(conn: Connection, spec: StudySpec, records: int, rates: Rates) -> None:
    """Top the trial's topic up to `records` before the group joins, noting the producer's
    rate."""
    rates.wrote(await prefill.filled_to(conn, spec.topic.name, spec.workload, records=records))


@dataclass(slots=True, kw_only=True)
class Keeper:
    """Samples a group's consumption from its join on; `ready` tops the topic up before the
    warm-up (unless the user fixed `workload.prefill_records`). An async context manager:
    sampling stops when it exits, and the fastest rate it saw goes into `rates`."""

    spec: StudySpec
    conn: Connection
    registry: CollectorRegistry
    group_id: str
    rates: Rates | None
    """Where the rates seen go; None: the backlog stays as it was written (no sampling)."""
    restart: bool = False
    """Raise `Undersized` when the top-up cannot get ahead (else note the shortfall)."""
    _resizable: bool = False
    """The shortfall is one a backlog written before the group joins would not have."""
    _lower_bound: bool = False
    """Whether the rate last seen is only a lower bound: the group had read all there was."""
    samples: list[tuple[float, float]] = field(default_factory=list)
    _tasks: asyncio.TaskGroup | None = None
    _sampler: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Keeper:
        if self.rates is None:
            return self
        self._tasks = asyncio.TaskGroup()
        await self._tasks.__aenter__()
        self._sampler = self._tasks.create_task(self._sample())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop()
        if self.rates is not None:
            self.rates.saw(consumed_per_s=self.rate())
        if self._tasks is not None:
            # Not the body's exception: the task group would wrap it in an ExceptionGroup.
            await self._tasks.__aexit__(None, None, None)

    def _stop(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()

    def consumed(self) -> float | None:
        """The group's consumed records now (the batch in flight credited), None before any
        member has reported."""
        with contextlib.suppress(KeyError):
            now = RegistrySnapshot.of(self.registry.collect(), group=self.group_id, at=0.0)
            return now.total(f"{PREFIX}records_consumed_total")
        return None

    async def _sample(self) -> None:
        while True:
            consumed = self.consumed()
            if consumed is not None:
                self.samples.append((time.monotonic(), consumed))
            await asyncio.sleep(SAMPLE_EVERY_S)

    def rate(self) -> float:
        """The fastest the group consumed over any `RATE_OVER_S` of the samples (0: none)."""
        return consumption_rate(self.samples, over_s=RATE_OVER_S)

    async def ready(self) -> None:
        """Top the topic up until the group has warm-up, window and margin ahead of it, sized
        from the fastest rate seen, in writes of a few seconds each (each re-measures both
        rates). Without a rate known yet, the group's first second is its probe.
        A top-up that cannot get ahead raises `Undersized` with `restart`, else is noted in
        `rates`: the window's own judgement decides whether it was capacity-bound."""
        rates = self.rates
        if rates is None or self.spec.workload.prefill_records is not None:
            return  # a backlog the user fixed: sampled (for a next attempt), not topped up
        t = self.spec.trial
        seconds = t.warmup_s + supply.longest_window_s(self.spec) + supply.MARGIN_S
        cap = supply.cap_records(self.spec)
        rates.shortfall = None
        if rates.consumed_per_s <= 0:
            await asyncio.sleep(RATE_OVER_S + 2 * SAMPLE_EVERY_S)
        deadline = time.monotonic() + supply.top_up_limit_s(self.spec)
        while (want := await self._wanted(seconds, deadline, cap)) > 0:
            want = supply.chunk(want, produces_per_s=rates.produced_per_s, spec=self.spec)
            log.info(
                "topping up by %d records for a group at %.0f records/s",
                want, rates.consumed_per_s,
            )  # fmt: skip
            written = await prefill.write(
                self.conn, self.spec.topic.name, self.spec.workload, records=want
            )
            rates.wrote(written)
            if self._lower_bound:
                # The group had read everything: its rate was capped by the backlog, not
                # measured. Let it read the top-up before sizing the next one from its rate.
                await asyncio.sleep(RATE_OVER_S + 2 * SAMPLE_EVERY_S)
        if rates.shortfall and self.restart and self._resizable:
            raise Undersized(rates.shortfall)

    async def _wanted(self, seconds: float, deadline: float, cap: int) -> int:
        """The next top-up in records (0: enough, or it cannot be; then `rates.shortfall`)."""
        rates = self.rates
        assert rates is not None  # noqa: S101 - ready() returned early otherwise
        rates.saw(consumed_per_s=self.rate())
        self._resizable = False
        ends = sum((await end_offsets(self.conn, self.spec.topic.name)).values())
        ahead = max(ends - int(self.consumed() or 0), 0)
        self._lower_bound = ahead == 0
        want = supply.top_up(
            ahead=ahead,
            consumes_per_s=rates.consumed_per_s,
            produces_per_s=rates.produced_per_s,
            seconds=seconds,
        )
        if want is None:
            rates.shortfall = supply.producer_too_slow(
                self.spec, consumed_per_s=rates.consumed_per_s,
                produced_per_s=rates.produced_per_s,
            )  # fmt: skip
            self._resizable = True
            return 0
        if want > 0 and time.monotonic() > deadline:
            rates.shortfall = supply.out_of_time(
                self.spec, consumed_per_s=rates.consumed_per_s, ahead=ahead
            )
            self._resizable = True
            return 0
        if want > 0 and ends + want > cap:
            rates.shortfall = supply.over_cap(self.spec, rates.consumed_per_s)
            return max(cap - ends, 0)
        return want


def consumption_rate(samples: list[tuple[float, float]], *, over_s: float) -> float:
    """The fastest rate over any stretch of at least `over_s` seconds of (time, consumed)
    samples: a lower bound of the group's rate where it ran out of records in the stretch."""
    best = 0.0
    start = 0
    for t, consumed in samples:
        while start + 1 < len(samples) and t - samples[start + 1][0] >= over_s:
            start += 1
        t0, c0 = samples[start]
        if t - t0 >= over_s:
            best = max(best, (consumed - c0) / (t - t0))
    return best
