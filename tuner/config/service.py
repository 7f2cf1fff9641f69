"""`consumer.service`: the team's own process as the group's members, as the loader reads it.

`command` may be one string (split as a shell would, without running a shell) or a list of
words; `cwd` is relative to the config file. `service`, `handler` and `processing` say three
different things runs as the members, so a config names one of them.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import MutableMapping
from dataclasses import replace
from itertools import combinations
from pathlib import Path

from tuner.config.spec import ServiceSpec, StudySpec

ALTERNATIVES = ("service", "handler", "processing")
"""What a member runs: the team's service, the user's batch handler, or the simulated model."""
_WHAT = {
    "service": "your service process",
    "handler": "your batch handler",
    "processing": "the simulated model of your processing",
}
_TOPIC_NAME = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")


def service_shorthand(consumer: MutableMapping[str, object], problems: list[str]) -> None:
    """Refuse two of `service`, `handler` and `processing` together (one problem per pair,
    naming both paths), and split a one-string `command` into its words."""
    given = [name for name in ALTERNATIVES if consumer.get(name) is not None]
    for first, second in combinations(given, 2):
        if {first, second} == {"handler", "processing"}:
            continue  # the handler's own shorthand says it, in its words
        problems.append(
            f"consumer.{first}: consumer.{first} and consumer.{second} are alternatives "
            f"({_WHAT[first]}, or {_WHAT[second]}): remove one of them"
        )
    service = consumer.get("service")
    if not isinstance(service, dict) or not isinstance(service.get("command"), str):
        return
    command = service["command"]
    try:
        service["command"] = shlex.split(command)
    except ValueError as exc:
        problems.append(
            f"consumer.service.command: cannot be split into words as a shell would "
            f"({exc}), got {command!r}"
        )
        service["command"] = [command]  # one problem for it, not a "required" too


def service_problems(service: ServiceSpec) -> list[str]:
    """What is wrong with the service's fields, each as `path: message`."""
    problems: list[str] = []
    if not service.command:
        problems.append(
            "consumer.service.command: is required: the command line that starts one "
            "member of your service (a string, or a list of its words)"
        )
    for i, word in enumerate(service.command):
        if not isinstance(word, str) or not word:
            problems.append(
                f"consumer.service.command[{i}]: must be a non-empty string, got {word!r}"
            )
    if not service.topic:
        problems.append(
            "consumer.service.topic: is required: the topic your service's code subscribes "
            "to (the trial's topic replaces it)"
        )
    elif not _TOPIC_NAME.match(service.topic):
        problems.append(
            "consumer.service.topic: must be a topic name, 1-249 characters of "
            f"[a-zA-Z0-9._-], got {service.topic!r}"
        )
    for name in service.env:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            problems.append(
                f"consumer.service.env.{name}: must be an environment variable's name "
                "(letters, digits and _, not starting with a digit)"
            )
    return problems


def with_service(spec: StudySpec, base_dir: Path, problems: list[str]) -> StudySpec:
    """`spec` with the service's `cwd` made absolute against `base_dir` (the config file's
    directory, also the default), which must be a directory."""
    service = spec.consumer.service
    if service is None:
        return spec
    cwd = (base_dir / (service.cwd or ".")).resolve()
    if not cwd.is_dir():
        problems.append(
            f"consumer.service.cwd: no directory {str(cwd)!r} (relative to the config "
            f"file's directory {str(base_dir)!r}), got {service.cwd!r}"
        )
    return replace(spec, consumer=replace(spec.consumer, service=replace(service, cwd=str(cwd))))
