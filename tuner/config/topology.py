"""What the cluster's shape allows: the embedded cluster's broker count, the topic's replicas
and `min.insync.replicas`, and the broker faults a trial injects."""

from __future__ import annotations

import re

from tuner.config.spec import EMBEDDED, StudySpec

KAFKA_VERSION = "4.4.0"
"""The embedded broker's Apache Kafka release when neither `cluster.kafka_version` nor
`KAFKA_HOME` names another."""
TESTED_VERSIONS = ("4.1.1", "4.2.2", "4.3.2", "4.4.0")
"""The releases the suite and the benchmarks have run on (docs/configuration.md says what
differs between them)."""
_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")


def version_problem(version: str) -> str | None:
    """Why `version` cannot be the embedded broker's (None: it can): a release `X.Y.Z`, 4.0.0
    or newer (the broker runs KRaft-only, with the 4.x group coordinator)."""
    match = _VERSION.fullmatch(version)
    if match is None:
        return f"must be an Apache Kafka release such as {KAFKA_VERSION!r}, got {version!r}"
    if int(match.group(1)) < 4:
        return (
            f"must be 4.0.0 or newer (the embedded broker runs KRaft with Kafka 4's group "
            f"coordinator), got {version!r}; tested: {', '.join(TESTED_VERSIONS)}"
        )
    return None


MAX_BROKERS = 5
"""The most brokers the embedded cluster runs (each is a JVM with a 384 MiB heap)."""
KILL_LEAD_S = 10.0
"""Window a measured SIGKILL needs after it: the embedded cluster fences a killed broker 7-9 s
later (its 9 s `broker.session.timeout.ms`); stopped before that, aiokafka members whose
commits failed meanwhile cannot make their last one and leave the group."""


def topology_problems(spec: StudySpec) -> list[str]:
    """Every problem with the cluster's shape, each naming its field's path."""
    c, t = spec.cluster, spec.topic
    embedded = c.bootstrap_servers == EMBEDDED
    problems = []
    if not 1 <= c.brokers <= MAX_BROKERS:
        problems.append(f"cluster.brokers: must be in [1, {MAX_BROKERS}], got {c.brokers}")
    elif c.brokers > 1 and not embedded:
        problems.append(
            f"cluster.brokers: only the embedded cluster is started by the tuner (the cluster "
            f"at {c.bootstrap_servers!r} has the brokers it has), got {c.brokers}"
        )
    elif c.brokers > 1 and c.network is not None:
        problems.append(
            f"cluster.network: a network profile needs one broker, got cluster.brokers {c.brokers}"
        )
    if c.kafka_version is not None and not embedded:
        problems.append(
            f"cluster.kafka_version: picks the release of the embedded broker the tuner starts "
            f"(the cluster at {c.bootstrap_servers!r} runs its own), got {c.kafka_version!r}"
        )
    elif c.kafka_version is not None and (problem := version_problem(c.kafka_version)):
        problems.append(f"cluster.kafka_version: {problem}")
    if embedded and t.replication_factor > c.brokers:
        problems.append(
            f"topic.replication_factor: must be at most cluster.brokers ({c.brokers}) on the "
            f"embedded cluster (each broker holds one replica), got {t.replication_factor}"
        )
    if t.min_insync_replicas is not None and not (
        1 <= t.min_insync_replicas <= t.replication_factor
    ):
        problems.append(
            f"topic.min_insync_replicas: must be in [1, topic.replication_factor "
            f"({t.replication_factor})], got {t.min_insync_replicas}"
        )
    problems.extend(_fault_problems(spec))
    return problems


def _fault_problems(spec: StudySpec) -> list[str]:
    faults, c = spec.trial.faults, spec.cluster
    if not faults:
        return []
    if c.bootstrap_servers != EMBEDDED or c.brokers < 2:
        return [
            "trial.faults: broker faults need the embedded multi-broker cluster "
            "(cluster.bootstrap_servers: embedded, cluster.brokers >= 2), got "
            f"{c.bootstrap_servers!r} with {c.brokers} broker(s)"
        ]
    problems = []
    for i, fault in enumerate(faults):
        path = f"trial.faults[{i}]"
        if not 1 <= fault.stop_broker <= c.brokers:
            problems.append(
                f"{path}.stop_broker: must be a broker id in [1, {c.brokers}], "
                f"got {fault.stop_broker}"
            )
        if not 0 <= fault.at_s < spec.trial.measure_s:
            problems.append(
                f"{path}.at_s: must be in [0, trial.measure_s ({spec.trial.measure_s:g})), "
                f"seconds into the measurement window, got {fault.at_s:g}"
            )
        elif (
            fault.kill
            and spec.trial.measure_through_faults
            and spec.trial.measure_s - fault.at_s < KILL_LEAD_S
        ):
            problems.append(
                f"{path}.at_s: a SIGKILL measured through needs {KILL_LEAD_S:g} s of window "
                f"after it (the cluster fences the broker 7-9 s later), so at most "
                f"trial.measure_s - {KILL_LEAD_S:g} = {spec.trial.measure_s - KILL_LEAD_S:g}, "
                f"got {fault.at_s:g}"
            )
    stopped = {f.stop_broker for f in faults}
    if len(stopped) < len(faults):
        problems.append("trial.faults: each broker can be stopped once per trial")
    if len(stopped) >= c.brokers:
        problems.append(
            f"trial.faults: at least one of the {c.brokers} brokers must stay up, "
            f"got faults on {sorted(stopped)}"
        )
    replicas = spec.topic.replication_factor
    if replicas <= len(stopped):
        problems.append(
            f"topic.replication_factor: a fault needs a replica left on a running broker for "
            f"every partition, so more than {len(stopped)} replica(s), got {replicas}"
        )
    return problems
