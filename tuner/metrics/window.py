"""Reading windows of the instruments back, from the samples the exporter serves.

The trial scores these same samples, so the report, the objective and Grafana agree.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client.metrics_core import Metric

from tuner.metrics.instruments import PREFIX

SampleKey = tuple[str, frozenset[tuple[str, str]]]


_SAMPLE_SUFFIXES = {
    "counter": ("_total", "_created"),
    "summary": ("_sum", "_count", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "info": ("_info",),
}
"""The suffixed sample names a family of each type serves (as prometheus-client lists them)."""
_SUFFIXED_ONLY = frozenset({"counter", "histogram", "gaugehistogram", "info"})
"""Types that serve no sample under the family's bare name."""


def sample_names(family: Metric) -> tuple[str, ...]:
    """Every sample name `family` can serve, whether or not it has samples yet."""
    bare = () if family.type in _SUFFIXED_ONLY else (family.name,)
    return (*bare, *(family.name + s for s in _SAMPLE_SUFFIXES.get(family.type, ())))


@dataclass(frozen=True, slots=True)
class RegistrySnapshot:
    """The samples of one group at one instant, as the exporter would serve them.

    Reading a name no collected family serves raises `KeyError`, so a renamed metric fails
    loudly instead of scoring every trial 0; a known family without samples reads as empty.
    """

    at: float
    samples: Mapping[SampleKey, float]
    names: frozenset[str]
    """Every sample name the collected families serve, including families with no samples."""

    @classmethod
    def of(cls, families: Iterable[Metric], *, group: str, at: float) -> RegistrySnapshot:
        samples: dict[SampleKey, float] = {}
        names: set[str] = set()
        for family in families:
            names.update(sample_names(family))
            for s in family.samples:
                names.add(s.name)
                if s.labels.get("group") == group:
                    samples[(s.name, frozenset(s.labels.items()))] = s.value
        return cls(at=at, samples=samples, names=frozenset(names))

    def _values(self, name: str) -> Iterator[tuple[frozenset[tuple[str, str]], float]]:
        if name not in self.names:
            raise KeyError(f"no metric family serves {name!r} (renamed or never registered?)")
        return ((labels, v) for (n, labels), v in self.samples.items() if n == name)

    def total(self, name: str) -> float:
        return sum(v for _, v in self._values(name))

    def per_member(self, name: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for labels, v in self._values(name):
            member = dict(labels).get("member", "")
            out[member] = out.get(member, 0.0) + v
        return out

    def maximum(self, name: str) -> float | None:
        values = [v for _, v in self._values(name)]
        return max(values) if values else None

    def buckets(self, name: str) -> dict[float, float]:
        """Cumulative bucket counts of a histogram summed over members: `le` → count."""
        out: dict[float, float] = {}
        for labels, v in self._values(f"{name}_bucket"):
            le = float(dict(labels)["le"])
            out[le] = out.get(le, 0.0) + v
        return out


def histogram_quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """Prometheus' `histogram_quantile` on cumulative buckets: linear within the bucket."""
    ordered = sorted(buckets.items())
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for le, count in ordered:
        if count >= rank:
            if math.isinf(le):
                return lower_bound
            span = count - lower_count
            fraction = (rank - lower_count) / span if span > 0 else 1.0
            return lower_bound + (le - lower_bound) * fraction
        lower_bound, lower_count = le, count
    return lower_bound


def delta_buckets(start: Mapping[float, float], end: Mapping[float, float]) -> dict[float, float]:
    return {le: count - start.get(le, 0.0) for le, count in end.items()}


@dataclass(frozen=True, slots=True)
class GroupWindow:
    """What the group did between two snapshots of the same instruments."""

    start: RegistrySnapshot
    end: RegistrySnapshot

    @property
    def seconds(self) -> float:
        return max(self.end.at - self.start.at, 1e-9)

    def delta(self, name: str) -> float:
        return self.end.total(name) - self.start.total(name)

    def per_member_delta(self, name: str) -> dict[str, float]:
        before = self.start.per_member(name)
        return {m: v - before.get(m, 0.0) for m, v in self.end.per_member(name).items()}

    def quantile(self, name: str, q: float) -> float | None:
        return histogram_quantile(
            q, delta_buckets(self.start.buckets(name), self.end.buckets(name))
        )

    @property
    def records(self) -> float:
        return self.delta(f"{PREFIX}records_consumed_total")

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds

    @property
    def bytes_per_s(self) -> float:
        return self.delta(f"{PREFIX}bytes_consumed_total") / self.seconds

    @property
    def fetch_requests(self) -> float:
        return self.delta(f"{PREFIX}fetch_requests_total")

    def _per_fetch(self, name: str) -> float:
        n = self.delta(f"{name}_count")
        return self.delta(f"{name}_sum") / n if n else 0.0

    @property
    def records_per_fetch(self) -> float:
        return self._per_fetch(f"{PREFIX}fetch_records")

    @property
    def bytes_per_fetch(self) -> float:
        return self._per_fetch(f"{PREFIX}fetch_bytes")

    @property
    def records_per_poll(self) -> float:
        """Records per poll that returned any (what max.poll.interval.ms must cover): empty
        polls, which only wait on a fetch, are left out."""
        name = f"{PREFIX}poll_records"
        polls = self.delta(f"{name}_count") - self.delta(f"{PREFIX}empty_polls_total")
        return self.delta(f"{name}_sum") / polls if polls > 0 else 0.0

    @property
    def rebalances(self) -> int:
        """Group rebalances in the window: every member sees each one, so the max over members."""
        name = f"{PREFIX}rebalances_total"
        before = self.start.per_member(name)
        after = self.end.per_member(name)
        return int(max((v - before.get(m, 0.0) for m, v in after.items()), default=0.0))

    def ms(self, name: str, q: float) -> float | None:
        value = self.quantile(name, q)
        return None if value is None else value * 1000.0
