"""The `tuner` command: exit codes, messages, and `tuner run` end to end on the real broker."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import unique
from tuner.broker import free_port
from tuner.cli import main


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_bad_config_exits_2_with_every_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A config with several mistakes prints each with its path and exits 2, starting nothing."""
    path = _write(
        tmp_path,
        "topic: {name: orders, partitons: 3}\n"
        "consumer:\n  settings: {heartbeat.interval.ms: 4000}\n",
    )
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert "topic.partitons: unknown key; did you mean 'partitions'?" in err
    assert "consumer.settings.heartbeat.interval.ms: must be less than" in err


def test_missing_env_var_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A `${VAR}` that is not set is named, exit code 2."""
    path = _write(tmp_path, "cluster: {bootstrap_servers: '${KT_NOT_SET_ANYWHERE}'}\n")
    assert main(["run", str(path)]) == 2
    assert "environment variable KT_NOT_SET_ANYWHERE is not set" in capsys.readouterr().err


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    """`--help` works for the command and each subcommand."""
    for argv in (["--help"], ["run", "--help"], ["broker", "--help"], ["broker", "up", "--help"]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 0
        assert "usage: tuner" in capsys.readouterr().out


@pytest.mark.integration
def test_run_prints_summary_writes_json_and_serves_metrics(
    tmp_path: Path, bootstrap_servers: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`tuner run` measures a real group, prints it, writes the JSON and serves /metrics."""
    port = free_port()
    path = _write(
        tmp_path,
        f"cluster: {{bootstrap_servers: '{bootstrap_servers}'}}\n"
        f"topic: {{name: {unique('cli')}, partitions: 3}}\n"
        "workload: {prefill_records: 30000, message_bytes: 100}\n"
        "consumer:\n  members: 2\n  processing: {per_record_ms: 0.5}\n"
        "  settings: {max.poll.records: 500}\n"
        "trial: {warmup_s: 1, measure_s: 3}\n"
        f"metrics: {{port: {port}}}\n",
    )
    out_json = tmp_path / "r.json"
    scraped: list[str] = []

    import threading  # noqa: PLC0415 - only this test scrapes from a thread

    def scrape() -> None:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as r:
                    body = r.read().decode()
                if "tuner_consumer_records_consumed_total{" in body:
                    scraped.append(body)
                    return
            except OSError:
                pass
            threading.Event().wait(0.2)

    scraper = threading.Thread(target=scrape)
    scraper.start()
    code = main(["run", str(path), "--json", str(out_json), "--quiet"])
    scraper.join()
    out = capsys.readouterr().out
    assert code == 0
    assert "throughput" in out
    assert "rebalances       0" in out
    result = json.loads(out_json.read_text())
    assert 0 < result["offsets"]["consumed_total"] == result["offsets"]["committed_total"]
    assert result["backlog_emptied"] is False
    assert result["throughput_records_per_s"] > 0
    for key in ("settings", "e2e_latency_ms", "fetch", "poll", "lag_max", "errors"):
        assert key in result
    assert result["settings"]["max.poll.records"] == 500
    assert result["settings"]["fetch.max.wait.ms"] == 500  # aiokafka default filled in
    assert scraped, "the exporter never served consumer samples during the run"
