"""What each client's wrapper is given: the plan, the reporter, and the client it wraps."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from _tuner_bootstrap.plan import Plan, recorded, stop
from _tuner_bootstrap.report import Meter, Reporter

Wrap = Callable[[type[Any], "Context"], type[Any]]
"""A client's wrapper: the service's consumer class → the class the service gets instead."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """One client library: the module that defines its consumer class, and its wrapper."""

    module: str
    """Where the class is defined (its package re-exports it from there)."""
    attribute: str
    client: str
    """The client's name in the plan (as `consumer.client` spells it)."""
    distribution: str
    wrap: Wrap


@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    plan: Plan
    reporter: Reporter
    target: Target

    def config(self) -> dict[str, Any]:
        """The trial's configuration of this client."""
        return self.plan.config(self.target.client)

    def refuse(self, message: str) -> None:
        """Stop the process with `message` (stderr, a `refused` line, exit `REFUSED_EXIT`)."""
        stop(message, lambda text: self.reporter.event(None, "refused", message=text))

    def topics(self, topics: Iterable[str], where: str) -> list[str]:
        """The trial's topic for the service's (others refused)."""
        return self.plan.topics(topics, where=where, refuse=self.refuse)

    def pattern(self, pattern: object, where: str) -> None:
        """A pattern subscription reads topics the tuner does not own: refused with it."""
        self.refuse(
            f"the service subscribes to the pattern {pattern!r} in {where}; the tuner runs it on "
            f"one topic, the trial's in place of service.topic {self.plan.service_topic!r}"
        )

    def assigned(self, partitions: Iterable[Any], where: str) -> None:
        """Partitions assigned by hand are refused unless they are the trial topic's."""
        other = sorted({str(p.topic) for p in partitions} - {self.plan.trial_topic})
        if other:
            self.refuse(
                f"the service assigns partitions of {', '.join(map(repr, other))} by hand in "
                f"{where}; the tuner measures a consumer group on the trial's topic"
            )

    def created(self, meter: Meter, **passed: object) -> None:
        """The consumer exists: its client, version, and what the service's code passed."""
        try:
            version = importlib.metadata.version(self.target.distribution)
        except importlib.metadata.PackageNotFoundError:
            version = "unknown"
        self.reporter.event(
            meter, "created", client=self.target.client, version=version,
            passed=recorded(passed), group_id=self.plan.group_id, topic=self.plan.trial_topic,
        )  # fmt: skip

    def passed(self, meter: Meter, call: str, **arguments: object) -> None:
        """A per-call argument the trial's settings replace, recorded the first time each
        distinct value is seen."""
        key = (call, repr(sorted(arguments.items())))
        if key not in meter.seen:
            meter.seen.add(key)
            self.reporter.event(meter, "passed", call=call, arguments=recorded(arguments))

    def batch(self, meter: Meter, call: str, name: str, given: int | None) -> int | None:
        """The records one call may hand out: the trial's max.poll.records when it sets one,
        else what the service passed (recorded as passed under `name`)."""
        if given is not None:
            self.passed(meter, call, **{name: given})
        return given if self.plan.max_records is None else self.plan.max_records

    def closed(self, meter: Meter) -> None:
        """The service closed the consumer (reported once, with its last counters first)."""
        if not meter.closed:
            meter.closed = True
            self.reporter.flush(meter)
            self.reporter.event(meter, "closed")


def records_of(batch: object) -> int:
    """Records in a poll's result: a mapping of partition → records, or a list."""
    if isinstance(batch, dict):
        return sum(len(v) for v in batch.values())
    return len(batch) if isinstance(batch, list) else 0
