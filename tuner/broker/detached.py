"""The detached brokers of `tuner broker up|down|status`, one per port (a multi-broker cluster
by its first port); the bootstrap address a run uses."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

from tuner.broker.embedded import (
    RELEASES,
    START_TIMEOUT_S,
    BrokerInfo,
    EmbeddedBroker,
    answers,
)
from tuner.broker.errors import BrokerSetupError
from tuner.broker.jars import cache_dir
from tuner.broker.multi import EmbeddedCluster, started_here
from tuner.broker.security import SecureOptions
from tuner.config import EMBEDDED, ClusterSpec, NetworkSpec

DEFAULT_PORT = 9092


def _brokers_dir() -> Path:
    return cache_dir() / "broker"


def _state_file(port: int) -> Path:
    """One state file per port, so `up --port P` is a broker of its own beside the others."""
    return _brokers_dir() / str(port) / "state.json"


def _state_files() -> list[Path]:
    # `broker/state.json` is where a broker started by an earlier version keeps its state.
    legacy = _brokers_dir() / "state.json"
    return sorted(_brokers_dir().glob("*/state.json")) + ([legacy] if legacy.exists() else [])


def _runs(pid: int, marker: bytes) -> bool:
    """True if `pid` is alive and its command line holds `marker`, so `down` never signals an
    unrelated process that reused the pid."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return marker in cmdline


def _is_our_broker(pid: int) -> bool:
    return _runs(pid, b"kafka.Kafka")


def is_our_proxy(pid: int) -> bool:
    return _runs(pid, b"tuner.broker.netem")


def _port_of(info: BrokerInfo) -> int:
    return int(info.bootstrap_servers.split(",")[0].rsplit(":", 1)[1])


def _read(state: Path) -> BrokerInfo | None:
    try:
        return BrokerInfo.from_json(state.read_text())
    except (OSError, ValueError, TypeError):
        return None


def running() -> list[BrokerInfo]:
    """Every detached broker whose process is alive, by port."""
    alive = [
        info for s in _state_files() if (info := _read(s)) is not None and _is_our_broker(info.pid)
    ]
    return sorted(alive, key=_port_of)


def status(port: int | None = None) -> BrokerInfo | None:
    """The detached broker on `port` (None: the first one running) if its process is alive
    (whether it answers is `answers()`)."""
    return next((i for i in running() if port is None or _port_of(i) == port), None)


def up(
    *,
    port: int = DEFAULT_PORT,
    timeout_s: float = START_TIMEOUT_S,
    network: NetworkSpec | None = None,
    secure: bool = False,
    brokers: int = 1,
    kafka_version: str | None = None,
) -> tuple[BrokerInfo, bool]:
    """Start a detached broker (`brokers` > 1: a cluster on `port`…`port+brokers-1`) on `port`
    unless one is already up there; returns (info, started_now). Brokers on other ports are
    left alone: each port is a cluster of its own. The caller compares a running broker's
    `network`, `brokers` and `kafka_version` with the ones it asked for."""
    already = status(port)
    if already is not None:
        return already, False
    state = _state_file(port)
    data_dir = state.parent / "data"
    shutil.rmtree(data_dir, ignore_errors=True)
    if brokers > 1:
        if network is not None or secure:
            raise BrokerSetupError("a multi-broker cluster runs without a network profile or TLS")
        state.parent.mkdir(parents=True, exist_ok=True)
        info = EmbeddedCluster(
            brokers=brokers, port=port, data_dir=data_dir, detach=True,
            kafka_version=kafka_version,
        ).start(timeout_s)  # fmt: skip
        state.write_text(json.dumps(asdict(info)))
        return info, True
    secured = SecureOptions(sasl_ssl_port=port + 1, ssl_port=port + 2) if secure else None
    broker = EmbeddedBroker(
        port=port, data_dir=data_dir, detach=True, network=network, secure=secured,
        kafka_version=kafka_version,
    )  # fmt: skip
    info = broker.start(timeout_s)
    state.write_text(json.dumps(asdict(info)))
    return info, True


def _stop(info: BrokerInfo, timeout_s: float) -> None:
    if info.nodes:
        EmbeddedCluster.attach(info).stop(timeout_s)
        shutil.rmtree(info.data_dir, ignore_errors=True)
        return
    if info.proxy_pid is not None and is_our_proxy(info.proxy_pid):
        os.kill(info.proxy_pid, signal.SIGTERM)
    os.kill(info.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while _is_our_broker(info.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _is_our_broker(info.pid):
        os.kill(info.pid, signal.SIGKILL)
    shutil.rmtree(info.data_dir, ignore_errors=True)


def down(port: int | None = None, timeout_s: float = 30.0) -> list[BrokerInfo]:
    """Stop the detached broker on `port` (None: every one) and delete its data; returns what
    was stopped."""
    stopped = []
    for state in _state_files():
        info = _read(state)
        if port is not None and (info is None or _port_of(info) != port):
            continue
        if info is not None and _is_our_broker(info.pid):
            _stop(info, timeout_s)
            stopped.append(info)
        with contextlib.suppress(FileNotFoundError):
            state.unlink()
    return stopped


def reusable(
    network: NetworkSpec | None = None, brokers: int = 1, kafka_version: str | None = None
) -> BrokerInfo | None:
    """The running `tuner broker` if it answers, has `brokers` brokers, clients reach it
    through `network`, and it runs `kafka_version` (None: whichever release it runs; the
    run names it)."""
    for info in running():
        if (
            info.network == network
            and info.brokers == brokers
            and kafka_version in {None, info.kafka_version}
            and answers(info.bootstrap_servers)
        ):
            return info
    return None


def release_at(bootstrap_servers: str) -> str | None:
    """The Apache Kafka release of the embedded broker at that address: one this process
    started, or a detached `tuner broker` (None: another cluster, whose release the tuner does
    not read, or a broker started before releases were recorded)."""
    if (here := RELEASES.get(bootstrap_servers)) is not None:
        return here
    for info in running():
        if info.bootstrap_servers == bootstrap_servers:
            return info.kafka_version or None
    return None


def controllable(bootstrap_servers: str) -> EmbeddedCluster | None:
    """The multi-broker cluster at that address whose brokers this machine can stop and
    restart: one this process started, or a detached one (None: any other cluster)."""
    here = started_here(bootstrap_servers)
    if here is not None:
        return here
    for state in _state_files():
        info = _read(state)
        if info is not None and info.nodes and info.bootstrap_servers == bootstrap_servers:
            return EmbeddedCluster.attach(info, state)
    return None


@contextlib.contextmanager
def bootstrap_for(
    bootstrap_servers: str,
    *,
    port: int = 0,
    network: NetworkSpec | None = None,
    brokers: int = 1,
    kafka_version: str | None = None,
) -> Iterator[str]:
    """Yield a bootstrap address: the given cluster, the running `tuner broker`, or a new one.

    For `embedded`, a broker (or a cluster of `brokers`) started here lives only as long as the
    `with` block; the running one is used only if it has as many brokers and runs the same
    `network` profile (its listeners fix the path), and runs `kafka_version` when one is
    asked for.
    """
    if bootstrap_servers != EMBEDDED:
        yield bootstrap_servers
        return
    reused = reusable(network, brokers, kafka_version)
    if reused is not None:
        yield reused.bootstrap_servers
        return
    if brokers > 1:
        with EmbeddedCluster(brokers=brokers, port=port, kafka_version=kafka_version) as cluster:
            yield cluster.bootstrap_servers
        return
    with EmbeddedBroker(port=port, network=network, kafka_version=kafka_version) as broker:
        yield broker.bootstrap_servers


def for_cluster(cluster: ClusterSpec) -> contextlib.AbstractContextManager[str]:
    """`bootstrap_for` the cluster a config names, through its network profile."""
    return bootstrap_for(
        cluster.bootstrap_servers, network=cluster.network, brokers=cluster.brokers,
        kafka_version=cluster.kafka_version,
    )  # fmt: skip
