"""The broker releases the tuner is tested on, side by side: one workload per release, on one
broker and on three, with the classic protocol (aiokafka) and KIP-848's (confluent-kafka).

For each release in `--versions` (default: `tuner.broker.TESTED_VERSIONS`) an embedded broker
and an embedded 3-broker cluster of that release are started, and the trial code `tuner run`
uses measures the same light workload on each: aiokafka members in a classic group, and
confluent-kafka members in a KIP-848 group (`group.protocol=consumer`), `--runs` times each.
Checked in every run, as the suite checks one release: the result names the release it ran on,
the run is capacity-bound, nothing rebalanced, the broker's committed offsets equal the records
the group consumed, and no median exceeds the processing model's bound.
Run:  python benchmarks/bench_versions.py [--versions 4.1.1 4.4.0] [--runs 2]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import time
import uuid
from pathlib import Path

from tuner.broker import TESTED_VERSIONS, EmbeddedBroker, EmbeddedCluster
from tuner.config import StudySpec, parse_config
from tuner.trial.measure import run_standalone
from tuner.trial.result import TrialResult

HERE = Path(__file__).parent
RESULTS = HERE / "results"
MEMBERS = 2
PER_RECORD_MS = 0.05
BOUND = MEMBERS * 1000.0 / PER_RECORD_MS
GROUPS = {"classic": "aiokafka", "consumer": "confluent-kafka"}
"""Group protocol → the client that runs it (aiokafka has no KIP-848 consumer)."""


def spec_for(bootstrap: str, brokers: int, protocol: str) -> StudySpec:
    """The workload on one cluster, a topic of its own, replicated on three brokers."""
    return parse_config({
        "cluster": {"bootstrap_servers": bootstrap},
        "topic": {
            "name": f"tuner.bench.versions.{uuid.uuid4().hex[:8]}", "partitions": 6,
            "replication_factor": brokers,
            **({"min_insync_replicas": 2} if brokers > 1 else {}),
        },
        "workload": {"message_bytes": 512, "prefill_records": 200_000},
        "consumer": {
            "members": MEMBERS, "client": GROUPS[protocol], "group_protocol": protocol,
            "processing": {"per_record_ms": PER_RECORD_MS, "per_batch_ms": 2},
        },
        "trial": {"warmup_s": 2, "measure_s": 6},
        "metrics": {"port": 0, "producer_port": 0},
    })  # fmt: skip


def row(version: str, brokers: int, protocol: str, runs: list[TrialResult]) -> dict[str, object]:
    rates = [r.throughput_records_per_s for r in runs]
    return {
        "kafka_version": version, "brokers": brokers, "group_protocol": protocol,
        "client": GROUPS[protocol], "runs_records_per_s": rates,
        "median_records_per_s": statistics.median(rates),
        "named_release": all(r.kafka_version == version for r in runs),
        "capacity_bound": all(not r.backlog_emptied for r in runs),
        "rebalances": sum(r.rebalances for r in runs),
        "offsets_agree": all(
            r.offsets.committed_total == r.offsets.consumed_total for r in runs
        ),
        "within_bound": statistics.median(rates) <= BOUND,
    }  # fmt: skip


def markdown(out: dict[str, object], rows: list[dict[str, object]]) -> str:
    lines = [
        "# Broker releases", "",
        f"{out['workload']}", "",
        f"Machine: {out['machine']}; {out['wall_s']} s in all. Command: `{out['command']}`", "",
        "| Kafka | brokers | group protocol (client) | median records/s | runs | result names "
        "the release | capacity-bound | rebalances | committed = consumed | under the bound |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip

    def yes(value: object) -> str:
        return "yes" if value else "**no**"

    for r in rows:
        runs = ", ".join(f"{v:,.0f}" for v in r["runs_records_per_s"])  # type: ignore[attr-defined]
        lines.append(
            f"| {r['kafka_version']} | {r['brokers']} | {r['group_protocol']} ({r['client']}) | "
            f"{r['median_records_per_s']:,.0f} | {runs} | {yes(r['named_release'])} | "
            f"{yes(r['capacity_bound'])} | {r['rebalances']} | {yes(r['offsets_agree'])} | "
            f"{yes(r['within_bound'])} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--versions", nargs="+", default=list(TESTED_VERSIONS))
    parser.add_argument("--runs", type=int, default=2, help="runs per release, shape, protocol")
    args = parser.parse_args()
    started = time.monotonic()
    rows: list[dict[str, object]] = []
    for version in args.versions:
        with contextlib.ExitStack() as stack:
            one = stack.enter_context(EmbeddedBroker(heap="384m", kafka_version=version))
            three = stack.enter_context(EmbeddedCluster(brokers=3, kafka_version=version))
            clusters = {1: one.bootstrap_servers, 3: three.bootstrap_servers}
            for brokers, bootstrap in clusters.items():
                for protocol in GROUPS:
                    runs = []
                    for _ in range(args.runs):
                        spec = spec_for(bootstrap, brokers, protocol)
                        runs.append(run_standalone(spec))
                    rows.append(row(version, brokers, protocol, runs))
                    r = rows[-1]
                    print(f"  Kafka {version}, {brokers} broker(s), {protocol}: "
                          f"{r['median_records_per_s']:,.0f} records/s, "
                          f"named {r['named_release']}, capacity-bound {r['capacity_bound']}, "
                          f"rebalances {r['rebalances']}, offsets agree {r['offsets_agree']}",
                          flush=True)  # fmt: skip
    out: dict[str, object] = {
        "machine": f"{platform.machine()}, {platform.python_version()}, {os.cpu_count()} cores",
        "workload": (
            f"6 partitions, 512 B records, {MEMBERS} members, {PER_RECORD_MS:g} ms per record + "
            f"2 ms per batch (the model's bound {BOUND:,.0f} records/s); 2 s warm-up, 6 s "
            "window; on 3 brokers the topic has RF 3 and min.insync.replicas 2"
        ),
        "bound_records_per_s": BOUND,
        "command": "python benchmarks/bench_versions.py --versions "
        f"{' '.join(args.versions)} --runs {args.runs}",
        "wall_s": round(time.monotonic() - started, 1),
        "rows": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "versions.json").write_text(json.dumps(out, indent=2) + "\n")
    text = markdown(out, rows)
    (RESULTS / "versions.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
