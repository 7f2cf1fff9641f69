"""The user's payloads: files, directories, topic samples and size distributions, as written."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import DefaultPartitioner

from tests.helpers import cluster_groups, one_trial_study, topic_exists, unique
from tuner.broker import EmbeddedBroker
from tuner.cli import main
from tuner.cluster import admin as cluster
from tuner.cluster import prefill
from tuner.cluster.admin import Connection
from tuner.cluster.sample import (
    PayloadTopicError,
    sample_path,
    sample_topic,
    with_topic_sample,
)
from tuner.cluster.workload import summarize
from tuner.config import ClusterSpec, SecuritySpec, StudySpec, TopicSpec, parse_config
from tuner.payloads import PayloadError, Record, read_records, record_line
from tuner.payloads.sizes import percentile, quantile, sized_values

# --- reading payloads (no broker) ---------------------------------------------------------------


def test_a_values_file_is_one_value_per_line_as_it_is(tmp_path: Path) -> None:
    """Each line is a value byte for byte (spaces and all), without its line end."""
    path = tmp_path / "v.txt"
    path.write_bytes(b'{"id": 1}\n  padded  \r\n\nlast')
    values = [r.value for r in read_records(path)]
    assert values == [b'{"id": 1}', b"  padded  ", b"", b"last"]


def test_records_format_reads_keys_values_headers_and_base64(tmp_path: Path) -> None:
    """`format: records`: string values as UTF-8, objects as compact JSON, base64 for binary
    (and for headers that repeat a name), a null key as no key; a record line written back
    reads the same."""
    path = tmp_path / "r.jsonl"
    path.write_text(
        '{"key": "a", "value": "héllo", "headers": {"h": "1"}}\n'
        '{"key": null, "value": {"n": [1, 2]}}\n'
        '{"key_base64": "AAE=", "value_base64": "/wA=", '
        '"headers_base64": [["h", "/w=="], ["h", "AA=="]]}\n'
    )
    records = read_records(path, "records")
    assert records == (
        Record(key=b"a", value="héllo".encode(), headers=(("h", b"1"),)),
        Record(key=None, value=b'{"n":[1,2]}'),
        Record(key=b"\x00\x01", value=b"\xff\x00", headers=(("h", b"\xff"), ("h", b"\x00"))),
    )
    again = tmp_path / "again.jsonl"
    again.write_text("".join(record_line(r) + "\n" for r in records))
    assert read_records(again, "records") == records


def test_bad_record_lines_name_the_file_and_line(tmp_path: Path) -> None:
    """A line that is not a record object is refused with its file and line number."""
    path = tmp_path / "r.jsonl"
    path.write_text('{"value": "ok"}\n{"vlaue": "typo"}\n')
    with pytest.raises(PayloadError, match=r"r.jsonl, line 2: unknown field\(s\) vlaue"):
        read_records(path, "records")


def test_lognormal_sizes_have_the_asked_median_p99_and_mean() -> None:
    """Sizes are the distribution's quantiles: p50, p99 and mean of the pool are the asked."""
    sizes = sorted(len(r.value) for r in sized_values("lognormal", 800, 8000))
    assert percentile(sizes, 0.99) == pytest.approx(8000, rel=0.03)
    assert percentile(sizes, 0.5) == pytest.approx(quantile("lognormal", 800, 8000, 0.5), rel=0.02)
    assert sum(sizes) / len(sizes) == pytest.approx(800, rel=0.05)


def test_the_compression_ratio_is_the_codecs_on_the_payloads(tmp_path: Path) -> None:
    """Repetitive JSON compresses several times with gzip, as gzip itself says; random values
    do not compress at all, of a size distribution or of a fixed `message_bytes` (one value
    repeated compressed 38x and carried a fraction of the bytes; `tests/test_workload.py`
    checks the broker's)."""
    path = tmp_path / "v.txt"
    lines = [json.dumps({"order": i, "status": "shipped", "items": ["a"] * 5}) for i in range(2000)]
    path.write_text("\n".join(lines) + "\n")
    spec = parse_config({"workload": {
        "payloads": {"file": str(path)}, "producer": {"compression": "gzip"}}})  # fmt: skip
    summary = summarize(spec.workload)
    raw = "".join(lines).encode()
    whole = len(raw) / len(gzip.compress(raw))
    assert summary.compression_ratio is not None
    assert 3 < summary.compression_ratio <= whole * 1.05  # per-batch compression, not better
    assert summary.count == 2000
    noise = parse_config({"workload": {"producer": {"compression": "gzip"}, "message_bytes": {
        "distribution": "lognormal", "mean": 1000, "p99": 4000}}})  # fmt: skip
    random_ratio = summarize(noise.workload).compression_ratio
    assert random_ratio is not None
    assert random_ratio < 1.01
    fixed = parse_config({"workload": {"message_bytes": 1000, "producer": {"compression": "gzip"}}})
    fixed_summary = summarize(fixed.workload)
    assert fixed_summary.compression_ratio is not None
    assert fixed_summary.compression_ratio < 1.01
    assert fixed_summary.p50_bytes == fixed_summary.p99_bytes == 1000
    assert "4,096 distinct values" in fixed_summary.line()


# --- on the broker ---------------------------------------------------------------------------


def _read_all(bootstrap_servers: str, topic: str) -> list[Any]:
    """Every record of a topic, read without a group."""

    async def read() -> list[Any]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=None)
        await consumer.start()
        try:
            await consumer._client.force_metadata_update()
            tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
            ends = await consumer.end_offsets(tps)
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            out: list[Any] = []
            async with asyncio.timeout(60):
                while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
                    for batch in (await consumer.getmany(timeout_ms=500)).values():
                        out.extend(batch)
            return out
        finally:
            await consumer.stop()

    return asyncio.run(read())


def _prefill(
    bootstrap_servers: str, workload: dict[str, Any], records: int
) -> tuple[str, StudySpec]:
    spec = parse_config({
        "topic": {"name": unique("payloads"), "partitions": 3}, "workload": workload,
    })  # fmt: skip
    conn = Connection(bootstrap_servers=bootstrap_servers, cluster=ClusterSpec())
    asyncio.run(cluster.ensure_topic(conn, spec.topic))
    asyncio.run(prefill.fill_to(conn, spec.topic.name, spec.workload, records=records))
    return spec.topic.name, spec


@pytest.mark.integration
def test_the_prefill_writes_exactly_the_files_values(
    bootstrap_servers: str, tmp_path: Path
) -> None:
    """Three passes over a values file: the topic holds each line three times, nothing else."""
    lines = [f'{{"order": {i}, "pad": "{"x" * (i % 50)}"}}' for i in range(300)]
    path = tmp_path / "samples.jsonl"
    path.write_text("\n".join(lines) + "\n")
    topic, _ = _prefill(bootstrap_servers, {"payloads": {"file": str(path)}}, 900)
    written = _read_all(bootstrap_servers, topic)
    assert Counter(m.value for m in written) == Counter({line.encode(): 3 for line in lines})


@pytest.mark.integration
def test_records_keep_their_keys_headers_and_keys_partition(
    bootstrap_servers: str, tmp_path: Path
) -> None:
    """`format: records`: key, value and headers land as given, each key on the partition
    Java's default partitioner (murmur2) picks for it."""
    path = tmp_path / "records.jsonl"
    rows: list[dict[str, Any]] = [
        {"key": f"customer-{i % 7}", "value": f"order {i}", "headers": {"src": f"s{i % 3}"}}
        for i in range(70)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    topic, _ = _prefill(
        bootstrap_servers, {"payloads": {"file": str(path), "format": "records"}}, 70
    )
    written = _read_all(bootstrap_servers, topic)
    got = sorted((m.key, m.value, tuple(m.headers)) for m in written)
    want = sorted(
        (r["key"].encode(), r["value"].encode(), (("src", r["headers"]["src"].encode()),))
        for r in rows
    )
    assert got == want
    choose = DefaultPartitioner()
    assert all(m.partition == choose(m.key, [0, 1, 2], None) for m in written)


@pytest.mark.integration
def test_a_directory_of_binary_files_is_one_record_per_file(
    bootstrap_servers: str, tmp_path: Path
) -> None:
    """Binary values (newlines, NULs, any byte) come through a directory byte for byte."""
    folder = tmp_path / "blobs"
    folder.mkdir()
    blobs = {os.urandom(n) + b"\n\x00\n" for n in (1, 100, 5000, 70_000)}
    for i, blob in enumerate(sorted(blobs)):
        (folder / f"{i}.bin").write_bytes(blob)
    topic, spec = _prefill(bootstrap_servers, {"payloads": {"file": str(folder)}}, len(blobs))
    assert {m.value for m in _read_all(bootstrap_servers, topic)} == blobs
    assert spec.workload.message_bytes == round(sum(map(len, blobs)) / len(blobs))


@pytest.mark.integration
def test_distribution_sizes_on_the_topic_have_the_asked_p50_and_p99(bootstrap_servers: str) -> None:
    """`message_bytes: {distribution: lognormal, mean: 800, p99: 8000}`: the values the broker
    holds have that p99 and mean, and the lognormal's median."""
    size = {"distribution": "lognormal", "mean": 800, "p99": 8000}
    topic, spec = _prefill(bootstrap_servers, {"message_bytes": size}, 6000)
    sizes = sorted(len(m.value) for m in _read_all(bootstrap_servers, topic))
    assert len(sizes) == 6000
    assert percentile(sizes, 0.99) == pytest.approx(8000, rel=0.1)
    assert percentile(sizes, 0.5) == pytest.approx(quantile("lognormal", 800, 8000, 0.5), rel=0.1)
    assert sum(sizes) / len(sizes) == pytest.approx(800, rel=0.1)
    assert spec.workload.mean_message_bytes == 800


@pytest.mark.integration
def test_a_topic_sample_only_reads_the_users_topic(bootstrap_servers: str, tmp_path: Path) -> None:
    """Sampling a topic outside the prefix writes nothing to it, creates no group, commits
    nothing; the sample is its latest records, keys and headers kept; a second use reuses it."""
    topic = f"orders-{uuid.uuid4().hex[:8]}"
    conn = Connection(bootstrap_servers=bootstrap_servers, cluster=ClusterSpec())

    async def produce() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
        await admin.start()
        try:
            from aiokafka.admin import NewTopic  # noqa: PLC0415 - only this test makes one

            await admin.create_topics([NewTopic(topic, 2, 1)])
        finally:
            await admin.close()
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers)
        await producer.start()
        try:
            for i in range(400):
                await producer.send(topic, f"v{i}".encode(), key=f"k{i % 5}".encode(),
                                    headers=[("n", str(i).encode())])  # fmt: skip
            await producer.flush()
        finally:
            await producer.stop()

    asyncio.run(produce())
    groups_before = asyncio.run(cluster_groups(bootstrap_servers))
    ends_before = asyncio.run(cluster.end_offsets(conn, topic))
    spec = parse_config({"workload": {"payloads": {"topic": topic, "sample_records": 100}}})
    sampled = with_topic_sample(spec, conn, tmp_path)
    assert asyncio.run(cluster.end_offsets(conn, topic)) == ends_before
    assert asyncio.run(cluster_groups(bootstrap_servers)) == groups_before
    payloads = sampled.workload.payloads
    assert payloads is not None
    assert payloads.file is not None
    assert payloads.topic == topic
    records = read_records(Path(payloads.file), "records")
    assert len(records) == 100
    originals = {f"v{i}".encode(): i for i in range(400)}
    for r in records:
        i = originals[r.value]
        assert r.key == f"k{i % 5}".encode()
        assert r.headers == (("n", str(i).encode()),)
    latest = sorted(originals[r.value] for r in records)
    assert latest[-1] >= 390  # the newest records are in it, not the oldest only
    Path(payloads.file).write_text(record_line(Record(key=None, value=b"kept")) + "\n")
    again = with_topic_sample(spec, conn, tmp_path)
    assert again.workload.payloads is not None
    assert again.workload.payloads.file == payloads.file
    assert again.workload.message_bytes == 4  # the file was reused, not sampled again


@pytest.mark.integration
def test_a_payload_topic_that_cannot_be_read_is_named(
    bootstrap_servers: str, tmp_path: Path
) -> None:
    """A topic missing (or not visible to the credentials) fails naming the field; an empty
    one too; no file is left behind."""
    conn = Connection(bootstrap_servers=bootstrap_servers, cluster=ClusterSpec())
    missing = f"nope-{uuid.uuid4().hex[:8]}"
    with pytest.raises(PayloadTopicError, match=rf"workload.payloads.topic: '{missing}' does not"):
        asyncio.run(sample_topic(conn, missing, 10, tmp_path / "s.jsonl"))
    empty = unique("empty")
    asyncio.run(cluster.ensure_topic(conn, TopicSpec(name=empty, partitions=1)))
    with pytest.raises(PayloadTopicError, match="holds no records"):
        asyncio.run(sample_topic(conn, empty, 10, tmp_path / "s.jsonl"))
    assert not list(tmp_path.iterdir())
    assert not topic_exists(bootstrap_servers, missing)


@pytest.mark.integration
def test_run_with_a_missing_payload_topic_exits_2_naming_the_field(
    bootstrap_servers: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`tuner run` whose payload topic does not exist: exit 2, the field path, no traceback."""
    path = tmp_path / "c.yaml"
    path.write_text(
        f"cluster: {{bootstrap_servers: '{bootstrap_servers}'}}\n"
        f"topic: {{name: {unique('cli')}, partitions: 1}}\n"
        "workload: {payloads: {topic: no-such-topic}}\n"
        "metrics: {port: 0, producer_port: 0}\n"
    )
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # where samples are kept
    assert main(["run", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "workload.payloads.topic: 'no-such-topic' does not exist" in err
    assert "Traceback" not in err


def test_run_with_a_missing_payload_file_exits_2_with_its_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A payload file that is not there stops `tuner run` before anything starts: exit 2, the
    field and the absolute path it was looked for at (beside the config)."""
    path = tmp_path / "c.yaml"
    path.write_text("workload: {payloads: {file: samples.jsonl}}\n")
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"workload.payloads.file: cannot read {tmp_path / 'samples.jsonl'}" in err
    assert "Traceback" not in err


@pytest.mark.integration
def test_run_says_what_the_payloads_were(
    tmp_path: Path, bootstrap_servers: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`tuner run` on a payload file prints and stores its source, count, size p50/p99 and the
    gzip ratio (equal to what `summarize` computes on its own)."""
    lines = [
        json.dumps({"order": i, "status": "shipped", "pad": "p" * (i % 90)}) for i in range(400)
    ]
    (tmp_path / "orders.jsonl").write_text("\n".join(lines) + "\n")
    path = tmp_path / "c.yaml"
    path.write_text(
        f"cluster: {{bootstrap_servers: '{bootstrap_servers}'}}\n"
        f"topic: {{name: {unique('run-payloads')}, partitions: 2}}\n"
        "workload:\n  prefill_records: 20000\n  payloads: {file: orders.jsonl}\n"
        "  producer: {compression: gzip}\n"
        "consumer: {members: 1}\n"
        "trial: {warmup_s: 1, measure_s: 2}\n"
        "metrics: {port: 0, producer_port: 0}\n"
    )
    out_json = tmp_path / "r.json"
    assert main(["run", str(path), "--quiet", "--json", str(out_json)]) in {0, 1}
    out = capsys.readouterr().out
    sizes = sorted(len(line) for line in lines)
    stored = json.loads(out_json.read_text())["payloads"]
    assert stored["source"] == f"file {tmp_path / 'orders.jsonl'} (values)"
    assert stored["count"] == 400
    assert (stored["p50_bytes"], stored["p99_bytes"]) == (sizes[199], sizes[395])
    spec = parse_config(
        {
            "workload": {
                "payloads": {"file": str(tmp_path / "orders.jsonl")},
                "producer": {"compression": "gzip"},
            }
        }
    )
    ratio = summarize(spec.workload).compression_ratio
    assert ratio is not None
    assert stored["compression_ratio"] == pytest.approx(ratio)
    assert (
        f"records          file {tmp_path / 'orders.jsonl'} (values): 400 records, value size "
        f"p50 {sizes[199]} B, p99 {sizes[395]} B" in out
    )
    assert f"gzip compression ratio {ratio:.2f}x" in out


@pytest.mark.integration
def test_a_topic_on_a_secured_cluster_is_sampled_with_the_configs_credentials(
    secure_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """Over SASL_SSL/SCRAM the sample reads with the config's user; a missing topic is named
    by field (topics an ACL closes to a user: `tests/test_sample.py`)."""
    listeners = secure_broker.listeners
    assert listeners is not None
    scram = SecuritySpec(protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
                         username=listeners.username, password=listeners.password,
                         ssl_cafile=str(listeners.tls.ca_file))  # fmt: skip
    conn = Connection(
        bootstrap_servers=f"127.0.0.1:{listeners.sasl_ssl_port}",
        cluster=ClusterSpec(security=scram),
    )
    topic = unique("secured-orders")
    asyncio.run(cluster.ensure_topic(conn, TopicSpec(name=topic, partitions=1)))
    asyncio.run(prefill.fill_to(conn, topic, parse_config({}).workload, records=50))
    assert asyncio.run(sample_topic(conn, topic, 20, tmp_path / "s.jsonl")) == 20
    assert len(read_records(tmp_path / "s.jsonl", "records")) == 20
    with pytest.raises(PayloadTopicError, match="may not describe it"):
        asyncio.run(sample_topic(conn, f"{topic}.missing", 20, tmp_path / "t.jsonl"))


@pytest.mark.integration
@pytest.mark.slow
def test_a_study_samples_a_topic_once_into_its_output_and_reports_it(
    tmp_path: Path, bootstrap_servers: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`tuner optimize` with a payload topic: the sample lies in the output directory, the
    topic keeps its offsets, and the report names the source and the sample's count."""
    source = unique("users-orders")
    conn = Connection(bootstrap_servers=bootstrap_servers, cluster=ClusterSpec())
    asyncio.run(cluster.ensure_topic(conn, TopicSpec(name=source, partitions=2)))
    asyncio.run(prefill.fill_to(conn, source, parse_config({}).workload, records=300))
    ends = asyncio.run(cluster.end_offsets(conn, source))
    config = tmp_path / "c.yaml"
    config.write_text(
        one_trial_study(
            bootstrap_servers,
            unique("study-payloads"),
            f"{{prefill_records: 20000, payloads: {{topic: {source}, sample_records: 100}}}}",
        )
    )
    out_dir = tmp_path / "o"
    assert main(["optimize", str(config), "--out", str(out_dir), "--quiet"]) == 0
    capsys.readouterr()
    samples = list(out_dir.glob("payloads-*.jsonl"))
    assert len(samples) == 1
    assert len(read_records(samples[0], "records")) == 100
    assert asyncio.run(cluster.end_offsets(conn, source)) == ends
    assert (
        f"Records: topic {source!r} (a read-only sample of 100 records): 100 records"
        in (out_dir / "report.md").read_text()
    )


def test_a_kept_sample_that_cannot_be_read_says_to_delete_it(tmp_path: Path) -> None:
    """A damaged sample file from an earlier run is named, with how to sample again."""
    conn = Connection(bootstrap_servers="127.0.0.1:1", cluster=ClusterSpec())
    sample_path(tmp_path, conn, "orders", 10).write_text("not json\n")
    spec = parse_config({"workload": {"payloads": {"topic": "orders", "sample_records": 10}}})
    with pytest.raises(PayloadTopicError, match=r"the kept sample cannot be used .* delete it"):
        with_topic_sample(spec, conn, tmp_path)
