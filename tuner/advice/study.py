"""The advisor on a study's outcome: the defaults' findings beside the recommendation's, so
the recommendation explains itself."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from tuner.advice.facts import Facts, from_config, from_run, merge
from tuner.advice.findings import Finding
from tuner.advice.rules import advise
from tuner.config import SettingValue, StudySpec
from tuner.trial.result import TrialResult


@dataclass(frozen=True, slots=True, kw_only=True)
class StudyAdvice:
    defaults: tuple[Finding, ...]
    """aiokafka's defaults with the settings the config fixes."""
    recommended: tuple[Finding, ...]


def _facts(spec: StudySpec, runs: Sequence[TrialResult]) -> Facts:
    """The config's facts, with the run whose polls came furthest apart (the worst case)."""
    base = from_config(spec)
    measured = [r for r in runs if r.poll.interval_ms_max is not None] or list(runs)
    if not measured:
        return base
    worst = max(measured, key=lambda r: (r.rebalances, r.poll.interval_ms_max or 0.0))
    return merge(base, from_run(worst))


def study_advice(
    spec: StudySpec,
    recommended: Mapping[str, SettingValue],
    *,
    default_runs: Sequence[TrialResult] = (),
    recommended_runs: Sequence[TrialResult] = (),
) -> StudyAdvice:
    """Findings for the defaults and for the recommended settings, each from the config's
    workload and, where given, the runs measured with them."""
    chosen = replace(spec, consumer=replace(spec.consumer, settings=dict(recommended)))
    return StudyAdvice(
        defaults=advise(_facts(spec, default_runs)),
        recommended=advise(_facts(chosen, recommended_runs)),
    )
