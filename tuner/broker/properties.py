"""The brokers' `server.properties`: one KRaft node (broker and controller in one JVM), the
listener clients reach through the network proxy, and the nodes of a multi-broker cluster."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True, kw_only=True)
class ShapedListener:
    """A second listener for clients behind the proxy: the broker listens on `port` and
    advertises `proxy_port`, so clients reconnect through the proxy, never around it."""

    port: int
    proxy_port: int


def server_properties(
    *, port: int, controller_port: int, data_dir: Path, shaped: ShapedListener | None = None
) -> str:
    """The single-node KRaft config; values chosen for one machine, not for durability."""
    listeners = f"PLAINTEXT://127.0.0.1:{port}"
    advertised = listeners
    protocols = "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    if shaped is not None:
        listeners += f",SHAPED://127.0.0.1:{shaped.port}"
        advertised += f",SHAPED://127.0.0.1:{shaped.proxy_port}"
        protocols += ",SHAPED:PLAINTEXT"
    return f"""\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners={listeners},CONTROLLER://127.0.0.1:{controller_port}
# A client gets the endpoints of the listener it asked on: through the proxy, the proxy's.
advertised.listeners={advertised}
controller.listener.names=CONTROLLER
listener.security.protocol.map={protocols}
inter.broker.listener.name=PLAINTEXT
log.dirs={data_dir / "kraft"}
{_shared(brokers=1)}"""


def _shared(*, brokers: int) -> str:
    """What every broker of an embedded cluster sets, whatever its size."""
    replicas = min(brokers, 3)
    min_isr = max(1, replicas - 1)
    return f"""\
auto.create.topics.enable=false
# A trial's members start together: half a second lets them all join the new
# group in one round, where 0 made each late member a rebalance that the earlier
# ones learn of only at their next heartbeat (3 s), and Kafka's 3 s waits too long.
group.initial.rebalance.delay.ms=500
# Internal topics have a replica on every broker (at most 3), so a broker stopped mid-trial
# takes no group coordinator with it. One offsets partition keeps the first group's
# coordinator lookup fast.
offsets.topic.replication.factor={replicas}
offsets.topic.num.partitions=1
transaction.state.log.replication.factor={replicas}
transaction.state.log.min.isr={min_isr}
share.coordinator.state.topic.replication.factor={replicas}
share.coordinator.state.topic.min.isr={min_isr}
num.partitions=1
# KIP-848 (group.protocol=consumer) groups take their session and heartbeat from group
# configs; Kafka's bounds (45-60 s, 5-15 s) would leave a study nothing to search, so they
# match what classic groups allow (group.min.session.timeout.ms is 6 s).
group.consumer.min.session.timeout.ms=6000
group.consumer.min.heartbeat.interval.ms=1000
group.consumer.max.heartbeat.interval.ms=30000
"""


CONTROLLER_ID = 0
"""The node id of a multi-broker cluster's dedicated controller; brokers are 1, 2, 3…"""

BROKER_SESSION_TIMEOUT_MS = 9000
"""How long the controller waits for a broker's heartbeat before fencing it and moving its
leaders (Kafka's default, kept: a SIGKILLed broker fails over as it would in production)."""
BROKER_HEARTBEAT_INTERVAL_MS = 2000
"""How often a broker heartbeats to the controller (Kafka's default): a broker killed just
after a heartbeat is fenced `BROKER_SESSION_TIMEOUT_MS` minus this after the kill at the soonest."""


def controller_properties(*, controller_port: int, data_dir: Path) -> str:
    """The dedicated controller of a multi-broker cluster: the quorum's only voter."""
    return f"""\
process.roles=controller
node.id={CONTROLLER_ID}
controller.quorum.voters={CONTROLLER_ID}@127.0.0.1:{controller_port}
listeners=CONTROLLER://127.0.0.1:{controller_port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT
log.dirs={data_dir / "kraft"}
# The controller moves leaders: a broker back from a fault gets its partitions' leadership back
# within seconds, not the default 5 minutes, so the next trial runs on leaders spread as before.
leader.imbalance.check.interval.seconds=5
# A killed broker (no controlled shutdown) keeps its leaders until its session expires.
broker.session.timeout.ms={BROKER_SESSION_TIMEOUT_MS}
"""


def broker_properties(
    *, node_id: int, port: int, controller_port: int, data_dir: Path, brokers: int
) -> str:
    """Broker `node_id` of a `brokers`-node cluster whose controller listens on
    `controller_port`."""
    return f"""\
process.roles=broker
node.id={node_id}
controller.quorum.voters={CONTROLLER_ID}@127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
broker.heartbeat.interval.ms={BROKER_HEARTBEAT_INTERVAL_MS}
log.dirs={data_dir / "kraft"}
{_shared(brokers=brokers)}"""
