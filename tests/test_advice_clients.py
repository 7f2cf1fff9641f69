"""The advisor knows which client it advises: a run's result and a live group name their client
and group protocol, whose defaults and rules apply."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from tests.helpers import measured, running_prometheus, small_spec, trial
from tuner import metrics
from tuner.advice import Finding, Severity, advise, from_config, from_run
from tuner.advice import prometheus as prom
from tuner.cli import main
from tuner.clients import ClientName
from tuner.config import parse_config
from tuner.protocol import GroupProtocol
from tuner.trial.result import PollStats, TrialResult


def _advise_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Finding]:
    """`tuner advise … --json`, as code → finding."""
    assert main(["advise", *argv, "--json"]) == 0, capsys.readouterr().err
    out = json.loads(capsys.readouterr().out)
    return {
        f["code"]: Finding(**{**f, "severity": Severity(f["severity"])}) for f in out["findings"]
    }


def _gapped_run(
    client: ClientName | None = None, group_protocol: GroupProtocol | None = None
) -> TrialResult:
    """A run whose polls came 50 s apart, with no setting stated: defaults fill them all."""
    return replace(
        measured(100), poll=PollStats(interval_ms_max=50_000, idle_ratio=None), client=client,
        group_protocol=group_protocol,
    )  # fmt: skip


def test_a_confluent_kafka_run_advised_alone_takes_librdkafkas_defaults(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`advise --run` on a confluent-kafka run's JSON alone: librdkafka's 45 s session (KT105
    fires at 45,000 ms) and no blocked-loop finding (KT102: librdkafka heartbeats on its own
    thread), where aiokafka's 10 s session would make 50 s between polls a heartbeat risk."""
    path = tmp_path / "confluent.json"
    run = _gapped_run(client="confluent-kafka", group_protocol="classic")
    path.write_text(json.dumps(run.to_dict()))
    assert json.loads(path.read_text())["client"] == "confluent-kafka"
    found = _advise_json(["--run", str(path)], capsys)
    assert "KT102" not in found
    assert found["KT105"].value == 45_000
    facts = from_run(TrialResult.from_dict(json.loads(path.read_text())))
    assert facts.client == "confluent-kafka"
    assert facts.settings["queued.max.messages.kbytes"] == 65_536
    assert facts.settings["max.poll.records"] == 500


def test_an_older_run_without_its_client_is_advised_as_aiokafka(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A result stored before the client was recorded reads as aiokafka, classic: 50 s between
    polls against aiokafka's 10 s session is KT102."""
    data = _gapped_run().to_dict()
    for key in ("client", "group_protocol"):
        data.pop(key)
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    found = _advise_json(["--run", str(path)], capsys)
    assert found["KT102"].limit == 10_000
    assert "KT105" not in found
    facts = from_run(TrialResult.from_dict(data))
    assert (facts.client, facts.group_protocol) == (None, "classic")


def test_a_kip848_runs_group_configs_are_not_client_settings_it_stated() -> None:
    """Under KIP-848 a run's session and heartbeat were the group's configs: the facts keep
    their values but do not count them as settings the client stated."""
    run = replace(
        measured(100, settings={"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000,
                                "fetch.min.bytes": 1}),
        client="confluent-kafka", group_protocol="consumer",
    )  # fmt: skip
    facts = from_run(run)
    assert facts.group_protocol == "consumer"
    assert facts.settings["session.timeout.ms"] == 6000
    assert "fetch.min.bytes" in facts.given
    assert not {"session.timeout.ms", "heartbeat.interval.ms"} & facts.given


@pytest.mark.e2e
@pytest.mark.integration
def test_a_live_confluent_kafka_group_is_advised_as_confluent_kafka(
    bootstrap_servers: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A KIP-848 confluent-kafka group scraped by a real Prometheus: its members say their
    client and protocol (`tuner_consumer_client_info`), so the advisor fills the session with
    the broker's KIP-848 default (45 s: KT105) instead of aiokafka's 10 s; the run's JSON
    records the same."""
    spec = small_spec(
        "advclient",
        consumer={"client": "confluent-kafka", "group_protocol": "consumer"},
        trial={"warmup_s": 1, "measure_s": 4},
    )
    registry = CollectorRegistry()
    with (
        metrics.serve(registry, host="127.0.0.1", port=0) as exporter_port,
        running_prometheus(tmp_path, {"tuner": exporter_port}) as server,
    ):
        result = trial(spec, bootstrap_servers, registry)
        time.sleep(2)  # two more scrapes of the final values
        (live,) = prom.read(server.url, group=result.group_id, window_s=60)
        found = _advise_json(
            ["--prometheus", server.url, "--group", result.group_id, "--window", "60s"], capsys
        )
    assert (result.client, result.group_protocol) == ("confluent-kafka", "consumer")
    assert result.to_dict()["group_protocol"] == "consumer"
    assert (live.client, live.group_protocol) == ("confluent-kafka", "consumer")
    assert live.settings["session.timeout.ms"] == 45_000
    assert live.settings["queued.max.messages.kbytes"] == 65_536
    assert found["KT105"].value == 45_000
    assert found["KT105"].group == result.group_id


KIP848_CONFIG = """
consumer:
  client: confluent-kafka
  group_protocol: consumer
  settings: {session.timeout.ms: 10000, heartbeat.interval.ms: 2000,
             partition.assignment.strategy: range, max.poll.records: 100}
"""
"""A KIP-848 group configured as a classic one: three client settings librdkafka refuses."""


def test_kip848s_refused_client_settings_are_a_finding_not_a_refusal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`tuner advise` on a KIP-848 config that sets session, heartbeat and assignor on the
    client: KT113 (risk) names the three, the group configs to set instead with their values
    and the broker's bounds (10,000 ms is under Kafka's 45,000 minimum); `tuner run` still
    refuses the assignor with exit 2."""
    config = tmp_path / "kip848.yaml"
    config.write_text(KIP848_CONFIG)
    found = _advise_json([str(config)], capsys)
    kt113 = found["KT113"]
    assert kt113.severity is Severity.RISK
    assert (kt113.value, kt113.limit) == (3, 0)
    assert "session.timeout.ms 10,000, heartbeat.interval.ms 2,000, partition.assignment." \
        "strategy range: 3" in kt113.arithmetic  # fmt: skip
    assert "--add-config consumer.session.timeout.ms=10000,consumer.heartbeat.interval.ms=2000" \
        in kt113.change  # fmt: skip
    assert "group.consumer.min.session.timeout.ms 45,000 <= consumer.session.timeout.ms" in (
        kt113.change
    )
    assert "10,000 is outside them: change the broker's group.consumer.min.session" in (
        kt113.change
    )
    assert "group.remote.assignor" in kt113.change
    run = ["run", str(config), "--set", "metrics.port=0", "--set", "metrics.producer_port=0"]
    assert main(run) == 2
    assert "consumer.settings.partition.assignment.strategy" in capsys.readouterr().err


def test_kip848_finding_only_for_client_settings_of_a_kip848_group() -> None:
    """KT113 is quiet for the same settings under the classic protocol, for a KIP-848 config
    that leaves them to the group, and for a KIP-848 run (its session was a group config)."""
    settings = {"session.timeout.ms": 10000, "heartbeat.interval.ms": 2000}
    classic = parse_config({"consumer": {"client": "confluent-kafka", "settings": settings}})
    bare = parse_config({"consumer": {"client": "confluent-kafka", "group_protocol": "consumer"}})
    run = replace(measured(100, settings=settings), client="confluent-kafka",
                  group_protocol="consumer")  # fmt: skip
    for quiet in (from_config(classic), from_config(bare), from_run(run)):
        assert "KT113" not in {f.code for f in advise(quiet)}
    kip848 = {"client": "confluent-kafka", "group_protocol": "consumer", "settings": settings}
    assert "KT113" in {f.code for f in advise(from_config(parse_config({"consumer": kip848})))}
