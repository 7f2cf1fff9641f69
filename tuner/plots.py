"""The study's pictures, drawn with Optuna's matplotlib visualisations into PNG files.

Kept apart from `report` so matplotlib (slow to import) loads only when pictures are drawn,
with the non-interactive Agg backend: the tuner runs on servers without a display.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial

log = logging.getLogger(__name__)


def draw(study: optuna.Study, out_dir: Path) -> list[Path]:
    """Write the PNGs that the study has enough trials for; returns what was written."""
    import matplotlib  # noqa: PLC0415 - heavy, and only needed here

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    from optuna.visualization import matplotlib as ov  # noqa: PLC0415

    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    params = sorted({p for t in complete for p in t.params})
    multi = len(study.directions) > 1
    # In a two-objective study every chart but the front plots throughput, the first value.
    on: dict[str, Any] = (
        {"target": lambda t: t.values[0], "target_name": "records/s"} if multi else {}
    )
    charts: dict[str, Callable[[], Any]] = {
        "history.png": lambda: ov.plot_optimization_history(study, **on),
        "importances.png": lambda: ov.plot_param_importances(
            study, target=importance_target(study), target_name="records/s"
        ),
        "slice.png": lambda: ov.plot_slice(study, params=params[:2] or None, **on),
        "throughput_vs_rebalances.png": lambda: _throughput_vs_rebalances(study, plt),
    }
    if len(params) >= 2:
        charts["contour.png"] = lambda: ov.plot_contour(study, params=params[:2], **on)
    if multi:
        charts["pareto.png"] = lambda: ov.plot_pareto_front(
            study, target_names=["records/s", "p99 e2e latency (ms)"]
        )
    written = []
    for name, chart in charts.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna marks these "experimental"
                axes = chart()
            figure = (axes.flat[0] if hasattr(axes, "flat") else axes).get_figure()
            figure.savefig(out_dir / name, dpi=100, bbox_inches="tight")
            plt.close(figure)
            written.append(out_dir / name)
        except (ValueError, RuntimeError, ZeroDivisionError) as exc:  # too few trials
            log.info("no %s: %s", name, exc)
    return written


def importance_target(study: optuna.Study) -> Callable[[FrozenTrial], float] | None:
    """None for one objective; else minus throughput, as Optuna's PED-ANOVA ranks the settings
    that reach *low* target values."""
    if len(study.directions) == 1:
        return None
    return lambda t: -t.values[0]


def _throughput_vs_rebalances(study: optuna.Study, plt: Any) -> Any:
    _, axes = plt.subplots(figsize=(6, 4))
    for t in study.trials:
        result = t.user_attrs.get("result")
        if result is None:
            continue
        feasible = result["rebalances"] == 0 and not result["errors"]
        axes.scatter(
            result["rebalances"], result["throughput_records_per_s"],
            color="tab:green" if feasible else "tab:red",
        )  # fmt: skip
    axes.set_xlabel("rebalances in the window")
    axes.set_ylabel("records/s")
    axes.set_title("Throughput against rebalances (green: feasible)")
    return axes
