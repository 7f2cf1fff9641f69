"""The config's payload fields: a file or a topic, a size distribution, and reading the file.

A payload file is read while the config loads, so a missing, unreadable or empty one stops
everything before a broker starts, named by its field; the spec then carries the file's
absolute path and its mean value size as `message_bytes`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tuner.config.spec import StudySpec, WorkloadSpec
from tuner.payloads import PayloadError, read_records
from tuner.payloads.sizes import MAX_LOGNORMAL_RATIO, MAX_VALUE_BYTES

MAX_SAMPLE_RECORDS = 1_000_000
_TOPIC_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def payload_problems(workload: WorkloadSpec) -> list[str]:
    """What is wrong with `workload.payloads` and a `message_bytes` distribution, by path."""
    problems: list[str] = []
    size = workload.message_bytes
    if isinstance(size, int) and not 1 <= size <= MAX_VALUE_BYTES:
        problems.append(f"workload.message_bytes: must be in [1, {MAX_VALUE_BYTES}], got {size}")
    if not isinstance(size, int):
        where = "workload.message_bytes"
        if workload.payloads is not None:
            problems.append(
                f"{where}: a size distribution applies only without workload.payloads "
                "(the payloads' own sizes are used), got a distribution"
            )
        if not 1 <= size.mean <= MAX_VALUE_BYTES:
            problems.append(f"{where}.mean: must be in [1, {MAX_VALUE_BYTES}], got {size.mean:g}")
        elif size.distribution == "lognormal":
            if size.p99 is None:
                problems.append(f"{where}.p99: required for distribution: lognormal")
            elif not size.mean <= size.p99 <= size.mean * MAX_LOGNORMAL_RATIO:
                problems.append(
                    f"{where}.p99: must be in [mean, {MAX_LOGNORMAL_RATIO:.2f} x mean] = "
                    f"[{size.mean:g}, {size.mean * MAX_LOGNORMAL_RATIO:,.0f}] (no lognormal with "
                    f"mean {size.mean:g} has a p99 outside it), got {size.p99:g}"
                )
        elif size.p99 is not None:
            problems.append(
                f"{where}.p99: only applies to distribution: lognormal (an exponential's p99 "
                f"is 4.6 x its mean), got {size.p99:g}"
            )
    p = workload.payloads
    if p is None:
        return problems
    where = "workload.payloads"
    if (p.file is None) == (p.topic is None):
        problems.append(f"{where}: set exactly one of file or topic")
    if p.topic is not None:
        if not (1 <= len(p.topic) <= 249 and set(p.topic) <= _TOPIC_CHARS):
            problems.append(f"{where}.topic: must be a topic name, got {p.topic!r}")
        if p.format != "values":
            problems.append(f"{where}.format: applies to a file only, got {p.format!r}")
    if not 1 <= p.sample_records <= MAX_SAMPLE_RECORDS:
        problems.append(
            f"{where}.sample_records: must be in [1, {MAX_SAMPLE_RECORDS:,}], "
            f"got {p.sample_records}"
        )
    return problems


def with_payloads(spec: StudySpec, base_dir: Path, problems: list[str]) -> StudySpec:
    """The spec with its payload file's absolute path and mean value size, after reading the
    file; a file that cannot be used is a problem of `workload.payloads.file`."""
    p = spec.workload.payloads
    if p is None or p.file is None:
        return spec
    path = (base_dir / Path(p.file).expanduser()).resolve()
    try:
        records = read_records(path, p.format)
    except PayloadError as exc:
        problems.append(f"workload.payloads.file: {exc}")
        return spec
    mean = sum(len(r.value) for r in records) / len(records)
    workload = replace(
        spec.workload, payloads=replace(p, file=str(path)), message_bytes=max(1, round(mean))
    )
    return replace(spec, workload=workload)
