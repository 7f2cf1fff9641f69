"""Broker faults in a trial (`trial.faults`): stop a broker of the embedded multi-broker cluster
at a set second of the measurement window, watch its partitions' leaders move, restart it after.

What a fault means for the trial is the config's choice (`trial.measure_through_faults`):
failed, its reason naming the broker and the leader changes seen (a number measured through a
failover is not the settings' capacity), or measured, with the failover time in its result.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from tuner.broker.detached import controllable
from tuner.broker.errors import BrokerError
from tuner.broker.multi import EmbeddedCluster
from tuner.config import FaultSpec

log = logging.getLogger(__name__)

FAILOVER_TIMEOUT_S = 30.0
"""How long the leaders of a stopped broker's partitions are watched for a new leader."""
POLL_S = 0.1
NO_LEADER = -1


class FaultError(Exception):
    """A trial with a broker fault that is not measured through, or a fault that could not be
    injected; the message names the broker and what was seen."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaderChange:
    """Partition `partition` was led by `before` and, `after_s` seconds after the stop, by
    `after` (-1: no leader yet when the watch ended)."""

    partition: int
    before: int
    after: int
    after_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultReport:
    """One broker stopped mid-window: when, how, the leader changes it caused, and the failover
    time (the stop until no partition was led by it any more; None: not within
    `FAILOVER_TIMEOUT_S`)."""

    broker: int
    at_s: float
    kill: bool
    leader_changes: tuple[LeaderChange, ...]
    failover_s: float | None

    def describe(self) -> str:
        """`broker 1 stopped (SIGTERM) at 5 s of the window; leaders moved p0 1→2 …`."""
        how = "SIGKILL" if self.kill else "SIGTERM"
        moved = ", ".join(
            f"p{c.partition} {c.before}→{'none' if c.after == NO_LEADER else c.after} "
            f"({c.after_s:.1f} s)"
            for c in self.leader_changes
        )
        failover = (
            f"failover {self.failover_s:.1f} s"
            if self.failover_s is not None
            else f"no failover within {FAILOVER_TIMEOUT_S:.0f} s"
        )
        return (
            f"broker {self.broker} stopped ({how}) at {self.at_s:g} s of the window; "
            f"leader changes: {moved or 'none'}; {failover}"
        )


async def partitions(bootstrap_servers: str, topic: str) -> list[dict[str, Any]]:
    """The topic's partitions as the cluster's metadata has them now: `partition`, `leader`
    (-1: none), `replicas` (the preferred leader first), `isr`."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=5000)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return [p for entry in described if entry.get("topic") == topic for p in entry["partitions"]]


async def leaders(bootstrap_servers: str, topic: str) -> dict[int, int]:
    """Partition → leader's broker id (-1: none)."""
    return {p["partition"]: p["leader"] for p in await partitions(bootstrap_servers, topic)}


def _live_bootstrap(cluster: EmbeddedCluster, stopped: set[int]) -> str:
    """The addresses of the brokers still up: a client bootstrapping from a stopped one waits."""
    return ",".join(
        f"127.0.0.1:{cluster.port_of(n)}" for n in cluster.broker_ids if n not in stopped
    )


class Injector:
    """Stops the configured brokers at their second of the window (`arm()` at its start) and
    restarts them when the block ends, so the next trial runs on every broker again.

    `reports` holds what each fault did once the block has ended.
    """

    def __init__(self, faults: Sequence[FaultSpec], *, bootstrap_servers: str, topic: str) -> None:
        self.faults = tuple(faults)
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.reports: list[FaultReport] = []
        self._cluster: EmbeddedCluster | None = None
        self._stopped: set[int] = set()
        self.errors: list[str] = []
        self._stack = contextlib.AsyncExitStack()
        self._tasks: asyncio.TaskGroup | None = None
        self._pending: dict[asyncio.Task[None], FaultSpec] = {}

    async def __aenter__(self) -> Injector:
        if not self.faults:
            return self
        self._cluster = await asyncio.to_thread(controllable, self.bootstrap_servers)
        if self._cluster is None:
            raise FaultError(
                f"trial.faults: the tuner can stop only brokers of a cluster it runs, and the "
                f"one at {self.bootstrap_servers} is not (`tuner broker up --brokers N`, or "
                f"cluster.bootstrap_servers: embedded with cluster.brokers: N)"
            )
        self._tasks = await self._stack.enter_async_context(asyncio.TaskGroup())
        return self

    def arm(self) -> None:
        """Start the clock: each fault fires `at_s` seconds from now."""
        if self._tasks is not None:
            self._pending = {self._tasks.create_task(self._fire(f)): f for f in self.faults}

    async def settle(self) -> None:
        """Wait until the fired faults have seen their leaders move (or given up). Call it
        before the group stops: until the controller fences a killed broker commits stall,
        and a group stopped meanwhile cannot make its last commit."""
        fired = [t for t, fault in self._pending.items() if fault.stop_broker in self._stopped]
        if fired:
            await asyncio.wait(fired)

    async def _fire(self, fault: FaultSpec) -> None:
        """Stop the broker at its second and watch its leaders move; a failure to do so is
        kept in `errors` (the trial then fails naming it), never raised into the trial."""
        cluster = self._cluster
        assert cluster is not None  # noqa: S101 - __aenter__ set it, or there is no fault
        await asyncio.sleep(fault.at_s)
        try:
            before = await leaders(self.bootstrap_servers, self.topic)
            stopped_at = time.monotonic()
            self._stopped.add(fault.stop_broker)
            await asyncio.to_thread(cluster.stop_broker, fault.stop_broker, kill=fault.kill)
            log.info("broker %d stopped at %g s of the window", fault.stop_broker, fault.at_s)
            changes, failover = await self._watch(cluster, fault.stop_broker, before, stopped_at)
        except (BrokerError, OSError, KafkaError) as exc:
            self.errors.append(f"broker {fault.stop_broker}: the fault failed: {exc}")
            return
        self.reports.append(
            FaultReport(
                broker=fault.stop_broker, at_s=fault.at_s, kill=fault.kill,
                leader_changes=changes, failover_s=failover,
            )
        )  # fmt: skip

    async def _watch(
        self, cluster: EmbeddedCluster, broker: int, before: Mapping[int, int], since: float
    ) -> tuple[tuple[LeaderChange, ...], float | None]:
        """Poll the metadata until no partition is led by the stopped broker."""
        moved = {p for p, leader in before.items() if leader == broker}
        seen: dict[int, LeaderChange] = {}
        deadline = since + FAILOVER_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                now = await leaders(_live_bootstrap(cluster, self._stopped), self.topic)
            except Exception as exc:
                log.debug("leaders of %s: %s", self.topic, exc)
                now = {}
            elapsed = time.monotonic() - since
            for p in moved:
                leader = now.get(p, broker)
                if leader not in {broker, NO_LEADER} and p not in seen:
                    seen[p] = LeaderChange(
                        partition=p, before=broker, after=leader, after_s=elapsed
                    )
            if len(seen) == len(moved):
                failover = max((c.after_s for c in seen.values()), default=0.0)
                return tuple(sorted(seen.values(), key=lambda c: c.partition)), failover
            await asyncio.sleep(POLL_S)
        unmoved = [
            LeaderChange(partition=p, before=broker, after=NO_LEADER, after_s=FAILOVER_TIMEOUT_S)
            for p in moved - seen.keys()
        ]
        return tuple(sorted([*seen.values(), *unmoved], key=lambda c: c.partition)), None

    async def __aexit__(self, *exc_info: Any) -> None:
        """Cancel the faults not yet fired (a trial that ended early), let the fired ones finish
        watching, then restart their brokers."""
        for task, fault in self._pending.items():
            if fault.stop_broker not in self._stopped:
                task.cancel()
        try:
            await self._stack.__aexit__(*exc_info)
        finally:
            await self.restart()

    async def restart(self) -> None:
        """Start the stopped brokers again and wait for the topic's leaders to return."""
        if self._cluster is None or not self._stopped:
            return
        stopped = sorted(self._stopped)
        try:
            for broker in stopped:
                self._cluster.relaunch(broker)  # here: see `relaunch`
            await asyncio.to_thread(self._cluster.wait_for_all)
        except BrokerError as exc:
            raise FaultError(f"brokers {stopped} did not come back after the trial: {exc}") from exc
        self._stopped.clear()
        await _await_preferred(self.bootstrap_servers, self.topic)

    def verdict(self, *, measure_through: bool) -> tuple[FaultReport, ...]:
        """The reports, or `FaultError` naming them when the trial is not measured through."""
        reports = tuple(sorted(self.reports, key=lambda r: r.at_s))
        if self.errors or (reports and not measure_through):
            raise FaultError("; ".join([*(r.describe() for r in reports), *self.errors]))
        return reports


PREFERRED_TIMEOUT_S = 30.0
"""How long a restarted broker's partitions are given to return to their preferred leaders
(the controller checks every 5 s, `leader.imbalance.check.interval.seconds`)."""


async def _await_preferred(bootstrap_servers: str, topic: str) -> None:
    """Until every partition is led by its preferred replica with every replica in sync, so
    the next trial starts on the leaders the topic was created with; a warning, not an error,
    if that takes longer than `PREFERRED_TIMEOUT_S`."""
    deadline = time.monotonic() + PREFERRED_TIMEOUT_S
    parts: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        parts = await partitions(bootstrap_servers, topic)
        if parts and all(
            p["leader"] == p["replicas"][0] and len(p["isr"]) == len(p["replicas"]) for p in parts
        ):
            return
        await asyncio.sleep(0.5)
    log.warning(
        "topic %s: leaders not back on their preferred replicas after the fault: %s",
        topic, [(p["partition"], p["leader"], p["replicas"], p["isr"]) for p in parts],
    )  # fmt: skip
