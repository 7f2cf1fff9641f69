"""The example services of `examples/services/`, each written as its framework's documentation
shows and run unchanged in its own virtualenv, as a trial's group on the real broker: the
trial's max.poll.records is what the framework's client demonstrably used, the broker's
offsets agree, and the service's own group and topic never appear on the cluster."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import pytest

from tests.helpers import cluster_groups, topic_exists, trial, unique
from tests.service_venvs import EXAMPLES, service_python
from tuner.config import StudySpec, load_config
from tuner.consumer.service import group as service_group
from tuner.trial.run import TrialError, TrialResult

pytestmark = pytest.mark.integration

TRIAL_BATCH = 7
"""The trial's max.poll.records: each service asks for 100 records per call."""
SERVICE_GROUP, SERVICE_TOPIC = "billing", "orders"
"""What the services' own code names."""


def _example(
    name: str, bootstrap_servers: str, python: Path | str, *args: str, prefill: int = 150_000
) -> StudySpec:
    """The example's own config, as `tuner run --set …` would change it: this broker, a
    topic of its own, a short trial, the venv's interpreter in the service's command."""
    command = ", ".join([str(python), *args])
    return load_config(
        EXAMPLES / name / "config.yaml",
        overrides=[
            f"cluster.bootstrap_servers={bootstrap_servers}",
            f"topic.name={unique(name)}",
            f"workload.prefill_records={prefill}",
            "trial.warmup_s=1",
            "trial.measure_s=3",
            f"consumer.settings.max.poll.records={TRIAL_BATCH}",
            f"consumer.service.command=[{command}]",
        ],
    )


def _check_ran_as_the_trial(
    spec: StudySpec, bootstrap_servers: str, caplog: pytest.LogCaptureFixture
) -> TrialResult:
    with caplog.at_level(logging.WARNING, logger=service_group.__name__):
        result = trial(spec, bootstrap_servers)
    # Each member stopped by itself on SIGTERM (its held polls let its stop run), not killed.
    assert not [r for r in caplog.records if "did not stop" in r.getMessage()]
    assert result.throughput_records_per_s > 0
    assert not result.backlog_emptied
    per_poll = result.poll.records_per_poll_avg
    assert per_poll is not None
    # The subscriber's max_records=100 gave way to the trial's 7, in batches (not one by one).
    assert 3 < per_poll <= TRIAL_BATCH, per_poll
    offsets = result.offsets
    # Its stop on SIGTERM made its last commit: of every record its client handed out.
    assert 0 < offsets.committed_total == offsets.consumed_total < offsets.end_offsets_total
    assert SERVICE_GROUP not in asyncio.run(cluster_groups(bootstrap_servers))
    # FastStream creates its subscribers' topics: the trial's was created in its place.
    assert not topic_exists(bootstrap_servers, SERVICE_TOPIC)
    return result


@pytest.mark.parametrize("example", ["faststream_aiokafka", "faststream_confluent"])
def test_a_faststream_service_runs_as_the_trials_group(
    bootstrap_servers: str, example: str, caplog: pytest.LogCaptureFixture
) -> None:
    """`faststream run service:app`, on aiokafka and on confluent-kafka: a batch subscriber
    of group `billing` on `orders`, its broker's admin client creating the topic and its
    producer connected."""
    python, _ = service_python(example)
    spec = _example(example, bootstrap_servers, python, "-m", "faststream", "run", "service:app")
    result = _check_ran_as_the_trial(spec, bootstrap_servers, caplog)
    # What the service's own code sets, said readably: FastStream passes every keyword its
    # client has, most at the client's own defaults, some None, some objects; none of those.
    service = result.service
    assert service is not None
    assert not [p for p in service.passed if p.endswith("=None") or "<" in p], service.passed
    if example == "faststream_aiokafka":  # aiokafka's keywords: their defaults are readable
        assert "getmany(max_records=100)" in service.passed
        assert service.at_defaults > 10, service
        assert f"({service.at_defaults} more at aiokafka's defaults)" in service.line()


@pytest.mark.parametrize(
    ("example", "framework"), [("quixstreams", "quixstreams"), ("faust", "faust")]
)
def test_a_framework_that_writes_topics_of_its_own_is_refused_naming_why(
    bootstrap_servers: str, example: str, framework: str
) -> None:
    """Quix Streams and Faust create and write topics the tuner does not own: the service is
    stopped at the framework's import, before it finds the package (so the tuner's own
    interpreter, without it, shows the same) and before it connects, with the reason."""
    spec = _example(
        example,
        bootstrap_servers,
        sys.executable,
        str(EXAMPLES / example / "service.py"),
        prefill=1000,
    )
    with pytest.raises(TrialError, match=f"refused: the service imports {framework}") as e:
        trial(spec, bootstrap_servers)
    assert "topic" in str(e.value)
    assert SERVICE_GROUP not in asyncio.run(cluster_groups(bootstrap_servers))
