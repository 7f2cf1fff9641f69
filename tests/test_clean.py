"""`tuner clean`: what dead tuner processes left is removed; nothing live or foreign is."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from confluent_kafka import Consumer

from tests.helpers import cluster_groups, empty_group, topic_exists, unique
from tuner.cli import main
from tuner.cluster import admin as cluster
from tuner.cluster import owned
from tuner.config import ClusterSpec, TopicSpec
from tuner.search import clean
from tuner.search.lease import Coordinator


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temp dir and a cache dir of the test's own: `clean` looks at nothing else."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    return tmp_path / "tmp"


async def _create_foreign(bootstrap_servers: str, name: str) -> None:
    """A topic outside the prefix, which the tuner itself refuses to create."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.mark.integration
def test_clean_deletes_only_a_dead_owners_topics(
    bootstrap_servers: str, private_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A topic registered by a dead pid is deleted and named; one this live process owns stays;
    a registered topic outside the prefix is never touched."""
    conn = cluster.Connection(bootstrap_servers=bootstrap_servers, cluster=ClusterSpec())
    dead, live, foreign = unique("dead"), unique("live"), f"other.{unique('x')}"
    for name in (dead, live):
        asyncio.run(cluster.ensure_topic(conn, TopicSpec(name=name, partitions=1, create=True)))
    asyncio.run(_create_foreign(bootstrap_servers, foreign))
    gone = _dead_pid()
    records = [
        owned.OwnedTopic(topic=dead, prefix="tuner.", bootstrap_servers=bootstrap_servers,
                         host=socket.gethostname(), pid=gone),
        owned.OwnedTopic(topic=foreign, prefix="tuner.", bootstrap_servers=bootstrap_servers,
                         host=socket.gethostname(), pid=gone),
    ]  # fmt: skip
    held = [owned.registered(r) for r in records]  # kept: collecting one would exit it
    for registration in held:
        registration.__enter__()  # a SIGKILLed owner never leaves the block
    with owned.registered(owned.owned_here(live, "tuner.", bootstrap_servers)):
        assert main(["clean"]) == 0
    out = capsys.readouterr().out
    assert f"deleted topic {dead} at {bootstrap_servers}" in out
    assert live not in out
    assert foreign not in out
    assert not topic_exists(bootstrap_servers, dead)
    assert topic_exists(bootstrap_servers, live)
    assert topic_exists(bootstrap_servers, foreign)
    assert main(["clean"]) == 0
    assert "nothing to clean" in capsys.readouterr().out


def test_clean_removes_only_unused_old_temp_dirs(private_tmp: Path) -> None:
    """An old tuner temp dir no process uses is removed; one a process works in, a young one,
    and a dir that is not the tuner's stay."""
    old = private_tmp / "kafka-tuner-locust-old"
    busy = private_tmp / "kafka-tuner-broker-busy"
    young = private_tmp / "kafka-tuner-locust-young"
    other = private_tmp / "someone-else"
    for d in (old, busy, young, other):
        d.mkdir()
    past = time.time() - 3600
    for d in (old, busy, other):
        os.utime(d, (past, past))
    sleeper = subprocess.Popen(["sleep", "30"], cwd=busy)
    try:
        done = clean.clean()
    finally:
        sleeper.kill()
        sleeper.wait()
    assert done.dirs == [str(old)]
    assert not old.exists()
    assert busy.exists()
    assert young.exists()
    assert other.exists()


def test_clean_drops_expired_leases_only(postgres_url: str, private_tmp: Path) -> None:
    """With --storage, a lease whose holder stopped renewing is deleted, a fresh one stays."""
    stale = Coordinator(postgres_url, study="s", lease_s=0.5)
    fresh = Coordinator(postgres_url, study="s", lease_s=60)
    assert stale._try_acquire(f"127.0.0.1:{os.getpid()}")[0]
    assert fresh._try_acquire(f"127.0.0.2:{os.getpid()}")[0]
    time.sleep(1)
    done = clean.clean(storage=postgres_url)
    assert done.leases >= 1
    assert fresh._try_acquire(f"127.0.0.2:{os.getpid()}") == (True, None)
    assert stale._try_acquire(f"127.0.0.1:{os.getpid()}") == (True, None)
    other = Coordinator(postgres_url, study="s", lease_s=60)
    assert other._try_acquire(f"127.0.0.2:{os.getpid()}") == (False, None)
    for c in (stale, fresh, other):
        c.close()


@pytest.mark.integration
def test_clean_deletes_empty_tuner_groups_only(
    bootstrap_servers: str, private_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """On the config's cluster, an empty group under the prefix (a killed run's) is deleted and
    named; an empty group outside the prefix, and one under it with a member, stay."""
    left, live, foreign = unique("left"), unique("live"), f"other.{unique('group')}"
    for group in (left, foreign):
        empty_group(bootstrap_servers, group)
    topic = unique("live")
    conn = cluster.Connection(bootstrap_servers=bootstrap_servers, cluster=ClusterSpec())
    asyncio.run(cluster.ensure_topic(conn, TopicSpec(name=topic, partitions=1, create=True)))
    member = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": live})
    member.subscribe([topic])
    deadline = time.monotonic() + 30
    while not member.assignment() and time.monotonic() < deadline:
        member.poll(0.2)
    config = private_tmp / "c.yaml"
    config.write_text(f"cluster: {{bootstrap_servers: '{bootstrap_servers}'}}\n")
    try:
        assert {left, live, foreign} <= asyncio.run(cluster_groups(bootstrap_servers))
        assert main(["clean", "--config", str(config)]) == 0
        remaining = asyncio.run(cluster_groups(bootstrap_servers))
    finally:
        member.close()
    out = capsys.readouterr().out
    assert f"deleted group {left} at {bootstrap_servers}" in out
    assert f"left group {live} at {bootstrap_servers}: it has members (in use)" in out
    assert foreign not in out
    assert left not in remaining
    assert {live, foreign} <= remaining
