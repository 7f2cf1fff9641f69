"""The study's pictures, drawn with Optuna's matplotlib visualisations into PNG files.

Kept apart from `report` so matplotlib (slow to import) loads only when pictures are drawn,
with the non-interactive Agg backend: the tuner runs on servers without a display. Optuna's
generic labels ("Objective Value", "Hyperparameter") are replaced by the product's terms.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from tuner.search.events import StudyOutcome
from tuner.search.study import importance_target, is_feasible

log = logging.getLogger(__name__)

PARAM_LABELS: Mapping[str, str] = {
    "heartbeat.fraction": "heartbeat.interval.ms / session.timeout.ms",
    "fetch.max.bytes.ratio": "fetch.max.bytes / max.partition.fetch.bytes",
}
"""Trial parameters that are not settings themselves (heartbeat is sampled as a fraction)."""

_RELABEL: Mapping[str, str] = {
    **PARAM_LABELS,
    "Objective Value": "records/s",
    "Hyperparameter": "consumer setting",
    "Hyperparameter Importance": "importance for throughput (PED-ANOVA)",
    "Hyperparameter Importances": "Which settings mattered for throughput",
    "Optimization History Plot": "Throughput of each trial",
    "Slice Plot": "Throughput against the most important settings",
    "Contour Plot": "Throughput over the two most important settings",
    "Best Value": "best feasible so far",
    "Infeasible Trial": "infeasible (rebalanced, errors, or over a constraint)",
    "Trial": "trial number",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Picture:
    """One PNG the report shows, or why it could not be drawn."""

    name: str
    path: Path | None
    missing: str | None = None


def label(param: str) -> str:
    """A trial parameter as a reader knows it: the setting name, or what a derived one means."""
    return PARAM_LABELS.get(param, param)


def leading(study: optuna.Study, ranked: Mapping[str, float] | None, k: int = 2) -> list[str]:
    """The `k` most important parameters; alphabetical when importances are unknown."""
    if ranked:
        return list(ranked)[:k]
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    return sorted({p for t in complete for p in t.params})[:k]


def _pyplot() -> Any:
    import matplotlib  # noqa: PLC0415 - heavy, and only needed here

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def charts(
    outcome: StudyOutcome, ranked: Mapping[str, float] | None = None
) -> dict[str, Callable[[], Any]]:
    """Each picture by file name, as a function that draws it and returns its matplotlib
    figure in the product's terms; slice and contour show the most important settings."""
    plt = _pyplot()
    study = outcome.study
    from optuna.visualization import matplotlib as ov  # noqa: PLC0415

    top = leading(study, ranked)
    multi = len(study.directions) > 1
    # In a two-objective study every chart but the front plots throughput, the first value.
    on: dict[str, Any] = {"target": (lambda t: t.values[0]) if multi else None}
    on["target_name"] = "records/s"
    drawers: dict[str, Callable[[], Any]] = {
        "history.png": lambda: ov.plot_optimization_history(study, **on),
        "importances.png": lambda: ov.plot_param_importances(
            study, target=importance_target(study), target_name="records/s"
        ),
        "slice.png": lambda: ov.plot_slice(study, params=top or None, **on),
        "contour.png": lambda: _contour(ov, study, top, on),
        "throughput_vs_rebalances.png": lambda: _throughput_vs_rebalances(outcome, plt),
    }
    if multi:
        drawers["pareto.png"] = lambda: ov.plot_pareto_front(
            study, target_names=["records/s", "steady-state p99 latency (ms)"]
        )
    return {name: _relabelled(drawer) for name, drawer in drawers.items()}


def draw(
    outcome: StudyOutcome,
    out_dir: Path,
    *,
    ranked: Mapping[str, float] | None = None,
    importances: bool = True,
) -> dict[str, Picture]:
    """Write every picture (importances.png only if `importances`: not for a study whose
    differences between trials were noise); one that fails is logged and reported missing,
    never raised."""
    drawn = {
        name: chart
        for name, chart in charts(outcome, ranked).items()
        if importances or name != "importances.png"
    }
    return {name: _save(name, chart, out_dir) for name, chart in drawn.items()}


def _relabelled(drawer: Callable[[], Any]) -> Callable[[], Any]:
    def figure() -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna marks these "experimental"
            axes = drawer()
        fig = (axes.flat[0] if hasattr(axes, "flat") else axes).get_figure()
        _relabel(fig)
        return fig

    return figure


def _save(name: str, chart: Callable[[], Any], out_dir: Path) -> Picture:
    try:
        chart().savefig(out_dir / name, dpi=100, bbox_inches="tight")
    except Exception as exc:  # a picture must never cost the report: say why it is missing
        reason = f"{type(exc).__name__}: {exc}"
        log.warning("could not draw %s: %s", name, reason)
        return Picture(name=name, path=None, missing=reason)
    finally:
        _pyplot().close("all")
    return Picture(name=name, path=out_dir / name)


def _contour(ov: Any, study: optuna.Study, top: Sequence[str], on: dict[str, Any]) -> Any:
    if len(top) < 2:
        raise ValueError(f"needs two settings that every complete trial sampled, got {top}")
    return ov.plot_contour(study, params=list(top), **on)


def _relabel(figure: Any) -> None:
    """Replace Optuna's generic titles, axis labels, legend entries and parameter ticks."""
    suptitle = getattr(figure, "_suptitle", None)
    if suptitle is not None:
        suptitle.set_text(_RELABEL.get(suptitle.get_text(), suptitle.get_text()))
    for ax in figure.axes:
        for loc in ("left", "center"):
            title = ax.get_title(loc=loc)
            if title in _RELABEL:
                ax.set_title(_RELABEL[title], loc=loc)
        ax.set_xlabel(_RELABEL.get(ax.get_xlabel(), ax.get_xlabel()))
        ax.set_ylabel(_RELABEL.get(ax.get_ylabel(), ax.get_ylabel()))
        legend = ax.get_legend()
        for entry in legend.get_texts() if legend is not None else ():
            entry.set_text(_RELABEL.get(entry.get_text(), entry.get_text()))
        for axis in (ax.xaxis, ax.yaxis):  # fixed tick labels only: the importances' bars
            labels = [t.get_text() for t in axis.get_ticklabels()]
            if any(text in PARAM_LABELS for text in labels):
                axis.set_ticks(axis.get_ticklocs(), [label(text) for text in labels])


def _throughput_vs_rebalances(outcome: StudyOutcome, plt: Any) -> Any:
    _, axes = plt.subplots(figsize=(6, 4))
    for t in outcome.trials:
        result = outcome.result(t)
        if result is None:
            continue
        axes.scatter(
            result.rebalances, result.throughput_records_per_s,
            color="tab:green" if is_feasible(t) else "tab:red",
        )  # fmt: skip
    axes.set_xlabel("rebalances in the window")
    axes.set_ylabel("records/s")
    axes.set_title("Throughput against rebalances (green: feasible)")
    return axes
