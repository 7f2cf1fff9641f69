"""What the search loop tells its caller about each finished trial."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from tests.helpers import small_spec
from tuner import metrics
from tuner.config import SettingValue
from tuner.metrics.phases import Outcome
from tuner.search.events import TrialEvent
from tuner.search.optimize import _emit, _Step


def _changed(client: str, settings: dict[str, SettingValue]) -> dict[str, SettingValue]:
    spec = small_spec("events", consumer={"client": client})
    events: list[TrialEvent] = []
    study_metrics = metrics.StudyMetrics(CollectorRegistry(), study="events")
    step = _Step(outcome=Outcome.FAILED, reason="not run")
    _emit(events.append, study_metrics, [], spec, 0.0, 0, settings, step)
    return dict(events[0].changed)


@pytest.mark.parametrize(
    ("client", "default_ms", "other_ms"),
    [("aiokafka", 10000, 45000), ("confluent-kafka", 45000, 10000)],
)
def test_a_trials_changes_are_taken_against_the_measured_clients_defaults(
    client: str, default_ms: int, other_ms: int
) -> None:
    """A session timeout at the study's client's default is no change, one at the other
    client's default is (a confluent-kafka trial at 10000 ms changed librdkafka's 45 s)."""
    assert _changed(client, {"session.timeout.ms": default_ms, "fetch.min.bytes": 4096}) == {
        "fetch.min.bytes": 4096
    }
    assert _changed(client, {"session.timeout.ms": other_ms}) == {"session.timeout.ms": other_ms}
