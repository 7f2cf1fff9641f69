"""A finding: what is risky, the arithmetic behind it, the Kafka semantics, and the change."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum


class Severity(StrEnum):
    """How bad it is: `risk` breaks the group (rebalances, lost records), `warning` costs
    throughput or latency, `info` is a trade-off worth knowing."""

    RISK = "risk"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"risk": 2, "warning": 1, "info": 0}[self.value]


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    code: str
    """Stable, like a linter's: `KT201`."""
    rule: str
    """The rule's short name: `poll-gap-near-limit`."""
    severity: Severity
    group: str
    title: str
    arithmetic: str
    """The comparison with its numbers filled in."""
    semantics: str
    change: str
    value: float
    """The number the rule compared (ms, bytes, a count or a ratio, as `arithmetic` says)."""
    limit: float
    """What it was compared against."""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def at_least(findings: tuple[Finding, ...], severity: Severity) -> tuple[Finding, ...]:
    """The findings at `severity` or worse."""
    return tuple(f for f in findings if f.severity.rank >= severity.rank)
