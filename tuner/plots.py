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

log = logging.getLogger(__name__)


def draw(study: optuna.Study, out_dir: Path) -> list[Path]:
    """Write the PNGs that the study has enough trials for; returns what was written."""
    import matplotlib  # noqa: PLC0415 - heavy, and only needed here

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    from optuna.visualization import matplotlib as ov  # noqa: PLC0415

    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    params = sorted({p for t in complete for p in t.params})
    charts: dict[str, Callable[[], Any]] = {
        "history.png": lambda: ov.plot_optimization_history(study),
        "importances.png": lambda: ov.plot_param_importances(study),
        "slice.png": lambda: ov.plot_slice(study, params=params[:2] or None),
        "throughput_vs_rebalances.png": lambda: _throughput_vs_rebalances(study, plt),
    }
    if len(params) >= 2:
        charts["contour.png"] = lambda: ov.plot_contour(study, params=params[:2])
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
