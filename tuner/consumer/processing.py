"""The simulated application: how long processing a batch of records takes, and how it waits.

`async` awaits the total (the event loop keeps serving heartbeats and prefetches); `cpu`
burns the CPU for it inside the loop, which blocks aiokafka's heartbeat task too — the
failure mode of a CPU-bound handler in asyncio.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Callable

from tuner.config import ProcessingSpec

STOP_CHECK_S = 0.1
MAX_CARRY_S = 0.005
"""Most sleep overshoot carried into the next batch (a stalled loop is not the model's debt)."""
Z99 = 2.3263478740408408
"""The standard normal's 99th percentile."""


def _never() -> bool:
    return False


class ProcessingModel:
    """Draws per-record processing times with the configured mean (and p99 for lognormal)."""

    def __init__(self, spec: ProcessingSpec, *, seed: int | None = None) -> None:
        self.spec = spec
        self._rng = random.Random(seed)  # noqa: S311 - simulated work times, not secrets
        self._mean_s = spec.per_record_ms / 1000.0
        self._mu, self._sigma = lognormal_params(spec.per_record_ms, spec.p99_ms)
        self._overslept_s = 0.0

    def draw_s(self, records: int) -> float:
        """Total processing time of a batch of `records` records, in seconds."""
        if records <= 0:
            return 0.0
        return self.spec.per_batch_ms / 1000.0 + self._records_s(records)

    def _records_s(self, records: int) -> float:
        if self._mean_s <= 0:
            return 0.0
        kind = self.spec.distribution
        if kind == "constant":
            return self._mean_s * records
        if kind == "exponential":
            rate = 1.0 / self._mean_s
            return sum(self._rng.expovariate(rate) for _ in range(records))
        draw = self._rng.lognormvariate
        return sum(draw(self._mu, self._sigma) for _ in range(records)) / 1000.0

    async def process(self, records: int) -> float:
        """Spend the processing time of a batch; returns the seconds it was meant to take."""
        total = self.draw_s(records)
        await self.spend(total)
        return total

    async def spend(self, seconds: float, stopped: Callable[[], bool] = _never) -> None:
        """Wait (`async`) or burn the CPU (`cpu`) for `seconds`, or until `stopped()`.

        A sleep overshoots by up to a millisecond (the event loop's timer resolution); over
        10 ms batches that would be a 5-10% cost the application does not have, so the
        overshoot is taken off the next batch's time instead. `stopped()` is checked every
        `STOP_CHECK_S`, so a trial ends promptly even inside a batch of several seconds.
        """
        if seconds <= 0:
            return
        deadline = time.perf_counter() + seconds - self._overslept_s
        if self.spec.mode == "async":
            while (left := deadline - time.perf_counter()) > 0 and not stopped():  # noqa: ASYNC110 - stopped() polls a pipe; no event to await
                await asyncio.sleep(min(left, STOP_CHECK_S))
        else:
            check = time.perf_counter() + STOP_CHECK_S
            while (now := time.perf_counter()) < deadline:
                if now >= check:
                    if stopped():
                        break
                    check = now + STOP_CHECK_S
        self._overslept_s = min(max(time.perf_counter() - deadline, 0.0), MAX_CARRY_S)


def record_p99_ms(spec: ProcessingSpec) -> float:
    """The 99th percentile of one record's processing time under `spec`'s distribution."""
    mean = spec.per_record_ms
    if mean <= 0 or spec.distribution == "constant":
        return max(mean, 0.0)
    if spec.distribution == "exponential":
        return mean * math.log(100.0)
    mu, sigma = lognormal_params(mean, spec.p99_ms)
    return math.exp(mu + Z99 * sigma)


def lognormal_params(mean_ms: float, p99_ms: float | None) -> tuple[float, float]:
    """(mu, sigma) of a lognormal (in ms) with the given mean and 99th percentile; given the
    p99 `record_p99_ms` computed, it returns the same sigma (the cap is already in that p99).

    mean = exp(mu + sigma²/2) and p99 = exp(mu + z99·sigma) give
    sigma²/2 - z99·sigma + ln(p99/mean) = 0; the smaller root keeps the tail sane. A p99 too
    far above the mean for any lognormal (ratio > e^(z99²/2) ≈ 15) is capped at that ratio.
    """
    if mean_ms <= 0:
        return 0.0, 0.0
    if p99_ms is None or p99_ms <= mean_ms:
        sigma = 0.5
    else:
        disc = Z99 * Z99 - 2.0 * math.log(p99_ms / mean_ms)
        sigma = Z99 - math.sqrt(max(disc, 0.0))
    return math.log(mean_ms) - sigma * sigma / 2.0, sigma
