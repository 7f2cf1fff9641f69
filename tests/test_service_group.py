"""The team's service as a trial's consumer group: its members' records measured as the
tuner's own members' are, their failures failing the trial with their output, and none of
their processes left after it."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from tests.helpers import Process, alive, cmdline, descendants, small_spec, trial
from tuner.config import StudySpec
from tuner.consumer.service import group as service_group
from tuner.trial.run import TrialError

pytestmark = pytest.mark.integration

SERVICES = Path(__file__).parent / "services"


def _spec(script: str, **sections: object) -> StudySpec:
    service = {"command": [sys.executable, str(SERVICES / script)], "topic": "orders"}
    consumer = {"members": 2, "service": service, **sections.pop("consumer", {})}  # type: ignore[dict-item]
    return small_spec("svc-group", consumer=consumer, **sections)


def test_a_service_is_the_trials_group_and_its_records_are_the_brokers_offsets(
    bootstrap_servers: str,
) -> None:
    """Two kafka-python members read the trial's backlog: the trial is capacity-bound, its
    throughput positive, what they consumed is what the group committed (the members hold
    their polls and report before they are stopped), the lag is the broker's, and no member
    process is left."""
    seen: set[Process] = set()

    async def watch() -> None:
        while True:
            seen.update(
                p for p in descendants(os.getpid()) if "billing_kafka_python" in cmdline(p[0])
            )
            await asyncio.sleep(0.2)

    spec = _spec(
        "billing_kafka_python.py",
        workload={"prefill_records": 200_000},
        consumer={"settings": {"max.poll.records": 100}},
    )
    result = trial(spec, bootstrap_servers, alongside=watch)
    assert len(seen) == 2, seen
    assert not alive(seen)
    assert not result.backlog_emptied
    assert result.throughput_records_per_s > 0
    offsets = result.offsets
    assert offsets.committed_total == offsets.consumed_total < offsets.end_offsets_total
    assert result.poll.records_per_poll_avg is not None
    assert result.poll.records_per_poll_avg <= 100
    assert result.poll.loop_blocked_ms_max is None  # the service's loop is its own: not timed
    # No member reads lag: the broker's (the backlog the members left) is the trial's.
    assert result.lag_from_broker
    assert 0 < result.lag_max <= offsets.end_offsets_total - offsets.committed_total


def test_a_service_that_creates_no_consumer_fails_the_trial_naming_its_command(
    bootstrap_servers: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No Kafka consumer within the bound: the trial fails saying so, with the service's
    last output line."""
    monkeypatch.setattr(service_group, "CREATE_TIMEOUT_S", 2.0)
    created = r"no Kafka consumer was created by .*no_consumer\.py"
    with pytest.raises(TrialError, match=created) as e:
        trial(_spec("no_consumer.py"), bootstrap_servers)
    assert "within 2 s" in str(e.value)
    assert "waiting for the database" in str(e.value)


def test_a_service_that_exits_mid_trial_fails_it_with_its_exit_code_and_last_line(
    bootstrap_servers: str,
) -> None:
    """A member that exits 1 while the trial runs fails it with the code and its stderr."""
    with pytest.raises(TrialError, match=r"crashes\.py exited with code 1 during the trial") as e:
        trial(_spec("crashes.py", workload={"prefill_records": 200_000}), bootstrap_servers)
    assert "KeyError 'currency' in order 4711" in str(e.value)
