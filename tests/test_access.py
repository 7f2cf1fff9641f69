"""Reaching a secured cluster: refused credentials and untrusted certificates are clear config
errors within seconds, and a whole study over SCRAM and TLS keeps the password to itself."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiokafka.admin import AIOKafkaAdminClient

from tests.helpers import unique
from tuner.broker import EmbeddedBroker, free_port, tls
from tuner.cli import main
from tuner.cluster import access
from tuner.cluster import admin as cluster
from tuner.cluster.access import redact_in_logs
from tuner.cluster.admin import Connection
from tuner.config import LocustSpec, parse_config
from tuner.load.runner import SASL_PASSWORD_ENV, LocustLoad, locustfile

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
PASSWORD_VAR = "KT_TEST_SASL_PASSWORD"


def _listeners(broker: EmbeddedBroker) -> Any:
    assert broker.listeners is not None
    return broker.listeners


def _secured(broker: EmbeddedBroker, *, mechanism: str | None = "SCRAM-SHA-512",
             ca_file: Path | None = None, **sections: Any) -> dict[str, Any]:  # fmt: skip
    """A small config for the secured broker: SASL_SSL with `mechanism`, or SSL if None."""
    listeners = _listeners(broker)
    security: dict[str, Any] = {"ssl_cafile": str(ca_file or listeners.tls.ca_file)}
    if mechanism is None:
        address, security["protocol"] = f"127.0.0.1:{listeners.ssl_port}", "SSL"
    else:
        address = f"127.0.0.1:{listeners.sasl_ssl_port}"
        security |= {
            "protocol": "SASL_SSL",
            "sasl_mechanism": mechanism,
            "username": listeners.username,
            "password": f"${{{PASSWORD_VAR}}}",
        }
    data: dict[str, Any] = {
        "cluster": {"bootstrap_servers": address, "security": security},
        "topic": {"name": unique("secured"), "partitions": 2},
        "workload": {"message_bytes": 200, "prefill_records": 20000},
        "consumer": {"members": 2},
        "trial": {"warmup_s": 1, "measure_s": 3},
        "metrics": {"port": 0, "producer_port": 0},
    }
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value}
    return data


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "secured.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _topic_exists(broker: EmbeddedBroker, topic: str) -> bool:
    async def topics() -> set[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
        await admin.start()
        try:
            return set(await admin.list_topics())
        finally:
            await admin.close()

    return topic in asyncio.run(topics())


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "PLAIN"])
def test_wrong_password_is_bad_input_within_seconds(
    secure_broker: EmbeddedBroker,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    mechanism: str,
) -> None:
    """A refused login exits 2 in seconds, names the user and field, makes no topic."""
    data = _secured(secure_broker, mechanism=mechanism)
    monkeypatch.setenv(PASSWORD_VAR, "not-the-password")
    started = time.monotonic()
    code = main(["run", str(_write(tmp_path, data)), "--quiet"])
    took = time.monotonic() - started
    err = capsys.readouterr().err
    assert code == 2, err
    assert took < 10
    assert "cluster.security: " in err
    assert f"refused user 'tuner' with {mechanism}" in err
    assert "not-the-password" not in err
    assert "Traceback" not in err
    assert not _topic_exists(secure_broker, data["topic"]["name"])


def test_debug_shows_the_clients_cause_of_a_refused_login(
    secure_broker: EmbeddedBroker,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A refused login keeps aiokafka's error as its cause: `--debug` prints the traceback
    down to it; without `--debug` the user sees the one line that says what to fix."""
    monkeypatch.setenv(PASSWORD_VAR, "not-the-password")
    config = str(_write(tmp_path, _secured(secure_broker, mechanism="SCRAM-SHA-512")))
    assert main(["run", config, "--quiet"]) == 2
    plain = capsys.readouterr().err
    assert plain.count("\n") == 1, plain
    assert plain.startswith("tuner: the cluster refused the connection: cluster.security: ")
    assert main(["--debug", "run", config, "--quiet"]) == 2
    debug = capsys.readouterr().err
    assert "aiokafka.errors.SaslAuthenticationFailed" in debug
    assert "The above exception was the direct cause of the following exception" in debug
    assert "tuner.cluster.access.AuthenticationError: cluster.security: " in debug
    assert "not-the-password" not in debug


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", None])
def test_untrusted_certificate_is_a_clear_error_within_seconds(
    secure_broker: EmbeddedBroker,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    mechanism: str | None,
) -> None:
    """A CA that did not sign the broker's certificate: exit 2 in seconds, saying so."""
    other = tls.make_ca(tmp_path / "other-ca", name="some other CA")
    data = _secured(secure_broker, mechanism=mechanism, ca_file=other.ca_file)
    monkeypatch.setenv(PASSWORD_VAR, _listeners(secure_broker).password)
    started = time.monotonic()
    code = main(["run", str(_write(tmp_path, data)), "--quiet"])
    took = time.monotonic() - started
    err = capsys.readouterr().err
    assert code == 2, err
    assert took < 10
    assert "cluster.security.ssl_cafile: the certificate of 127.0.0.1:" in err
    assert "is not trusted" in err
    assert "Traceback" not in err
    assert not _topic_exists(secure_broker, data["topic"]["name"])


def test_a_listener_of_another_protocol_is_named(
    secure_broker: EmbeddedBroker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """PLAINTEXT against the TLS listener, SSL against the PLAINTEXT one: exit 2 at once,
    asking whether the listener speaks the configured protocol."""
    listeners = _listeners(secure_broker)
    ssl_to_plain = _secured(secure_broker, mechanism=None)
    ssl_to_plain["cluster"]["bootstrap_servers"] = secure_broker.bootstrap_servers
    plain_to_ssl = _secured(secure_broker, mechanism=None)
    plain_to_ssl["cluster"] = {"bootstrap_servers": f"127.0.0.1:{listeners.ssl_port}"}
    for data, protocol in ((ssl_to_plain, "SSL"), (plain_to_ssl, "PLAINTEXT")):
        started = time.monotonic()
        assert main(["run", str(_write(tmp_path, data)), "--quiet"]) == 2
        assert time.monotonic() - started < 10
        err = capsys.readouterr().err
        assert f"hung up on a {protocol} handshake: is it a {protocol} listener?" in err
        assert not _topic_exists(secure_broker, data["topic"]["name"])


def test_right_credentials_pass_the_access_check(secure_broker: EmbeddedBroker) -> None:
    """The check itself lets every listener and mechanism of the secured broker through."""
    password = _listeners(secure_broker).password
    for mechanism in ("SCRAM-SHA-512", "PLAIN", None):
        spec = parse_config(_secured(secure_broker, mechanism=mechanism),
                            environ={PASSWORD_VAR: password})  # fmt: skip
        access.check(spec.cluster)


def _scrape(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own port
            return str(response.read().decode())
    except OSError:
        return None


@pytest.mark.slow
def test_a_study_over_scram_and_tls_keeps_the_password_to_itself(
    secure_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """Two trials and the confirmation, with Locust load, over SASL_SSL/SCRAM: the password is
    in no file the study wrote, not in its (debug) log, `ps` or either /metrics."""
    password = _listeners(secure_broker).password
    metrics_port, producer_port = free_port(), free_port()
    data = _secured(
        secure_broker,
        workload={"producer": {"users": 1, "rate_per_user": 2000}},
        consumer={"members": 2, "processing": {"per_record_ms": 0.1}},
        metrics={"port": metrics_port, "producer_port": producer_port},
        search={"trials": 2, "sampler": "random", "seed": 3, "pruner": "none",
                "parameters": {"max.poll.records": {"low": 50, "high": 2000, "log": True}}},
        confirm={"repeats": 1, "ablation_pairs": 0},
        study={"name": "secured"},
    )  # fmt: skip
    config, out, log = _write(tmp_path, data), tmp_path / "out", tmp_path / "tuner.log"
    env = {**os.environ, PASSWORD_VAR: password, "PYTHONPATH": str(ROOT)}
    listings: list[str] = []
    scrapes: list[str] = []
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tuner.cli", "--debug", "optimize", str(config),
             "--out", str(out)],
            stdout=sink, stderr=subprocess.STDOUT, env=env, cwd=tmp_path,
        )  # fmt: skip
        try:
            while proc.poll() is None:
                listings.append(
                    subprocess.run(
                        ["ps", "-eww", "-o", "pid=,args="],
                        capture_output=True,
                        text=True,
                        check=True,
                    ).stdout
                )
                for port in (metrics_port, producer_port):
                    text = _scrape(f"http://127.0.0.1:{port}/metrics")
                    if text is not None:
                        scrapes.append(text)
                time.sleep(0.5)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    written = log.read_text(errors="replace")
    assert proc.returncode == 0, written[-4000:]
    producing = [line for listing in listings for line in listing.splitlines()
                 if "locust" in line and "--kafka-security-protocol SASL_SSL" in line]  # fmt: skip
    assert producing, "no listing caught the Locust producer mid-run"
    assert any("tuner_producer_records_sent_total" in s for s in scrapes)
    assert any("tuner_consumer_records_consumed_total" in s for s in scrapes)
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {"trials.csv", "report.md", "report.html"} <= {p.name for p in files}
    assert any(p.suffix == ".db" for p in files)  # the SQLite study storage
    leaks = [str(p) for p in [*files, log] if password.encode() in p.read_bytes()]
    assert leaks == []
    assert not any(password in listing for listing in listings)
    assert not any(password in text for text in scrapes)


def test_debug_logs_hide_a_plain_password(secure_broker: EmbeddedBroker) -> None:
    """aiokafka's DEBUG lines print each request whole, SASL PLAIN's password included; the
    filter `tuner --debug` installs replaces it (and the line is still there, redacted)."""
    password = _listeners(secure_broker).password
    spec = parse_config(_secured(secure_broker, mechanism="PLAIN"),
                        environ={PASSWORD_VAR: password})  # fmt: skip
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.DEBUG)
    try:
        redact_in_logs(password)
        conn = Connection(bootstrap_servers=spec.cluster.bootstrap_servers, cluster=spec.cluster)
        asyncio.run(cluster.end_offsets(conn, unique("none")))
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    written = stream.getvalue()
    assert "SaslAuthenticateRequest" in written
    assert "***" in written
    assert password not in written


def _cmdline(pid: int) -> str:
    """A process's command line as `ps` shows it, arguments separated by NUL."""
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")


def test_locust_workers_take_the_password_from_their_own_environment(
    secure_broker: EmbeddedBroker,
) -> None:
    """Distributed load over SASL_SSL: the master hands its workers every `--kafka-*` option but
    the password, which a worker reads from its environment; no command line shows it."""
    listeners = _listeners(secure_broker)
    spec = parse_config(
        _secured(secure_broker, workload={"producer": {"users": 2, "rate_per_user": 300}}),
        environ={PASSWORD_VAR: listeners.password},
    )
    conn = Connection(bootstrap_servers=spec.cluster.bootstrap_servers, cluster=spec.cluster)
    asyncio.run(cluster.ensure_topic(conn, spec.topic))
    port = free_port()
    workload = replace(spec.workload, locust=LocustSpec(mode="master", expect_workers=1,
                                                        master_port=port))  # fmt: skip
    worker_argv = [sys.executable, "-m", "locust", "-f", str(locustfile()), "--worker",
                   "--master-port", str(port)]  # fmt: skip
    env = {**os.environ, SASL_PASSWORD_ENV: listeners.password}

    async def run() -> tuple[int, list[str]]:
        worker = await asyncio.create_subprocess_exec(
            *worker_argv, env=env, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            async with LocustLoad(
                workload, bootstrap_servers=spec.cluster.bootstrap_servers,
                topic=spec.topic.name, security=spec.cluster.security,
            ) as load:  # fmt: skip
                await asyncio.sleep(3)
                listing = [_cmdline(worker.pid), _cmdline(load.proc.pid if load.proc else 0)]
            assert load.final is not None
            return load.final.sent, listing
        finally:
            async with asyncio.timeout(30):
                await worker.wait()

    sent, cmdlines = asyncio.run(run())
    assert sent > 0
    assert sum(asyncio.run(cluster.end_offsets(conn, spec.topic.name)).values()) >= sent
    assert "--kafka-security-protocol\0SASL_SSL" in cmdlines[1]
    assert not any(listeners.password in c for c in cmdlines)
