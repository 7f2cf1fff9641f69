"""How long one batch takes: the distribution of a sum of N per-record draws, plus the
per-batch cost.

A batch's time is not N x the p99 of one record: its mean is N x the mean, and its spread
grows like √N, so a large batch is much closer to its mean than one record is. For a
constant cost the sum is exact; a sum of N exponentials is Erlang (a gamma of shape N), also
exact; a sum of lognormals has no closed form and is fitted by a lognormal with the sum's
exact mean and variance (Fenton-Wilkinson), exact at N = 1 and normal-like as N grows.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist

from tuner.advice.facts import Workload
from tuner.advice.numbers import number
from tuner.consumer.processing import lognormal_params

BATCH_QUANTILE = 0.99
"""The percentile of a batch's time the rules compare against their limits."""
METHODS = {
    "constant": "exact: a constant per record",
    "exponential": "exact: a sum of exponentials is Erlang",
    "lognormal": "a sum of lognormals, Fenton-Wilkinson fit",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchTime:
    """A batch of `records` records: its mean time and its time at `quantile`, both with the
    per-batch cost."""

    records: int
    quantile: float
    mean_ms: float
    at_quantile_ms: float
    per_batch_ms: float
    method: str
    batches: int = 1
    """Polls the records came in, each paying `per_batch_ms`."""

    @property
    def label(self) -> str:
        """`p99 of a batch of 6,990 records`, or `p99 of 6,990 records in 70 polls`."""
        record = "record" if self.records == 1 else "records"
        if self.batches > 1:
            return (
                f"p{self.quantile * 100:g} of {number(self.records)} {record} in "
                f"{number(self.batches)} polls"
            )
        return f"p{self.quantile * 100:g} of a batch of {number(self.records)} {record}"

    @property
    def text(self) -> str:
        """The number with what it is and how it was computed."""
        each = "" if self.batches == 1 else f" x {number(self.batches)}"
        cost = (
            f", {number(self.per_batch_ms)} ms per batch{each} included"
            if self.per_batch_ms
            else ""
        )
        return (
            f"{self.label}: {number(self.at_quantile_ms)} ms (mean {number(self.mean_ms)} ms; "
            f"{self.method}{cost})"
        )


def batch_time(
    w: Workload, records: int, quantile: float = BATCH_QUANTILE, *, batches: int = 1
) -> BatchTime:
    """The time of `records` records under `w`'s processing model, handed out in `batches`
    polls (each paying the per-batch cost)."""
    n = max(records, 0)
    mean = w.per_record_ms
    sum_mean = n * mean
    if n == 0 or mean <= 0 or w.distribution == "constant":
        at = sum_mean
    elif w.distribution == "exponential":
        from scipy.special import gammaincinv  # noqa: PLC0415 - slow to import; advice only

        at = float(gammaincinv(n, quantile)) * mean
    else:
        _, sigma = lognormal_params(mean, w.record_p99_ms)
        spread = math.log1p(math.expm1(sigma * sigma) / n)  # σ² of the fitted sum
        z = NormalDist().inv_cdf(quantile)
        at = sum_mean * math.exp(z * math.sqrt(spread) - spread / 2)
    fixed = w.per_batch_ms * batches
    return BatchTime(
        records=n, quantile=quantile, mean_ms=sum_mean + fixed, at_quantile_ms=at + fixed,
        per_batch_ms=w.per_batch_ms, method=METHODS[w.distribution], batches=batches,
    )  # fmt: skip


def records_within(w: Workload, budget_ms: float, quantile: float = BATCH_QUANTILE) -> int:
    """The largest batch whose time at `quantile` fits `budget_ms`; 0 when the batch size
    cannot bring it there (one record is already too slow, or the cost is all per batch)."""
    if w.per_record_ms <= 0:
        return 0
    return largest_within(lambda n: batch_time(w, n, quantile).at_quantile_ms, budget_ms, w)


def largest_within(time_ms: Callable[[int], float], budget_ms: float, w: Workload) -> int:
    """The largest record count whose `time_ms` (growing with the count, never below the mean
    of `w`'s records) fits `budget_ms`; 0 when not even one record does."""
    if time_ms(1) > budget_ms:
        return 0
    low, high = 1, max(int(budget_ms / w.per_record_ms) + 1, 2)
    while high - low > 1:
        mid = (low + high) // 2
        if time_ms(mid) <= budget_ms * (1 + 1e-12):
            low = mid
        else:
            high = mid
    return low  # 1e-12: a sum computed as 5,000.000000001 ms must still fit its 500 records
