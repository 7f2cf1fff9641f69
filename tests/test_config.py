"""Loading the YAML config: every mistake is named with its path, all at once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tuner.config import ConfigError, NetworkSpec, StudySpec, load_config, parse_config
from tuner.space import search_space

ROOT = Path(__file__).resolve().parents[1]


def problems(data: object, **kwargs: object) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as err:
        parse_config(data, **kwargs)  # type: ignore[arg-type]
    return err.value.problems


def test_shipped_configs_load() -> None:
    """Every config in configs/ loads as shipped."""
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        if path.name in {"prometheus.yml", "alerts.yml"}:
            continue
        assert isinstance(load_config(path), StudySpec), path


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
    spec = parse_config({"cluster": {"security": security}}, environ={"KT_PASSWORD": "s3cret"})
    assert spec.cluster.security.password == "s3cret"
    assert "s3cret" not in repr(spec)
    found = problems({"cluster": {"security": security}}, environ={})
    assert "cluster.security.password: environment variable KT_PASSWORD is not set" in found


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
    assert load_config(path).topic.name.startswith("tuner.")


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
