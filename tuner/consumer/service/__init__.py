"""A team's own service as a group's members: the plan and environment that start it with the
bootstrap injected (`bootstrap/`, standard library only), and what it reports back.

Run on the real broker with kafka-python 2.0.2 and 3.0.12, aiokafka 0.11.0 and 0.14.0,
confluent-kafka 2.3.0 and 2.16.2 (`Consumer`; `confluent_kafka.aio.AIOConsumer` builds one).
The service's interpreter must be Python 3.10 or newer (the bootstrap's dataclasses) and run
`site` with PYTHONPATH (not `python -S`, `-I` or `-E`)."""

from __future__ import annotations

from tuner.consumer.service.group import (
    CREATE_TIMEOUT_S,
    ServiceGroup,
    ServiceGroupSpec,
    ServiceMember,
    service_group,
)
from tuner.consumer.service.plan import (
    BOOTSTRAP_DIR,
    PLAN_ENV,
    REFUSED_EXIT,
    child_environment,
    client_configs,
    write_plan,
)
from tuner.consumer.service.reports import (
    Closed,
    Created,
    Held,
    Passed,
    Polled,
    Refused,
    Report,
    ReportError,
    ServiceProgress,
    ServiceReports,
    ServiceRun,
    follow,
    parse_report,
    report_pipe,
)

__all__ = [
    "BOOTSTRAP_DIR",
    "CREATE_TIMEOUT_S",
    "PLAN_ENV",
    "REFUSED_EXIT",
    "Closed",
    "Created",
    "Held",
    "Passed",
    "Polled",
    "Refused",
    "Report",
    "ReportError",
    "ServiceGroup",
    "ServiceGroupSpec",
    "ServiceMember",
    "ServiceProgress",
    "ServiceReports",
    "ServiceRun",
    "child_environment",
    "client_configs",
    "follow",
    "parse_report",
    "report_pipe",
    "service_group",
    "write_plan",
]
