"""The one detached broker of `tuner broker up|down|status`; the bootstrap address a run uses."""

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

from tuner.broker.embedded import START_TIMEOUT_S, BrokerInfo, EmbeddedBroker, answers
from tuner.broker.jars import cache_dir
from tuner.broker.security import SecureOptions
from tuner.config import EMBEDDED, ClusterSpec, NetworkSpec

DEFAULT_PORT = 9092


def _state_file() -> Path:
    return cache_dir() / "broker" / "state.json"


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
    return _runs(pid, b"tuner.netem")


def status() -> BrokerInfo | None:
    """The detached broker if its process is alive (whether it answers is `answers()`)."""
    try:
        info = BrokerInfo.from_json(_state_file().read_text())
    except (OSError, ValueError, TypeError):
        return None
    return info if _is_our_broker(info.pid) else None


def up(
    *,
    port: int = DEFAULT_PORT,
    timeout_s: float = START_TIMEOUT_S,
    network: NetworkSpec | None = None,
    secure: bool = False,
) -> tuple[BrokerInfo, bool]:
    """Start the detached broker unless one is already up; returns (info, started_now). The
    caller compares a running broker's `network` with the one it asked for."""
    running = status()
    if running is not None:
        return running, False
    data_dir = cache_dir() / "broker" / "data"
    shutil.rmtree(data_dir, ignore_errors=True)
    secured = SecureOptions(sasl_ssl_port=port + 1, ssl_port=port + 2) if secure else None
    broker = EmbeddedBroker(
        port=port, data_dir=data_dir, detach=True, network=network, secure=secured
    )
    info = broker.start(timeout_s)
    _state_file().write_text(json.dumps(asdict(info)))
    return info, True


def down(timeout_s: float = 30.0) -> BrokerInfo | None:
    """Stop the detached broker and delete its data; returns what was stopped, or None."""
    info = status()
    state = _state_file()
    if info is not None:
        if info.proxy_pid is not None and is_our_proxy(info.proxy_pid):
            os.kill(info.proxy_pid, signal.SIGTERM)
        os.kill(info.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while _is_our_broker(info.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _is_our_broker(info.pid):
            os.kill(info.pid, signal.SIGKILL)
        shutil.rmtree(info.data_dir, ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        state.unlink()
    return info


def reusable(network: NetworkSpec | None = None) -> BrokerInfo | None:
    """The running `tuner broker` if it answers and clients reach it through `network`."""
    running = status()
    if running is None or running.network != network:
        return None
    return running if answers(running.bootstrap_servers) else None


@contextlib.contextmanager
def bootstrap_for(
    bootstrap_servers: str, *, port: int = 0, network: NetworkSpec | None = None
) -> Iterator[str]:
    """Yield a bootstrap address: the given cluster, the running `tuner broker`, or a new one.

    For `embedded`, a broker started here lives only as long as the `with` block; the running
    one is used only if it runs the same `network` profile (its listeners fix the path).
    """
    if bootstrap_servers != EMBEDDED:
        yield bootstrap_servers
        return
    running = reusable(network)
    if running is not None:
        yield running.bootstrap_servers
        return
    with EmbeddedBroker(port=port, network=network) as broker:
        yield broker.bootstrap_servers


def for_cluster(cluster: ClusterSpec) -> contextlib.AbstractContextManager[str]:
    """`bootstrap_for` the cluster a config names, through its network profile."""
    return bootstrap_for(cluster.bootstrap_servers, network=cluster.network)
