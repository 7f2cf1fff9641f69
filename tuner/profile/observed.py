"""What a profile is built from: a group's shape, load and work, from runs or a Prometheus."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from tuner.config import SettingValue
from tuner.profile.cost import CostFit, Estimate, WorkSample, fit
from tuner.trial.result import TrialResult


class ProfileError(Exception):
    """The input cannot be profiled (no such group, a file of another shape, no batches)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    """A consumer group as measured: everything a study config needs, each with its source."""

    source: str
    group: str
    members: Estimate
    partitions: Estimate | None
    message_bytes: Estimate
    input_records_per_s: Estimate | None
    records_per_poll: Estimate | None
    cost: CostFit
    settings: Mapping[str, SettingValue] = field(default_factory=dict)
    """The group's current settings (only those known; Java names)."""
    settings_source: str = ""


def from_runs(results: Sequence[TrialResult], *, names: Sequence[str]) -> Profile:
    """A profile of the group the runs measured; several runs (e.g. at other max.poll.records)
    are pooled, which is what separates per-record from per-batch cost on a backlog."""
    if not results:
        raise ProfileError("no run to profile")
    where = ", ".join(names)
    samples: list[WorkSample] = []
    for result, name in zip(results, names, strict=True):
        if result.work is None:
            raise ProfileError(
                f"{name}: holds no per-interval work (written by a tuner before `tuner profile` "
                "existed): re-run it with `tuner run --json`"
            )
        w = result.work
        samples += [
            WorkSample(records=r, batches=b, seconds=s, blocked_seconds=c)
            for r, b, s, c in zip(
                w.records, w.batches, w.processing_s, w.processing_blocked_s, strict=True
            )
        ]
    try:
        cost = fit(samples, source=where)
    except ValueError as exc:
        raise ProfileError(str(exc)) from None
    first = results[0]
    work = first.work
    if work is None:
        raise ProfileError(f"{names[0]}: holds no per-interval work")
    records = sum(r.records_consumed for r in results)
    mb = sum(r.throughput_mb_per_s * r.window_s for r in results)
    run_word = "run" if len(results) == 1 else f"{len(results)} runs"
    live = [r.producer for r in results if r.producer is not None]
    rate = None
    if live:
        rate = Estimate(
            value=sum(p.records_per_s for p in live) / len(live),
            source=f"Locust's acknowledged records/s in the {run_word}",
            sure="sure: measured at the producer",
        )
    polls = [r.poll.records_per_poll_avg for r in results if r.poll.records_per_poll_avg]
    settings = {k: v for k, v in first.settings.items() if v is not None}
    return Profile(
        source=f"tuner run --json {where}",
        group=first.group_id,
        members=Estimate(value=work.members, source=f"the {run_word}' group", sure="exact"),
        partitions=Estimate(value=work.partitions, source="the run's topic", sure="exact"),
        message_bytes=Estimate(
            value=mb * 1e6 / records if records else 0.0,
            source=f"bytes / records consumed ({records:,} records)",
            sure="exact (the mean)",
        ),
        input_records_per_s=rate,
        records_per_poll=Estimate(
            value=sum(polls) / len(polls),
            source="records per non-empty poll, averaged",
            sure="measured",
        )
        if polls
        else None,
        cost=cost,
        settings=settings,
        settings_source=f"the effective settings of {names[0]}",
    )
