"""The plan the tuner wrote for this process, and the rules every wrapped client follows:
which topic the service may name, and how a refusal ends the process."""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

REFUSED_EXIT = 78
"""The exit code of a service the tuner refused to run (EX_CONFIG), whatever the service
does with exceptions (a framework may retry a failed subscribe for ever)."""
SECRET_WORDS = ("password", "secret", "token", "key.pem", "private")
"""A passed argument whose name holds one of these is recorded as `***`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """What one service process runs with inside a trial."""

    bootstrap_servers: str
    group_id: str
    service_topic: str
    """The topic the service's code names: it becomes `trial_topic`."""
    trial_topic: str
    max_records: int | None
    """The trial's max.poll.records, for the per-call arguments that mean the same."""
    clients: Mapping[str, Mapping[str, Any]]
    """Client name → its configuration from the trial's settings (kwargs or librdkafka's conf)."""
    report_fd: int | None
    """The inherited pipe the reports go to (None: not reported)."""
    report_inode: int | None
    """The pipe's inode, as the tuner saw it."""
    control_fd: int | None = None
    """The inherited pipe the tuner asks on to hold the polls before it stops the service."""
    control_inode: int | None = None

    def report_pipe(self) -> int | None:
        """`report_fd` if this process holds the tuner's pipe under it, else None (a worker
        that did not inherit it, started by spawn, may hold another file there)."""
        return _inherited(self.report_fd, self.report_inode)

    def control_pipe(self) -> int | None:
        """`control_fd` if this process holds the tuner's pipe under it, else None."""
        return _inherited(self.control_fd, self.control_inode)

    def config(self, client: str) -> dict[str, Any]:
        """The trial's configuration of `client`, decoded (assignor classes imported)."""
        return {k: decode(v) for k, v in self.clients.get(client, {}).items()}

    def topics(
        self, topics: Iterable[str], *, where: str, refuse: Callable[[str], None]
    ) -> list[str]:
        """The trial's topic for the service's: any other topic is refused with its name (the
        tuner reads and writes only topics it owns)."""
        names = [topics] if isinstance(topics, str) else list(topics)
        other = [t for t in names if t != self.service_topic]
        if other:
            refuse(
                f"the service subscribes to {', '.join(map(repr, other))} in {where}; the tuner "
                f"runs it on the trial's topic in place of service.topic {self.service_topic!r} "
                "only, and consumes no topic it does not own"
            )
        return [self.trial_topic] if names else []


def load(path: str) -> Plan:
    """Read the plan; a missing field is an error (the tuner and this bootstrap ship together)."""
    with open(path, encoding="utf-8") as f:
        raw = json.load(f)
    return Plan(
        bootstrap_servers=str(raw["bootstrap_servers"]),
        group_id=str(raw["group_id"]),
        service_topic=str(raw["service_topic"]),
        trial_topic=str(raw["trial_topic"]),
        max_records=raw["max_records"],
        clients=raw["clients"],
        report_fd=raw["report_fd"],
        report_inode=raw["report_inode"],
        control_fd=raw.get("control_fd"),
        control_inode=raw.get("control_inode"),
    )


def _inherited(fd: int | None, inode: int | None) -> int | None:
    if fd is None:
        return None
    try:
        same = os.fstat(fd).st_ino == inode
    except OSError:
        return None
    return fd if same else None


def decode(value: object) -> object:
    """A value as the client takes it: `{"classes": ["module:Name", ...]}` is a tuple of those
    classes (the assignors), imported from the service's own client library."""
    if isinstance(value, dict) and set(value) == {"classes"}:
        return tuple(_imported(ref) for ref in value["classes"])
    return value


def _imported(ref: str) -> object:
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


def recorded(values: Mapping[str, object]) -> dict[str, object]:
    """What the service passed, as JSON can carry it, secrets masked."""
    return {
        k: "***" if any(w in k.lower() for w in SECRET_WORDS) else jsonable(v)
        for k, v in values.items()
    }


def jsonable(value: object) -> object:
    """`value` if JSON carries it as it is, else its repr (a deserializer, an assignor class)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return repr(value)


def stop(message: str, on_stop: Callable[[str], None]) -> None:
    """End the process: the service asked for what the tuner must not do."""
    text = f"tuner: refused: {message}"
    on_stop(text)
    sys.stderr.write(text + "\n")
    sys.stderr.flush()
    os._exit(REFUSED_EXIT)
