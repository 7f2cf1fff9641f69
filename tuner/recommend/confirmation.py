"""Confirmation: the best settings run again beside Java's and aiokafka's defaults.

The three run interleaved (best, java, aiokafka, best, …) so drift hits all alike. The gain is
a Student t-interval on the log of the paired ratios best/baseline, which stays honest with
three to five runs where a bootstrap would present the min and max as a 95% interval.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from tuner.config import ObjectiveSpec, SettingValue
from tuner.recommend.measured import MeasuredClient
from tuner.search.objective import Constraint, Unusable, score, unusable
from tuner.settings import java_defaults
from tuner.trial.result import TrialResult


class Candidate(StrEnum):
    """A configuration the confirmation runs; the value is its key in `summary.json`, and
    `label` the name a reader sees (the own-defaults baseline names the measured client)."""

    BEST = "best"
    JAVA_DEFAULTS = "java defaults"
    AIOKAFKA_DEFAULTS = "aiokafka defaults"

    @property
    def slug(self) -> str:
        """A short form for group ids: `best`, `java`, `aiokafka`."""
        return _SLUGS[self]


_SLUGS = {
    Candidate.BEST: "best",
    Candidate.JAVA_DEFAULTS: "java",
    Candidate.AIOKAFKA_DEFAULTS: "aiokafka",
}


def label(name: Candidate, measured: MeasuredClient) -> str:
    """What a reader sees for `name`: the own-defaults baseline names the measured client."""
    return measured.defaults_label if name is Candidate.AIOKAFKA_DEFAULTS else str(name)


DEFAULTS = (Candidate.JAVA_DEFAULTS, Candidate.AIOKAFKA_DEFAULTS)
"""The baselines the best settings are compared against, in report order."""
MIN_PAIRS = 3
"""Fewer paired runs than this give no interval: two points say nothing about the spread."""
CONFIDENCE = 0.95


@dataclass(frozen=True, slots=True, kw_only=True)
class Gain:
    """best/baseline - 1 over paired runs: the geometric mean and its t-interval."""

    pairs: int
    estimate: float
    interval: tuple[float, float] | None
    """None with fewer than MIN_PAIRS pairs."""

    @property
    def is_noise(self) -> bool:
        return self.interval is not None and self.interval[0] <= 0 <= self.interval[1]

    def describe(self) -> str:
        """One sentence a reader can act on: the gain, its interval, and the verdict."""
        runs = f"{self.pairs} paired run{'s' if self.pairs != 1 else ''}"
        if self.interval is None:
            return (
                f"{self.estimate:+.0%} throughput from {runs}: too few runs to tell "
                f"(raise confirm.repeats to {MIN_PAIRS} or more for an interval)"
            )
        low, high = self.interval
        verdict = "not distinguishable from noise" if self.is_noise else "a real difference"
        return (
            f"{self.estimate:+.0%} throughput ({CONFIDENCE:.0%} interval {low:+.0%} to "
            f"{high:+.0%}, {runs}): {verdict}"
        )


def t_quantile(confidence: float, df: int) -> float:
    """The two-sided Student t critical value, e.g. 4.30 for 95% with 2 degrees of freedom."""
    from scipy import stats  # noqa: PLC0415 - slow to import, needed only for a confirmation

    return float(stats.t.ppf(0.5 + confidence / 2, df))


def paired_gain(
    best: Sequence[float], baseline: Sequence[float], *, confidence: float = CONFIDENCE
) -> Gain:
    """exp(mean ± t·sd/√n) - 1 of log(best/baseline) over the pairs; all values must be > 0."""
    logs = [math.log(b / a) for b, a in zip(best, baseline, strict=True)]
    n = len(logs)
    mean = statistics.fmean(logs)
    if n < MIN_PAIRS:
        return Gain(pairs=n, estimate=math.expm1(mean), interval=None)
    half = t_quantile(confidence, n - 1) * statistics.stdev(logs) / math.sqrt(n)
    return Gain(
        pairs=n,
        estimate=math.expm1(mean),
        interval=(math.expm1(mean - half), math.expm1(mean + half)),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Confirmation:
    """Each candidate's repeated results, in run order."""

    runs: Mapping[Candidate, tuple[TrialResult, ...]]
    objective: ObjectiveSpec | None = None
    """The study's constraints, to say which a configuration broke (None: rebalances only)."""
    settings: Mapping[str, SettingValue] | None = None
    """The recommendation the "best" runs measured (rounded, ablated), as given to them."""
    measured: MeasuredClient = field(default_factory=MeasuredClient)
    """The client every run used: the own-defaults baseline is named after it."""
    unchanged: bool = False
    """The recommendation is the client's defaults (with `consumer.settings`): its runs and the
    own-defaults runs measured the same settings, so their ratio is the machine's spread."""

    def label(self, name: Candidate) -> str:
        return label(name, self.measured)

    def broken(self, name: Candidate) -> dict[Constraint, list[int]]:
        """Constraint → the runs (1-based) of `name` that broke it."""
        out: dict[Constraint, list[int]] = {}
        for i, r in enumerate(self.runs[name], 1):
            violated = (
                score(r, self.objective).violated()
                if self.objective is not None
                else ([Constraint.REBALANCES] if r.rebalances else [])
            )
            for constraint in violated:
                out.setdefault(constraint, []).append(i)
        return out

    def _broken_text(self, name: Candidate) -> str:
        runs = self.runs[name]
        parts = []
        for constraint, which in self.broken(name).items():
            part = f"{constraint} in run {_numbers(which)} of {len(runs)}"
            if constraint is Constraint.MAX_POLL_INTERVAL_HEADROOM:
                gap = max((r.poll.interval_ms_max or 0.0) for r in runs)
                limit = runs[0].settings.get("max.poll.interval.ms")
                part += f" (longest gap between polls {gap:,.0f} ms against {limit} ms)"
            elif constraint is Constraint.REBALANCES:
                part += (
                    " (its records/s count records processed while the group rebalanced, "
                    "which the group may hand out again)"
                )
            parts.append(part)
        return "; ".join(parts)

    def median_throughput(self, name: Candidate) -> float:
        return statistics.median(r.throughput_records_per_s for r in self.runs[name])

    def median_p99_ms(self, name: Candidate) -> float | None:
        """The median steady-state p99 latency, or None when the runs measured none (record
        age while draining a backlog is not a latency the settings cause)."""
        values = [r.steady.p99_ms for r in self.runs[name] if r.steady is not None]
        return statistics.median(values) if values else None

    def rebalances(self, name: Candidate) -> int:
        return sum(r.rebalances for r in self.runs[name])

    def unusable(self, name: Candidate) -> str | None:
        """Why `name`'s runs cannot be compared, or None: a comparison needs every run to be
        usable (`tuner.search.objective.unusable`, the check the ablation makes too)."""
        runs = self.runs[name]
        reasons = [unusable(r) for r in runs]
        emptied = [i for i, why in enumerate(reasons, 1) if why is Unusable.SUPPLY]
        if emptied:
            return (
                f"the backlog of {self.label(name)} ran out in run {_numbers(emptied)} of "
                f"{len(runs)}, so those runs measured the supply of records, not the "
                "consumers; raise workload.prefill_records (or add producer load) and confirm "
                "again"
            )
        if Unusable.COARSE in reasons:  # its edges may be off by a whole batch
            coarse = [i for i, why in enumerate(reasons, 1) if why is Unusable.COARSE]
            return f"the window of {self.label(name)} held too few batches in run " + (
                f"{_numbers(coarse)} of {len(runs)}; lengthen trial.measure_s, confirm again"
            )
        idle = [i for i, why in enumerate(reasons, 1) if why is Unusable.IDLE]
        if idle:
            return (
                f"{self.label(name)} processed 0 records in run {_numbers(idle)} of {len(runs)} "
                f"({self.rebalances(name)} rebalances in all); there is no ratio to give"
            )
        return None

    def gain(self, baseline: Candidate) -> Gain:
        """The best settings against `baseline`, pair by pair; see `paired_gain`."""
        return paired_gain(
            [r.throughput_records_per_s for r in self.runs[Candidate.BEST]],
            [r.throughput_records_per_s for r in self.runs[baseline]],
        )

    def verdict(self, baseline: Candidate) -> str:
        """The gain over `baseline` in words, or why no gain can be given."""
        reason = self.unusable(Candidate.BEST) or self.unusable(baseline)
        name = self.label(baseline)
        if reason is not None:
            return f"against {name}: no gain given: {reason}."
        said = f"against {name}: {self.gain(baseline).describe()}"
        if self.unchanged and baseline is Candidate.AIOKAFKA_DEFAULTS:
            said += (
                "; the recommendation is these very settings, so this is the run-to-run "
                "spread of the same configuration, not a gain"
            )
        if self.broken(baseline) and not self.broken(Candidate.BEST):
            said += (
                f"; but {name} broke the study's constraints, which the recommendation "
                f"kept: {self._broken_text(baseline)}"
            )
        return said + "."


def _numbers(values: Sequence[int]) -> str:
    return ", ".join(map(str, values))


def candidates(
    best: Mapping[str, SettingValue], base: Mapping[str, SettingValue]
) -> dict[Candidate, dict[str, SettingValue]]:
    """The three configurations; the config's own `consumer.settings` stay fixed in all."""
    return {
        Candidate.BEST: {**base, **best},
        Candidate.JAVA_DEFAULTS: {**java_defaults(), **base},
        Candidate.AIOKAFKA_DEFAULTS: dict(base),
    }
