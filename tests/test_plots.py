"""The pictures: drawn in the product's terms, for the settings that matter, never fatal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers import synthetic_study
from tuner.report import plots
from tuner.search.study import importances, outcome_of

GENERIC = {
    "Objective Value", "Hyperparameter", "Hyperparameter Importance", "heartbeat.fraction",
    "Hyperparameter Importances", "Optimization History Plot", "Slice Plot", "Contour Plot",
}  # fmt: skip
"""Optuna's own labels, which say nothing about consumers."""


def _texts(figure: Any) -> set[str]:
    """Every title, axis label, legend entry and tick label in the figure."""
    out = {figure._suptitle.get_text()} if figure._suptitle is not None else set()
    for ax in figure.axes:
        out |= {ax.get_title(loc="left"), ax.get_title(), ax.get_xlabel(), ax.get_ylabel()}
        legend = ax.get_legend()
        out |= {t.get_text() for t in legend.get_texts()} if legend is not None else set()
        out |= {t.get_text() for t in (*ax.get_xticklabels(), *ax.get_yticklabels())}
    return out


@pytest.fixture(scope="module")
def charts() -> dict[str, Any]:
    """Each chart's figure for a 24-trial study of the default space (drawn once)."""
    study = synthetic_study(24)
    ranked = importances(study)
    return {name: chart() for name, chart in plots.charts(outcome_of(study), ranked).items()}


@pytest.mark.parametrize("name", ["history.png", "importances.png", "slice.png", "contour.png"])
def test_charts_speak_of_records_and_settings(charts: dict[str, Any], name: str) -> None:
    """No Optuna placeholder label is left; throughput is in records/s."""
    texts = _texts(charts[name])
    assert not texts & GENERIC, texts & GENERIC
    assert "records/s" in texts


def test_importances_name_the_heartbeat_fraction(charts: dict[str, Any]) -> None:
    """The sampled heartbeat fraction shows as the ratio of the two settings it relates."""
    assert "heartbeat.interval.ms / session.timeout.ms" in _texts(charts["importances.png"])


def test_contour_shows_the_two_most_important_settings() -> None:
    """The contour's axes are the importances' top two, which are not the alphabetical first."""
    study = synthetic_study(24)
    ranked = importances(study)
    assert ranked is not None
    top = list(ranked)[:2]
    assert "max.poll.records" in top  # the synthetic throughput grows with it
    figure = plots.charts(outcome_of(study), ranked)["contour.png"]()
    ax = figure.axes[0]
    assert {ax.get_xlabel(), ax.get_ylabel()} == {plots.label(name) for name in top}


def test_without_importances_the_alphabetical_first_are_drawn() -> None:
    """No importances (too few trials): slice and contour fall back to alphabetical order."""
    study = synthetic_study(24)
    assert plots.leading(study, None) == ["fetch.max.bytes.ratio", "fetch.max.wait.ms"]


def test_a_failing_picture_is_returned_missing_with_its_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A chart that raises is logged at warning and returned missing; the others are drawn."""

    def broken(*args: object) -> None:
        raise KeyError("rebalances")

    monkeypatch.setattr(plots, "_throughput_vs_rebalances", broken)
    pictures = plots.draw(outcome_of(synthetic_study(24)), tmp_path)
    failed = pictures["throughput_vs_rebalances.png"]
    assert failed.path is None
    assert failed.missing == "KeyError: 'rebalances'"
    assert not (tmp_path / failed.name).exists()
    assert pictures["history.png"].path == tmp_path / "history.png"
    assert (tmp_path / "contour.png").exists()
    assert any(
        r.levelname == "WARNING" and "throughput_vs_rebalances.png" in r.getMessage()
        for r in caplog.records
    )
