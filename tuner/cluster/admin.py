"""Cluster admin: the trial's topic, its group, and the offsets that cross-check counts.

The tuner only creates, writes and deletes topics and groups under its prefix (default
`tuner.`); every function that changes a topic (here and in `tuner.cluster.prefill`) or
deletes a group checks that first, so a typo in a config can never touch a topic or group the
tuner did not create.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    GroupIdNotFound,
    KafkaConnectionError,
    KafkaError,
    NonEmptyGroup,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
    for_code,
)
from aiokafka.helpers import create_ssl_context
from aiokafka.protocol.admin import DeleteGroupsRequest
from aiokafka.protocol.commit import OffsetFetchRequest

from tuner.cluster import owned
from tuner.config import ClusterSpec, StudySpec, TopicSpec

log = logging.getLogger(__name__)

_T = TypeVar("_T")


class ClusterError(Exception):
    """The cluster refused or could not do what the trial needs."""


class ForeignTopicError(ClusterError):
    """Raised instead of touching a topic outside the tuner's prefix."""


class ForeignGroupError(ClusterError):
    """Raised instead of deleting a consumer group outside the tuner's prefix."""


class UnreachableError(ClusterError):
    """The cluster did not answer: a failure to reach it, not a config it refused."""


REACH_TIMEOUT_S = 10.0
"""How long `preflight` waits for the cluster's first answer."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Connection:
    """Where the cluster is and how to authenticate; the one source of client connection kwargs."""

    bootstrap_servers: str
    cluster: ClusterSpec

    def kwargs(self) -> dict[str, object]:
        """Keyword arguments every aiokafka client of this cluster takes (never logged: secrets)."""
        sec = self.cluster.security
        out: dict[str, object] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": sec.protocol,
        }
        if sec.protocol.startswith("SASL"):
            out |= {
                "sasl_mechanism": sec.sasl_mechanism,
                "sasl_plain_username": sec.username,
                "sasl_plain_password": sec.password,
            }
        if sec.protocol.endswith("SSL"):
            out["ssl_context"] = create_ssl_context(cafile=sec.ssl_cafile)
        return out


@contextlib.asynccontextmanager
async def admin_client(conn: Connection) -> AsyncIterator[AIOKafkaAdminClient]:
    """A started admin client of the cluster, closed however the block ends (also when
    starting it failed or was cancelled by a deadline around the block)."""
    admin = AIOKafkaAdminClient(**conn.kwargs())
    try:
        await admin.start()
        yield admin
    finally:
        await admin.close()


@contextlib.contextmanager
def owned_topic(spec: StudySpec, conn: Connection, suffix: str) -> Iterator[StudySpec]:
    """The spec with a topic of its own (`<topic>.<suffix>`), deleted afterwards (also on
    Ctrl-C or a failure), so nothing the tuner made is left behind in the cluster."""
    topic = replace(spec.topic, name=f"{spec.topic.name}.{suffix}", create=True)
    try:
        with owned.registered(
            owned.owned_here(topic.name, spec.cluster.topic_prefix, conn.bootstrap_servers)
        ):
            yield replace(spec, topic=topic)
    finally:
        try:
            asyncio.run(delete_topic(conn, topic.name))
        except Exception as exc:  # a failed cleanup must not hide why the block ended
            log.warning(
                "could not delete topic %r, delete it by hand: %s: %s",
                topic.name, type(exc).__name__, exc,
            )  # fmt: skip


def check_owned(topic: str, prefix: str) -> None:
    if not topic.startswith(prefix):
        raise ForeignTopicError(
            f"refusing to change topic {topic!r}: "
            f"the tuner only touches topics starting with {prefix!r}"
        )


async def preflight(conn: Connection, topic: TopicSpec) -> None:
    """Before anything starts: the cluster answers within `REACH_TIMEOUT_S` (an address that
    accepts connections but never answers would otherwise hang each client for its own
    request timeout), and has the brokers the topic's replication factor needs."""
    try:
        async with asyncio.timeout(REACH_TIMEOUT_S), admin_client(conn) as admin:
            brokers = len((await admin.describe_cluster())["brokers"])
    except (TimeoutError, KafkaConnectionError) as exc:
        what = (
            f"no answer from the cluster at {conn.bootstrap_servers} within {REACH_TIMEOUT_S:.0f} s"
            if isinstance(exc, TimeoutError)
            else f"cannot connect to the cluster at {conn.bootstrap_servers}"
        )
        raise UnreachableError(
            f"{what}: check cluster.bootstrap_servers (and that the cluster is up)"
        ) from None
    if topic.create and topic.replication_factor > brokers:
        raise ClusterError(
            f"topic.replication_factor: {topic.replication_factor} replicas need as many "
            f"brokers, and the cluster at {conn.bootstrap_servers} has {brokers}"
        )


async def ensure_topic(conn: Connection, topic: TopicSpec) -> bool:
    """Create the topic if asked and missing; check its partition count. True if created now."""
    async with admin_client(conn) as admin:
        existing = await _partition_count(admin, topic.name)
        if existing is None:
            if not topic.create:
                raise ClusterError(f"topic {topic.name!r} does not exist and topic.create is false")
            check_owned(topic.name, conn.cluster.topic_prefix)
            configs = (
                {}
                if topic.min_insync_replicas is None
                else {"min.insync.replicas": str(topic.min_insync_replicas)}
            )
            response = await admin.create_topics(
                [NewTopic(topic.name, topic.partitions, topic.replication_factor, None, configs)]
            )
            # The broker answers a refused topic with an error code per topic, not an error.
            for _name, code, *message in response.topic_errors:
                if code == TopicAlreadyExistsError.errno:
                    return False
                if code:
                    detail = f": {message[0]}" if message and message[0] else ""
                    raise ClusterError(
                        f"the cluster refused to create topic {topic.name!r} "
                        f"({for_code(code).__name__}{detail})"
                    )
            await _wait_for_leaders(conn, topic.name, topic.partitions)
            return True
        if existing != topic.partitions:
            raise ClusterError(
                f"topic {topic.name!r} has {existing} partitions but the config asks for "
                f"{topic.partitions}: delete it or change topic.partitions"
            )
        return False


async def _partition_count(admin: AIOKafkaAdminClient, name: str) -> int | None:
    described = await admin.describe_topics([name])
    for entry in described:
        if entry.get("topic") == name and entry.get("error_code", 0) == 0:
            return len(entry["partitions"])
    return None


async def _wait_for_leaders(conn: Connection, topic: str, partitions: int) -> None:
    """A new topic's partitions need a leader before producers and consumers can use them."""
    async with asyncio.timeout(30):
        while True:
            offsets = await end_offsets(conn, topic)
            if len(offsets) == partitions:
                return
            await asyncio.sleep(0.1)


async def delete_topic(conn: Connection, name: str) -> None:
    """Delete a topic the tuner owns; one already gone is fine. Raises `ClusterError` naming
    the broker's error if the broker refused (the broker answers with a code per topic)."""
    check_owned(name, conn.cluster.topic_prefix)
    async with admin_client(conn) as admin:
        response = await admin.delete_topics([name])
    for _topic, code in response.topic_error_codes:
        if code and code != UnknownTopicOrPartitionError.errno:
            raise ClusterError(
                f"the cluster refused to delete topic {name!r} ({for_code(code).__name__})"
            )


async def end_offsets(conn: Connection, topic: str) -> dict[int, int]:
    """Partition → log end offset (the next offset to be written)."""
    consumer = AIOKafkaConsumer(**conn.kwargs(), enable_auto_commit=False)
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        if not parts:
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        ends = await consumer.end_offsets(tps) if tps else {}
        return {tp.partition: int(off) for tp, off in ends.items()}
    finally:
        await consumer.stop()


COORDINATOR_TIMEOUT_S = 30.0
"""How long a read from a group's coordinator is retried. A broker killed mid-trial stays the
coordinator until the controller fences it (`broker.session.timeout.ms`, 9 s on the embedded
cluster); the broker taking over, or one that leads `__consumer_offsets` again after a restart,
answers COORDINATOR_LOAD_IN_PROGRESS until it has read the group's offsets back."""


async def _from_coordinator(
    conn: Connection, group_id: str, ask: Callable[[AIOKafkaAdminClient, int], Awaitable[_T]]
) -> _T:
    """`ask(admin, coordinator)`, again on a fresh coordinator lookup while it fails with a
    retriable error (the coordinator down, moved or still loading), until
    `COORDINATOR_TIMEOUT_S`."""
    deadline = time.monotonic() + COORDINATOR_TIMEOUT_S
    while True:
        try:
            async with admin_client(conn) as admin:
                return await ask(admin, await admin.find_coordinator(group_id))
        except KafkaError as exc:
            if not exc.retriable or time.monotonic() >= deadline:
                raise
            log.debug("group %s: coordinator not ready (%r), asking again", group_id, exc)
        await asyncio.sleep(0.5)


def _raise_for(error_code: int, what: str) -> None:
    if error_code:
        raise for_code(error_code)(what)


async def committed_offsets(conn: Connection, group_id: str, topic: str) -> dict[int, int]:
    """Partition → offset the group committed (partitions never committed are absent).

    aiokafka's `list_consumer_group_offsets` ignores the response's group-level error, so a
    coordinator still loading the group reads as "nothing committed" (offsets 0 after a
    failover); the request is sent here and that error retried."""

    async def ask(admin: AIOKafkaAdminClient, coordinator: int) -> dict[int, int]:
        # A private call, as aiokafka's own list_consumer_group_offsets makes it: the public one
        # drops the group-level error this function exists to see.
        response = await admin._send_request(OffsetFetchRequest(group_id, None), coordinator)
        _raise_for(getattr(response, "error_code", 0), f"offsets of group {group_id}")
        offsets: dict[int, int] = {}
        for name, parts in response.topics:
            for partition, offset, _metadata, error_code in parts:
                _raise_for(error_code, f"offset of group {group_id} on {name}-{partition}")
                if name == topic:
                    offsets[partition] = offset
        return offsets

    return await _from_coordinator(conn, group_id, ask)


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupState:
    """The coordinator's view of a group: its state and the member ids it knows."""

    state: str
    member_ids: frozenset[str]


async def describe_group(conn: Connection, group_id: str) -> GroupState:
    """Ask the group coordinator (the broker) who is in the group right now.

    The broker's view catches what a member cannot see of itself: a member whose loop was
    blocked past `session.timeout.ms` is evicted while it keeps consuming its prefetched data.
    A coordinator that is down or loading is asked again (`COORDINATOR_TIMEOUT_S`): its empty
    answer would read as every member gone.
    """

    async def ask(admin: AIOKafkaAdminClient, coordinator: int) -> GroupState:
        responses = await admin.describe_consumer_groups([group_id], coordinator)
        for response in responses:
            for group in response.groups:
                error, gid, state, _ptype, _protocol, members, *_ = group
                if gid == group_id:
                    if error and for_code(error).retriable:
                        _raise_for(error, f"group {group_id}")
                    return GroupState(state=state, member_ids=frozenset(m[0] for m in members))
        return GroupState(state="Dead", member_ids=frozenset())

    return await _from_coordinator(conn, group_id, ask)


GROUP_LEAVING_S = 5.0
"""How long `delete_groups` asks again while the broker answers NON_EMPTY_GROUP: members that
have just closed may still be leaving (a KIP-848 member's last heartbeat, a librdkafka
consumer's LeaveGroup sent from its own thread), and the whole deletion is bounded by it."""


async def _delete_group(admin: AIOKafkaAdminClient, group_id: str, wait_s: float) -> bool:
    """Ask the group's coordinator to delete it; True if it was there, False if not. A
    coordinator not ready and a group not yet empty are asked again until `wait_s`, then the
    broker's error is raised (NonEmptyGroup for a group whose members did not leave)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            coordinator = await admin.find_coordinator(group_id)
            response = await admin._send_request(DeleteGroupsRequest([group_id]), coordinator)
            code = next((c for gid, c in response.results if gid == group_id), 0)
            if code == GroupIdNotFound.errno:
                return False
            _raise_for(code, f"deleting group {group_id}")
            return True
        except (NonEmptyGroup, KafkaError) as exc:
            if not (exc.retriable or isinstance(exc, NonEmptyGroup)):
                raise
            if time.monotonic() >= deadline:
                raise
            log.debug("group %s: not deleted yet (%r), asking again", group_id, exc)
        await asyncio.sleep(0.2)


async def delete_groups(
    conn: Connection, group_ids: Sequence[str], *, wait_s: float = GROUP_LEAVING_S
) -> list[str]:
    """Delete the tuner's own consumer groups (the prefix rule of topics: ForeignGroupError for
    any other); returns those that existed. A group is deleted only once empty (the broker
    refuses otherwise): one whose members are still leaving is asked again for `wait_s`, then
    its NonEmptyGroup error is raised. Works for classic, KIP-848 and share groups alike: the
    coordinator decides, by the group's id."""
    for group_id in group_ids:
        if not group_id.startswith(conn.cluster.topic_prefix):
            raise ForeignGroupError(
                f"refusing to delete group {group_id!r}: the tuner only deletes groups "
                f"starting with {conn.cluster.topic_prefix!r}"
            )
    async with asyncio.timeout(wait_s + REACH_TIMEOUT_S), admin_client(conn) as admin:
        return [g for g in group_ids if await _delete_group(admin, g, wait_s)]


async def delete_groups_of_run(conn: Connection, group_ids: Sequence[str]) -> None:
    """`delete_groups` at the end of a run, which its failure must not fail: a broker that is
    gone, or a member that would not leave, is logged, and `tuner clean` deletes the group."""
    try:
        await delete_groups(conn, group_ids)
    except Exception as exc:  # a failed cleanup must not hide why the run ended
        log.warning(
            "could not delete consumer group(s) %s (`tuner clean` deletes them once empty): "
            "%s: %s", ", ".join(group_ids), type(exc).__name__, exc,
        )  # fmt: skip


async def owned_groups(conn: Connection) -> list[str]:
    """The cluster's consumer groups under the tuner's prefix, in every state."""
    async with admin_client(conn) as admin:
        groups = await admin.list_consumer_groups()
    return sorted({g[0] for g in groups if g[0].startswith(conn.cluster.topic_prefix)})
