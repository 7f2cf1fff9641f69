"""How findings write their numbers: thousands separators, seconds, settings with their
source (`(default)` when no source stated them)."""

from __future__ import annotations

from tuner.advice.facts import Facts


def number(value: float) -> str:
    """`81,920`: a whole number with thousands separators."""
    return f"{value:,.0f}"


def count(value: float, noun: str) -> str:
    """`1 rebalance`, `2 rebalances`: a count as the rounded number says it."""
    shown = f"{value:,.0f}"
    return f"{shown} {noun}{'' if shown == '1' else 's'}"


def seconds(ms: float) -> str:
    """Milliseconds as seconds, or minutes from a minute up."""
    return f"{ms / 1000:,.1f} s" if ms < 60_000 else f"{ms / 60_000:,.1f} min"


def setting(facts: Facts, name: str, unit: str = "") -> str:
    """`name 10,000 ms` with `(default)` when no source stated it."""
    value = facts.settings[name]
    if isinstance(value, bool):
        shown = str(value).lower()
    else:
        shown = "unlimited" if value is None else number(int(value))
    unit = f" {unit}" if unit and value is not None else ""
    return f"{name} {shown}{unit}" + ("" if name in facts.given else " (default)")
