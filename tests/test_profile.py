"""`tuner profile`: the processing model recovered from runs of known models (real broker) and
from a real Prometheus, written as a study config that loads; bad input exits 2."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from tests.helpers import Prometheus, measured, running_prometheus, small_spec, trial
from tuner import metrics
from tuner.broker import free_port
from tuner.cli import main
from tuner.config import load_config
from tuner.profile import WorkSample, fit
from tuner.profile.write import _num


def _samples(
    per_record_ms: float, per_batch_ms: float, sizes: tuple[int, ...], *, seed: int = 1
) -> list[WorkSample]:
    """Per-second samples of batches of `sizes`, with 1 ms of timing noise per batch."""
    rng = random.Random(seed)
    out = []
    for size in sizes:
        for _ in range(8):
            batches = rng.randint(5, 15)
            seconds = sum(
                (size * per_record_ms + per_batch_ms + rng.gauss(0, 1.0)) / 1000
                for _ in range(batches)
            )
            out.append(WorkSample(records=size * batches, batches=batches, seconds=seconds,
                                  blocked_seconds=0.0))  # fmt: skip
    return out


def test_fit_separates_per_record_and_per_batch_cost() -> None:
    """Batches of two sizes: the regression recovers both costs within 5%, and `async`."""
    cost = fit(_samples(0.5, 30.0, (50, 400)), source="plain values")
    assert cost.separated
    assert cost.per_record_ms.value == pytest.approx(0.5, rel=0.05)
    assert cost.per_batch_ms.value == pytest.approx(30.0, rel=0.05)
    assert cost.mode == "async"


def test_fit_says_when_batches_of_one_size_cannot_separate_the_costs() -> None:
    """All batches the same size: no split is claimed; the total per record is what is written."""
    cost = fit(_samples(0.5, 30.0, (200,)), source="plain values")
    assert not cost.separated
    assert cost.per_record_ms.value == pytest.approx(0.5 + 30.0 / 200, rel=0.05)
    assert cost.per_batch_ms.value == 0.0
    assert "NOT separated" in cost.per_record_ms.sure


def test_fit_calls_a_handler_that_blocks_the_loop_cpu() -> None:
    """A loop blocked for most of the processing time is `cpu`; none of it is `async`."""
    rows = [WorkSample(records=100, batches=2, seconds=0.2, blocked_seconds=0.19)] * 4
    assert fit(rows, source="plain values").mode == "cpu"
    rows = [WorkSample(records=100, batches=2, seconds=0.2, blocked_seconds=0.001)] * 4
    assert fit(rows, source="plain values").mode == "async"


def test_numbers_are_written_with_three_significant_digits() -> None:
    """What the config holds: 0.2025 → 0.203, 19.88 → 19.9, 436680 → 437000."""
    assert (_num(0.2025), _num(19.88), _num(436680.0), _num(0.0)) == (
        "0.203",
        "19.9",
        "437000",
        "0",
    )


def _profile_runs(
    tmp_path: Path, bootstrap_servers: str, processing: dict[str, Any], sizes: tuple[int, ...]
) -> dict[str, Any]:
    """`tuner run --json` results of `processing` at each max.poll.records, profiled by the
    command: the written config, loaded back as YAML."""
    paths = []
    for size in sizes:
        spec = small_spec(
            "profile",
            consumer={"members": 2, "processing": processing,
                      "settings": {"max.poll.records": size}},
            workload={"prefill_records": 30000},
            trial={"warmup_s": 1, "measure_s": 3},
        )  # fmt: skip
        result = trial(spec, bootstrap_servers)
        assert result.work is not None
        assert not result.backlog_emptied
        path = tmp_path / f"run{size}.json"
        path.write_text(json.dumps(result.to_dict()))
        paths += ["--run", str(path)]
    out = tmp_path / "profiled.yaml"
    assert main(["profile", *paths, "--out", str(out)]) == 0
    load_config(out)  # a study config as `tuner optimize` reads it
    data: dict[str, Any] = yaml.safe_load(out.read_text())
    return data


MODELS: dict[str, tuple[dict[str, Any], tuple[int, int]]] = {
    "constant, per-batch cost, async": (
        {"per_record_ms": 0.2, "per_batch_ms": 20, "mode": "async"},
        (40, 400),
    ),
    "lognormal, no per-batch cost, async": (
        {"per_record_ms": 0.3, "distribution": "lognormal", "p99_ms": 1.5, "mode": "async"},
        (40, 400),
    ),
    # A `cpu` spin ends late by a scheduler slice on a busy machine: a per-batch cost well
    # above that keeps the check about the profile, not the machine.
    "constant, per-batch cost, cpu": (
        {"per_record_ms": 1.0, "per_batch_ms": 100, "mode": "cpu"},
        (20, 200),
    ),
}


@pytest.mark.integration
@pytest.mark.parametrize("model", MODELS)
def test_profile_of_runs_recovers_the_model(
    tmp_path: Path, bootstrap_servers: str, model: str
) -> None:
    """Runs at two batch sizes of a known model: per-record and per-batch cost within ±15% (a
    zero per-batch cost within 15% of a batch's time), the right mode, and the group's shape."""
    processing, sizes = MODELS[model]
    data = _profile_runs(tmp_path, bootstrap_servers, processing, sizes)
    got = data["consumer"]["processing"]
    assert got["mode"] == processing["mode"]
    assert got["per_record_ms"] == pytest.approx(processing["per_record_ms"], rel=0.15)
    per_batch = processing.get("per_batch_ms", 0)
    if per_batch:
        assert got["per_batch_ms"] == pytest.approx(per_batch, rel=0.15)
    else:
        assert got["per_batch_ms"] <= 0.15 * processing["per_record_ms"] * min(sizes)
    assert data["consumer"]["members"] == 2
    assert data["topic"]["partitions"] == 4
    assert data["workload"]["message_bytes"] == 200


@pytest.mark.integration
def test_profiled_config_is_accepted_by_advise(tmp_path: Path, bootstrap_servers: str) -> None:
    """`tuner advise` reads the profile as a config (its current settings fixed)."""
    spec = small_spec("profileadvise", consumer={"processing": {"per_record_ms": 0.2}})
    run = tmp_path / "run.json"
    run.write_text(json.dumps(trial(spec, bootstrap_servers).to_dict()))
    out = tmp_path / "p.yaml"
    assert main(["profile", "--run", str(run), "--fix-current", "--out", str(out)]) == 0
    assert "NOT separated" in out.read_text()
    assert "max.poll.interval.ms: 300000  # current" in out.read_text()
    assert main(["advise", str(out)]) == 0


def test_a_run_file_of_another_shape_exits_2(tmp_path: Path, capsys: Any) -> None:
    """A JSON that is not a run result, or a result from before `work` existed: exit 2."""
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"trials": []}))
    assert main(["profile", "--run", str(other), "--out", str(tmp_path / "x.yaml")]) == 2
    assert "not a result written by `tuner run --json`" in capsys.readouterr().err
    old = tmp_path / "old.json"
    old.write_text(json.dumps(measured(1000.0).to_dict()))
    assert main(["profile", "--run", str(old), "--out", str(tmp_path / "x.yaml")]) == 2
    assert "holds no per-interval work" in capsys.readouterr().err
    assert not (tmp_path / "x.yaml").exists()


def test_an_unreachable_prometheus_exits_2(tmp_path: Path, capsys: Any) -> None:
    """Nothing listens at the URL: exit 2, naming it."""
    url = f"http://127.0.0.1:{free_port()}"
    argv = ["profile", "--prometheus", url, "--group", "g", "--out", str(tmp_path / "x.yaml")]
    assert main(argv) == 2
    assert f"no answer from Prometheus at {url}" in capsys.readouterr().err


@pytest.mark.parametrize("url", ["ftp://nowhere", "127.0.0.1:9090", "http://:9090"])
def test_a_prometheus_flag_that_is_not_an_http_url_exits_2(
    url: str, tmp_path: Path, capsys: Any
) -> None:
    """A --prometheus that is not http(s)://host[:port] is refused as bad input, the flag named,
    before anything is asked (not reported as a Prometheus that did not answer)."""
    argv = ["profile", "--prometheus", url, "--group", "g", "--out", str(tmp_path / "x.yaml")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"--prometheus: expected http://host[:port] or https://host[:port], got {url!r}" in err
    assert "no answer" not in err


@pytest.fixture
def exported(tmp_path: Path) -> Iterator[tuple[CollectorRegistry, Prometheus]]:
    """The tuner's exporter (our names and the Java client's) and a real Prometheus scraping it
    every second."""
    registry = CollectorRegistry()
    with (
        metrics.serve(registry, host="127.0.0.1", port=0, java_compatible=True) as port,
        running_prometheus(tmp_path, {"tuner": port}) as server,
    ):
        yield registry, server


def _profile_prometheus(
    tmp_path: Path,
    bootstrap_servers: str,
    exported: tuple[CollectorRegistry, Prometheus],
    *,
    measure_s: float,
    last_s: float,
    names: str,
    extra: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A run of 0.2 ms per record + 20 ms per batch of 100 records, scraped by a real
    Prometheus, profiled from its last `last_s` seconds: the written config, as YAML."""
    registry, server = exported
    spec = small_spec(
        "profileprom",
        consumer={"members": 2, "processing": {"per_record_ms": 0.2, "per_batch_ms": 20},
                  "settings": {"max.poll.records": 100}},
        workload={"prefill_records": int(5000 * measure_s)},
        trial={"warmup_s": 1, "measure_s": measure_s},
    )  # fmt: skip
    result = trial(spec, bootstrap_servers, registry)
    time.sleep(3)  # the last scrapes
    out = tmp_path / f"{names}.yaml"
    argv = ["profile", "--prometheus", server.url, "--window", f"{last_s:.0f}s", "--step", "3s"]
    group = ["--group", result.group_id, "--names", names, *extra]
    assert main([*argv, *group, "--out", str(out)]) == 0
    assert main([*argv, "--group", "no-such-group", "--out", str(tmp_path / "x.yaml")]) == 2
    data: dict[str, Any] = yaml.safe_load(out.read_text())
    assert data["consumer"]["members"] == 2
    assert data["topic"]["partitions"] == 4
    assert data["workload"]["message_bytes"] == 200
    return data


@pytest.mark.e2e
@pytest.mark.integration
def test_profile_from_prometheus_reads_the_group(
    tmp_path: Path, bootstrap_servers: str, exported: tuple[CollectorRegistry, Prometheus]
) -> None:
    """Our names in a real Prometheus: members, partitions, record size, the mode, and (one
    batch size) the cost per record at that size within ±15%; an unknown group exits 2."""
    data = _profile_prometheus(
        tmp_path, bootstrap_servers, exported, measure_s=8, last_s=15, names="tuner"
    )
    got = data["consumer"]["processing"]
    assert got["mode"] == "async"
    assert got["per_record_ms"] == pytest.approx(0.2 + 20 / 100, rel=0.15)


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.integration
def test_profile_from_prometheus_reads_java_names(
    tmp_path: Path, bootstrap_servers: str, exported: tuple[CollectorRegistry, Prometheus]
) -> None:
    """The Java client's names: the same shape, the stated mode, and the cost per record within
    ±15% once the client's 30 s sample windows hold only the steady run."""
    data = _profile_prometheus(
        tmp_path, bootstrap_servers, exported, measure_s=45, last_s=20, names="java",
        extra=("--mode", "cpu"),
    )  # fmt: skip
    got = data["consumer"]["processing"]
    assert got["mode"] == "cpu"
    assert got["per_record_ms"] == pytest.approx(0.2 + 20 / 100, rel=0.15)
