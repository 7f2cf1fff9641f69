"""Which client and group protocol a study measured, and the names a reader sees for them.

A confluent-kafka study's baseline is librdkafka's defaults, not aiokafka's: the report, the
printed summary and the settings files name the client and protocol that ran, and take the
"defaults" column from that client.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass

from tuner.clients import client_named
from tuner.clients.base import PROTOCOL_LABELS
from tuner.config import ConsumerSpec, SettingValue
from tuner.protocol import GroupProtocol
from tuner.search.events import StudyOutcome
from tuner.settings import SETTINGS


@dataclass(frozen=True, slots=True, kw_only=True)
class MeasuredClient:
    """The client and group protocol every run of a study used."""

    client: str = "aiokafka"
    protocol: GroupProtocol = "classic"
    service: str | None = None
    """The service command that ran as the members (None: the tuner's own members)."""

    @classmethod
    def of(cls, outcome: StudyOutcome) -> MeasuredClient:
        """What the study recorded (a study from before the choice existed measured aiokafka)."""
        return cls(client=outcome.client, protocol=outcome.group_protocol, service=outcome.service)

    @classmethod
    def of_consumer(cls, consumer: ConsumerSpec) -> MeasuredClient:
        """What a study of the config's `consumer` section measures."""
        service = None if consumer.service is None else shlex.join(consumer.service.command)
        return cls(client=consumer.client, protocol=consumer.group_protocol, service=service)

    @property
    def protocol_label(self) -> str:
        return PROTOCOL_LABELS.get(self.protocol, self.protocol)

    @property
    def defaults_label(self) -> str:
        """The baseline's name: `aiokafka defaults`, `confluent-kafka defaults`; a service's
        baseline overrides nothing (the trial's settings only replace what they set), so it is
        the service's own settings, whatever its code passes over the client's defaults."""
        if self.service is not None:
            return "your service's own settings"
        return f"{self.client} defaults"

    def describe(self) -> str:
        """`confluent-kafka, group protocol consumer (KIP-848)`; for a service: `your service
        ``python worker.py`` on aiokafka, group protocol classic`."""
        on = (
            self.client
            if self.service is None
            else f"your service `{self.service}` on {self.client}"
        )
        return f"{on}, group protocol {self.protocol_label}"

    def defaults(self) -> Mapping[str, SettingValue | None]:
        """Java name → the measured client's own default (librdkafka's for confluent-kafka,
        the broker's group defaults for the session under KIP-848)."""
        return self.effective_settings({})

    def effective_settings(
        self, values: Mapping[str, SettingValue]
    ) -> dict[str, SettingValue | None]:
        """Java name → what a member of the measured client runs with: `values` over its own
        defaults. The one place the ablation, the report and the files learn a client's
        defaults from (a confluent-kafka session left out is 45 s, not aiokafka's 10 s)."""
        return client_named(self.client).effective_settings(values, protocol=self.protocol)

    def meaning(self, name: str) -> str:
        """What setting `name` does in the measured client ("" when there is nothing to say)."""
        own = client_named(self.client).meaning(name)
        if own is not None:
            return own
        return SETTINGS[name].description if name in SETTINGS else ""
