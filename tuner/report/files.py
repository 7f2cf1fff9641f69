"""Every output file: the settings for each client, trials.csv, pictures, report.md/.html."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from tuner.clients import client_named
from tuner.clients.base import Recommended
from tuner.config import SettingValue
from tuner.recommend.confirmation import DEFAULTS, Candidate, Confirmation, label
from tuner.recommend.measured import MeasuredClient
from tuner.recommend.recommendation import Recommendation
from tuner.report import content, html, markdown, plots
from tuner.search.events import StudyOutcome
from tuner.search.study import SETTINGS_ATTR, importances, is_feasible

if TYPE_CHECKING:
    from tuner.advice import StudyAdvice


@dataclass(frozen=True, slots=True)
class Written:
    """What `write` wrote, and the report's head for the terminal."""

    paths: tuple[Path, ...]
    summary: str
    """The report's title and first section (what to change, the confirmed gain, why) in
    markdown: what a person reads at the end of a run; the rest is in the files."""


def write(
    out_dir: Path,
    outcome: StudyOutcome,
    recommendation: Recommendation,
    *,
    advice: StudyAdvice | None = None,
) -> Written:
    """Write every output file from what the study and the runs after it measured, as the
    process holds them (nothing is read from the storage); returns their paths (a picture that
    failed is not among them, and the report says why it is missing) and the report's head.
    The settings files hold what the recommendation changes (`Recommendation.settings`) and
    the study's fixed settings, nothing else."""
    out_dir.mkdir(parents=True, exist_ok=True)
    ablation, confirmation = recommendation.ablation, recommendation.confirmation
    settings = recommendation.settings
    origin = content.origin(recommendation)
    chosen, texts = _settings_files(outcome, settings, origin)
    written = []
    for name, text in texts.items():
        (out_dir / name).write_text(text)
        written.append(out_dir / name)
    written.append(_trials_csv(out_dir / "trials.csv", outcome))
    noise = content.helped(ablation, confirmation) is False
    ranked = None if noise else importances(outcome.study)
    pictures = plots.draw(outcome, out_dir, ranked=ranked, importances=not noise)
    written += [p.path for p in pictures.values() if p.path is not None]
    doc = content.build(outcome, recommendation, pictures=pictures, ranked=ranked, advice=advice)
    (out_dir / "summary.json").write_text(
        json.dumps(summary(outcome, chosen.settings, confirmation), indent=2) + "\n"
    )
    written.append(out_dir / "summary.json")
    (out_dir / "report.md").write_text(markdown.render(doc))
    (out_dir / "report.html").write_text(html.render(doc))
    return Written(
        paths=(*written, out_dir / "report.md", out_dir / "report.html"),
        summary=markdown.render(replace(doc, sections=doc.sections[:1])).rstrip(),
    )


def summary(
    outcome: StudyOutcome, settings: Mapping[str, SettingValue], confirmation: Confirmation | None
) -> dict[str, object]:
    """The recommendation and its confirmed gains, for scripts (CI gates, benchmarks): `against`
    is keyed by what each baseline is, `java defaults` and the measured client's own
    (`baseline`: `aiokafka defaults`, `confluent-kafka defaults`)."""
    measured = MeasuredClient.of(outcome)
    gains: dict[str, object] = {}
    for baseline in DEFAULTS if confirmation is not None else ():
        assert confirmation is not None  # noqa: S101 - narrowed by the loop's condition
        reason = confirmation.unusable(Candidate.BEST) or confirmation.unusable(baseline)
        gain = None if reason else confirmation.gain(baseline)
        gains[label(baseline, measured)] = {
            "label": confirmation.label(baseline),
            "median_records_per_s": confirmation.median_throughput(baseline),
            "rebalances": confirmation.rebalances(baseline),
            "refused": reason,
            "gain": None if gain is None else gain.estimate,
            "interval": None if gain is None else gain.interval,
            "pairs": None if gain is None else gain.pairs,
        }
    out: dict[str, object] = {
        "study": outcome.study_name,
        "client": measured.client,
        "group_protocol": measured.protocol,
        "kafka_version": outcome.kafka_version,
        "baseline": measured.defaults_label,
        "settings": dict(settings),
        "best_median_records_per_s": (
            None if confirmation is None else confirmation.median_throughput(Candidate.BEST)
        ),
        "best_rebalances": (
            None if confirmation is None else confirmation.rebalances(Candidate.BEST)
        ),
        "against": gains,
    }
    if outcome.plan is not None:  # what the time budget planned and left out
        plan = outcome.plan
        out["budget"] = {
            "budget_s": plan.budget_s, "trials": plan.trials,
            "ablation_pairs": plan.ablation_pairs, "confirm_repeats": plan.confirm_repeats,
            "run_s": plan.run_s, "left_out": list(plan.left_out),
        }  # fmt: skip
    return out


def _trials_csv(path: Path, outcome: StudyOutcome) -> Path:
    trials = outcome.trials
    names = sorted({k for t in trials for k in t.user_attrs.get(SETTINGS_ATTR, {})})
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["number", "state", "records_per_s", "record_age_p99_ms",
                         "p99_latency_ms", "rebalances", "feasible", "fail_reason", "errors",
                         *names])  # fmt: skip
        for t in trials:
            result = outcome.result(t)
            feasible = is_feasible(t) if t.values else ""
            writer.writerow([
                t.number, t.state.name, t.values[0] if t.values else "",
                _blank(content.record_age_p99(result)), _blank(content.steady_p99(result)),
                "" if result is None else result.rebalances, feasible,
                outcome.fail_reasons.get(t.number, ""),
                "" if result is None else "; ".join(result.errors),
                *(t.user_attrs.get(SETTINGS_ATTR, {}).get(n, "") for n in names),
            ])  # fmt: skip
    return path


def _blank(value: float | None) -> float | str:
    """A CSV cell: empty for a value the trial does not have."""
    return "" if value is None else value


def _settings_files(
    outcome: StudyOutcome, settings: Mapping[str, SettingValue], origin: str
) -> tuple[Recommended, dict[str, str]]:
    """What the recommendation sets, and the settings files of the client the study measured."""
    client, protocol = client_named(outcome.client), outcome.group_protocol
    chosen = client.recommended(
        settings, outcome.fixed, study=outcome.study_name, origin=origin, protocol=protocol
    )
    return chosen, client.settings_files(chosen, protocol=protocol)
