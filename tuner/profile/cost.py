"""The processing model recovered from measured work: per-record and per-batch cost, spread, mode.

Each sample is one member's work over one interval: `records` in `batches` batches took
`seconds`. Batch time = per_batch + Σ per-record times, so over a sample
`seconds = per_record · records + per_batch · batches` plus noise. The two costs are separable
only when samples differ in records per batch: with every batch the same size, any split of
the total fits equally well, and the fit says so instead of guessing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from tuner.consumer.processing import Z99

MIN_SIZE_RATIO = 1.5
"""Largest over smallest records per batch among the samples below which the two costs are
not told apart (a 1.5x spread of sizes keeps a split's standard error near the noise)."""
SPLIT_NOISE = 0.1
"""Largest standard error of the per-batch cost, as a share of the mean batch time, for the
split to be written (beyond it, the sizes varied too little for the noise)."""
CONSTANT_CV = 0.25
"""Per-record coefficient of variation under which the cost is written as constant."""
BLOCKED_SHARE = 0.5
"""Share of the processing time the event loop ran nothing else, above which the handler
blocks the loop (`cpu`; an `async` one yields at its first await)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkSample:
    records: float
    batches: float
    seconds: float
    blocked_seconds: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Estimate:
    """A number for the config, where it came from, and how sure it is (both said in words)."""

    value: float
    source: str
    sure: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CostFit:
    per_record_ms: Estimate
    per_batch_ms: Estimate
    separated: bool
    """False: every batch had about the same size; the total is all per-record."""
    distribution: Literal["constant", "lognormal"]
    spread: Estimate
    """The per-record coefficient of variation (NaN: not measurable)."""
    p99_ms: Estimate | None
    mode: Literal["async", "cpu"]
    mode_estimate: Estimate
    samples: int


def fit(samples: Sequence[WorkSample], *, source: str) -> CostFit:
    """The processing model that explains `samples` (ValueError without any batch)."""
    rows = [s for s in samples if s.batches > 0 and s.records > 0]
    if not rows:
        raise ValueError(f"{source}: no processed batch to profile")
    sizes = [s.records / s.batches for s in rows]
    size_ratio = max(sizes) / min(sizes)
    total_records = sum(s.records for s in rows)
    total_batches = sum(s.batches for s in rows)
    total_s = sum(s.seconds for s in rows)
    n = len(rows)
    separated = size_ratio >= MIN_SIZE_RATIO and n >= 3
    if separated:
        a, b, se_a, se_b = _least_squares(rows)
        if -2 * se_b <= b < 0:  # no per-batch cost, measured as such: refit without one
            b, a = 0.0, sum(s.records * s.seconds for s in rows) / sum(s.records**2 for s in rows)
        # A split whose per-batch uncertainty is a sizeable part of a batch's time is noise.
        if b < 0 or a <= 0 or se_b > SPLIT_NOISE * total_s / total_batches:
            separated = False
    if not separated:
        a, b = total_s / total_records, 0.0
        se_a = se_b = math.nan
    span = (
        f"{n} samples, {total_batches:,.0f} batches, "
        f"{min(sizes):,.0f}-{max(sizes):,.0f} records/batch"
    )
    if separated:
        record = Estimate(
            value=a * 1000, source=f"regression of batch time on batch size ({span})",
            sure=_sure(a, se_a),
        )  # fmt: skip
        batch = Estimate(
            value=b * 1000, source=f"regression intercept per batch ({span})", sure=_sure(b, se_b)
        )
    else:
        record = Estimate(
            value=a * 1000,
            source=f"total processing time / records ({span})",
            sure="per-record and per-batch cost NOT separated: batch sizes varied too little "
            f"(largest/smallest {size_ratio:.2f}) for the noise; this is their sum per record "
            "at this batch size. Profile a period (or runs) with other batch sizes",
        )
        batch = Estimate(
            value=0.0, source="not identifiable from these samples", sure="unknown; assumed 0"
        )
    cv = _per_record_cv(rows, a, b) if separated else None
    distribution: Literal["constant", "lognormal"] = (
        "constant" if cv is None or cv < CONSTANT_CV else "lognormal"
    )
    if cv is None:
        spread = Estimate(
            value=math.nan, source="not measurable without batches of different sizes",
            sure="ASSUMED constant: set distribution and p99_ms if the cost varies per record",
        )  # fmt: skip
    else:
        spread = Estimate(
            value=cv,
            source=f"per-record coefficient of variation {cv:.2f}, from the residuals' variance "
            "regressed on records and batches",
            sure="rough: timing noise on a busy machine inflates it, and the tail's shape is "
            f"assumed (below {CONSTANT_CV} written as constant)",
        )
    p99 = None
    if distribution == "lognormal" and cv is not None:
        sigma = math.sqrt(math.log1p(cv * cv))
        p99 = Estimate(
            value=a * 1000 * math.exp(Z99 * sigma - sigma * sigma / 2),
            source=f"a lognormal with the measured mean and coefficient of variation {cv:.2f}",
            sure="rough: only the spread is measured, the shape of the tail is assumed",
        )
    mode, mode_estimate = _mode(rows)
    return CostFit(
        per_record_ms=record, per_batch_ms=batch, separated=separated,
        distribution=distribution, spread=spread,
        p99_ms=p99, mode=mode, mode_estimate=mode_estimate, samples=n,
    )  # fmt: skip


def _least_squares(rows: Sequence[WorkSample]) -> tuple[float, float, float, float]:
    """(per-record s, per-batch s, their standard errors) of seconds ~ records + batches."""
    srr = sum(s.records * s.records for s in rows)
    srb = sum(s.records * s.batches for s in rows)
    sbb = sum(s.batches * s.batches for s in rows)
    sry = sum(s.records * s.seconds for s in rows)
    sby = sum(s.batches * s.seconds for s in rows)
    det = srr * sbb - srb * srb
    if det <= 0:
        return -1.0, -1.0, math.nan, math.nan
    a = (sry * sbb - sby * srb) / det
    b = (sby * srr - sry * srb) / det
    dof = max(len(rows) - 2, 1)
    var = sum((s.seconds - a * s.records - b * s.batches) ** 2 for s in rows) / dof
    return a, b, math.sqrt(var * sbb / det), math.sqrt(var * srr / det)


def _sure(value: float, se: float) -> str:
    if math.isnan(se):
        return "unknown"
    if value <= 0:
        return f"±{se * 1000:.3g} ms (indistinguishable from 0)"
    rel = se / value
    word = "sure" if rel < 0.05 else "fair" if rel < 0.2 else "unsure"
    return f"{word}: ±{rel:.1%} (one standard error)"


def _per_record_cv(rows: Sequence[WorkSample], a: float, b: float) -> float | None:
    """Per-record coefficient of variation. A sample's residual sums its records' spread
    (variance records · σ²) and each batch's timing noise (batches · τ²: sleep overshoot, the
    scheduler); regressing squared residuals on both separates them as the mean was. None when
    there are too few samples, or the costs were not separated (the same sizes throughout)."""
    if a <= 0 or len(rows) < 4:
        return None
    squares = [
        WorkSample(
            records=s.records,
            batches=s.batches,
            seconds=(s.seconds - a * s.records - b * s.batches) ** 2,
        )
        for s in rows
    ]
    sigma2, _tau2, _, _ = _least_squares(squares)
    return math.sqrt(sigma2) / a if sigma2 > 0 else 0.0


def _mode(rows: Sequence[WorkSample]) -> tuple[Literal["async", "cpu"], Estimate]:
    measured = [s for s in rows if s.blocked_seconds is not None]
    busy = sum(s.seconds for s in measured)
    if not measured or busy <= 0:
        return "async", Estimate(
            value=0.0,
            source="not measured (these metrics do not say if processing blocks the loop)",
            sure="ASSUMED: set cpu if the handler computes in the event loop (it then blocks "
            "heartbeats)",
        )  # fmt: skip
    share = sum(s.blocked_seconds or 0.0 for s in measured) / busy
    mode: Literal["async", "cpu"] = "cpu" if share >= BLOCKED_SHARE else "async"
    return mode, Estimate(
        value=share,
        source=f"share of processing time the event loop was blocked = {share:.2f}",
        sure="sure" if abs(share - BLOCKED_SHARE) > 0.25 else "unsure (near the 0.5 boundary)",
    )
