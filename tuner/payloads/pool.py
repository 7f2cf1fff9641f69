"""The records a workload's producers write: the user's payloads, or values of the asked sizes.

The prefill (in the tuner) and Locust's producer (in its own process, from its command line)
build the same pool from the same inputs, so a backlog and live load carry the same records.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tuner.payloads.records import Format, Record, read_records
from tuner.payloads.sizes import Distribution, Order, cycle, fixed_values, sized_values


@dataclass(frozen=True, slots=True, kw_only=True)
class Pool:
    """Records to write in `order`; `own_keys`: each record's key is the user's (format:
    records), else keys come from `workload.key_distribution`."""

    records: tuple[Record, ...]
    own_keys: bool = False
    order: Order = "round_robin"
    seed: int = 0

    def writer(self) -> Callable[[], Record]:
        """A fresh sequence over the pool: round-robin from the first record, or seeded draws."""
        return cycle(self.records, self.order, self.seed)


def build_pool(
    *,
    message_bytes: float,
    distribution: Distribution | None = None,
    p99: float | None = None,
    file: str | None = None,
    fmt: Format = "values",
    order: Order = "round_robin",
    seed: int = 0,
) -> Pool:
    """The pool from plain values (what the Locust process receives on its command line)."""
    if file:
        return Pool(
            records=read_records(Path(file), fmt), own_keys=fmt == "records", order=order, seed=seed
        )
    if distribution is not None:
        return Pool(records=sized_values(distribution, message_bytes, p99), order=order, seed=seed)
    return Pool(records=fixed_values(max(1, round(message_bytes))))
