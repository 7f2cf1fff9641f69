"""The confluent-kafka (librdkafka) consumer: its own settings, its defaults and limits, its config.

Settings stay keyed by their Java names everywhere in the tuner; a confluent-kafka member runs
with them under librdkafka's names (`settings_config`). A few settings exist in one client
only: librdkafka's prefetch queue bounds (`LIBRDKAFKA_ONLY`) mean nothing to aiokafka, and
aiokafka's eager sticky assignor has no librdkafka counterpart; each client's module in
`tuner.clients` refuses what it cannot run. This module holds librdkafka's facts only (names,
defaults, limits); like `tuner.settings`, it imports no client library, so a config loads
cheaply.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, TypeVar

from tuner.protocol import GroupProtocol
from tuner.settings import ASSIGNOR_NAMES, SETTINGS, SettingValue


class Security(Protocol):
    """The fields of `tuner.config.SecuritySpec` that librdkafka's connection needs (a protocol,
    so that the config, which validates with this module's rules, is not imported back)."""

    @property
    def protocol(self) -> str: ...
    @property
    def sasl_mechanism(self) -> str | None: ...
    @property
    def username(self) -> str | None: ...
    @property
    def password(self) -> str | None: ...
    @property
    def ssl_cafile(self) -> str | None: ...


_V = TypeVar("_V")
MAX_POLL_RECORDS = "max.poll.records"
DEFAULT_BATCH_RECORDS = 500
"""Records asked of `consume()` when `max.poll.records` is not set: the Java default, since
confluent-kafka's own default (`num_messages=1`) is a loop of single records no team runs."""
MESSAGE_MAX_BYTES = 1_000_000
"""librdkafka's `message.max.bytes` default; it refuses a `fetch.max.bytes` below it."""
SOCKET_TIMEOUT_MS = 60_000
"""librdkafka's `socket.timeout.ms` default; a fetch that waits longer times requests out."""
STATISTICS_INTERVAL_MS = 1000
"""How often librdkafka reports the statistics the fetch-level families come from."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RdSetting:
    """A librdkafka consumer setting that aiokafka does not have (named as librdkafka names it)."""

    default: int
    minimum: int
    maximum: int
    description: str


LIBRDKAFKA_ONLY: Mapping[str, RdSetting] = {
    "queued.min.messages": RdSetting(
        default=100_000, minimum=1, maximum=10_000_000,
        description="librdkafka prefetches per partition until this many records are queued",
    ),
    "queued.max.messages.kbytes": RdSetting(
        default=65_536, minimum=1, maximum=2_097_151,
        # librdkafka's CONFIGURATION.md: with the high-level consumer this bounds the one
        # consumer queue, whatever the partition count (overshot by up to one fetch each).
        description="the prefetch queue's bound in KiB, all partitions together",
    ),
}  # fmt: skip
"""confluent-kafka only; refused with `consumer.client: aiokafka`."""


LIBRDKAFKA_DEFAULTS: Mapping[str, SettingValue] = {
    "fetch.min.bytes": 1,
    "fetch.max.wait.ms": 500,
    "max.partition.fetch.bytes": 1_048_576,
    "fetch.max.bytes": 52_428_800,
    MAX_POLL_RECORDS: DEFAULT_BATCH_RECORDS,
    "session.timeout.ms": 45_000,
    "heartbeat.interval.ms": 3_000,
    "max.poll.interval.ms": 300_000,
    "enable.auto.commit": True,
    "auto.commit.interval.ms": 5_000,
    "partition.assignment.strategy": "range",
    **{name: rd.default for name, rd in LIBRDKAFKA_ONLY.items()},
}
"""What a confluent-kafka member runs with when a setting is not given, by Java name (the
batch passed to `consume()` as max.poll.records; librdkafka's default assignor list
`range,roundrobin` picks range)."""


def effective_settings(
    values: Mapping[str, SettingValue], *, protocol: GroupProtocol = "classic"
) -> dict[str, SettingValue | None]:
    """Java name → value for every setting a confluent-kafka member has, librdkafka's
    defaults filling the gaps (under KIP-848 the broker's group defaults, and no assignor)."""
    out: dict[str, SettingValue | None] = {**LIBRDKAFKA_DEFAULTS}
    if protocol == "consumer":
        out |= {**KIP848_DEFAULTS, "partition.assignment.strategy": None}
    for name, value in values.items():
        out[name] = ASSIGNOR_NAMES.get(value, value) if isinstance(value, str) else value
    return out


KIP848_GROUP_CONFIGS: Mapping[str, str] = {
    "session.timeout.ms": "consumer.session.timeout.ms",
    "heartbeat.interval.ms": "consumer.heartbeat.interval.ms",
}
"""Client setting (Java name) → the group config that replaces it under KIP-848."""
KIP848_CLIENT_REFUSED = (
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "partition.assignment.strategy",
)
"""What librdkafka refuses to create a consumer with under `group.protocol=consumer` ("… is
not supported for `group.protocol=consumer` … It is defined broker side"), by Java name."""
KIP848_FORBIDDEN = ("partition.assignment.strategy",)
"""Client settings librdkafka refuses under `group.protocol=consumer` that have no group
config to become (the broker assigns: `group.remote.assignor` picks its assignor)."""
KIP848_SESSION_MS = (6_000, 60_000)
"""The embedded broker's `group.consumer.min/max.session.timeout.ms`."""
KIP848_DEFAULTS: Mapping[str, int] = {"session.timeout.ms": 45_000, "heartbeat.interval.ms": 5_000}
"""The broker's `group.consumer.session.timeout.ms` / `.heartbeat.interval.ms` defaults."""


def split_settings(values: Mapping[str, _V]) -> tuple[dict[str, _V], dict[str, _V]]:
    """(the Java-named settings or parameters, the librdkafka-only ones)."""
    java = {n: v for n, v in values.items() if n not in LIBRDKAFKA_ONLY}
    return java, {n: v for n, v in values.items() if n in LIBRDKAFKA_ONLY}


def batch_records(values: Mapping[str, SettingValue]) -> int:
    """Records per `consume()` call: `max.poll.records` means the same for a poll loop."""
    value = values.get(MAX_POLL_RECORDS, DEFAULT_BATCH_RECORDS)
    return int(value) if isinstance(value, int) else DEFAULT_BATCH_RECORDS


def settings_config(
    values: Mapping[str, SettingValue], *, offset_reset: str, protocol: GroupProtocol = "classic"
) -> dict[str, str | int | bool]:
    """The librdkafka properties of the given settings (only those: librdkafka's own defaults
    fill the rest), plus where a new group starts reading and its protocol. Under KIP-848 the
    settings that are group configs (`tuner.consumer.kip848`) or the broker's are never sent."""
    conf: dict[str, str | int | bool] = {"auto.offset.reset": offset_reset}
    if protocol == "consumer":
        conf["group.protocol"] = "consumer"
    for name, value in values.items():
        if protocol == "consumer" and name in (*KIP848_FORBIDDEN, *KIP848_DEFAULTS):
            continue
        if name in LIBRDKAFKA_ONLY:
            conf[name] = value
            continue
        rd_name = SETTINGS[name].librdkafka_name
        if rd_name is None:
            continue  # max.poll.records: the batch passed to consume(), see `batch_records`
        if name == "partition.assignment.strategy":
            conf[rd_name] = ASSIGNOR_NAMES[str(value)]
        else:
            conf[rd_name] = value
    return conf


def connection_config(bootstrap_servers: str, security: Security) -> dict[str, str]:
    """librdkafka's connection and authentication properties (never logged: secrets)."""
    conf = {"bootstrap.servers": bootstrap_servers, "security.protocol": security.protocol}
    if security.protocol.startswith("SASL"):
        conf |= {
            "sasl.mechanisms": str(security.sasl_mechanism),
            "sasl.username": str(security.username),
            "sasl.password": str(security.password),
        }
    if security.protocol.endswith("SSL") and security.ssl_cafile:
        conf["ssl.ca.location"] = security.ssl_cafile
    return conf


def max_poll_interval_s(conf: Mapping[str, object]) -> float:
    value = conf.get("max.poll.interval.ms", 300_000)
    return int(value) / 1000 if isinstance(value, int) else 300.0


def fetch_wait_s(conf: Mapping[str, object]) -> float:
    value = conf.get("fetch.wait.max.ms", 500)
    return int(value) / 1000 if isinstance(value, int) else 0.5
