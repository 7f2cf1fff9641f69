"""Loading the YAML config: every mistake is named with its path, all at once."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tuner.config import ConfigError, NetworkSpec, StudySpec, load_config, parse_config
from tuner.search.space import search_space

ROOT = Path(__file__).resolve().parents[1]
SECURED_ENV = {"KAFKA_TUNER_PASSWORD": "s3cret", "KAFKA_TUNER_CA": str(ROOT / "README.md")}
"""What configs/secured.yaml reads from the environment (any readable file stands in for the CA)."""


def problems(data: object, **kwargs: object) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as err:
        parse_config(data, **kwargs)  # type: ignore[arg-type]
    return err.value.problems


def test_shipped_configs_load() -> None:
    """Every config in configs/ loads as shipped."""
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        if path.name in {"prometheus.yml", "alerts.yml"}:
            continue
        assert isinstance(load_config(path, environ=SECURED_ENV), StudySpec), path


def test_values_land_in_the_dataclasses() -> None:
    """A valid mapping becomes the typed spec, defaults filling what is left out."""
    spec = parse_config(
        {
            "topic": {"name": "tuner.x", "partitions": 3},
            "consumer": {"members": 2, "settings": {"max.poll.records": 50}},
            "trial": {"measure_s": 7},
        }
    )
    assert spec.topic.partitions == 3
    assert spec.consumer.members == 2
    assert spec.consumer.settings["max.poll.records"] == 50
    assert spec.trial.measure_s == 7.0
    assert spec.trial.warmup_s == 5.0
    with pytest.raises(TypeError):
        spec.consumer.settings["x"] = 1  # type: ignore[index]


def test_unknown_key_suggests_the_close_one() -> None:
    """A misspelt key is an error that names its path and the key it probably meant."""
    assert problems({"topic": {"partitons": 3}}) == (
        "topic.partitons: unknown key; did you mean 'partitions'?",
    )


def test_wrong_types_and_ranges_are_all_reported() -> None:
    """Type and range problems in different sections come back together, each with its path."""
    found = problems(
        {
            "consumer": {"members": "three", "processing": {"mode": "threads"}},
            "trial": {"measure_s": 0},
            "metrics": {"port": 70000},
        }
    )
    assert found == (
        "consumer.members: must be an integer, got 'three'",
        "consumer.processing.mode: must be one of 'async', 'cpu'; got 'threads'",
        "trial.measure_s: must be > 0, got 0.0",
        "metrics.port: must be in [0, 65535], got 70000",
    )


def test_ranges_name_what_is_allowed() -> None:
    """Out-of-range numbers say the allowed range and the value given."""
    found = problems({"trial": {"measure_s": 0}, "metrics": {"port": 70000}})
    assert found == (
        "trial.measure_s: must be > 0, got 0.0",
        "metrics.port: must be in [0, 65535], got 70000",
    )


def test_bool_is_not_an_integer() -> None:
    """`members: true` is a type error, not 1."""
    assert problems({"consumer": {"members": True}}) == (
        "consumer.members: must be an integer, got True",
    )


def test_topic_outside_the_prefix_is_refused() -> None:
    """The tuner never touches topics outside its prefix, and says so."""
    (message,) = problems({"topic": {"name": "orders"}})
    assert message.startswith("topic.name: must start with cluster.topic_prefix 'tuner.'")


def test_kafka_rule_heartbeat_below_a_third_of_session() -> None:
    """heartbeat.interval.ms >= session.timeout.ms / 3 is rejected with both numbers."""
    (message,) = problems(
        {"consumer": {"settings": {"session.timeout.ms": 9000, "heartbeat.interval.ms": 3000}}}
    )
    assert message == (
        "consumer.settings.heartbeat.interval.ms: must be less than session.timeout.ms / 3 "
        "(9000 / 3 = 3000), got 3000"
    )


def test_unknown_kafka_setting_suggests_the_right_one() -> None:
    """A misspelt Kafka property gets a did-you-mean."""
    (message,) = problems({"consumer": {"settings": {"max.poll.record": 5}}})
    assert message == (
        "consumer.settings.max.poll.record: unknown or unsupported consumer setting; "
        "did you mean 'max.poll.records'?"
    )


def test_env_vars_are_substituted_and_missing_ones_named() -> None:
    """`${VAR}` comes from the environment; a missing one names the field and the variable."""
    security = {
        "protocol": "SASL_SSL",
        "sasl_mechanism": "PLAIN",
        "username": "u",
        "password": "${KT_PASSWORD}",
    }
    cluster = {"bootstrap_servers": "127.0.0.1:9093", "security": security}
    spec = parse_config({"cluster": cluster}, environ={"KT_PASSWORD": "s3cret"})
    assert spec.cluster.security.password == "s3cret"
    assert "s3cret" not in repr(spec)
    found = problems({"cluster": cluster}, environ={})
    assert "cluster.security.password: environment variable KT_PASSWORD is not set" in found


def test_a_password_must_come_from_the_environment() -> None:
    """A password written in the config or given with --set is refused, without echoing it,
    also when the --set key is misspelt."""
    security = {"protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "username": "u",
                "password": "hunter2-literal"}  # fmt: skip
    cluster = {"bootstrap_servers": "127.0.0.1:9093", "security": security}
    rule = (
        "cluster.security.password: must name an environment variable, as ${VAR}, "
        "not hold the password itself"
    )
    assert rule in problems({"cluster": cluster})
    by_set = problems(
        {"cluster": {**cluster, "security": {**security, "password": "${KT_PASSWORD}"}}},
        overrides=["cluster.security.password=hunter2-literal"],
        environ={"KT_PASSWORD": "fine"},
    )
    assert f"{rule} (from --set cluster.security.password=***)" in by_set
    misspelt = problems({}, overrides=["cluster.security.pasword=hunter2-literal"])
    assert misspelt[0].startswith("--set cluster.security.pasword=***: ")
    for found in (problems({"cluster": cluster}), by_set, misspelt):
        assert not any("hunter2" in p for p in found)


def test_security_that_cannot_work_is_refused() -> None:
    """TLS against the PLAINTEXT embedded broker, a CA file that is not there, or a CA file
    without TLS: each is named before anything starts."""
    found = problems({"cluster": {"security": {"protocol": "SSL"}}})
    assert any(p.startswith("cluster.security.protocol: the embedded broker speaks") for p in found)
    tls = {"protocol": "SSL", "ssl_cafile": "/nonexistent.pem"}
    found = problems({"cluster": {"bootstrap_servers": "127.0.0.1:9094", "security": tls}})
    assert "cluster.security.ssl_cafile: no readable file '/nonexistent.pem'" in found[0]
    plain = {"ssl_cafile": str(ROOT / "README.md")}
    found = problems({"cluster": {"bootstrap_servers": "127.0.0.1:9092", "security": plain}})
    assert found == (
        "cluster.security.ssl_cafile: used only with SSL or SASL_SSL, got protocol 'PLAINTEXT'",
    )


def test_overrides_reach_dotted_kafka_property_names() -> None:
    """`--set consumer.settings.max.poll.records=100` sets that Kafka property."""
    spec = parse_config(
        {}, overrides=["consumer.settings.max.poll.records=100", "consumer.members=1"]
    )
    assert spec.consumer.settings["max.poll.records"] == 100
    assert spec.consumer.members == 1
    assert problems({}, overrides=["consumer.members"]) == (
        "--set consumer.members: expected KEY=VALUE, e.g. consumer.members=2",
    )


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    """Broken YAML is one problem with its line number."""
    path = tmp_path / "bad.yaml"
    path.write_text("topic:\n  name: [unclosed\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    (message,) = err.value.problems
    assert "not valid YAML at line" in message


def test_missing_file(tmp_path: Path) -> None:
    """A missing file is a clear problem, not a traceback."""
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yaml")


def test_loading_a_config_imports_neither_optuna_nor_aiokafka() -> None:
    """Validating configs/quickstart.yaml in a fresh interpreter leaves optuna and aiokafka
    unimported (tuner.config needs only tuner.settings)."""
    code = (
        "import sys; from tuner.config import load_config; "
        f"load_config({str(ROOT / 'configs' / 'quickstart.yaml')!r}); "
        "print(sorted(m for m in ('optuna', 'aiokafka') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert done.stdout.strip() == "[]"


def test_a_setting_both_searched_and_fixed_stays_fixed() -> None:
    """A parameter in search.parameters that consumer.settings also fixes is valid (so
    `tuner run --set consumer.settings.X=…` tries a recommendation on the study's own config),
    and the fix wins: the search space drops it and says so."""
    spec = parse_config(
        {
            "consumer": {"settings": {"max.poll.interval.ms": 2500}},
            "search": {"parameters": {"max.poll.interval.ms": {"low": 1000, "high": 9000}}},
        }
    )
    searched = search_space(spec.search.parameters, spec.consumer.settings)
    assert "max.poll.interval.ms" not in searched.parameters
    assert searched.note() == "fixed by consumer.settings: max.poll.interval.ms=2500 (not searched)"


def test_ablation_pairs_default_to_two_and_refuse_negatives() -> None:
    """confirm.ablation_pairs is 2 unless set, 0 is allowed (skip), a negative count is named."""
    assert parse_config({}).confirm.ablation_pairs == 2
    assert parse_config({"confirm": {"ablation_pairs": 0}}).confirm.ablation_pairs == 0
    found = problems({"confirm": {"ablation_pairs": -1}})
    assert len(found) == 1
    assert found[0].startswith("confirm.ablation_pairs: must be >= 0")


PACED = {"producer": {"users": 1, "rate_per_user": 500}}


def test_latency_objectives_without_paced_load_are_refused() -> None:
    """Latency asked for without live load at a set rate names each field and the reason."""
    found = problems(
        {
            "objective": {"minimize": "p99_latency", "constraints": {"p99_latency_ms": 100}},
            "trial": {"steady_s": 5},
            "workload": {"producer": {"users": 1, "rate_per_user": 0}},
        }
    )
    reason = (
        "latency is measured in a steady state, under live load at a set rate and with no "
        "backlog: set workload.producer.users > 0 and workload.producer.rate_per_user > 0 "
        "(got users 1, rate_per_user 0)"
    )
    assert found == (
        f"objective.minimize: {reason}",
        f"objective.constraints.p99_latency_ms: {reason}",
        f"trial.steady_s: {reason}",
    )


def test_a_steady_state_needs_a_constant_load_shape() -> None:
    """A step or spike shape is no set rate: the shape is named with what asked for latency."""
    (message,) = problems(
        {
            "objective": {"minimize": "p99_latency"},
            "workload": {**PACED, "shape": {"kind": "spike"}},
        }
    )
    assert message == (
        "workload.shape.kind: a steady state needs a constant load for objective.minimize, "
        "got 'spike'"
    )


def test_steady_window_defaults_to_10_s_only_when_latency_is_scored() -> None:
    """`trial.steady_s: 0` means none, unless a latency objective needs one (then 10 s)."""
    assert parse_config({"workload": PACED}).steady_s == 0.0
    needs = parse_config({"workload": PACED, "objective": {"constraints": {"p99_latency_ms": 100}}})
    assert needs.steady_s == 10.0
    given = parse_config({"workload": PACED, "trial": {"steady_s": 4}})
    assert given.steady_s == 4.0
    assert problems({"trial": {"steady_s": -1}}) == (
        "trial.steady_s: must be >= 0 (0 = none), got -1.0",
    )


SHIPPED = sorted([*ROOT.glob("configs/*.yaml"), *ROOT.glob("benchmarks/**/*.yaml")])


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_config_loads(path: Path) -> None:
    """Each config the project ships (and the README and benchmarks run) passes validation."""
    assert load_config(path, environ=SECURED_ENV).topic.name.startswith("tuner.")


def _load(tmp_path: Path, content: str | bytes) -> tuple[str, ...]:
    path = tmp_path / "c.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    return err.value.problems


def test_an_empty_file_is_refused_not_run_on_defaults(tmp_path: Path) -> None:
    """An empty (or comments-only) file says it is empty instead of running built-in defaults."""
    for content in ("", "# nothing yet\n\n", "---\n"):
        (message,) = _load(tmp_path, content)
        assert message.endswith(
            "c.yaml: the file is empty; a config is a mapping of sections (cluster, topic, "
            "workload, consumer, …), see configs/quickstart.yaml"
        ), content


def test_a_repeated_key_is_refused_with_both_lines(tmp_path: Path) -> None:
    """`partitions: 6` then `partitions: 12` is an error naming the field path and both lines,
    in nested mappings too; YAML alone would keep 12."""
    found = _load(
        tmp_path,
        "topic:\n  name: tuner.x\n  partitions: 6\n  partitions: 12\n"
        "consumer:\n  settings:\n    max.poll.records: 5\n    max.poll.records: 50\n",
    )
    assert found == (
        "topic.partitions: duplicate key (line 3 and line 4); YAML would silently keep the "
        "last value",
        "consumer.settings.max.poll.records: duplicate key (line 7 and line 8); YAML would "
        "silently keep the last value",
    )


def test_a_binary_file_is_named_not_a_traceback(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 are one problem naming the offending byte, not a
    UnicodeDecodeError."""
    (message,) = _load(tmp_path, b"topic: {name: tuner.x}\n\x89PNG\r\n\x1a\n\xff\xfe")
    assert message.endswith(
        "c.yaml: not a text file: byte 0x89 at offset 23 is not UTF-8 (a config is YAML text)"
    )


def test_a_huge_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    """A 50 MB file is refused by its size in well under a second (only 1 MiB is read)."""
    path = tmp_path / "c.yaml"
    with path.open("w") as file:
        file.write("topic: {name: tuner.big}\n")
        file.truncate(50 << 20)
    started = time.monotonic()
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert time.monotonic() - started < 1.0
    (message,) = err.value.problems
    assert message.endswith(
        "c.yaml: 52,428,800 bytes is too large for a config (at most 1,048,576 bytes are read)"
    )


def test_aliases_that_expand_to_millions_of_values_are_refused(tmp_path: Path) -> None:
    """A few nested YAML aliases standing for 10**6 values are refused, quickly."""
    lines = ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 6)]
    started = time.monotonic()
    (message,) = _load(tmp_path, "\n".join(lines) + "\n")
    assert time.monotonic() - started < 2.0
    assert message.endswith("more than 10,000 values once YAML aliases are expanded")


def test_an_unknown_setting_does_not_hide_the_rules_of_the_others() -> None:
    """A misspelt property and a broken heartbeat rule between two valid ones are reported
    together; a rule that reads a setting with a bad value is not judged on a default."""
    found = problems(
        {
            "consumer": {
                "settings": {
                    "fetch.min.byte": 5,
                    "session.timeout.ms": 9000,
                    "heartbeat.interval.ms": 3000,
                    "max.partition.fetch.bytes": "big",
                }
            }
        }
    )
    assert found == (
        "consumer.settings.fetch.min.byte: unknown or unsupported consumer setting; "
        "did you mean 'fetch.min.bytes'?",
        "consumer.settings.max.partition.fetch.bytes: must be an integer, got 'big'",
        "consumer.settings.heartbeat.interval.ms: must be less than session.timeout.ms / 3 "
        "(9000 / 3 = 3000), got 3000",
    )


def test_a_set_of_a_bare_kafka_property_says_where_it_belongs() -> None:
    """`--set fetch.min.bytes=500` names the --set and suggests consumer.settings.…; a bad
    value given by --set says so too."""
    assert problems({}, overrides=["fetch.min.bytes=500"]) == (
        "--set fetch.min.bytes=500: fetch: unknown key; did you mean "
        "consumer.settings.fetch.min.bytes?",
    )
    assert problems({}, overrides=["consumer.memebrs=2"]) == (
        "--set consumer.memebrs=2: consumer.memebrs: unknown key; did you mean consumer.members?",
    )
    assert problems({}, overrides=["consumer.members=lots"]) == (
        "consumer.members: must be an integer, got 'lots' (from --set consumer.members=lots)",
    )
    spec = parse_config({}, overrides=["search.parameters.max.poll.records.low=5",
                                       "search.parameters.max.poll.records.high=50"])  # fmt: skip
    assert spec.search.parameters is not None
    assert spec.search.parameters["max.poll.records"].high == 50


@pytest.mark.parametrize(
    ("servers", "wrong"),
    [
        ("not a host:xx", "'not a host:xx' is not a host name or IP address with a port"),
        ("kafka", "'kafka' has no port"),
        ("kafka:0", "'kafka:0': the port must be a number in [1, 65535]"),
        ("a:9092,,b:9092", "an empty entry"),
        ("::1:9092", "'::1:9092' is not a host name or IP address with a port"),
    ],
)
def test_bootstrap_servers_must_be_host_port_entries(servers: str, wrong: str) -> None:
    """A malformed bootstrap list is a config problem naming the entry, not a ValueError from
    inside aiokafka."""
    assert problems({"cluster": {"bootstrap_servers": servers}}) == (
        f"cluster.bootstrap_servers: must be 'embedded' or host:port[,host:port…]; {wrong}, "
        f"got {servers!r}",
    )


def test_well_formed_bootstrap_lists_load() -> None:
    """Names, IPv4, bracketed IPv6 and several entries with spaces all pass."""
    for servers in ("kafka-0.kafka.svc:9092", "10.0.0.1:9092, 10.0.0.2:9093", "[::1]:9092"):
        assert parse_config({"cluster": {"bootstrap_servers": servers}}).cluster


def test_replication_beyond_the_one_embedded_broker_is_refused() -> None:
    """The embedded cluster is one broker unless `cluster.brokers` says more: a replication
    factor of 3 is refused up front."""
    assert problems({"topic": {"replication_factor": 3}}) == (
        "topic.replication_factor: must be at most cluster.brokers (1) on the embedded cluster "
        "(each broker holds one replica), got 3",
    )


def test_metrics_ports_in_range_and_not_shared() -> None:
    """Locust's metrics port is range-checked like the exporter's, and may not be the same."""
    assert problems({"metrics": {"producer_port": 70000}}) == (
        "metrics.producer_port: must be in [0, 65535], got 70000",
    )
    assert problems({"metrics": {"port": 9500, "producer_port": 9500}}) == (
        "metrics.producer_port: must differ from metrics.port (Locust serves its own metrics "
        "there), got 9500",
    )
    assert parse_config({"metrics": {"port": 0, "producer_port": 0}}).metrics.port == 0


def test_network_profile_lands_and_its_bad_values_are_named() -> None:
    """`cluster.network` becomes a NetworkSpec; each bad value is named with what is allowed,
    and a profile for a cluster other than the embedded broker is refused."""
    spec = parse_config({"cluster": {"network": {"rtt_ms": 20, "bandwidth_mbit": 100}}})
    assert spec.cluster.network == NetworkSpec(rtt_ms=20.0, bandwidth_mbit=100.0)
    assert spec.cluster.network.describe() == "RTT 20 ms, 100 Mbit/s"
    assert parse_config({}).cluster.network is None
    with pytest.raises(ConfigError) as err:
        parse_config({
            "cluster": {
                "bootstrap_servers": "kafka:9092",
                "network": {"rtt_ms": -1, "jitter_ms": 5, "bandwidth_mbit": 0},
            }
        })  # fmt: skip
    problems = "\n".join(err.value.problems)
    assert "cluster.network: shapes the path to the embedded broker only" in problems
    assert "cluster.network.rtt_ms: must be in [0, 10000] ms, got -1" in problems
    assert "cluster.network.jitter_ms: must be in [0, rtt_ms]" in problems
    assert "cluster.network.bandwidth_mbit: must be > 0" in problems
    with pytest.raises(ConfigError, match=r"cluster\.network\.rtt: unknown key; did you mean"):
        parse_config({"cluster": {"network": {"rtt": 3}}})


def test_a_payload_file_is_found_beside_the_config(tmp_path: Path) -> None:
    """`workload.payloads.file` is relative to the config file, not the working directory; its
    mean value size becomes `message_bytes`."""
    (tmp_path / "samples.jsonl").write_text("ab\nabcdef\n")
    config = tmp_path / "c.yaml"
    config.write_text("workload: {payloads: {file: samples.jsonl}}\n")
    spec = load_config(config)
    assert spec.workload.payloads is not None
    assert spec.workload.payloads.file == str(tmp_path / "samples.jsonl")
    assert spec.workload.message_bytes == 4


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("missing", "workload.payloads.file: cannot read {path}: No such file or directory"),
        ("empty", "workload.payloads.file: {path}: the file is empty"),
        ("under-a-file", "workload.payloads.file: cannot read {path}: Not a directory"),
        ("not-records", "workload.payloads.file: {path}, line 1: not a JSON object"),
        ("empty-dir", "workload.payloads.file: {path}: the directory holds no files"),
    ],
)
def test_an_unusable_payload_file_is_named_with_its_path(
    setup: str, expected: str, tmp_path: Path
) -> None:
    """Missing, empty, unreadable (a path under a file) or malformed payloads: one problem
    naming field and file."""
    path = tmp_path / "samples"
    fmt = "values"
    if setup == "empty":
        path.write_bytes(b"")
    elif setup == "under-a-file":  # an OSError also as root, whom file modes do not stop
        (tmp_path / "a-file").write_text("x\n")
        path = tmp_path / "a-file" / "samples"
    elif setup == "not-records":
        path.write_text("plain text\n")
        fmt = "records"
    elif setup == "empty-dir":
        path.mkdir()
    found = problems({"workload": {"payloads": {"file": str(path), "format": fmt}}})
    assert len(found) == 1
    assert found[0].startswith(expected.format(path=path)), found


def test_payload_and_size_fields_that_cannot_work_are_refused() -> None:
    """A lognormal without p99 or with one no lognormal has, a p99 on an exponential, sizes
    beside payloads, both or neither of file and topic: each named by its path."""
    found = problems({"workload": {"message_bytes": {"distribution": "lognormal", "mean": 800}}})
    assert found == ("workload.message_bytes.p99: required for distribution: lognormal",)
    found = problems({"workload": {"message_bytes": {"mean": 800, "p99": 20000}}})
    assert found == (
        "workload.message_bytes.p99: must be in [mean, 14.97 x mean] = [800, 11,975] (no "
        "lognormal with mean 800 has a p99 outside it), got 20000",
    )
    found = problems({"workload": {"message_bytes": {"distribution": "exponential", "mean": 9,
                                                     "p99": 50}}})  # fmt: skip
    assert found[0].startswith(
        "workload.message_bytes.p99: only applies to distribution: lognormal"
    )
    found = problems({"workload": {"message_bytes": "big"}})
    assert found == ("workload.message_bytes: must be an integer or a mapping, got 'big'",)
    found = problems({"workload": {"message_bytes": {"mean": 0, "p99": 1, "distrbution": "x"}}})
    assert "workload.message_bytes.distrbution: unknown key; did you mean 'distribution'?" in found
    found = problems({"workload": {"payloads": {"topic": "orders", "file": "x"}}})
    assert "workload.payloads: set exactly one of file or topic" in found
    found = problems({"workload": {
        "payloads": {"topic": "a b", "sample_records": 0},
        "message_bytes": {"distribution": "exponential", "mean": 10}}})  # fmt: skip
    assert set(found) == {
        "workload.message_bytes: a size distribution applies only without workload.payloads "
        "(the payloads' own sizes are used), got a distribution",
        "workload.payloads.topic: must be a topic name, got 'a b'",
        "workload.payloads.sample_records: must be in [1, 1,000,000], got 0",
    }


def test_a_size_distribution_can_be_set_from_the_command_line() -> None:
    """`--set workload.message_bytes.mean=…` reaches the distribution's fields."""
    spec = parse_config(
        {"workload": {"message_bytes": {"distribution": "lognormal", "mean": 800, "p99": 8000}}},
        overrides=["workload.message_bytes.mean=1000"],
    )
    assert spec.workload.mean_message_bytes == 1000


def test_a_bad_payload_file_is_named_beside_the_other_problems(tmp_path: Path) -> None:
    """The payload file is checked even when other fields are wrong: every problem at once."""
    found = problems({"consumer": {"members": 0},
                      "workload": {"payloads": {"file": str(tmp_path / "none")}}})  # fmt: skip
    assert found[0] == "consumer.members: must be an integer in [1, 64], got 0"
    assert found[1].startswith(f"workload.payloads.file: cannot read {tmp_path / 'none'}")
