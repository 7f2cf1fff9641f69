"""Record values of sizes drawn from a distribution, and the order producers write records in.

Sizes are the distribution's quantiles at evenly spaced probabilities, shuffled: a pool of a
few thousand values then has the asked median, p99 and mean to within rounding, which random
draws of that many would miss by several percent in the tail.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Sequence
from statistics import NormalDist
from typing import Literal

from tuner.payloads.records import Record

Distribution = Literal["lognormal", "exponential"]
Order = Literal["round_robin", "random"]

MAX_VALUE_BYTES = 10 << 20
"""The largest value drawn (as `workload.message_bytes` allows)."""
POOL_BYTES = 64 << 20
"""Values of a distribution held in memory, at most (fewer draws for a large mean)."""
MAX_DRAWS = 4096
MIN_DRAWS = 200
Z99 = NormalDist().inv_cdf(0.99)
MAX_LOGNORMAL_RATIO = math.exp(Z99 * Z99 / 2)
"""The largest p99/mean a lognormal can have (~14.97): its p99 peaks there as sigma grows."""


def lognormal_sigma(mean: float, p99: float) -> float:
    """The sigma of the lognormal with this mean and 99th percentile (the smaller root of
    ln(p99/mean) = Z99*sigma - sigma²/2); `ValueError` when no lognormal has them."""
    if not 0 < mean <= p99 <= mean * MAX_LOGNORMAL_RATIO:
        raise ValueError(f"no lognormal has mean {mean:g} and p99 {p99:g}")
    return Z99 - math.sqrt(Z99 * Z99 - 2 * math.log(p99 / mean))


def quantile(distribution: Distribution, mean: float, p99: float | None, p: float) -> float:
    """The distribution's `p` quantile (lognormal needs `p99`)."""
    if distribution == "exponential":
        return -mean * math.log1p(-p)
    if p99 is None:
        raise ValueError("a lognormal size needs p99")
    sigma = lognormal_sigma(mean, p99)
    mu = math.log(mean) - sigma * sigma / 2
    return math.exp(mu + sigma * NormalDist().inv_cdf(p))


def draws_for(mean: float) -> int:
    return max(MIN_DRAWS, min(MAX_DRAWS, int(POOL_BYTES // max(mean, 1.0))))


def sized_values(
    distribution: Distribution, mean: float, p99: float | None, *, seed: int = 0
) -> tuple[Record, ...]:
    """Random (incompressible) values whose sizes follow the distribution, in shuffled order."""
    n = draws_for(mean)
    sizes = [
        min(MAX_VALUE_BYTES, max(1, round(quantile(distribution, mean, p99, (i + 0.5) / n))))
        for i in range(n)
    ]
    rng = random.Random(seed)  # noqa: S311 - filler bytes and an order, not secrets
    rng.shuffle(sizes)
    return tuple(Record(key=None, value=rng.randbytes(size)) for size in sizes)


def fixed_values(size: int, *, seed: int = 0) -> tuple[Record, ...]:
    """Distinct random values of one size: a batch of them compresses as real distinct records
    of random bytes do (not at all), where one value repeated would compress dozens of times
    and carry a fraction of the bytes through the broker and the network."""
    n = max(1, min(MAX_DRAWS, POOL_BYTES // size))
    rng = random.Random(seed)  # noqa: S311 - filler bytes, not secrets
    return tuple(Record(key=None, value=rng.randbytes(size)) for _ in range(n))


def cycle(records: Sequence[Record], order: Order, seed: int) -> Callable[[], Record]:
    """The next record to write, round-robin over `records`, or drawn at random with `seed`."""
    if order == "random":
        rng = random.Random(seed)  # noqa: S311 - a reproducible order, not a secret
        return lambda: records[rng.randrange(len(records))]
    return itertools.cycle(records).__next__


def percentile(sorted_values: Sequence[int], q: float) -> int:
    """The nearest-rank `q` quantile of sorted values."""
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]
