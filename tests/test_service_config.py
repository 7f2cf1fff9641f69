"""`consumer.service`: the team's own process as the members, as the config loader reads it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuner.config import ConfigError, load_config, parse_config


def _problems(consumer: dict[str, object]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config({"consumer": consumer})
    return list(caught.value.problems)


def test_a_command_string_is_split_as_a_shell_would_and_cwd_is_the_configs_directory(
    tmp_path: Path,
) -> None:
    """`command: python worker.py --name "a b"` becomes four words; `cwd` defaults to the
    config file's directory and a relative one is resolved against it."""
    (tmp_path / "svc").mkdir()
    config = tmp_path / "study.yaml"
    config.write_text(
        'consumer:\n  service:\n    command: python worker.py --name "a b"\n'
        "    topic: orders\n    env: {BILLING_DB: billing.db}\n"
    )
    service = load_config(config).consumer.service
    assert service is not None
    assert service.command == ("python", "worker.py", "--name", "a b")
    assert service.topic == "orders"
    assert service.cwd == str(tmp_path)
    assert dict(service.env) == {"BILLING_DB": "billing.db"}
    config.write_text(
        "consumer:\n  service:\n    command: [python, w.py]\n    topic: orders\n    cwd: svc\n"
    )
    service = load_config(config).consumer.service
    assert service is not None
    assert service.command == ("python", "w.py")
    assert service.cwd == str(tmp_path / "svc")


@pytest.mark.parametrize("other", ["handler", "processing"])
def test_service_and_another_way_of_running_members_are_refused_naming_both(other: str) -> None:
    """`service` with `handler` or `processing`: one problem naming both paths."""
    value: object = "json:loads" if other == "handler" else {"per_record_ms": 1}
    problems = _problems({"service": {"command": "x", "topic": "orders"}, other: value})
    (problem,) = problems
    assert problem.startswith("consumer.service: ")
    assert f"consumer.{other}" in problem


def test_each_bad_field_is_named_by_its_path() -> None:
    """A missing command and topic, a bad topic name, a non-string word or env value, an
    unsplittable command and a missing cwd each give a problem naming the field."""
    assert _problems({"service": {}}) == [
        "consumer.service.command: is required: the command line that starts one member of "
        "your service (a string, or a list of its words)",
        "consumer.service.topic: is required: the topic your service's code subscribes to "
        "(the trial's topic replaces it)",
    ]
    assert _problems({"service": {"command": "x", "topic": "or ders"}}) == [
        "consumer.service.topic: must be a topic name, 1-249 characters of [a-zA-Z0-9._-], "
        "got 'or ders'"
    ]
    assert _problems({"service": {"command": ["python", 3], "topic": "t"}}) == [
        "consumer.service.command[1]: must be a string, got 3"
    ]
    assert _problems({"service": {"command": "x", "topic": "t", "env": {"A": 1}}}) == [
        "consumer.service.env.A: must be a string, got 1"
    ]
    assert _problems({"service": {"command": "x", "topic": "t", "env": ["A=1"]}}) == [
        "consumer.service.env: must be a mapping of names to strings, got ['A=1']"
    ]
    assert _problems({"service": {"command": "x", "topic": "t", "env": {"1A": "x"}}}) == [
        "consumer.service.env.1A: must be an environment variable's name (letters, digits "
        "and _, not starting with a digit)"
    ]
    (split,) = _problems({"service": {"command": 'python "w.py', "topic": "t"}})
    assert split.startswith("consumer.service.command: cannot be split into words")
    (cwd,) = _problems({"service": {"command": "x", "topic": "t", "cwd": "no/such/dir"}})
    assert cwd.startswith("consumer.service.cwd: no directory ")
    assert cwd.endswith("got 'no/such/dir'")


def test_a_config_without_a_service_has_none() -> None:
    """The processing model stays the default: no `service` means None."""
    assert parse_config({}).consumer.service is None
