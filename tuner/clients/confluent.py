"""The confluent-kafka consumer (librdkafka): its defaults, its space, its properties and the
settings it refuses; librdkafka's own names, defaults and limits live in `tuner.librdkafka`.
Like the other client modules, this one imports no client library, so a config loads
cheaply."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import ClassVar

from tuner import librdkafka
from tuner.clients import confluent_files
from tuner.clients.base import (
    FETCH_SEARCH,
    LIBRDKAFKA_CLIENT,
    LIVENESS_SEARCH,
    ConsumerClient,
    Recommended,
)
from tuner.librdkafka import LIBRDKAFKA_ONLY, MESSAGE_MAX_BYTES, SOCKET_TIMEOUT_MS, RdSetting
from tuner.protocol import GroupProtocol
from tuner.settings import ASSIGNOR_NAMES, ParameterSpec, SettingValue

SESSION = "session.timeout.ms"
MAX_POLL_INTERVAL = "max.poll.interval.ms"
_MEANING = {
    librdkafka.MAX_POLL_RECORDS: "records per consume() call (its num_messages); measured as "
    "max.poll.records",
}


class ConfluentKafka(ConsumerClient):
    """confluent-kafka: librdkafka heartbeats and prefetches on its own threads."""

    name = LIBRDKAFKA_CLIENT
    distribution = "confluent-kafka"
    search: ClassVar[Mapping[str, ParameterSpec]] = {
        **FETCH_SEARCH,
        "queued.min.messages": ParameterSpec(low=1000, high=1_000_000, log=True),
        "queued.max.messages.kbytes": ParameterSpec(low=1024, high=256 << 10, log=True),
        **LIVENESS_SEARCH,
        "max.poll.interval.ms": ParameterSpec(low=60000, high=600000, log=True),
    }
    """The fetch settings, the prefetch queue's bounds, the batch passed to `consume()` (as
    max.poll.records) and the timeouts — under KIP-848 the session and heartbeat as the
    group's configs. Every fetch.max.bytes it samples is at least 1 MiB, above librdkafka's
    message.max.bytes floor, and every max.poll.interval.ms at least the longest session
    (librdkafka refuses less)."""
    background = "thread"
    heartbeats_on_the_loop = False
    protocols = ("classic", "consumer")
    service_clients = frozenset({LIBRDKAFKA_CLIENT})
    blocking_poll = True
    prefetch_queue = True
    poll_call = "consume()"
    commit_call = "consumer.commit(asynchronous=False)"
    member_loop = "tuner.consumer.confluent:run_confluent_member"

    def effective_settings(
        self, settings: Mapping[str, SettingValue], *, protocol: GroupProtocol = "classic"
    ) -> dict[str, SettingValue | None]:
        return librdkafka.effective_settings(settings, protocol=protocol)

    def member_config(
        self, settings: Mapping[str, SettingValue], *, offset_reset: str, protocol: GroupProtocol
    ) -> dict[str, object]:
        return dict(
            librdkafka.settings_config(settings, offset_reset=offset_reset, protocol=protocol)
        )

    def settings_files(
        self, r: Recommended, *, protocol: GroupProtocol = "classic"
    ) -> dict[str, str]:
        """librdkafka's properties and snippet, measured; the Java consumer's as comments."""
        return confluent_files.files(r, protocol=protocol)

    def narrow_space(
        self, kept: dict[str, ParameterSpec], fixed: Mapping[str, SettingValue]
    ) -> None:
        """librdkafka refuses max.poll.interval.ms under session.timeout.ms: a fixed one bounds
        the other's searched range (when the range allows it)."""
        poll, session = fixed.get(MAX_POLL_INTERVAL), fixed.get(SESSION)
        searched = kept.get(SESSION)
        if isinstance(poll, int) and searched is not None and (searched.low or 1) <= poll:
            kept[SESSION] = replace(searched, high=min(searched.high or poll, poll))
        searched = kept.get(MAX_POLL_INTERVAL)
        if isinstance(session, int) and searched is not None and session <= (searched.high or 0):
            kept[MAX_POLL_INTERVAL] = replace(searched, low=max(searched.low or 1, session))

    def meaning(self, name: str) -> str | None:
        if name in _MEANING:
            return _MEANING[name]
        if name in LIBRDKAFKA_ONLY:
            return LIBRDKAFKA_ONLY[name].description
        return None

    def setting_problems(self, values: Mapping[str, object]) -> list[tuple[str, str]]:
        """librdkafka's own settings in their ranges, and what librdkafka refuses to start
        with: an eager sticky assignor, a fetch.max.bytes under message.max.bytes, a fetch
        wait that reaches its socket timeout."""
        out = [
            (name, problem)
            for name, value in values.items()
            if name in LIBRDKAFKA_ONLY and (problem := _value_problem(value, LIBRDKAFKA_ONLY[name]))
        ]
        assignor = values.get("partition.assignment.strategy")
        if isinstance(assignor, str) and ASSIGNOR_NAMES.get(assignor) == "sticky":
            out.append((
                "partition.assignment.strategy",
                "librdkafka has no eager sticky assignor (its cooperative-sticky is another "
                f"protocol): use range or roundrobin with consumer.client: {self.name}, got "
                f"{assignor!r}",
            ))  # fmt: skip
        fetch_max = values.get("fetch.max.bytes")
        if isinstance(fetch_max, int) and fetch_max < MESSAGE_MAX_BYTES:
            out.append((
                "fetch.max.bytes",
                f"librdkafka requires fetch.max.bytes >= message.max.bytes ({MESSAGE_MAX_BYTES}), "
                f"got {fetch_max}",
            ))  # fmt: skip
        wait = values.get("fetch.max.wait.ms")
        if isinstance(wait, int) and wait > SOCKET_TIMEOUT_MS - 1000:
            out.append((
                "fetch.max.wait.ms",
                f"librdkafka needs it at least 1000 ms under socket.timeout.ms "
                f"({SOCKET_TIMEOUT_MS}), got {wait}",
            ))  # fmt: skip
        return out

    def protocol_problems(
        self, protocol: GroupProtocol, values: Mapping[str, object], *, rules: bool = True
    ) -> list[tuple[str, str]]:
        """Classic: librdkafka refuses a max.poll.interval.ms under the session timeout (a
        default counts: its session is 45 s). KIP-848: the broker assigns and bounds the
        session, which becomes a group config."""
        if protocol == "classic":
            return self._classic_problems(values)
        if not rules:
            return []
        out = [
            (f"consumer.settings.{name}",
             "is not a client setting under group_protocol 'consumer' (KIP-848: the broker "
             f"assigns partitions), got {values[name]!r}")
            for name in librdkafka.KIP848_FORBIDDEN if name in values
        ]  # fmt: skip
        session = values.get(SESSION)
        lo, hi = librdkafka.KIP848_SESSION_MS
        if isinstance(session, int) and not lo <= session <= hi:
            out.append((
                "consumer.settings.session.timeout.ms",
                f"becomes the group config consumer.session.timeout.ms, which the broker bounds "
                f"to [{lo}, {hi}], got {session}",
            ))  # fmt: skip
        return out

    def _classic_problems(self, values: Mapping[str, object]) -> list[tuple[str, str]]:
        given = {n: v for n, v in values.items() if isinstance(v, int | bool | str)}
        eff = self.effective_settings(given)
        poll, session = eff[MAX_POLL_INTERVAL], eff[SESSION]
        if isinstance(poll, int) and isinstance(session, int) and poll < session:
            return [(
                "consumer.settings.max.poll.interval.ms",
                f"librdkafka requires max.poll.interval.ms >= session.timeout.ms ({session}) "
                f"with group_protocol classic, got {poll}",
            )]  # fmt: skip
        return []

    def parameter_problems(self, params: Mapping[str, ParameterSpec]) -> list[tuple[str, str]]:
        """librdkafka's own settings searched within their ranges, and every sampled
        fetch.max.bytes at least message.max.bytes."""
        out: list[tuple[str, str]] = []
        for name, p in params.items():
            rd = LIBRDKAFKA_ONLY.get(name)
            if rd is None:
                continue
            values = p.choices or tuple(v for v in (p.low, p.high) if v is not None)
            if len(values) < 2 and not p.choices:
                out.append((name, "needs `low` and `high`, or `choices`"))
            out.extend(
                (name, f"must lie in [{rd.minimum}, {rd.maximum}], got {v!r}")
                for v in values
                if _value_problem(v, rd) is not None
            )
        low = params["fetch.max.bytes"].low if "fetch.max.bytes" in params else None
        if low is not None and low < MESSAGE_MAX_BYTES:
            out.append((
                "fetch.max.bytes",
                f"librdkafka requires fetch.max.bytes >= message.max.bytes ({MESSAGE_MAX_BYTES}): "
                f"`low` must be at least that, got {low}",
            ))  # fmt: skip
        return out


def _value_problem(value: object, rd: RdSetting) -> str | None:
    """What is wrong with `value` for one of librdkafka's own settings, or None."""
    if isinstance(value, bool) or not isinstance(value, int):
        return f"must be an integer, got {value!r}"
    if not rd.minimum <= value <= rd.maximum:
        return f"must be in [{rd.minimum}, {rd.maximum}], got {value}"
    return None


CONFLUENT_KAFKA = ConfluentKafka()
