"""KIP-848 groups (`group.protocol=consumer`): the group's own configs, set before it forms.

Under the consumer group protocol the broker assigns partitions and owns the liveness
settings: `session.timeout.ms` and `heartbeat.interval.ms` stop being client settings
(librdkafka refuses them) and become the group configs `consumer.session.timeout.ms` and
`consumer.heartbeat.interval.ms`, set through the admin API (IncrementalAlterConfigs on the
GROUP resource, KIP-848) for the tuner's own group before any member joins. aiokafka's admin
client has no GROUP resource, so confluent-kafka's is used here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import AlterConfigOpType, ConfigEntry, ConfigResource
from confluent_kafka.admin._resource import ResourceType

from tuner import librdkafka
from tuner.config import SecuritySpec, StudySpec
from tuner.settings import SettingValue

GROUP_CONFIGS = librdkafka.KIP848_GROUP_CONFIGS
ADMIN_TIMEOUT_S = 15.0
log = logging.getLogger(__name__)


class GroupConfigError(Exception):
    """The broker refused the group's configs (outside its bounds, or no KIP-848)."""


async def prepare_group(
    spec: StudySpec, bootstrap_servers: str, settings: Mapping[str, SettingValue], group_id: str
) -> None:
    """Under KIP-848, the group's session and heartbeat, set before its members join."""
    if spec.consumer.group_protocol == "consumer":
        await set_group_configs(
            bootstrap_servers, spec.cluster.security, group_id, group_configs(settings)
        )


def group_configs(settings: Mapping[str, SettingValue]) -> dict[str, str]:
    """The group configs the given settings become under KIP-848."""
    return {GROUP_CONFIGS[n]: str(v) for n, v in settings.items() if n in GROUP_CONFIGS}


async def set_group_configs(
    bootstrap_servers: str, security: SecuritySpec, group_id: str, configs: Mapping[str, str]
) -> None:
    """Set `configs` on the group `group_id` (which need not exist yet); no-op when empty."""
    if not configs:
        return
    # Its log lines (an INFO "Purging … unserved events from background queue" as it is
    # destroyed) go through our logger, which shows warnings and errors, not straight to stderr.
    admin = AdminClient({**librdkafka.connection_config(bootstrap_servers, security)}, logger=log)
    resource = ConfigResource(
        ResourceType.GROUP,
        group_id,
        incremental_configs=[
            ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)
            for name, value in configs.items()
        ],
    )
    futures = admin.incremental_alter_configs([resource], request_timeout=ADMIN_TIMEOUT_S)
    try:
        await asyncio.to_thread(futures[resource].result, ADMIN_TIMEOUT_S)
    except Exception as exc:
        shown = ", ".join(f"{n}={v}" for n, v in configs.items())
        raise GroupConfigError(f"group {group_id!r}: the broker refused {shown}: {exc}") from exc
    finally:
        admin.poll(0)  # an admin client's log lines reach the logger only when polled
