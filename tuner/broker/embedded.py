"""The embedded Apache Kafka broker: one KRaft node (broker + controller in one JVM) on 127.0.0.1.

`EmbeddedBroker` is a context manager for tests and for `tuner run`. With a network profile,
clients reach the broker through a `tuner.broker.netem` proxy process in front of a second listener,
which the broker advertises at the proxy's address.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import Self

from aiokafka import AIOKafkaClient

from tuner.broker import netem, tls
from tuner.broker.errors import BrokerFailure, BrokerSetupError
from tuner.broker.jars import check_java, classpath, resolved_version
from tuner.broker.properties import ShapedListener, server_properties
from tuner.broker.security import SecureListeners, SecureOptions, run_with_argfile, write_private
from tuner.config import NetworkSpec

log = logging.getLogger(__name__)

HEAP = "768m"
START_TIMEOUT_S = 90.0


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerInfo:
    """A running broker: where to reach it and what to clean up."""

    bootstrap_servers: str
    pid: int
    data_dir: str
    log_path: str
    network: NetworkSpec | None = None
    """The profile clients reach it through (None: directly, over loopback)."""
    proxy_pid: int | None = None
    nodes: tuple[NodeInfo, ...] = ()
    """A multi-broker cluster's brokers (`pid` is then its controller's); empty for one node."""
    kafka_version: str = ""
    """The Apache Kafka release it runs ("": started by a tuner that did not record it)."""

    @property
    def brokers(self) -> int:
        return len(self.nodes) or 1

    @classmethod
    def from_json(cls, text: str) -> BrokerInfo:
        data = json.loads(text)
        network = data.get("network")
        nodes = tuple(NodeInfo(**node) for node in data.get("nodes", ()))
        return cls(**{
            **data, "network": None if network is None else NetworkSpec(**network), "nodes": nodes
        })  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeInfo:
    """One broker of a multi-broker cluster: its id (`trial.faults` names it), port, process."""

    node_id: int
    port: int
    pid: int
    data_dir: str


RELEASES: dict[str, str] = {}
"""Bootstrap address → the Apache Kafka release of each broker (or cluster) this process runs:
a trial names the broker it measured (`tuner.broker.release_at`)."""


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def random_cluster_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


async def _metadata_round_trip(bootstrap_servers: str, timeout_s: float) -> None:
    client = AIOKafkaClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=5000)
    try:
        async with asyncio.timeout(timeout_s):
            await client.bootstrap()
            await client.fetch_all_metadata()
    finally:
        await client.close()


def answers(bootstrap_servers: str, timeout_s: float = 5.0) -> bool:
    """True if a metadata request to the cluster gets an answer within the timeout."""
    try:
        asyncio.run(_metadata_round_trip(bootstrap_servers, timeout_s))
    except Exception:  # any failure to answer means "does not answer"
        return False
    return True


def log_tail(path: Path, lines: int = 25) -> str:
    """The log's error lines (the cause is rarely the last line), then its last lines."""
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log written)"
    errors = [line for line in text if _ERROR_LINE.search(line)][:10]
    tail = [line for line in text[-lines:] if line not in errors]
    return "\n".join([*errors, *(["…"] if errors and tail else []), *tail])


_ERROR_LINE = re.compile(r"\b(ERROR|FATAL)\b|Exception|Error:|already in use")


def launcher(*, detach: bool) -> list[str]:
    """`setpriv --pdeathsig` so an attached broker gets SIGTERM if this process dies hard."""
    setpriv = shutil.which("setpriv")
    if detach or setpriv is None:
        return []
    return [setpriv, "--pdeathsig", "TERM"]


def jvm_argv(java: str, cp: str, *, heap: str, data_dir: Path) -> list[str]:
    """The Java command line (before the main class) of a node whose files are in `data_dir`:
    its heap capped at `heap`, its logs written there."""
    log4j_path = data_dir / "log4j2.yaml"
    log4j_path.write_text(
        (resources.files("tuner.broker") / "resources" / "log4j2.yaml").read_text()
    )
    start_heap = "256m" if heap.endswith("m") and int(heap[:-1]) >= 256 else heap
    return [java, f"-Xmx{heap}", f"-Xms{start_heap}", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log4j_path}", f"-Dkafka.logs.dir={data_dir}",
            "-cp", cp]  # fmt: skip


def terminate(proc: subprocess.Popen[bytes] | None, timeout_s: float) -> None:
    """SIGTERM, then SIGKILL if it has not exited within the deadline."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Running:
    """What runs from `start()` to `stop()`: `with` starts it, leaving the block stops it."""

    def start(self, timeout_s: float = START_TIMEOUT_S) -> BrokerInfo:
        raise NotImplementedError

    def stop(self, timeout_s: float = 30.0) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class EmbeddedBroker(Running):
    """Format fresh storage and run a broker until `stop()`; its data is deleted on stop.

    `detach=True` starts it in its own session so it outlives this process (`tuner broker up`);
    otherwise it is tied to this process and stops with the context manager. With a `network`
    profile, `port` is the proxy's: every client reaches the broker through the profile.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        data_dir: Path | None = None,
        heap: str = HEAP,
        detach: bool = False,
        keep_data: bool = False,
        extra_properties: str = "",
        network: NetworkSpec | None = None,
        secure: SecureOptions | None = None,
        kafka_version: str | None = None,
    ) -> None:
        if network is not None and secure is not None:
            raise BrokerSetupError("a secured broker behind a network profile is not supported")
        self.port = port or free_port()
        self.network = network
        self.secure = None if secure is None else secure.resolved(free_port)
        self.listeners: SecureListeners | None = None
        self.direct_port = free_port() if network is not None else self.port
        """The broker's own listener (the same as `port` without a profile)."""
        self._own_dir = data_dir is None
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="kafka-tuner-broker-"))
        self.heap = heap
        self.detach = detach
        self.keep_data = keep_data
        self.extra_properties = extra_properties
        self._proc: subprocess.Popen[bytes] | None = None
        self._proxy: subprocess.Popen[bytes] | None = None
        self.asked_version = kafka_version
        self.kafka_version = ""
        """The release it runs (from `start()`): the one asked for, else `KAFKA_HOME`'s, else
        the default."""

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "server.log"

    def start(self, timeout_s: float = START_TIMEOUT_S) -> BrokerInfo:
        java = check_java()
        self.kafka_version = resolved_version(self.asked_version)
        cp = classpath(self.kafka_version)
        for taken in (self.port, *(self.secure.ports if self.secure else ())):
            if port_in_use(taken):
                raise BrokerSetupError(f"port {taken} on 127.0.0.1 is already in use")
        controller_port = free_port()
        shaped = (
            None if self.network is None else ShapedListener(port=free_port(), proxy_port=self.port)
        )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        props = self.data_dir / "server.properties"
        text = server_properties(
            port=self.direct_port, controller_port=controller_port, data_dir=self.data_dir,
            shaped=shaped,
        )  # fmt: skip
        if self.secure is not None:
            try:
                self.listeners = self.secure.prepare(self.data_dir / "secure")
            except tls.TlsError as exc:
                raise BrokerSetupError(str(exc)) from exc
            text += self.listeners.properties(port=self.port, controller_port=controller_port)
        write_private(props, text + self.extra_properties)
        jvm = jvm_argv(java, cp, heap=self.heap, data_dir=self.data_dir)
        scram = [] if self.listeners is None else self.listeners.scram_arguments()
        fmt = run_with_argfile(jvm, ["kafka.tools.StorageTool", "format", "-c", str(props),
                                     f"--cluster-id={random_cluster_id()}", *scram],
                               self.data_dir / "format.args")  # fmt: skip
        if fmt.returncode != 0:
            self._cleanup()
            reason = "\n".join((fmt.stdout + fmt.stderr).strip().splitlines()[:3])
            raise BrokerFailure(f"formatting the broker storage failed:\n{reason}")
        with (self.data_dir / "stdout.log").open("wb") as out:
            self._proc = subprocess.Popen(
                [*self._launcher(), *jvm, "kafka.Kafka", str(props)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=self.detach,
            )
        self._wait_ready(timeout_s)
        if shaped is not None:
            self._start_proxy(shaped, timeout_s)
        log.info("Kafka %s up at %s (pid %d)", self.kafka_version, self.bootstrap_servers, self.pid)
        RELEASES[self.bootstrap_servers] = self.kafka_version
        return self.info()

    def _start_proxy(self, shaped: ShapedListener, timeout_s: float) -> None:
        """The proxy process in front of the shaped listener, ready once a metadata request
        through it gets an answer."""
        assert self.network is not None  # noqa: S101 - only called with a profile
        argv = netem.command(self.network, target=("127.0.0.1", shaped.port), port=self.port)
        with (self.data_dir / "proxy.log").open("wb") as out:
            self._proxy = subprocess.Popen(
                [*self._launcher(), *argv],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=self.detach,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proxy.poll() is not None:
                tail = log_tail(self.data_dir / "proxy.log", 10)
                self.stop()
                raise BrokerFailure(f"the network proxy exited on start:\n{tail}")
            if port_in_use(self.port) and answers(self.bootstrap_servers, timeout_s=3.0):
                return
            time.sleep(0.1)
        self.stop()
        raise BrokerFailure(f"the network proxy did not answer within {timeout_s:.0f} s")

    def _launcher(self) -> list[str]:
        return launcher(detach=self.detach)

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise BrokerFailure("the broker has not been started")
        return self._proc.pid

    def info(self) -> BrokerInfo:
        return BrokerInfo(
            bootstrap_servers=self.bootstrap_servers,
            pid=self.pid,
            data_dir=str(self.data_dir),
            log_path=str(self.log_path),
            network=self.network,
            proxy_pid=None if self._proxy is None else self._proxy.pid,
            kafka_version=self.kafka_version,
        )

    def _wait_ready(self, timeout_s: float) -> None:
        assert self._proc is not None  # noqa: S101 - start() sets it just before
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                tail = log_tail(self.log_path)
                out = log_tail(self.data_dir / "stdout.log", 10)
                self._cleanup()
                raise BrokerFailure(
                    f"the broker exited on start (code {self._proc.returncode}); last log lines:\n"
                    f"{tail}\n{out}".rstrip()
                )
            if not port_in_use(self.direct_port):
                time.sleep(0.2)
                continue
            if answers(f"127.0.0.1:{self.direct_port}", timeout_s=3.0):
                return
            time.sleep(0.3)
        tail = log_tail(self.log_path)
        self.stop()
        raise BrokerFailure(
            f"the broker did not answer within {timeout_s:.0f} s; last log lines:\n{tail}"
        )

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM (Kafka's controlled shutdown), SIGKILL after the deadline, then drop the data."""
        terminate(self._proxy, 5.0)
        terminate(self._proc, timeout_s)
        RELEASES.pop(self.bootstrap_servers, None)
        self._cleanup()

    def _cleanup(self) -> None:
        if not self.keep_data and self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        elif not self.keep_data:
            shutil.rmtree(self.data_dir / "kraft", ignore_errors=True)
            shutil.rmtree(self.data_dir / "secure", ignore_errors=True)
