"""A profile as a study config: the same schema as `configs/`, each number commented with where
it came from and how sure it is, and loaded back through `tuner.config` before it is returned."""

from __future__ import annotations

import math
import re

import yaml

from tuner.config import ConfigError, SettingValue, StudySpec, parse_config
from tuner.profile.cost import Estimate
from tuner.profile.observed import Profile, ProfileError
from tuner.search.space import DEFAULT_SEARCH

BACKLOG_S = 40.0
"""Seconds of the group's estimated capacity each trial's prefill holds (warm-up, window, room)."""


def _num(value: float) -> str:
    """Three significant digits, as a plain YAML number."""
    if value == 0 or not math.isfinite(value):
        return "0"
    digits = 2 - math.floor(math.log10(abs(value)))
    rounded = round(value, digits)
    return str(int(rounded)) if digits <= 0 or rounded == int(rounded) else repr(rounded)


def _note(e: Estimate) -> str:
    return f"  # {e.source}; {e.sure}"


def _setting(value: SettingValue) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...")


def capacity_records_per_s(profile: Profile) -> float:
    """What the group could process at its current batch size: members / time per record."""
    cost = profile.cost
    per_poll = profile.records_per_poll.value if profile.records_per_poll else 500.0
    per_record_s = (cost.per_record_ms.value + cost.per_batch_ms.value / per_poll) / 1000
    return profile.members.value / per_record_s if per_record_s > 0 else 50_000.0


def render(profile: Profile, *, fix_current: bool = False) -> str:
    """The study config's text, validated (ProfileError if it does not load: a bug here)."""
    c = profile.cost
    name = re.sub(r"[^A-Za-z0-9._-]", "-", profile.group) or "group"
    prefill = int(min(max(capacity_records_per_s(profile) * BACKLOG_S, 20_000), 5_000_000))
    lines = [
        f"# A study config profiled by `tuner profile` from {profile.source}",
        f"# (consumer group {profile.group!r}). Each number says where it came from and how sure",
        "# it is. consumer.settings holds the group's current settings that a study does not",
        "# search; the searched ones are written as comments with their current values: uncomment",
        "# one to keep it fixed. Run it with:  tuner optimize THIS.yaml",
        "",
        "cluster:",
        "  bootstrap_servers: embedded",
        "",
        "topic:",
        f"  name: tuner.profile.{name}",
    ]
    if profile.partitions is not None:
        lines.append(f"  partitions: {round(profile.partitions.value)}{_note(profile.partitions)}")
    else:
        lines.append("  partitions: 6  # not in these metrics: ASSUMED, set your topic's count")
    lines += [
        "",
        "workload:",
        f"  message_bytes: {max(round(profile.message_bytes.value), 1)}"
        f"{_note(profile.message_bytes)}",
        f"  prefill_records: {prefill}  # {BACKLOG_S:g} s of the estimated capacity "
        f"({_num(capacity_records_per_s(profile))} records/s), so a trial drains a backlog",
    ]
    if profile.input_records_per_s is not None:
        rate = profile.input_records_per_s
        lines += [
            f"  # input rate {_num(rate.value)} records/s ({rate.source}; {rate.sure}): to measure",
            "  # latency under it, add producer: {users: N, rate_per_user: RATE/N} and "
            "trial.steady_s",
        ]
    if profile.records_per_poll is not None:
        p = profile.records_per_poll
        lines.append(f"  # records per poll today: {_num(p.value)} ({p.source}; {p.sure})")
    lines += [
        "",
        "consumer:",
        f"  members: {round(profile.members.value)}{_note(profile.members)}",
        "  processing:",
        f"    per_record_ms: {_num(c.per_record_ms.value)}{_note(c.per_record_ms)}",
        f"    distribution: {c.distribution}{_note(c.spread)}",
    ]
    if c.p99_ms is not None:
        lines.append(f"    p99_ms: {_num(c.p99_ms.value)}{_note(c.p99_ms)}")
    lines += [
        f"    per_batch_ms: {_num(c.per_batch_ms.value)}{_note(c.per_batch_ms)}",
        f"    mode: {c.mode}{_note(c.mode_estimate)}",
    ]
    fixed = {k: v for k, v in profile.settings.items() if fix_current or k not in DEFAULT_SEARCH}
    searched = {k: v for k, v in profile.settings.items() if k not in fixed}
    lines.append("  settings:" if fixed else "  settings: {}")
    lines += [f"    {k}: {_setting(v)}  # current ({profile.settings_source})"
              for k, v in fixed.items()]  # fmt: skip
    lines += [f"    # {k}: {_setting(v)}  # current; searched by the study"
              for k, v in searched.items()]  # fmt: skip
    lines += [
        "",
        "trial:",
        "  warmup_s: 3",
        "  measure_s: 15",
        "",
        "study:",
        f"  name: profile-{name}",
        "",
    ]
    text = "\n".join(lines)
    check(text)
    return text


def check(text: str) -> StudySpec:
    """The config `text` loaded through `tuner.config`, as `tuner optimize` would load it."""
    try:
        return parse_config(yaml.safe_load(text))
    except ConfigError as exc:
        raise ProfileError(f"the profiled config does not load:\n{exc}") from None
