"""A network between clients and the broker on one machine: a TCP proxy that delays and paces.

Kernel traffic shaping (`tc netem`) needs privileges these machines do not grant, so the
proxy does it in user space: every chunk read from one side is delivered to the other half an
RTT later (plus jitter, never reordering), after it has crossed a link of the profile's
bandwidth shared by all connections. It runs in its own process (`python -m tuner.broker.netem`), so
its event loop never competes with a consumer's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tuner.config.spec import NetworkSpec

CHUNK_BYTES = 64 * 1024
QUEUE_CHUNKS = 256
"""Chunks in flight per direction of a connection (up to 16 MiB): the proxy's TCP window.
A reader past it waits, so a slow side pushes back on the sender as TCP does."""


class Link:
    """One direction of the path, shared by every connection: bytes leave it one after another
    at the bandwidth, each after the one before, as on a real link."""

    def __init__(self, bandwidth_mbit: float | None) -> None:
        self._bytes_per_s = None if bandwidth_mbit is None else bandwidth_mbit * 1e6 / 8
        self._free_at = 0.0

    def leaves_at(self, now: float, size: int) -> float:
        """When the last byte of `size` bytes handed over at `now` has crossed the link."""
        if self._bytes_per_s is None:
            return now
        self._free_at = max(now, self._free_at) + size / self._bytes_per_s
        return self._free_at


@dataclass(slots=True, kw_only=True)
class Direction:
    """The delay of one direction: half the RTT, ± half the jitter, and its shared link."""

    one_way_s: float
    jitter_s: float
    link: Link
    rng: random.Random

    @classmethod
    def of(cls, network: NetworkSpec, rng: random.Random) -> Direction:
        return cls(
            one_way_s=network.rtt_ms / 2000.0,
            jitter_s=network.jitter_ms / 2000.0,
            link=Link(network.bandwidth_mbit),
            rng=rng,
        )

    def due(self, now: float, size: int, previous_due: float) -> float:
        """When a chunk read at `now` reaches the other side; never before the chunk before
        it, so jitter spreads delays without reordering bytes."""
        spread = self.rng.uniform(-self.jitter_s, self.jitter_s) if self.jitter_s else 0.0
        arrives = self.link.leaves_at(now, size) + max(0.0, self.one_way_s + spread)
        return max(arrives, previous_due)


@dataclass(slots=True)
class Counters:
    """What the proxy moved: bytes each way and connections accepted."""

    to_server_bytes: int = 0
    to_client_bytes: int = 0
    connections: int = 0


async def _pipe(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    direction: Direction,
    count: Callable[[int], None],
) -> None:
    """Copy one direction until EOF, each chunk delivered at its due time, in order."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue(QUEUE_CHUNKS)

    async def receive() -> None:
        due = 0.0
        while data := await reader.read(CHUNK_BYTES):
            due = direction.due(loop.time(), len(data), due)
            await queue.put((due, data))
        await queue.put(None)

    async def deliver() -> None:
        while (item := await queue.get()) is not None:
            due, data = item
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
            count(len(data))
        if writer.can_write_eof():
            writer.write_eof()

    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(receive())
        tasks.create_task(deliver())


class Proxy:
    """Accepts clients on `listen_port` and connects each to `target`, through the profile."""

    def __init__(
        self,
        network: NetworkSpec,
        *,
        target: tuple[str, int],
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
        seed: int | None = None,
    ) -> None:
        rng = random.Random(seed)  # noqa: S311 - jitter for a simulated network, not crypto
        self.network = network
        self.target = target
        self.listen = (listen_host, listen_port)
        self.up = Direction.of(network, rng)
        self.down = Direction.of(network, rng)
        self.counters = Counters()
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the proxy is not serving")
        return int(self._server.sockets[0].getsockname()[1])

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None  # noqa: S101 - a connection handler always runs in a task
        self._connections.add(task)
        self.counters.connections += 1
        server_w: asyncio.StreamWriter | None = None
        try:
            try:
                server_r, server_w = await asyncio.open_connection(*self.target)
                async with asyncio.TaskGroup() as tasks:
                    tasks.create_task(_pipe(client_r, server_w, self.up, self._to_server))
                    tasks.create_task(_pipe(server_r, client_w, self.down, self._to_client))
            except* (OSError, asyncio.IncompleteReadError):
                pass  # a side that went away ends the connection, as across a network
        except asyncio.CancelledError:
            pass  # the proxy is stopping: asyncio's server would log a cancelled handler
        finally:
            for w in (client_w, server_w):
                if w is not None:
                    w.close()
            self._connections.discard(task)

    def _to_server(self, n: int) -> None:
        self.counters.to_server_bytes += n

    def _to_client(self, n: int) -> None:
        self.counters.to_client_bytes += n

    async def __aenter__(self) -> Proxy:
        self._server = await asyncio.start_server(self._handle, *self.listen)
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Stop accepting and cancel every connection in flight (its sockets are closed)."""
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        for task in list(self._connections):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._server is not None:
            await self._server.wait_closed()


async def _serve_until_stopped(network: NetworkSpec, target: tuple[str, int], port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with Proxy(network, target=target, listen_port=port):
        await stop.wait()


def command(network: NetworkSpec, *, target: tuple[str, int], port: int) -> list[str]:
    """The argv that runs a proxy process (`python -m tuner.broker.netem …`) until SIGTERM.

    `tuner.broker` imports this module, so runpy finds it loaded before it runs it as
    `__main__` and warns; the second copy only serves `main`, so the warning is silenced."""
    argv = [sys.executable, "-W", "ignore::RuntimeWarning:runpy",
            "-m", "tuner.broker.netem", "--port", str(port),
            "--target", f"{target[0]}:{target[1]}",
            "--rtt-ms", str(network.rtt_ms), "--jitter-ms", str(network.jitter_ms)]  # fmt: skip
    if network.bandwidth_mbit is not None:
        argv += ["--bandwidth-mbit", str(network.bandwidth_mbit)]
    return argv


def main(argv: Sequence[str] | None = None) -> int:
    """The proxy process; its arguments are written by `command`, not typed by users."""
    parser = argparse.ArgumentParser(prog="python -m tuner.broker.netem", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--target", required=True, help="HOST:PORT of the broker's listener")
    parser.add_argument("--rtt-ms", type=float, default=0.0)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--bandwidth-mbit", type=float, default=None)
    args = parser.parse_args(argv)
    host, _, port = args.target.rpartition(":")
    network = NetworkSpec(
        rtt_ms=args.rtt_ms, jitter_ms=args.jitter_ms, bandwidth_mbit=args.bandwidth_mbit
    )
    asyncio.run(_serve_until_stopped(network, (host, int(port)), args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
