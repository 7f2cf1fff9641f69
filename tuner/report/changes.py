"""The report's section on the ablation: which changes were kept and why, and what they risk.

Every kept change is listed with its measured effect and what it does in Kafka's terms, the
reverted ones briefly, then the failover and stuck-consumer detection times of the
recommendation beside the defaults: the price a long timeout asks when a member dies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from tuner.config import SettingValue
from tuner.recommend.measured import MeasuredClient
from tuner.report.document import Block, Bullets, Cell, Code, Paragraph, Section, Text, table, text
from tuner.settings import java_defaults

if TYPE_CHECKING:
    from tuner.recommend.ablation import Ablation, Change
    from tuner.trial.result import TrialResult


def section(
    settings: Mapping[str, SettingValue],
    ablation: Ablation | None,
    *,
    trial: Mapping[str, SettingValue] | None = None,
    measured: MeasuredClient | None = None,
) -> Section:
    """The kept and reverted changes (or why there are none) and the timeouts table; `trial`
    (the best trial's own settings) names the values the ablation started from rounded."""
    blocks: list[Block] = []
    if ablation is None:
        blocks.append(
            Paragraph(
                text=text(
                    "Ablation was not run: these are the best trial's settings, all of them, "
                    "and most may have no measurable effect. ",
                    Code("tuner optimize"),
                    " puts each back to the baseline in interleaved runs and keeps only "
                    "the changes that pay (",
                    Code("confirm.ablation_pairs"),
                    ").",
                )
            )
        )
    else:
        blocks += _ablation(ablation, trial or {}, measured or MeasuredClient())
    blocks.append(Paragraph(text=text("What a dead or stuck member costs with these settings:")))
    blocks.append(timeouts(settings, measured or MeasuredClient()))
    return Section(title=text("Why each change (ablation)"), blocks=tuple(blocks), lead=True)


def _ablation(
    a: Ablation, trial: Mapping[str, SettingValue], measured: MeasuredClient
) -> list[Block]:
    runs = f"{a.pairs} interleaved pair{'s' if a.pairs != 1 else ''}"
    intro = text(
        "Starting from the best trial, each setting that differs from the baseline "
        f"({measured.client}'s defaults plus the config's ",
        Code("consumer.settings"),
        f") was put back in turn and measured against the recommendation so far in {runs}, "
        f"more (up to {a.max_pairs}) while putting it back seemed to cost throughput but its "
        f"interval did not show it ({a.runs} runs in all). It stayed only if putting it back "
        "brought back a rebalance, an error, a broken constraint or a run out of backlog, or "
        f"cost more than {a.tolerance:.0%} throughput with its whole 95% interval beyond that; "
        "among equals the baseline wins. The liveness timeouts (",
        Code("max.poll.interval.ms"),
        ", ",
        Code("session.timeout.ms"),
        ", ",
        Code("heartbeat.interval.ms"),
        ") change throughput only through a rebalance: with none in their runs they stay only "
        "for the trouble they prevent, never for a throughput difference.",
    )
    blocks: list[Block] = [Paragraph(text=intro)]
    rounding = _rounding(a, trial)
    if rounding:
        blocks.append(Paragraph(text=rounding))
    if a.kept:
        blocks.append(Paragraph(text=text("Kept:")))
        blocks.append(Bullets(items=tuple(_kept(c) for c in a.kept)))
    else:
        blocks.append(Paragraph(text=text("Nothing kept: the baseline is as good as the best.")))
    from tuner.recommend.ablation import Verdict  # noqa: PLC0415 - tuner.recommend.ablation imports this package

    titles = {
        Verdict.NO_EFFECT: "Put back (no measurable effect):",
        Verdict.HURT: "Put back (the change cost throughput):",
        Verdict.NO_TROUBLE: "Put back (a timeout that prevented no trouble):",
    }
    for verdict, title in titles.items():
        items = tuple(_reverted(c) for c in a.reverted if c.verdict is verdict)
        if items:
            blocks += [Paragraph(text=text(title)), Bullets(items=items)]
    return blocks


def _rounding(a: Ablation, trial: Mapping[str, SettingValue]) -> Text:
    """Which of the best trial's values the ablation started from rounded, or nothing."""
    pairs = [
        (c.name, trial[c.name], c.best)
        for c in a.changes
        if c.name in trial and c.best is not None and trial[c.name] != c.best
    ]
    if not pairs:
        return ()
    parts: list[str | Code] = ["Rounded to two significant figures before the ablation: "]
    for i, (name, drawn, value) in enumerate(pairs):
        parts += [", " if i else "", Code(f"{name}={value}"), f" (drawn: {drawn})"]
    parts.append("; the rounded values are what was measured and confirmed.")
    return tuple(parts)


def _kept(c: Change) -> Text:
    return (
        Code(f"{c.name}={_value(c.best)}"),
        f" (default {_value(c.baseline)}): {c.why}. ",
        f"Measured: {_effect(c)}; kept: {c.reason}.",
    )


def _reverted(c: Change) -> Text:
    return (
        Code(f"{c.name}={_value(c.baseline)}"),
        f" (best trial: {_value(c.best)}): {_effect(c)}; {c.reason}.",
    )


def _effect(c: Change) -> str:
    """What putting the setting back did to throughput, with its interval when there is one."""
    g = c.reverting
    if g is None:
        return "not measured"
    if g.interval is None:
        return f"putting it back {g.estimate:+.1%} throughput ({_pairs(g.pairs)}, no interval)"
    low, high = g.interval
    return f"putting it back {g.estimate:+.1%} throughput (95% interval {low:+.1%} to {high:+.1%})"


def timeouts(settings: Mapping[str, SettingValue], measured: MeasuredClient) -> Block:
    """Failover time (session.timeout.ms) and stuck-consumer detection (max.poll.interval.ms)
    of the recommendation, the measured client's defaults and Java's."""
    own = measured.defaults()
    configs: dict[str, Mapping[str, object]] = {
        "recommendation": {**own, **settings},
        f"{measured.client} defaults": own,
        "Java defaults": java_defaults(),
    }
    rows: list[list[Cell]] = [
        [name, _seconds(eff["session.timeout.ms"]), _seconds(eff["max.poll.interval.ms"])]
        for name, eff in configs.items()
    ]
    header = ["configuration", "failover time (session.timeout.ms)",
              "stuck-consumer detection (max.poll.interval.ms)"]  # fmt: skip
    return table(header, rows)


def _pairs(n: int) -> str:
    return f"{n} pair{'s' if n != 1 else ''}"


def _seconds(ms: object) -> str:
    return "n/a" if not isinstance(ms, int) else f"{ms / 1000:g} s"


def _value(value: object) -> str:
    return "unlimited" if value is None else str(value)


def service_settings(result: TrialResult | None) -> Text | None:
    """What a service's own code sets, which its baseline runs with (None: the best trial
    ran the tuner's own members)."""
    service = None if result is None else result.service
    if service is None:
        return None
    parts: list[str | Code] = []
    for i, passed in enumerate(service.passed):
        parts += [", " if i else "", Code(passed)]
    sets = parts or ["nothing over the client's defaults"]
    return text(
        f"Your service ({service.client} {service.version}) runs with what its own code sets: ",
        *sets,
        ". That is the baseline below (your service's own settings); each setting above "
        "replaces the service's own value where it sets one.",
    )
