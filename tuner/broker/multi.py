"""A multi-broker embedded cluster: one dedicated KRaft controller and N brokers on consecutive
ports of 127.0.0.1, each in its own JVM with a capped heap.

A dedicated controller, not combined mode: stopping a broker (a `trial.faults` entry) then never
takes the metadata quorum with it, so what a fault measures is partition-leader failover alone;
the controller idles at a 256 MiB heap, and four small JVMs fit a 2-core machine with room to
spare (about 1.4 GiB of heap in all for three brokers).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from aiokafka import AIOKafkaClient

from tuner.broker.embedded import (
    RELEASES,
    START_TIMEOUT_S,
    BrokerInfo,
    NodeInfo,
    Running,
    free_port,
    jvm_argv,
    launcher,
    log_tail,
    port_in_use,
    random_cluster_id,
    terminate,
)
from tuner.broker.errors import BrokerFailure, BrokerSetupError
from tuner.broker.jars import check_java, classpath, resolved_version
from tuner.broker.properties import CONTROLLER_ID, broker_properties, controller_properties
from tuner.config.topology import MAX_BROKERS

log = logging.getLogger(__name__)

NODE_HEAP = "384m"
CONTROLLER_HEAP = "256m"

_live: dict[str, EmbeddedCluster] = {}
"""The clusters this process started, by bootstrap address, for `trial.faults` to reach."""


def started_here(bootstrap_servers: str) -> EmbeddedCluster | None:
    """The cluster this process started at that address, if any."""
    return _live.get(bootstrap_servers)


async def _broker_ids(bootstrap_servers: str, timeout_s: float) -> set[int]:
    client = AIOKafkaClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=5000)
    try:
        async with asyncio.timeout(timeout_s):
            await client.bootstrap()
            metadata = await client.fetch_all_metadata()
    finally:
        await client.close()
    return {b.nodeId for b in metadata.brokers()}


def live_broker_ids(bootstrap_servers: str, timeout_s: float = 5.0) -> set[int]:
    """The ids of the brokers the cluster's metadata lists now (empty: no answer)."""
    try:
        return asyncio.run(_broker_ids(bootstrap_servers, timeout_s))
    except Exception:  # any failure to answer means "none seen"
        return set()


class EmbeddedCluster(Running):
    """Format fresh storage for a controller and `brokers` brokers (ids 1…N on ports
    `port`…`port+N-1`) and run them until `stop()`; the data is deleted on stop.

    Its temp dir starts with `kafka-tuner-broker-`, so `tuner clean` removes what a killed run
    left. `detach=True` starts them in their own sessions so they outlive this process
    (`tuner broker up --brokers N`). `stop_broker`/`start_broker` stop and restart one broker
    on its own storage, for faults.
    """

    def __init__(
        self,
        *,
        brokers: int = 3,
        port: int = 0,
        data_dir: Path | None = None,
        heap: str = NODE_HEAP,
        detach: bool = False,
        kafka_version: str | None = None,
    ) -> None:
        if not 2 <= brokers <= MAX_BROKERS:
            raise BrokerSetupError(f"a cluster has 2 to {MAX_BROKERS} brokers, got {brokers}")
        self.ports = (
            tuple(range(port, port + brokers))
            if port
            else tuple(free_port() for _ in range(brokers))
        )
        self._own_dir = data_dir is None
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="kafka-tuner-broker-cluster-"))
        self.heap = heap
        self.detach = detach
        self._procs: dict[int, subprocess.Popen[bytes]] = {}
        self._pids: dict[int, int] = {}
        """Pids of nodes this object did not launch (a detached cluster it was attached to)."""
        self.state_file: Path | None = None
        self.asked_version = kafka_version
        self.kafka_version = kafka_version or ""
        """The release it runs (set by `start()`, or the attached cluster's)."""
        """Where a detached cluster's `BrokerInfo` lives, rewritten when a broker restarts."""

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"127.0.0.1:{p}" for p in self.ports)

    @property
    def broker_ids(self) -> tuple[int, ...]:
        return tuple(range(1, len(self.ports) + 1))

    def _dir(self, node_id: int) -> Path:
        return self.data_dir / f"node-{node_id}"

    def port_of(self, node_id: int) -> int:
        return self.ports[node_id - 1]

    def start(self, timeout_s: float = START_TIMEOUT_S) -> BrokerInfo:
        java = check_java()
        self.kafka_version = resolved_version(self.asked_version)
        cp = classpath(self.kafka_version)
        for taken in self.ports:
            if port_in_use(taken):
                raise BrokerSetupError(f"port {taken} on 127.0.0.1 is already in use")
        controller_port = free_port()
        texts = {CONTROLLER_ID: controller_properties(
            controller_port=controller_port, data_dir=self._dir(CONTROLLER_ID)
        )}  # fmt: skip
        for node_id in self.broker_ids:
            texts[node_id] = broker_properties(
                node_id=node_id, port=self.port_of(node_id), controller_port=controller_port,
                data_dir=self._dir(node_id), brokers=len(self.ports),
            )  # fmt: skip
        cluster_id = random_cluster_id()
        formats = {}
        for node_id, text in texts.items():
            self._dir(node_id).mkdir(parents=True, exist_ok=True)
            (self._dir(node_id) / "server.properties").write_text(text)
            formats[node_id] = subprocess.Popen(
                [*self._jvm(java, cp, node_id), "kafka.tools.StorageTool", "format", "-c",
                 str(self._dir(node_id) / "server.properties"), f"--cluster-id={cluster_id}"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            )  # fmt: skip
        failed = {n: p.communicate()[0] for n, p in formats.items() if p.wait() != 0}
        if failed:
            self._cleanup()
            node_id, out = next(iter(failed.items()))
            reason = "\n".join(out.decode(errors="replace").strip().splitlines()[:3])
            raise BrokerFailure(f"formatting node {node_id}'s storage failed:\n{reason}")
        for node_id in texts:
            self._launch(node_id, java, cp)
        self._wait_for(set(self.broker_ids), timeout_s)
        _live[self.bootstrap_servers] = self
        RELEASES[self.bootstrap_servers] = self.kafka_version
        log.info("Kafka cluster of %d brokers up at %s", len(self.ports), self.bootstrap_servers)
        return self.info()

    def _jvm(self, java: str, cp: str, node_id: int) -> list[str]:
        heap = "256m" if node_id == CONTROLLER_ID else self.heap
        return jvm_argv(java, cp, heap=heap, data_dir=self._dir(node_id))

    def _launch(self, node_id: int, java: str, cp: str) -> None:
        props = self._dir(node_id) / "server.properties"
        with (self._dir(node_id) / "stdout.log").open("ab") as out:
            self._procs[node_id] = subprocess.Popen(
                [*launcher(detach=self.detach), *self._jvm(java, cp, node_id), "kafka.Kafka",
                 str(props)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=self.detach,
            )  # fmt: skip
        self._pids.pop(node_id, None)

    def _wait_for(self, expected: set[int], timeout_s: float) -> None:
        """Until the cluster's metadata lists exactly `expected`; a node that exits fails it."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for node_id, proc in self._procs.items():
                if proc.poll() is not None:
                    tail = log_tail(self._dir(node_id) / "server.log")
                    self.stop()
                    raise BrokerFailure(
                        f"node {node_id} exited on start (code {proc.returncode}); last log "
                        f"lines:\n{tail}"
                    )
            listening = all(port_in_use(self.port_of(n)) for n in expected)
            if listening and live_broker_ids(self.bootstrap_servers, timeout_s=3.0) == expected:
                return
            time.sleep(0.3)
        tail = log_tail(self._dir(min(expected)) / "server.log")
        self.stop()
        raise BrokerFailure(
            f"the cluster did not list brokers {sorted(expected)} within {timeout_s:.0f} s; "
            f"last log lines of broker {min(expected)}:\n{tail}"
        )

    def pid_of(self, node_id: int) -> int | None:
        proc = self._procs.get(node_id)
        if proc is not None:
            return proc.pid if proc.poll() is None else None
        pid = self._pids.get(node_id)
        return pid if pid is not None and _alive_kafka(pid) else None

    def info(self) -> BrokerInfo:
        controller = self.pid_of(CONTROLLER_ID)
        if controller is None:
            raise BrokerFailure("the cluster's controller is not running")
        nodes = tuple(
            NodeInfo(node_id=n, port=self.port_of(n), pid=self.pid_of(n) or 0,
                     data_dir=str(self._dir(n)))
            for n in self.broker_ids
        )  # fmt: skip
        return BrokerInfo(
            bootstrap_servers=self.bootstrap_servers,
            pid=controller,
            data_dir=str(self.data_dir),
            log_path=str(self._dir(1) / "server.log"),
            nodes=nodes,
            kafka_version=self.kafka_version,
        )

    @classmethod
    def attach(cls, info: BrokerInfo, state_file: Path | None = None) -> EmbeddedCluster:
        """Control a detached cluster another process started (`tuner broker up --brokers N`)."""
        cluster = cls(
            brokers=info.brokers, port=info.nodes[0].port, data_dir=Path(info.data_dir),
            detach=True, kafka_version=info.kafka_version or None,
        )  # fmt: skip
        cluster._own_dir = False
        cluster._pids = {CONTROLLER_ID: info.pid, **{n.node_id: n.pid for n in info.nodes}}
        cluster.state_file = state_file
        return cluster

    def stop_broker(self, node_id: int, *, kill: bool = False, timeout_s: float = 30.0) -> None:
        """Stop one broker: SIGTERM (Kafka's controlled shutdown moves its leaders first) or,
        with `kill`, SIGKILL (the controller notices when its session times out)."""
        if node_id not in self.broker_ids:
            raise BrokerSetupError(f"no broker {node_id}: the cluster has {self.broker_ids}")
        proc = self._procs.get(node_id)
        if proc is not None:
            if kill:
                proc.kill()
                proc.wait()
            else:
                terminate(proc, timeout_s)
            return
        pid = self._pids.get(node_id)
        if pid is not None:
            _signal_and_wait(pid, signal.SIGKILL if kill else signal.SIGTERM, timeout_s)

    def start_broker(self, node_id: int, timeout_s: float = START_TIMEOUT_S) -> None:
        """Restart a stopped broker on its own storage; returns once the metadata lists every
        broker again."""
        self.relaunch(node_id)
        self.wait_for_all(timeout_s)

    def relaunch(self, node_id: int) -> None:
        """Start a stopped broker's JVM again, without waiting for it.

        Call it from the thread that will outlive the broker (not a worker thread): an attached
        broker gets SIGTERM when the thread that launched it exits (`setpriv --pdeathsig`)."""
        if self.pid_of(node_id) is None:
            self._launch(node_id, check_java(), classpath(self.kafka_version or None))

    def wait_for_all(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Until the metadata lists every broker (blocking: run it in a worker thread)."""
        self._wait_for(set(self.broker_ids), timeout_s)
        if self.state_file is not None:
            self.state_file.write_text(json.dumps(asdict(self.info())))

    def stop(self, timeout_s: float = 30.0) -> None:
        """Every broker at once (SIGTERM), then the controller they report to; data dropped.

        `timeout_s` bounds the whole stop, not each node: what has not exited by then gets
        SIGKILL (the data is deleted anyway), so a loaded machine cannot stretch it per node."""
        deadline = time.monotonic() + timeout_s

        def left() -> float:
            return max(0.5, deadline - time.monotonic())

        for node_id in self.broker_ids:
            if (proc := self._procs.get(node_id)) is not None and proc.poll() is None:
                proc.terminate()
        for node_id in (*self.broker_ids, CONTROLLER_ID):
            terminate(self._procs.get(node_id), left())
            if (pid := self._pids.get(node_id)) is not None:
                _signal_and_wait(pid, signal.SIGTERM, left())
        _live.pop(self.bootstrap_servers, None)
        RELEASES.pop(self.bootstrap_servers, None)
        self._cleanup()

    def _cleanup(self) -> None:
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)


def _alive_kafka(pid: int) -> bool:
    try:
        return b"kafka.Kafka" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _signal_and_wait(pid: int, sig: signal.Signals, timeout_s: float) -> None:
    """Signal a node another process launched (never a pid reused by something else), then
    SIGKILL it if it outlives the deadline."""
    if not _alive_kafka(pid):
        return
    os.kill(pid, sig)
    deadline = time.monotonic() + timeout_s
    while _alive_kafka(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _alive_kafka(pid):
        os.kill(pid, signal.SIGKILL)
