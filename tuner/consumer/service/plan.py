"""The plan a service process runs with inside a trial, and the environment that starts it.

The plan is a JSON file the bootstrap (`bootstrap/`, on the child's PYTHONPATH) reads at
interpreter start: the trial's cluster, group, topic, and each client's configuration from the
trial's settings. Every client gets its section, since which one the service imports is known
only in the child; each section holds only the settings that client has.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from tuner.clients import CLIENTS, ConsumerClient
from tuner.config.spec import ServiceSpec
from tuner.consumer.service.kafka_python import KAFKA_PYTHON, kafka_python_kwargs
from tuner.protocol import GroupProtocol
from tuner.settings import SettingValue

BOOTSTRAP_DIR = Path(__file__).parent / "bootstrap"
"""What goes first on the child's PYTHONPATH: `sitecustomize` and `_tuner_bootstrap`."""
PLAN_ENV = "TUNER_SERVICE_PLAN"
"""The variable that names the plan (the bootstrap's `PLAN_ENV`)."""
REFUSED_EXIT = 78
"""The exit code of a service the bootstrap refused (another topic, a pattern), or whose plan
it could not apply (the bootstrap's `REFUSED_EXIT` and `BROKEN_EXIT`)."""
MAX_POLL_RECORDS = "max.poll.records"


def client_configs(
    settings: Mapping[str, SettingValue], *, offset_reset: str, protocol: GroupProtocol
) -> dict[str, dict[str, object]]:
    """Client name → its configuration of `settings` (kwargs, or librdkafka's properties), as
    JSON carries it: a tuple of classes as `{"classes": ["module:Name", ...]}`."""
    configs: dict[str, dict[str, object]] = {
        client.name: client.member_config(
            _runnable(client, settings),
            offset_reset=offset_reset,
            protocol=protocol if protocol in client.protocols else "classic",
        )
        for client in CLIENTS.values()
    }
    configs[KAFKA_PYTHON] = kafka_python_kwargs(settings, offset_reset=offset_reset)
    return {name: {k: _encoded(v) for k, v in conf.items()} for name, conf in configs.items()}


def write_plan(
    path: Path,
    *,
    service: ServiceSpec,
    bootstrap_servers: str,
    group_id: str,
    topic: str,
    settings: Mapping[str, SettingValue],
    report_fd: int | None,
    control_fd: int | None = None,
    offset_reset: str = "earliest",
    protocol: GroupProtocol = "classic",
) -> Path:
    """Write one member's plan to `path`; `report_fd` is the write end of the pipe the member
    inherits (`pass_fds`) for its reports (`tuner.consumer.service.reports`); `control_fd`
    the read end of the pipe the tuner asks on to hold the polls before it stops the member
    (its end, the tuner gone, stops the member too)."""
    max_records = settings.get(MAX_POLL_RECORDS)
    plan = {
        "bootstrap_servers": bootstrap_servers,
        "group_id": group_id,
        "service_topic": service.topic,
        "trial_topic": topic,
        "max_records": max_records if isinstance(max_records, int) else None,
        "clients": client_configs(settings, offset_reset=offset_reset, protocol=protocol),
        "report_fd": report_fd,
        # The pipe's identity: a process that did not inherit it (a worker started by spawn)
        # may hold another file under that number, which must not get the reports.
        "report_inode": None if report_fd is None else os.fstat(report_fd).st_ino,
        "control_fd": control_fd,
        "control_inode": None if control_fd is None else os.fstat(control_fd).st_ino,
    }
    path.write_text(json.dumps(plan, indent=1) + "\n")
    return path


def child_environment(
    service: ServiceSpec, plan: Path, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The service's environment: `base` (default: this process's), the service's own `env`,
    the plan, and the bootstrap first on PYTHONPATH (before any the service sets)."""
    env = {**(os.environ if base is None else base), **service.env, PLAN_ENV: str(plan)}
    rest = env.get("PYTHONPATH", "")
    env["PYTHONPATH"] = os.pathsep.join([str(BOOTSTRAP_DIR), *([rest] if rest else [])])
    return env


def _runnable(
    client: ConsumerClient, settings: Mapping[str, SettingValue]
) -> dict[str, SettingValue]:
    """The settings `client` can run (the config checked them for the study's own client;
    another client's section leaves out what it refuses, librdkafka's own settings)."""
    refused = {name for name, _ in client.setting_problems(settings)}
    return {name: value for name, value in settings.items() if name not in refused}


def _encoded(value: object) -> object:
    if isinstance(value, tuple) and all(isinstance(v, type) for v in value):
        return {"classes": [f"{v.__module__}:{v.__qualname__}" for v in value]}
    return value
