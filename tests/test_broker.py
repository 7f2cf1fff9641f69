"""The embedded broker launcher and `tuner broker up|status|down`, against a real JVM."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaClient

from tests.helpers import alive, descendants
from tuner import broker
from tuner.broker.security import client_info
from tuner.cli import main
from tuner.cluster import admin as cluster
from tuner.cluster.admin import Connection
from tuner.config import ClusterSpec, SecuritySpec, TopicSpec

pytestmark = pytest.mark.integration


OTHER_RELEASE = "4.1.1" if broker.KAFKA_VERSION != "4.1.1" else "4.2.0"
"""A tested release that is not the default one."""


@pytest.fixture
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A cache dir of its own (so the test's broker state is its own) sharing the resolved jars
    of every release resolved so far."""
    broker.classpath()  # resolve once into the real cache, so the private one can link to it
    real = broker.cache_dir()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("KAFKA_HOME", raising=False)
    (tmp_path / "kafka-tuner").mkdir()
    for jars in real.glob("kafka-*"):
        (tmp_path / "kafka-tuner" / jars.name).symlink_to(jars)
    yield tmp_path / "kafka-tuner"
    broker.down()


@pytest.fixture
def other_release(monkeypatch: pytest.MonkeyPatch) -> str:
    """`OTHER_RELEASE`'s jars in the real cache (resolved once, from Maven Central)."""
    monkeypatch.delenv("KAFKA_HOME", raising=False)
    broker.classpath(OTHER_RELEASE)
    return OTHER_RELEASE


def test_up_status_down_round_trip(private_cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`up` starts a broker that answers, a second `up` says so, `down` stops it, drops data."""
    port = broker.free_port()
    assert main(["broker", "status"]) == 1
    assert main(["broker", "up", "--port", str(port)]) == 0
    assert f"127.0.0.1:{port}" in capsys.readouterr().out
    assert main(["broker", "status"]) == 0
    assert main(["broker", "up", "--port", str(port)]) == 0
    assert "already up" in capsys.readouterr().out
    info = broker.status()
    assert info is not None
    assert Path(info.data_dir).is_dir()
    assert main(["broker", "down"]) == 0
    assert main(["broker", "status"]) == 1
    assert not Path(info.data_dir).exists()
    assert not broker.answers(f"127.0.0.1:{port}", timeout_s=2)


def test_one_broker_per_port(private_cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`up --port B` beside a broker on A starts a second broker; `status`/`down --port` act on
    one of them only."""
    first, second = broker.free_port(), broker.free_port()
    assert main(["broker", "up", "--port", str(first)]) == 0
    assert main(["broker", "up", "--port", str(second)]) == 0
    out = capsys.readouterr().out
    assert "already up" not in out
    assert f"is up at 127.0.0.1:{second}" in out
    assert [i.bootstrap_servers for i in broker.running()] == sorted(
        [f"127.0.0.1:{first}", f"127.0.0.1:{second}"], key=lambda a: int(a.rsplit(":")[1])
    )
    assert broker.answers(f"127.0.0.1:{second}")
    assert main(["broker", "down", "--port", str(first)]) == 0
    assert f"stopped the broker at 127.0.0.1:{first}" in capsys.readouterr().out
    assert main(["broker", "status", "--port", str(first)]) == 1
    assert main(["broker", "status", "--port", str(second)]) == 0
    assert f"up at 127.0.0.1:{second}" in capsys.readouterr().out
    assert not broker.answers(f"127.0.0.1:{first}", timeout_s=2)
    assert broker.answers(f"127.0.0.1:{second}")


def test_port_in_use_is_bad_input(private_cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A taken port is reported as such, with exit code 2, and nothing is left running."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["broker", "up", "--port", str(port)]) == 2
    assert f"port {port}" in capsys.readouterr().err
    assert broker.status() is None


def test_broker_that_dies_on_start_shows_its_log() -> None:
    """A broker that exits during start-up raises with the last lines of its own log."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        controller = taken.getsockname()[1]
        # The controller listener collides with a taken port: storage formats, the JVM dies.
        bad = broker.EmbeddedBroker(
            extra_properties=f"controller.quorum.voters=1@127.0.0.1:{controller}\n"
            f"listeners=PLAINTEXT://127.0.0.1:{broker.free_port()},"
            f"CONTROLLER://127.0.0.1:{controller}\n"
        )
        with pytest.raises(broker.BrokerError, match="exited on start") as err:
            bad.start(timeout_s=60)
    assert "Address already in use" in str(err.value)
    assert not bad.data_dir.exists()


def test_bad_broker_config_fails_at_format() -> None:
    """A config Kafka rejects fails before the JVM starts, with Kafka's own reason first."""
    bad = broker.EmbeddedBroker(extra_properties="node.id=not-a-number\n")
    with pytest.raises(broker.BrokerError, match="Invalid value not-a-number"):
        bad.start(timeout_s=60)


def test_no_java_is_bad_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without `java` on PATH the command says so and exits 2."""
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["broker", "up", "--port", str(broker.free_port())]) == 2
    assert "no `java`" in capsys.readouterr().err


def test_no_jars_no_maven_no_kafka_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With no cached jars, no `mvn` and no KAFKA_HOME, the error names all three ways out."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    java = os.path.realpath(os.popen("command -v java").read().strip())  # noqa: S605 - fixed string
    (bin_dir / "java").symlink_to(java)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("KAFKA_HOME", raising=False)
    assert main(["broker", "up", "--port", str(broker.free_port())]) == 2
    err = capsys.readouterr().err
    assert "no `mvn`" in err
    assert "KAFKA_HOME" in err


def test_kafka_home_must_be_a_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A KAFKA_HOME without Kafka's jars is refused with a message naming it."""
    monkeypatch.setenv("KAFKA_HOME", str(tmp_path))
    with pytest.raises(broker.BrokerError, match="not an Apache Kafka distribution"):
        broker.classpath()


def test_kafka_home_names_its_release_and_must_be_the_one_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """KAFKA_HOME's release is read from its jar; asking for another one is refused, naming
    both, rather than measuring a broker the run would misname."""
    (tmp_path / "libs").mkdir()
    (tmp_path / "libs" / "kafka_2.13-4.2.0.jar").write_bytes(b"")
    monkeypatch.setenv("KAFKA_HOME", str(tmp_path))
    assert broker.resolved_version() == "4.2.0"
    assert broker.resolved_version("4.2.0") == "4.2.0"
    with pytest.raises(broker.BrokerSetupError, match=r"is Apache Kafka 4\.2\.0, not the 4\.4\.1"):
        broker.resolved_version("4.4.1")


def test_up_runs_the_release_asked_for_and_only_it_is_reused_for_it(
    other_release: str, private_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`up --kafka-version` runs that release's jars (the broker logs it), records it, and a
    run or an `up` asking for another release does not take it for theirs."""
    port = broker.free_port()
    assert main(["broker", "up", "--port", str(port), "--kafka-version", other_release]) == 0
    assert f"Kafka {other_release} is up at 127.0.0.1:{port}" in capsys.readouterr().out
    info = broker.status(port)
    assert info is not None
    assert info.kafka_version == other_release
    assert f"Kafka version: {other_release} " in Path(info.log_path).read_text()
    assert broker.release_at(info.bootstrap_servers) == other_release
    assert broker.reusable(kafka_version=other_release) == info
    assert broker.reusable() == info  # no release asked for: the running one, named
    assert broker.reusable(kafka_version=broker.KAFKA_VERSION) is None
    again = ["broker", "up", "--port", str(port), "--kafka-version", broker.KAFKA_VERSION]
    assert main(again) == 2
    assert f"running Kafka {other_release}" in capsys.readouterr().err
    assert main(["broker", "status"]) == 0
    assert f"Kafka {other_release}" in capsys.readouterr().out


def test_a_bad_kafka_version_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["broker", "up", "--kafka-version", "3.9.1"]) == 2
    assert "--kafka-version: must be 4.0.0 or newer" in capsys.readouterr().err


def _all_cmdlines() -> set[str]:
    seen = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            seen.add(cmdline.read_bytes().decode(errors="replace"))
    return seen


def _three_free_ports() -> int:
    """A port whose next two are free too (`up --secure` listens on port, +1 and +2)."""
    while True:
        port = broker.free_port()
        if port < 65000 and not any(broker.port_in_use(port + i) for i in (1, 2)):
            return port


@pytest.mark.slow
def test_secured_up_prints_what_a_client_needs(
    private_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`up --secure`: SASL_SSL (SCRAM, PLAIN) and SSL answer a librdkafka producer trusting the
    printed CA; the password sits in an owner-only file, is never printed and was on no command
    line while the storage was formatted with the SCRAM user; `down` drops it."""
    from confluent_kafka import Producer  # noqa: PLC0415 - only this test produces with it

    port = _three_free_ports()
    cmdlines: set[str] = set()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            cmdlines.update(_all_cmdlines())
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        assert main(["broker", "up", "--secure", "--port", str(port)]) == 0
    finally:
        done.set()
        watcher.join()
    out = capsys.readouterr().out
    running = broker.status()
    assert running is not None
    info = client_info(running.data_dir)
    assert info is not None
    password = Path(info.password_file).read_text().strip()
    assert any("format.args" in c or "StorageTool" in c for c in cmdlines), "format not seen"
    assert not any(password in c for c in cmdlines)
    assert f"SASL_SSL         127.0.0.1:{port + 1}  (SCRAM-SHA-512, PLAIN)" in out
    assert f"SSL              127.0.0.1:{port + 2}" in out
    assert f"CA file          {info.ca_file}" in out
    assert f'export KAFKA_TUNER_PASSWORD="$(cat {info.password_file})"' in out
    assert password not in out
    for private in (Path(info.password_file), Path(running.data_dir) / "server.properties"):
        assert private.stat().st_mode & 0o777 == 0o600, private
    assert not (Path(running.data_dir) / "format.args").exists()
    topic = f"tuner.secured.{port}"
    scram = SecuritySpec(
        protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        username=info.username,
        password=password,
        ssl_cafile=info.ca_file,
    )
    conn = Connection(bootstrap_servers=info.sasl_ssl, cluster=ClusterSpec(security=scram))
    assert asyncio.run(cluster.ensure_topic(conn, TopicSpec(name=topic, partitions=1)))
    security = [
        {"security.protocol": "SASL_SSL", "sasl.mechanisms": "SCRAM-SHA-512"},
        {"security.protocol": "SASL_SSL", "sasl.mechanisms": "PLAIN"},
        {"security.protocol": "SSL"},
    ]
    for conf in security:
        address = info.ssl if conf["security.protocol"] == "SSL" else info.sasl_ssl
        if "sasl.mechanisms" in conf:
            conf |= {"sasl.username": info.username, "sasl.password": password}
        producer = Producer({"bootstrap.servers": address, "ssl.ca.location": info.ca_file,
                             "message.timeout.ms": 10000, **conf})  # fmt: skip
        producer.produce(topic, b"x")
        assert producer.flush(15) == 0, conf  # the end offsets below show each was written
    ends = asyncio.run(cluster.end_offsets(conn, topic))
    assert ends == {0: len(security)}
    assert main(["broker", "status"]) == 0
    assert f"SASL_SSL         127.0.0.1:{port + 1}" in capsys.readouterr().out
    assert main(["broker", "down"]) == 0
    assert not Path(info.password_file).exists()


def test_up_with_a_network_profile(private_cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`up --rtt-ms` puts a proxy on the port: metadata through it names the proxy's address
    (clients reconnect through it), a round trip takes the RTT, `status` names the profile,
    `up` without it is refused while it runs, and `down` stops the proxy too."""
    port = broker.free_port()
    assert main(["broker", "up", "--port", str(port), "--rtt-ms", "30"]) == 0
    assert "network: RTT 30 ms, uncapped bandwidth, through the network proxy" in (
        capsys.readouterr().out
    )
    info = broker.status()
    assert info is not None
    assert info.proxy_pid is not None
    proxy_pid = info.proxy_pid
    brokers, took_s = asyncio.run(_metadata_through(info.bootstrap_servers))
    assert brokers == [("127.0.0.1", port)]
    assert took_s >= 0.030
    assert main(["broker", "status"]) == 0
    assert "network: RTT 30 ms" in capsys.readouterr().out
    assert main(["broker", "up", "--port", str(port)]) == 2
    assert "another network profile" in capsys.readouterr().err
    assert main(["broker", "down"]) == 0
    assert not Path(f"/proc/{proxy_pid}").exists() or not broker.is_our_proxy(proxy_pid)


async def _metadata_through(bootstrap: str) -> tuple[list[tuple[str, int]], float]:
    """The brokers a metadata response advertises, and how long one metadata request took."""
    client = AIOKafkaClient(bootstrap_servers=bootstrap)
    try:
        await client.bootstrap()
        started = time.perf_counter()
        await client.fetch_all_metadata()
        took_s = time.perf_counter() - started
        brokers = [(b.host, b.port) for b in client.cluster.brokers()]
    finally:
        await client.close()
    return brokers, took_s


def test_bad_network_options_are_bad_input(
    private_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A negative RTT or a jitter above it exits 2, naming the option, and starts nothing."""
    assert main(["broker", "up", "--rtt-ms", "-5", "--bandwidth-mbit", "0"]) == 2
    err = capsys.readouterr().err
    assert "--rtt-ms: must be in [0, 10000] ms, got -5.0" in err
    assert "--bandwidth-mbit: must be > 0" in err
    assert main(["broker", "up", "--rtt-ms", "2", "--jitter-ms", "4"]) == 2
    assert "--jitter-ms: must be in [0, rtt_ms]" in capsys.readouterr().err
    assert broker.status() is None


def _free_run(length: int) -> int:
    """A first port such that it and the next `length - 1` are all free."""
    for _ in range(50):
        first = broker.free_port()
        if first + length <= 65535 and not any(
            broker.port_in_use(first + i) for i in range(length)
        ):
            return first
    raise AssertionError(f"no {length} consecutive free ports found")


@pytest.mark.slow
def test_up_brokers_3_runs_a_cluster_a_run_reuses(
    private_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`up --brokers 3` starts three brokers on consecutive ports that the metadata lists,
    `status` names them, a config's `embedded` with `cluster.brokers: 3` reuses the cluster (one
    broker asked for does not), asking for another size on its port is bad input, and `down`
    stops all four JVMs."""
    port = _free_run(3)
    assert main(["broker", "up", "--brokers", "3", "--port", str(port)]) == 0
    out = capsys.readouterr().out
    bootstrap = ",".join(f"127.0.0.1:{port + i}" for i in range(3))
    assert f"is up at {bootstrap}" in out
    assert "already up" not in out
    assert f"bootstrap_servers: {bootstrap}" in out
    assert f"brokers: 1 at 127.0.0.1:{port} " in out
    assert broker.live_broker_ids(bootstrap) == {1, 2, 3}
    assert main(["broker", "status", "--port", str(port)]) == 0
    assert f"3 at 127.0.0.1:{port + 2}" in capsys.readouterr().out
    with broker.for_cluster(ClusterSpec(brokers=3)) as reused:
        assert reused == bootstrap
    assert broker.reusable(brokers=1) is None
    assert main(["broker", "up", "--port", str(port)]) == 2
    assert "with 3 broker(s)" in capsys.readouterr().err
    info = broker.status(port)
    assert info is not None
    pids = {info.pid, *(n.pid for n in info.nodes)}
    jvms = {proc for proc in descendants(os.getpid()) if proc[0] in pids}
    assert len(jvms) == 4
    assert main(["broker", "down", "--port", str(port)]) == 0
    assert not alive(jvms)  # started by this process, they stay zombies until it reaps them
    assert not Path(info.data_dir).exists()
