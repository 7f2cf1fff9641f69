"""The recommendation: the best feasible settings, confirmed side by side against the defaults.

Confirmation runs the best settings, Java's defaults and aiokafka's defaults again, interleaved
(best, java, aiokafka, best, …) so drift hits all three alike; the gain is the median of the
paired ratios with a bootstrap 95% interval, and a gain whose interval includes zero is
reported as noise.
"""

from __future__ import annotations

import base64
import csv
import html
import json
import random
import statistics
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial

from tuner import plots, space
from tuner.config import SettingValue
from tuner.optimize import is_feasible, pareto_front
from tuner.trial import TrialResult

BASELINES = ("best", "java defaults", "aiokafka defaults")


@dataclass(frozen=True, slots=True, kw_only=True)
class Confirmation:
    """Each candidate's repeated results, in run order."""

    runs: Mapping[str, tuple[TrialResult, ...]]

    def median_throughput(self, name: str) -> float:
        return statistics.median(r.throughput_records_per_s for r in self.runs[name])

    def median_p99_ms(self, name: str) -> float | None:
        values = [r.e2e_latency_ms.p99 for r in self.runs[name] if r.e2e_latency_ms.p99]
        return statistics.median(values) if values else None

    def rebalances(self, name: str) -> int:
        return sum(r.rebalances for r in self.runs[name])

    def gain(self, baseline: str, *, seed: int = 0) -> tuple[float, float, float]:
        """(median, low, high) of best/baseline - 1 over the paired runs; 95% bootstrap."""
        pairs = [
            b.throughput_records_per_s / max(a.throughput_records_per_s, 1e-9) - 1
            for a, b in zip(self.runs[baseline], self.runs["best"], strict=True)
        ]
        rng = random.Random(seed)  # noqa: S311 - resampling, not secrets
        boots = sorted(statistics.median(rng.choices(pairs, k=len(pairs))) for _ in range(2000))
        cut = int(0.025 * len(boots))
        return statistics.median(pairs), boots[cut], boots[-1 - cut]


def candidates(
    best: Mapping[str, SettingValue], base: Mapping[str, SettingValue]
) -> dict[str, dict[str, SettingValue]]:
    """The three configurations; the config's own `consumer.settings` stay fixed in all."""
    return {
        "best": {**base, **best},
        "java defaults": {**space.java_defaults(), **base},
        "aiokafka defaults": dict(base),
    }


def best_settings(trial: FrozenTrial) -> dict[str, SettingValue]:
    return dict(trial.user_attrs["settings"])


def write(
    out_dir: Path,
    study: optuna.Study,
    best: FrozenTrial,
    confirmation: Confirmation | None,
) -> list[Path]:
    """Write every output file; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = best_settings(best)
    eff = space.effective_settings(settings)
    files = {
        "consumer.properties": space.to_java_properties(eff),
        "librdkafka.properties": space.to_librdkafka_properties(eff),
        "aiokafka.json": json.dumps(_aiokafka_json(settings), indent=2) + "\n",
        "consumer_snippet.py": _snippet(settings),
        "report.md": _markdown(study, best, confirmation),
    }
    written = []
    for name, text in files.items():
        (out_dir / name).write_text(text)
        written.append(out_dir / name)
    written.append(_trials_csv(out_dir / "trials.csv", study))
    pictures = plots.draw(study, out_dir)
    written += pictures
    md = files["report.md"] + "".join(f"\n![{p.stem}]({p.name})\n" for p in pictures)
    (out_dir / "report.md").write_text(md)
    images = "".join(
        f"<p><img alt='{p.stem}' src='data:image/png;base64,"
        f"{base64.b64encode(p.read_bytes()).decode()}'></p>"
        for p in pictures
    )  # embedded, so the page is one self-contained file
    (out_dir / "report.html").write_text(
        "<!doctype html><meta charset=utf-8><title>kafka-tuner report</title>"
        f"<pre style='font: 14px/1.4 monospace'>{html.escape(files['report.md'])}</pre>"
        f"{images}\n"
    )
    written.append(out_dir / "report.html")
    return written


def _aiokafka_json(settings: Mapping[str, SettingValue]) -> dict[str, object]:
    kwargs = space.to_aiokafka_kwargs(settings)
    return {k: (v[0].name if isinstance(v, tuple) else v) for k, v in kwargs.items()}


def _snippet(settings: Mapping[str, SettingValue]) -> str:
    args = "".join(f"    {k}={v!r},\n" for k, v in _aiokafka_json(settings).items())
    return (
        "from aiokafka import AIOKafkaConsumer\n\n"
        'consumer = AIOKafkaConsumer(\n    "your-topic",\n    bootstrap_servers="...",\n'
        f'    group_id="your-group",\n{args})\n'
    )


def _trials_csv(path: Path, study: optuna.Study) -> Path:
    names = sorted({k for t in study.trials for k in t.user_attrs.get("settings", {})})
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["number", "state", "records_per_s", "p99_latency_ms", "rebalances",
                         "feasible", "fail_reason", *names])  # fmt: skip
        for t in study.trials:
            result = t.user_attrs.get("result", {})
            feasible = is_feasible(t) if t.values else ""
            writer.writerow([
                t.number, t.state.name, t.values[0] if t.values else "",
                result.get("e2e_latency_ms", {}).get("p99", ""),
                result.get("rebalances", ""), feasible, t.user_attrs.get("fail_reason", ""),
                *(t.user_attrs.get("settings", {}).get(n, "") for n in names),
            ])  # fmt: skip
    return path


def _markdown(study: optuna.Study, best: FrozenTrial, confirmation: Confirmation | None) -> str:
    settings = best_settings(best)
    front = pareto_front(study)
    p99 = f", p99 end-to-end latency {best.values[1]:,.0f} ms" if front else ""
    lines = [
        f"# kafka-tuner recommendation: study `{study.study_name}`",
        "",
        f"{'Chosen' if front else 'Best'} feasible trial: #{best.number}, "
        f"{best.values[0]:,.0f} records/s{p99}, 0 rebalances.",
        "",
        "| setting | recommended | aiokafka default | Java default |",
        "|---|---|---|---|",
    ]
    java, aio = space.java_defaults(), space.aiokafka_defaults()
    for name, value in sorted(settings.items()):
        lines.append(f"| `{name}` | {value} | {aio.get(name)} | {java.get(name)} |")
    if front:
        lines += _front_md(front, best)
    lines += _importances_md(study)
    if confirmation is not None:
        lines += _confirmation_md(confirmation)
    return "\n".join(lines) + "\n"


def _front_md(front: Sequence[FrozenTrial], chosen: FrozenTrial) -> list[str]:
    """The Pareto front: each trial a trade-off no other feasible trial beats on both counts."""
    lines = [
        "",
        "## Pareto front: throughput against p99 latency",
        "",
        "Each row is a feasible trial that no other beats on both. The report recommends the "
        "fastest; `tuner report --trial N` writes the files for another row.",
        "",
        "| trial | records/s | p99 e2e latency | settings that differ from aiokafka's defaults |",
        "|---|---|---|---|",
    ]
    aio = space.aiokafka_defaults()
    for t in front:
        changed = ", ".join(
            f"{k}={v}" for k, v in sorted(best_settings(t).items()) if aio.get(k) != v
        )
        mark = " (chosen)" if t.number == chosen.number else ""
        lines.append(
            f"| #{t.number}{mark} | {t.values[0]:,.0f} | {t.values[1]:,.0f} ms | {changed} |"
        )
    return lines


def _importances_md(study: optuna.Study) -> list[str]:
    """Optuna's default (PED-ANOVA) importances: which settings mattered for high throughput."""
    try:
        with warnings.catch_warnings():  # the "low target values" note: the target is negated
            warnings.filterwarnings("ignore", "PedAnovaImportanceEvaluator")
            importances = optuna.importance.get_param_importances(
                study, target=plots.importance_target(study)
            )
    except (ValueError, RuntimeError):  # too few complete trials, or a single value
        return ["", "Parameter importances: not enough completed trials to tell."]
    lines = [
        "",
        "## Parameter importances (PED-ANOVA)",
        "",
        "| parameter | importance |",
        "|---|---|",
    ]
    lines += [f"| `{name}` | {value:.2f} |" for name, value in importances.items()]
    return lines


def _confirmation_md(c: Confirmation) -> Sequence[str]:
    lines = [
        "",
        f"## Confirmation ({len(c.runs['best'])} interleaved runs each)",
        "",
        "| configuration | median records/s | median p99 e2e latency | rebalances |",
        "|---|---|---|---|",
    ]
    for name in BASELINES:
        p99 = c.median_p99_ms(name)
        p99_text = "n/a" if p99 is None else f"{p99:,.0f} ms"
        lines.append(
            f"| {name} | {c.median_throughput(name):,.0f} | {p99_text} | {c.rebalances(name)} |"
        )
    lines.append("")
    for baseline in BASELINES[1:]:
        if c.median_throughput(baseline) <= 0:
            lines.append(
                f"- against {baseline}: the baseline processed no records in its window "
                f"({c.rebalances(baseline)} rebalances); there is no ratio to give."
            )
            continue
        mid, low, high = c.gain(baseline)
        if len(c.runs[baseline]) < 2:
            lines.append(
                f"- against {baseline}: {mid:+.0%} throughput from a single run each; "
                "raise confirm.repeats for an interval."
            )
            continue
        verdict = "not distinguishable from noise" if low <= 0 <= high else "a real difference"
        lines.append(
            f"- against {baseline}: {mid:+.0%} throughput (95% interval {low:+.0%} to "
            f"{high:+.0%}): {verdict}."
        )
    return lines
