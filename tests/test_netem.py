"""The network proxy: order, delay, jitter and bandwidth, measured across real TCP sockets."""

from __future__ import annotations

import asyncio
import random
import struct
import time
from collections.abc import Awaitable, Callable

import pytest
from aiokafka import AIOKafkaProducer

from tests.helpers import trial, unique
from tuner.broker import bootstrap_for
from tuner.broker.netem import Counters, Direction, Link, Proxy
from tuner.cli.render import render_result
from tuner.cluster import admin as cluster
from tuner.cluster.admin import Connection
from tuner.config import EMBEDDED, NetworkSpec, StudySpec, parse_config
from tuner.trial.run import TrialResult

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


async def _through_proxy(
    network: NetworkSpec, handler: Handler, scenario: Callable[[int], Awaitable[None]]
) -> Counters:
    """Run `scenario(proxy_port)` against `handler` behind a proxy with `network`; what the
    proxy says it moved."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with Proxy(network, target=("127.0.0.1", port), seed=7) as proxy:
            await scenario(proxy.port)
        return proxy.counters
    finally:
        server.close()
        await server.wait_closed()


def _round_trips(network: NetworkSpec, count: int) -> list[float]:
    """`count` request/response round trips of 8 bytes through the proxy to an echo server, ms."""
    times: list[float] = []

    async def scenario(port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for i in range(count):
            started = time.perf_counter()
            writer.write(struct.pack("!Q", i))
            assert struct.unpack("!Q", await reader.readexactly(8))[0] == i
            times.append((time.perf_counter() - started) * 1000)
        writer.close()
        await writer.wait_closed()

    asyncio.run(_through_proxy(network, _echo, scenario))
    return times


def test_each_round_trip_takes_the_rtt() -> None:
    """With rtt_ms 20 every request/response takes at least 20 ms, and the median not much
    more (the slack is for a busy machine's scheduling, far below a doubled delay)."""
    times = _round_trips(NetworkSpec(rtt_ms=20), 20)
    assert min(times) >= 20.0
    assert sorted(times)[len(times) // 2] < 32.0


def test_no_delay_adds_little() -> None:
    """With rtt_ms 0 a round trip through the proxy stays well under a millisecond or two."""
    times = _round_trips(NetworkSpec(), 50)
    assert sorted(times)[len(times) // 2] < 2.0


def test_jitter_spreads_delays_but_keeps_order() -> None:
    """With jitter, round trips vary around the RTT within its bounds; every byte arrives in
    the order it was sent, also when many chunks are in flight at once."""
    network = NetworkSpec(rtt_ms=20, jitter_ms=10)
    times = _round_trips(network, 40)
    assert min(times) >= 10.0  # each direction 10 ms ± 5 ms
    assert sorted(times)[len(times) // 2] < 32.0
    assert max(times) - min(times) > 2.0  # it does spread
    received = bytearray()
    sent = random.Random(1).randbytes(3_000_000)

    async def sink(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            received.extend(data)
        writer.close()

    async def scenario(port: int) -> None:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        for offset in range(0, len(sent), 1000):  # many small writes: many chunks in flight
            writer.write(sent[offset : offset + 1000])
            await writer.drain()
        writer.write_eof()
        await asyncio.sleep(0.3)
        writer.close()

    moved = asyncio.run(_through_proxy(network, sink, scenario))
    assert bytes(received) == sent
    assert (moved.to_server_bytes, moved.to_client_bytes, moved.connections) == (len(sent), 0, 1)


def test_bandwidth_caps_throughput() -> None:
    """At 8 Mbit/s (1 MB/s) a 600 kB transfer takes about 0.6 s plus half the RTT."""
    payload = bytes(600_000)
    done = asyncio.Event()
    arrived: list[float] = []

    async def sink(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        total = 0
        while data := await reader.read(65536):
            total += len(data)
            if total >= len(payload):
                arrived.append(time.perf_counter())
                done.set()
        writer.close()

    async def scenario(port: int) -> None:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        started = time.perf_counter()
        writer.write(payload)
        await writer.drain()
        await asyncio.wait_for(done.wait(), 5)
        arrived[0] -= started
        writer.close()

    asyncio.run(_through_proxy(NetworkSpec(rtt_ms=10, bandwidth_mbit=8), sink, scenario))
    assert 0.6 + 0.005 <= arrived[0] < 0.75


def test_link_is_shared_and_serialises() -> None:
    """Two chunks handed to a 8 Mbit/s link at once leave one after the other."""
    link = Link(8.0)
    assert link.leaves_at(10.0, 1000) == pytest.approx(10.001)
    assert link.leaves_at(10.0, 1000) == pytest.approx(10.002)
    assert link.leaves_at(20.0, 1000) == pytest.approx(20.001)
    assert Link(None).leaves_at(5.0, 10**9) == 5.0


def test_jittered_due_times_never_go_back() -> None:
    """Due times stay in order even when a later chunk draws a shorter delay."""
    direction = Direction.of(NetworkSpec(rtt_ms=20, jitter_ms=20), random.Random(3))
    due, dues = 0.0, []
    for i in range(1000):
        due = direction.due(i * 0.0001, 100, due)
        dues.append(due)
    assert dues == sorted(dues)
    offsets = [d - i * 0.0001 for i, d in enumerate(dues)]
    assert min(offsets) >= 0.0
    assert max(offsets) <= 0.020 + 1e-9


RECORDS = 8000


def _fetch_spec(network: dict[str, float] | None) -> StudySpec:
    """A backlog of 100-byte records at 1 ms each, read in fetches of 4 KiB a partition."""
    cluster: dict[str, object] = {"bootstrap_servers": EMBEDDED}
    if network is not None:
        cluster["network"] = network
    return parse_config({
        "cluster": cluster,
        "topic": {"name": unique("netem"), "partitions": 2},
        "workload": {"message_bytes": 100, "prefill_records": RECORDS},
        "consumer": {
            "members": 1,
            "processing": {"per_record_ms": 1.0},
            "settings": {"max.partition.fetch.bytes": 4096},
        },
        "trial": {"warmup_s": 1, "measure_s": 3},
        "metrics": {"port": 0, "producer_port": 0},
    })  # fmt: skip


def _fetch_trial(spec: StudySpec, bootstrap: str) -> TrialResult:
    """One trial on a backlog written in 4 KiB batches: the prefill's large batches would make
    each fetch a transfer of a megabyte (a fetch returns at least one whole batch)."""

    async def fill() -> None:
        conn = Connection(bootstrap_servers=bootstrap, cluster=spec.cluster)
        await cluster.ensure_topic(conn, spec.topic)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_batch_size=4096)
        await producer.start()
        try:
            sent = [await producer.send(spec.topic.name, bytes(100)) for _ in range(RECORDS)]
            await asyncio.gather(*sent)
        finally:
            await producer.stop()

    asyncio.run(fill())
    return trial(spec, bootstrap)


@pytest.mark.integration
@pytest.mark.slow
def test_fetch_latency_shows_the_rtt(bootstrap_servers: str) -> None:
    """With rtt_ms 20 the fetch latency p50 measured inside aiokafka is at least 20 ms, and
    the result names the profile; on loopback without a profile it is a few milliseconds (a
    broker that has served a whole test session answers in 2-3 ms), far under the RTT."""
    spec = _fetch_spec({"rtt_ms": 20})
    with bootstrap_for(EMBEDDED, network=spec.cluster.network) as shaped_bootstrap:
        shaped = _fetch_trial(spec, shaped_bootstrap)
    plain = _fetch_trial(_fetch_spec(None), bootstrap_servers)
    assert shaped.fetch.latency_ms_p50 is not None
    assert plain.fetch.latency_ms_p50 is not None
    assert shaped.fetch.latency_ms_p50 >= 20.0
    assert plain.fetch.latency_ms_p50 < 5.0
    assert shaped.fetch.latency_ms_p50 >= 4 * plain.fetch.latency_ms_p50
    assert shaped.fetch.requests >= 20
    assert plain.fetch.requests >= 20
    assert shaped.network == NetworkSpec(rtt_ms=20)
    assert "RTT 20 ms, uncapped bandwidth, through the network proxy" in render_result(shaped)
    assert "loopback, no network profile" in render_result(plain)
