"""What every consumer client the tuner measures must say about itself (as optuna's samplers
implement `BaseSampler`): nothing outside `tuner.clients` asks which client runs.

Settings stay keyed by their Java names (`tuner.settings` is their catalogue); a client turns
them into its own configuration, fills the gaps with its own defaults, and says which ranges a
study searches when the config names none.
"""

from __future__ import annotations

import importlib.metadata
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

from tuner import librdkafka
from tuner.protocol import GroupProtocol
from tuner.settings import ParameterSpec, SettingValue, validate_settings

ClientName = Literal["aiokafka", "confluent-kafka"]
"""What `consumer.client` names: one entry per module of `tuner.clients` (the registry)."""
LIBRDKAFKA_CLIENT: ClientName = "confluent-kafka"
"""The client that has librdkafka's own settings and KIP-848, as a refusal names it."""

FETCH_SEARCH: Mapping[str, ParameterSpec] = {
    "fetch.min.bytes": ParameterSpec(low=1, high=1 << 20, log=True),
    "fetch.max.wait.ms": ParameterSpec(low=10, high=1000, log=True),
    "max.partition.fetch.bytes": ParameterSpec(low=64 << 10, high=8 << 20, log=True),
    "fetch.max.bytes": ParameterSpec(low=1 << 20, high=64 << 20, log=True),
}
"""The fetch ranges every client's default space searches, first (the order is the order in
which a trial samples, so it stays fixed: a seeded study draws the same values)."""
LIVENESS_SEARCH: Mapping[str, ParameterSpec] = {
    "max.poll.records": ParameterSpec(low=10, high=5000, log=True),
    "session.timeout.ms": ParameterSpec(low=6000, high=60000, log=True),
    "heartbeat.interval.ms": ParameterSpec(low=1000, high=20000, log=True),
}
"""The batch and liveness ranges every client's default space searches, after its own."""

PROTOCOL_LABELS = {"classic": "classic", "consumer": "consumer (KIP-848)"}
"""Each group protocol as a reader sees it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Recommended:
    """What a settings file sets, and where it comes from."""

    changes: Mapping[str, SettingValue]
    """Settings off aiokafka's defaults that the user did not fix."""
    fixed: Mapping[str, SettingValue]
    """The config's `consumer.settings`: kept in every run."""
    study: str
    origin: str
    """How the changes were chosen, in words (ablated and confirmed, or the best trial's)."""

    @property
    def settings(self) -> dict[str, SettingValue]:
        return {**self.fixed, **self.changes}


class ConsumerClient(ABC):
    """One consumer client library: its names, defaults, configuration and advisor facts."""

    name: ClassVar[ClientName]
    """As `consumer.client` spells it."""
    distribution: ClassVar[str]
    """The Python distribution whose version a run records."""
    search: ClassVar[Mapping[str, ParameterSpec]]
    """What a study searches when `search.parameters` is not given."""
    background: ClassVar[str]
    """What runs the client's heartbeats and auto-commits: aiokafka's `task`, librdkafka's
    `thread`."""
    heartbeats_on_the_loop: ClassVar[bool]
    """Whether a held event loop delays heartbeats (aiokafka's task does; librdkafka's thread
    does not)."""
    protocols: ClassVar[tuple[str, ...]]
    """The group protocols the client implements (`classic`; `consumer` is KIP-848)."""
    service_clients: ClassVar[frozenset[str]]
    """The libraries a service's consumer may be built on under this client (the search
    space, defaults and report are this client's): its own, and ones configured alike."""
    blocking_poll: ClassVar[bool]
    """Whether its poll blocks the thread (members then need a process each, never a task)."""
    prefetch_queue: ClassVar[bool]
    """Whether the client prefetches into a queue whose bounds are settings (librdkafka)."""
    poll_call: ClassVar[str]
    """The call that hands out records, as the advisor names it."""
    commit_call: ClassVar[str]
    """The call that commits synchronously, as the advisor names it."""
    member_loop: ClassVar[str]
    """The loop a member of this client runs, as `module:function` (in `tuner.consumer`,
    which imports the config and metrics this layer must not; `tuner.consumer.member`
    imports it when a member starts)."""

    def version(self) -> str:
        """The installed version of the client library."""
        return importlib.metadata.version(self.distribution)

    @abstractmethod
    def effective_settings(
        self, settings: Mapping[str, SettingValue], *, protocol: GroupProtocol = "classic"
    ) -> dict[str, SettingValue | None]:
        """Java name → value for every setting the client has: `settings`, its own defaults
        filling the gaps (under KIP-848 the broker's group defaults)."""

    def defaults(self, *, protocol: GroupProtocol = "classic") -> dict[str, SettingValue | None]:
        """Java name → the client's own default."""
        return self.effective_settings({}, protocol=protocol)

    @abstractmethod
    def member_config(
        self, settings: Mapping[str, SettingValue], *, offset_reset: str, protocol: GroupProtocol
    ) -> dict[str, object]:
        """The client's own configuration of a member from Java-named `settings` (only those:
        its defaults fill the rest), starting at `offset_reset` in a new group."""

    def recommended(
        self,
        settings: Mapping[str, SettingValue],
        fixed: Mapping[str, SettingValue],
        *,
        study: str,
        origin: str,
        protocol: GroupProtocol = "classic",
    ) -> Recommended:
        """Split a recommendation into its changes (off this client's defaults, not fixed) and
        the fixed settings; a setting left at the client's default is neither."""
        off = self.changed(settings, protocol=protocol)
        changes = {name: off[name] for name in sorted(off) if name not in fixed}
        return Recommended(changes=changes, fixed=dict(fixed), study=study, origin=origin)

    def changed(
        self, settings: Mapping[str, SettingValue], *, protocol: GroupProtocol = "classic"
    ) -> dict[str, SettingValue]:
        """The settings that differ from what this client runs with when nothing is set (a
        confluent-kafka session of 10000 ms is a change, though it is aiokafka's default)."""
        eff = self.effective_settings(settings, protocol=protocol)
        base = self.defaults(protocol=protocol)
        return {name: value for name, value in settings.items() if eff.get(name) != base.get(name)}

    @abstractmethod
    def settings_files(
        self, r: Recommended, *, protocol: GroupProtocol = "classic"
    ) -> dict[str, str]:
        """Each settings file of a study measured on this client, by name: its text (this
        client's own, measured; the others' as far as the settings carry over)."""

    def narrow_space(
        self, kept: dict[str, ParameterSpec], fixed: Mapping[str, SettingValue]
    ) -> None:
        """Narrow the searched ranges in place so every sample is one the client accepts."""
        del kept, fixed  # nothing to narrow unless the client refuses some combination

    def meaning(self, name: str) -> str | None:
        """What setting `name` does in this client, when it differs from the catalogue's."""
        return None

    def setting_problems(self, values: Mapping[str, object]) -> list[tuple[str, str]]:
        """Settings this client cannot run, each as (property name, message); the Java-named
        settings' own types and ranges are `tuner.settings.validate_settings`'s to check. By
        default librdkafka's own settings are refused: only its client has them."""
        return [(name, _LIBRDKAFKA_ONLY) for name in values if name in librdkafka.LIBRDKAFKA_ONLY]

    def protocol_problems(
        self, protocol: GroupProtocol, values: Mapping[str, object], *, rules: bool = True
    ) -> list[tuple[str, str]]:
        """(path, message) for what the group protocol cannot run with this client and
        settings; `rules=False` leaves out the settings KIP-848 takes from the client (`tuner
        advise` explains them as its finding KT113). By default only `classic` runs."""
        del values, rules
        if protocol in self.protocols:
            return []
        return [(
            "consumer.group_protocol",
            f"'consumer' (KIP-848) needs consumer.client: {LIBRDKAFKA_CLIENT}: {self.name} "
            f"implements only the classic group protocol, got client {self.name!r}",
        )]  # fmt: skip

    def parameter_problems(self, params: Mapping[str, ParameterSpec]) -> list[tuple[str, str]]:
        """(property name, message) for searched ranges this client cannot run; the Java-named
        ones' own bounds are `tuner.settings.check_parameters`'s to check."""
        return self.setting_problems(params)

    def settings_problems(
        self, values: Mapping[str, SettingValue], *, protocol: GroupProtocol
    ) -> list[tuple[str, str]]:
        """Every problem of one configuration for this client: the Java-named settings' types,
        ranges and rules, what the client cannot run, and what the group protocol forbids."""
        java, _ = librdkafka.split_settings(values)
        return [
            *validate_settings(java),
            *self.setting_problems(values),
            *self.protocol_problems(protocol, values),
        ]


_LIBRDKAFKA_ONLY = f"is a librdkafka setting: only with consumer.client: {LIBRDKAFKA_CLIENT}"
