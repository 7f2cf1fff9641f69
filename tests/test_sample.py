"""A payload topic on a cluster that checks ACLs: sampled with the config's principal, and a
principal without DESCRIBE or READ on it is refused by name before anything is written."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiokafka.admin import AIOKafkaAdminClient
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._acl import AclBinding, AclBindingFilter, AclOperation, AclPermissionType
from confluent_kafka.admin._resource import ResourcePatternType, ResourceType

from tests.helpers import topic_exists, unique
from tuner.broker import EmbeddedBroker
from tuner.broker.security import READER, SecureListeners
from tuner.cli import main
from tuner.cluster import admin as cluster
from tuner.cluster import prefill
from tuner.cluster.admin import Connection
from tuner.cluster.sample import PayloadTopicDeniedError, PayloadTopicError, sample_topic
from tuner.config import ClusterSpec, SecuritySpec, TopicSpec, parse_config
from tuner.payloads import read_records

pytestmark = pytest.mark.integration

PASSWORD_VAR = "KT_TEST_READER_PASSWORD"
READER_PRINCIPAL = f"User:{READER}"


def _listeners(broker: EmbeddedBroker) -> SecureListeners:
    assert broker.listeners is not None
    assert broker.listeners.reader_password is not None, "the broker was started without ACLs"
    return broker.listeners


def _reader(broker: EmbeddedBroker) -> Connection:
    """The second user's connection over SASL_SSL/SCRAM: no super user, only what ACLs allow."""
    listeners = _listeners(broker)
    security = SecuritySpec(protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512", username=READER,
                            password=listeners.reader_password,
                            ssl_cafile=str(listeners.tls.ca_file))  # fmt: skip
    return Connection(
        bootstrap_servers=f"127.0.0.1:{listeners.sasl_ssl_port}",
        cluster=ClusterSpec(security=security),
    )


def _users_topic(broker: EmbeddedBroker, records: int = 60) -> str:
    """A topic outside the tuner's prefix holding `records` records, made by the admin user."""
    owner = ClusterSpec(topic_prefix="orders-")  # the user's own application, not the tuner
    admin = Connection(bootstrap_servers=broker.bootstrap_servers, cluster=owner)
    topic = f"orders-{unique('acl').rsplit('.', 1)[1]}"
    asyncio.run(cluster.ensure_topic(admin, TopicSpec(name=topic, partitions=2)))
    asyncio.run(prefill.fill_to(admin, topic, parse_config({}).workload, records=records))
    return topic


def _grant(broker: EmbeddedBroker, *bindings: AclBinding) -> None:
    """Write ACLs with the broker's own (super) principal and wait until the broker applies
    them: ACLs reach the authorizer through the metadata log, after CreateAcls answers."""
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    for future in admin.create_acls(list(bindings)).values():
        future.result(timeout=30)
    filters = [
        AclBindingFilter(b.restype, b.name, b.resource_pattern_type, b.principal, b.host,
                         b.operation, b.permission_type)
        for b in bindings
    ]  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if all(admin.describe_acls(f).result(timeout=30) for f in filters):
            return
        time.sleep(0.1)
    pytest.fail(f"the broker did not apply the ACLs {bindings} within 30 s")


def _acl(topic: str, principal: str, operation: AclOperation) -> AclBinding:
    return AclBinding(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, principal, "*",
                      operation, AclPermissionType.ALLOW)  # fmt: skip


def _state(broker: EmbeddedBroker, topic: str) -> tuple[dict[int, int], set[str], set[str]]:
    """The topic's end offsets, the cluster's consumer groups and its topics, seen by the
    admin user."""
    admin = Connection(bootstrap_servers=broker.bootstrap_servers, cluster=ClusterSpec())

    async def names() -> tuple[set[str], set[str]]:
        client = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
        await client.start()
        try:
            groups = {g[0] for g in await client.list_consumer_groups()}
            return groups, set(await client.list_topics())
        finally:
            await client.close()

    return asyncio.run(cluster.end_offsets(admin, topic)), *asyncio.run(names())


@pytest.mark.parametrize("command", ["run", "optimize"])
def test_a_payload_topic_the_principal_may_not_read_is_refused_before_anything_starts(
    secure_broker: EmbeddedBroker,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    command: str,
) -> None:
    """`tuner run`/`optimize` whose user may describe the payload topic but not read it: exit
    2, one line naming the field, the topic, the principal, READ and TopicAuthorizationFailed;
    nothing written to it, no group, no trial topic, no sample file."""
    topic = _users_topic(secure_broker)
    _grant(secure_broker, _acl(topic, READER_PRINCIPAL, AclOperation.DESCRIBE))
    before = _state(secure_broker, topic)
    conn = _reader(secure_broker)
    trial_topic = unique("acl-run")
    data: dict[str, Any] = {
        "cluster": {
            "bootstrap_servers": conn.bootstrap_servers,
            "security": {
                "protocol": "SASL_SSL",
                "sasl_mechanism": "SCRAM-SHA-512",
                "username": READER,
                "password": f"${{{PASSWORD_VAR}}}",
                "ssl_cafile": conn.cluster.security.ssl_cafile,
            },
        },
        "topic": {"name": trial_topic, "partitions": 1},
        "workload": {"payloads": {"topic": topic, "sample_records": 20}},
        "metrics": {"port": 0, "producer_port": 0},
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv(PASSWORD_VAR, _listeners(secure_broker).reader_password or "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # where samples are kept
    out = ["--out", str(tmp_path / "out")] if command == "optimize" else []
    assert main([command, str(path), "--quiet", *out]) == 2
    err = capsys.readouterr().err
    [line] = [line for line in err.splitlines() if "workload.payloads.topic" in line]
    assert line.startswith(f"tuner: the cluster refused access: workload.payloads.topic: {topic!r}")
    assert f"refused {READER_PRINCIPAL} the READ operation" in line
    assert "(TopicAuthorizationFailed)" in line
    assert "Traceback" not in err
    assert _state(secure_broker, topic) == before  # no record, no group, no topic more
    assert not list(tmp_path.rglob("payloads-*"))


def test_a_payload_topic_the_principal_may_not_describe_is_named_as_such(
    secure_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """A topic whose ACLs leave the user out is refused as DESCRIBE (not said to be missing);
    a topic that really is missing is still said to be missing; no file is left behind."""
    topic = _users_topic(secure_broker, records=10)
    _grant(secure_broker, _acl(topic, "User:someone-else", AclOperation.READ))
    conn = _reader(secure_broker)
    with pytest.raises(PayloadTopicDeniedError) as refused:
        asyncio.run(sample_topic(conn, topic, 5, tmp_path / "s.jsonl"))
    assert str(refused.value).startswith(f"workload.payloads.topic: {topic!r}")
    assert f"refused {READER_PRINCIPAL} the DESCRIBE operation" in str(refused.value)
    missing = f"{topic}-missing"
    with pytest.raises(PayloadTopicError, match=rf"{missing!r} does not exist") as absent:
        asyncio.run(sample_topic(conn, missing, 5, tmp_path / "s.jsonl"))
    assert not isinstance(absent.value, PayloadTopicDeniedError)
    assert not list(tmp_path.iterdir())
    assert not topic_exists(secure_broker.bootstrap_servers, missing)


def test_a_principal_with_read_samples_without_any_group(
    secure_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """With DESCRIBE and READ on the topic and every group denied to it, the user still samples
    the topic: the sample joins and commits nothing; the topic's offsets and the cluster's
    groups are as they were."""
    topic = _users_topic(secure_broker)
    _grant(
        secure_broker,
        _acl(topic, READER_PRINCIPAL, AclOperation.DESCRIBE),
        _acl(topic, READER_PRINCIPAL, AclOperation.READ),
        AclBinding(
            ResourceType.GROUP,
            "*",
            ResourcePatternType.LITERAL,
            READER_PRINCIPAL,
            "*",
            AclOperation.ALL,
            AclPermissionType.DENY,
        ),
    )
    before = _state(secure_broker, topic)
    assert asyncio.run(sample_topic(_reader(secure_broker), topic, 20, tmp_path / "s.jsonl")) == 20
    assert len(read_records(tmp_path / "s.jsonl", "records")) == 20
    assert _state(secure_broker, topic) == before
