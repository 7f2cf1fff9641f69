"""The confluent-kafka consumer (librdkafka): its defaults, its space and its properties; the
rules and names themselves live in `tuner.librdkafka`, which the config's checks import
without any client library."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import ClassVar

from tuner import librdkafka
from tuner.clients import confluent_files
from tuner.clients.base import FETCH_SEARCH, LIVENESS_SEARCH, ConsumerClient, Recommended
from tuner.settings import ParameterSpec, SettingValue

SESSION = "session.timeout.ms"
MAX_POLL_INTERVAL = "max.poll.interval.ms"
_MEANING = {
    librdkafka.MAX_POLL_RECORDS: "records per consume() call (its num_messages); measured as "
    "max.poll.records",
}


class ConfluentKafka(ConsumerClient):
    """confluent-kafka: librdkafka heartbeats and prefetches on its own threads."""

    name = librdkafka.CONFLUENT
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
    blocking_poll = True
    prefetch_queue = True
    poll_call = "consume()"
    commit_call = "consumer.commit(asynchronous=False)"

    def effective_settings(
        self, settings: Mapping[str, SettingValue], *, protocol: str = "classic"
    ) -> dict[str, SettingValue | None]:
        return librdkafka.effective_settings(settings, protocol=protocol)

    def member_config(
        self, settings: Mapping[str, SettingValue], *, offset_reset: str, protocol: str
    ) -> dict[str, object]:
        return dict(
            librdkafka.settings_config(settings, offset_reset=offset_reset, protocol=protocol)
        )

    def settings_files(self, r: Recommended, *, protocol: str = "classic") -> dict[str, str]:
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
        if name in librdkafka.LIBRDKAFKA_ONLY:
            return librdkafka.LIBRDKAFKA_ONLY[name].description
        return None


CONFLUENT_KAFKA = ConfluentKafka()
