"""What the report says, as a `Document`: the recommendation first, then the evidence.

Each picture sits in the section whose numbers it explains (importances beside the importance
table, history beside the trial counts), so a reader never has to match them up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from optuna.trial import FrozenTrial, TrialState

from tuner.config import SettingValue, describe_path
from tuner.recommend.confirmation import DEFAULTS, MIN_PAIRS, Candidate, Confirmation
from tuner.recommend.measured import MeasuredClient
from tuner.report import advice as advisor
from tuner.report import changes, plots
from tuner.report.document import (
    Block,
    Bullets,
    Cell,
    Code,
    Document,
    Figure,
    Paragraph,
    Section,
    Text,
    table,
    text,
)
from tuner.search.budget import Plan
from tuner.search.events import StudyOutcome
from tuner.search.study import best_settings, is_feasible, pareto_front, violations
from tuner.settings import java_defaults

if TYPE_CHECKING:
    from tuner.advice import StudyAdvice
    from tuner.recommend.ablation import Ablation
    from tuner.recommend.recommendation import Recommendation
    from tuner.trial.result import TrialResult

CAPTIONS = {
    "history.png": "Throughput of each trial and the best feasible so far",
    "importances.png": "Which settings mattered for throughput (PED-ANOVA)",
    "slice.png": "Throughput against each of the most important settings",
    "contour.png": "Throughput over the two most important settings",
    "throughput_vs_rebalances.png": "Throughput against rebalances (green: feasible)",
    "pareto.png": "Throughput against steady-state p99 latency: the Pareto front",
}


def record_age_p99(result: TrialResult | None) -> float | None:
    """A stored result's capacity-window p99: the age of backlog records."""
    return None if result is None else result.record_age_ms.p99


def steady_p99(result: TrialResult | None) -> float | None:
    """A stored result's steady-state p99 latency as scored: inf if the group fell behind;
    None without a steady state."""
    return None if result is None or result.steady is None else result.steady.p99_ms


def build(
    outcome: StudyOutcome,
    recommendation: Recommendation,
    *,
    pictures: Mapping[str, plots.Picture],
    ranked: Mapping[str, float] | None,
    advice: StudyAdvice | None = None,
) -> Document:
    """The whole report; `ranked` are the importances (None when they cannot be computed).

    With an ablation the recommendation is its settings (the smallest change that keeps the
    gain), else the best trial's settings, all of them.
    """

    def figure(name: str) -> Figure:
        picture = pictures.get(name) or plots.Picture(name=name, path=None, missing="not drawn")
        return Figure(name=name, caption=CAPTIONS[name], path=picture.path, missing=picture.missing)

    best, ablation, confirmation = (
        recommendation.best, recommendation.ablation, recommendation.confirmation,
    )  # fmt: skip
    front = pareto_front(outcome.study)
    measured = MeasuredClient.of(outcome)
    settings = recommendation.settings
    noise = helped(ablation, confirmation) is False
    ranked = None if noise else ranked
    sections = [
        _recommendation(outcome, best, settings, confirmation, ranked),
        changes.section(settings, ablation, trial=best_settings(best), measured=measured),
    ]
    if advice is not None:
        sections.append(advisor.section(advice, measured))
    if confirmation is not None:
        sections.append(_confirmation(confirmation))
    sections.append(_settings(settings, measured))
    if front:
        sections.append(_front(front, best, figure("pareto.png"), measured))
    sections.append(_importances(ranked, figure("importances.png"), noise=noise))
    sections.append(_trials(outcome, figure("history.png"), figure("throughput_vs_rebalances.png")))
    sections.append(
        _shape(outcome, ranked, figure("slice.png"), figure("contour.png"), noise=noise)
    )
    return Document(
        title=text(
            "kafka-tuner recommendation: study ",
            Code(outcome.study_name),
            f", measured on {measured.describe()}",
            *([] if outcome.kafka_version is None else [f", Apache Kafka {outcome.kafka_version}"]),
        ),
        sections=tuple(sections),
    )


def origin(recommendation: Recommendation) -> str:
    """How the recommendation was chosen, in a few words for the settings files."""
    best, ablation, confirmation = (
        recommendation.best, recommendation.ablation, recommendation.confirmation,
    )  # fmt: skip
    if ablation is not None:
        how = (
            "each kept only if putting it back brought back trouble or cost throughput beyond "
            "the tolerance with its whole interval"
        )
        return f"the changes of trial #{best.number} that paid in the ablation ({how})"
    if confirmation is not None and confirmation.settings is not None:
        return f"trial #{best.number} as confirmed; no ablation ran"
    return f"trial #{best.number} as it ran; no ablation or confirmation ran"


def helped(ablation: Ablation | None, confirmation: Confirmation | None) -> bool | None:
    """Whether some setting measurably helped: a change the ablation kept on its runs' evidence,
    else a confirmed gain over the measured client's defaults whose interval lies above zero;
    None when neither ran (nothing to tell noise from a difference)."""
    if ablation is not None:
        return ablation.helped
    if confirmation is None:
        return None
    aio = Candidate.AIOKAFKA_DEFAULTS
    if confirmation.unusable(Candidate.BEST) or confirmation.unusable(aio):
        return None
    interval = confirmation.gain(aio).interval
    return None if interval is None else interval[0] > 0


def _value(value: object) -> str:
    return "unlimited" if value is None else str(value)


def _changed(
    settings: Mapping[str, SettingValue],
    fixed: Mapping[str, SettingValue],
    defaults: Mapping[str, SettingValue | None],
) -> dict[str, SettingValue]:
    """What the user must change: settings off the measured client's defaults that they did
    not fix."""
    return {k: v for k, v in sorted(settings.items()) if defaults.get(k) != v and k not in fixed}


def _recommendation(
    outcome: StudyOutcome,
    best: FrozenTrial,
    settings: Mapping[str, SettingValue],
    confirmation: Confirmation | None,
    ranked: Mapping[str, float] | None,
) -> Section:
    fixed = outcome.fixed
    measured = MeasuredClient.of(outcome)
    own = measured.defaults()
    changed = _changed(settings, fixed, own)
    java = java_defaults()
    blocks: list[Block] = []
    kept = ", ".join(f"{k}={v}" for k, v in sorted(fixed.items()))
    keep = f"keep the rest as is (your fixed {kept} included)" if fixed else "keep the rest as is"
    if changed:
        blocks.append(Paragraph(text=text(f"Set these consumer settings; {keep}:")))
        rows: list[list[Cell]] = [
            [Code(name), _value(value), _value(own.get(name)), _value(java.get(name)),
             measured.meaning(name)]
            for name, value in changed.items()
        ]  # fmt: skip
        header = ["setting", "set to", f"{measured.client} default", "Java default",
                  "what it does"]  # fmt: skip
        blocks.append(table(header, rows))
    else:
        blocks.append(
            Paragraph(text=text(f"Change nothing: {keep}. No setting measurably helped."))
        )
    if (service := changes.service_settings(outcome.result(best))) is not None:
        blocks.append(Paragraph(text=service))
    if confirmation is None:
        blocks.append(
            Paragraph(
                text=text(
                    "Not confirmed: this report ran no confirmation, so the numbers come from "
                    "one trial each; ",
                    Code("tuner optimize"),
                    " confirms the best against the defaults.",
                )
            )
        )
    else:
        runs = len(confirmation.runs[Candidate.BEST])
        blocks.append(Paragraph(text=text(f"Confirmed gain ({runs} interleaved runs of each):")))
        blocks.append(Bullets(items=tuple(text(confirmation.verdict(b)) for b in DEFAULTS)))
    blocks.append(Paragraph(text=_why(outcome, best, ranked)))
    return Section(title=text("What to change"), blocks=tuple(blocks), lead=True)


def _why(outcome: StudyOutcome, best: FrozenTrial, ranked: Mapping[str, float] | None) -> Text:
    trials = outcome.trials
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    feasible = sum(1 for t in complete if is_feasible(t))
    result = outcome.result(best)
    p99 = steady_p99(result)
    latency = "" if p99 is None else f", steady-state p99 end-to-end latency {p99:,.0f} ms"
    fastest = outcome.best
    chosen = (
        "was the fastest feasible trial"
        if fastest is None or fastest.number == best.number
        else f"was chosen with --trial (the fastest feasible was #{fastest.number})"
    )
    parts: list[str | Code] = [
        f"Why: trial #{best.number} {chosen} ({feasible} feasible of "
        f"{len(trials)}): {best.values[0]:,.0f} records/s{latency}, "
        f"{0 if result is None else result.rebalances} rebalances in its window."
    ]
    if result is not None:
        p50 = result.fetch.latency_ms_p50
        seen = "" if p50 is None else f" (its fetch latency p50: {p50:,.1f} ms)"
        parts.append(f" Measured under: {describe_path(result.network)}{seen}.")
        if result.payloads is not None:
            parts.append(f" Records: {result.payloads.line()}.")
    if ranked:
        parts.append(" The settings that mattered most for throughput: ")
        for i, (name, value) in enumerate(list(ranked.items())[:3]):
            parts += [", " if i else "", Code(plots.label(name)), f" ({value:.2f})"]
        parts.append(".")
    return tuple(parts)


def _confirmation(c: Confirmation) -> Section:
    latency = any(c.median_p99_ms(name) is not None for name in Candidate)
    rows: list[list[Cell]] = []
    for name in Candidate:
        p99 = c.median_p99_ms(name)
        row: list[Cell] = [c.label(name), f"{c.median_throughput(name):,.0f}"]
        if latency:
            row.append("n/a" if p99 is None else f"{p99:,.0f} ms")
        rows.append([*row, str(c.rebalances(name)), "no: see below" if c.unusable(name) else "yes"])
    header = ["configuration", "median records/s",
              *(["median p99 latency (steady state)"] if latency else []),
              "rebalances", "comparable"]  # fmt: skip
    blocks: list[Block] = [
        table(header, rows),
        Bullets(items=tuple(text(c.verdict(b)) for b in DEFAULTS)),
    ]
    blocks.append(
        Paragraph(
            text=text(
                "The gain is the geometric mean of the paired ratios best/baseline, with a "
                "95% Student t-interval on their logarithms; fewer than "
                f"{MIN_PAIRS} pairs give no interval. Every run must end with backlog left, "
                "or it measured the supply of records rather than the consumers."
            )
        )
    )
    return Section(
        title=text(f"Confirmation ({len(c.runs[Candidate.BEST])} interleaved runs each)"),
        blocks=tuple(blocks),
    )


def _settings(settings: Mapping[str, SettingValue], measured: MeasuredClient) -> Section:
    java, own = java_defaults(), measured.defaults()
    rows: list[list[Cell]] = [
        [Code(name), _value(value), _value(own.get(name)), _value(java.get(name))]
        for name, value in sorted(settings.items())
    ]
    header = ["setting", "recommended", f"{measured.client} default", "Java default"]
    return Section(title=text("Every setting of the recommendation"), blocks=(table(header, rows),))


def _front(
    front: Sequence[FrozenTrial], chosen: FrozenTrial, picture: Figure, measured: MeasuredClient
) -> Section:
    """The Pareto front: each trial a trade-off no other feasible trial beats on both counts."""
    rows: list[list[Cell]] = []
    own = measured.defaults()
    for t in front:
        changed = ", ".join(f"{k}={v}" for k, v in _changed(best_settings(t), {}, own).items())
        mark = " (chosen)" if t.number == chosen.number else ""
        rows.append(
            [f"#{t.number}{mark}", f"{t.values[0]:,.0f}", f"{t.values[1]:,.0f} ms", changed]
        )
    header = ["trial", "records/s", "steady-state p99 latency",
              f"settings that differ from {measured.client}'s defaults"]  # fmt: skip
    intro = text(
        "Each row is a feasible trial that no other beats on both. The report recommends the "
        "fastest; ",
        Code("tuner report --trial N"),
        " writes the files for another row.",
    )
    return Section(
        title=text("Pareto front: throughput against steady-state p99 latency"),
        blocks=(Paragraph(text=intro), table(header, rows), picture),
    )


def _importances(
    ranked: Mapping[str, float] | None, picture: Figure, *, noise: bool = False
) -> Section:
    """Optuna's default (PED-ANOVA) importances: which settings mattered for high throughput;
    none when no setting measurably helped (`noise`): they would rank noise."""
    title = text("Which settings mattered (PED-ANOVA importances)")
    if noise:
        note = (
            "None: no setting measurably helped, so the differences between trials were "
            "noise, and importances computed from them would rank noise."
        )
        return Section(title=title, blocks=(Paragraph(text=text(note)),))
    if not ranked:
        note = "Not enough completed trials to tell which settings mattered."
        return Section(title=title, blocks=(Paragraph(text=text(note)), picture))
    rows: list[list[Cell]] = [
        [Code(plots.label(name)), f"{value:.2f}"] for name, value in ranked.items()
    ]
    return Section(title=title, blocks=(table(["setting", "importance"], rows), picture))


def _trials(outcome: StudyOutcome, history: Figure, rebalances: Figure) -> Section:
    counts = violations(outcome.study)
    feasible = sum(1 for t in outcome.trials if is_feasible(t))
    infeasible = ", ".join(
        f"{name} {n}" for name, n in counts.most_common() if name not in ("failed", "pruned")
    )
    summary = (
        f"{len(outcome.trials)} trials: {feasible} feasible; infeasible by constraint: "
        f"{infeasible or 'none'}; {counts['failed']} failed, {counts['pruned']} pruned. "
        "A feasible trial had no rebalance in its window and met every constraint; "
    )
    return Section(
        title=text("Trials"),
        blocks=(
            Paragraph(text=text(summary, Code("trials.csv"), " lists every trial.")),
            *_budget(outcome.plan),
            history,
            rebalances,
        ),
    )


def _budget(plan: Plan | None) -> tuple[Paragraph | Bullets, ...]:
    """What a time budget planned and what it left out (nothing without a budget)."""
    if plan is None:
        return ()
    said = Paragraph(text=text(
        f"The time budget ({plan.budget_s / 60:.1f} min) planned {plan.describe()}."
        + ("" if plan.left_out else " It left nothing out.")
    ))  # fmt: skip
    if not plan.left_out:
        return (said,)
    left = tuple(text(f"What the budget left out: {o}") for o in plan.left_out)
    return (said, Bullets(items=left))


def _shape(
    outcome: StudyOutcome,
    ranked: Mapping[str, float] | None,
    slice_: Figure,
    contour: Figure,
    *,
    noise: bool = False,
) -> Section:
    top = plots.leading(outcome.study, ranked)
    unknown = "no setting measurably helped" if noise else "importances unknown"
    how = "most important" if ranked else f"first (alphabetically; {unknown})"
    parts: list[str | Code] = [f"Drawn for the {how} settings: "]
    for i, name in enumerate(top):
        parts += [" and " if i else "", Code(plots.label(name))]
    parts.append(".")
    return Section(
        title=text("How the leading settings shape throughput"),
        blocks=(Paragraph(text=tuple(parts)), slice_, contour),
    )
