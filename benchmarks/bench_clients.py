"""aiokafka against confluent-kafka on one workload: records/s and CPU per record.

Four configurations: each client with its own defaults, and with its own best settings (from a
short study of that client, `tuner optimize` as a user runs it, or from `--settings FILE`, a
JSON object `{"aiokafka": {...}, "confluent-kafka": {...}}`). They run interleaved (a, a*, c,
c*, a, …) with the trial code `tuner run` uses, each run capacity-bound; the table gives the
medians. CPU is the member processes' own (utime + stime from /proc/<pid>/stat, librdkafka's
threads included) over the capacity window, per 1000 records processed in it. Checks: no
median above the processing model's bound (members x 1000/per_record_ms), and in every run
the broker's committed offsets equal the records the group says it consumed.
Run:  python benchmarks/bench_clients.py [--runs 3] [--trials 12] [--settings FILE]
      [--bootstrap HOST:PORT]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tuner.broker import bootstrap_for
from tuner.clients import ClientName
from tuner.config import EMBEDDED, SettingValue, StudySpec, load_config
from tuner.metrics.phases import Phase
from tuner.trial.measure import run_standalone

HERE = Path(__file__).parent
ROOT = HERE.parent
RESULTS = HERE / "results"
CONFIG = HERE / "clients" / "workload.yaml"
CLIENTS: tuple[ClientName, ...] = ("aiokafka", "confluent-kafka")
TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True, kw_only=True)
class Run:
    records_per_s: float
    cpu_s_per_1000: float | None
    rebalances: int
    capacity_bound: bool
    offsets_agree: bool
    """The broker's committed offsets equal the records the members counted (whole trial)."""


class MemberCpu:
    """An observer: the member processes' CPU seconds from the capacity window's start to its
    last one-second snapshot (the last attempt's, when a run is repeated on a larger
    backlog)."""

    def __init__(self, members: int) -> None:
        self.names = {f"m{i}" for i in range(members)}
        self.start: dict[int, float] = {}
        self.window_s: float | None = None

    def _cpu(self) -> dict[int, float]:
        out = {}
        for proc in multiprocessing.active_children():
            if proc.name in self.names and proc.pid is not None:
                try:
                    stat = Path(f"/proc/{proc.pid}/stat").read_text()
                except OSError:
                    continue
                fields = stat[stat.rindex(")") + 2 :].split()
                out[proc.pid] = (int(fields[11]) + int(fields[12])) * TICK_S
        return out

    def __call__(self, phase: Phase, value: float | None) -> None:
        if phase is not Phase.MEASURE:
            return
        if value is None:
            self.start, self.window_s = self._cpu(), None
            return
        end = self._cpu()
        if len(end) == len(self.start) == len(self.names) and end.keys() == self.start.keys():
            self.window_s = sum(end[p] - self.start[p] for p in end)
        else:
            self.window_s = None  # a member came or went: its CPU is not the window's


def with_client(
    spec: StudySpec, client: ClientName, settings: dict[str, SettingValue]
) -> StudySpec:
    consumer = replace(
        spec.consumer, client=client, settings={**spec.consumer.settings, **settings}
    )
    return replace(spec, consumer=consumer)


def one_run(spec: StudySpec) -> Run:
    cpu = MemberCpu(spec.consumer.members)
    result = run_standalone(spec, observer=cpu)
    o = result.offsets
    return Run(
        records_per_s=result.throughput_records_per_s,
        cpu_s_per_1000=(
            None if cpu.window_s is None or result.records_consumed <= 0
            else cpu.window_s / result.records_consumed * 1000
        ),
        rebalances=result.rebalances,
        capacity_bound=not result.backlog_emptied,
        offsets_agree=o.committed_total == o.consumed_total > 0,
    )  # fmt: skip


def best_settings(client: str, bootstrap: str, trials: int, tmp: Path) -> dict[str, Any]:
    """A short study of `client` on the workload, as a user runs it: its recommendation."""
    out = tmp / client
    command = [
        sys.executable, "-m", "tuner.cli", "optimize", str(CONFIG), "--out", str(out), "--quiet",
        "--set", f"cluster.bootstrap_servers={bootstrap}", "--set", f"consumer.client={client}",
        "--set", f"search.trials={trials}",
        "--set", f"study.name=bench-clients-{client}-{int(time.time())}",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"{client}: tuner optimize exited {done.returncode}:\n{done.stderr}")
    return dict(json.loads((out / "summary.json").read_text())["settings"])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--trials", type=int, default=12, help="each client's short study")
    parser.add_argument("--settings", type=Path, help="each client's best settings, no study")
    parser.add_argument("--bootstrap", default=EMBEDDED)
    args = parser.parse_args()
    started = time.monotonic()
    base = load_config(CONFIG)
    with bootstrap_for(args.bootstrap) as bootstrap, tempfile.TemporaryDirectory() as tmp:
        if args.settings is not None:
            best = {c: dict(json.loads(args.settings.read_text())[c]) for c in CLIENTS}
        else:
            best = {c: best_settings(c, bootstrap, args.trials, Path(tmp)) for c in CLIENTS}
        spec = replace(
            base,
            cluster=replace(base.cluster, bootstrap_servers=bootstrap),
            topic=replace(base.topic, name=f"tuner.bench.clients.{uuid.uuid4().hex[:8]}"),
        )
        configs = {
            (client, variant): with_client(spec, client, settings)
            for client in CLIENTS
            for variant, settings in (("defaults", {}), ("best", best[client]))
        }
        runs: dict[tuple[ClientName, str], list[Run]] = {key: [] for key in configs}
        for i in range(args.runs):
            for key, run_spec in configs.items():
                run = one_run(run_spec)
                runs[key].append(run)
                cpu = "n/a" if run.cpu_s_per_1000 is None else f"{run.cpu_s_per_1000:.4f}"
                print(f"  run {i + 1}/{args.runs} {key[0]} {key[1]}: "
                      f"{run.records_per_s:,.0f} records/s, {cpu} CPU s/1000 records, "
                      f"{run.rebalances} rebalances, capacity-bound {run.capacity_bound}, "
                      f"offsets agree {run.offsets_agree}", flush=True)  # fmt: skip
    proc = base.consumer.processing
    bound = base.consumer.members * 1000.0 / proc.per_record_ms
    rows: list[dict[str, Any]] = []
    for (client, variant), values in runs.items():
        cpus = [r.cpu_s_per_1000 for r in values if r.cpu_s_per_1000 is not None]
        median = statistics.median(r.records_per_s for r in values)
        rows.append({
            "client": client, "variant": variant,
            "settings": {} if variant == "defaults" else best[client],
            "runs_records_per_s": [r.records_per_s for r in values],
            "median_records_per_s": median,
            "runs_cpu_s_per_1000": cpus,
            "median_cpu_s_per_1000": statistics.median(cpus) if cpus else None,
            "rebalances": sum(r.rebalances for r in values),
            "all_capacity_bound": all(r.capacity_bound for r in values),
            "offsets_agree": all(r.offsets_agree for r in values),
            "within_bound": median <= bound,
        })  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "clients.json").write_text(json.dumps({
        "machine": f"{platform.machine()}, {platform.python_version()}, {os.cpu_count()} cores",
        "config": str(CONFIG.relative_to(ROOT)), "runs": args.runs, "bound_records_per_s": bound,
        "wall_s": time.monotonic() - started, "rows": rows,
    }, indent=2) + "\n")  # fmt: skip
    lines = [
        f"Clients benchmark: one workload ({base.consumer.members} members, "
        f"{base.topic.partitions} partitions, {base.workload.message_bytes} B records, "
        f"{proc.per_record_ms:g} ms per record + {proc.per_batch_ms:g} ms per batch; the model's "
        f"bound {bound:,.0f} records/s), medians of {args.runs} interleaved runs; CPU of the "
        "member processes in the capacity window",
        "",
        "| client | configuration | settings | median records/s | CPU s per 1000 records | "
        "rebalances | capacity-bound | committed offsets = consumed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        settings = ", ".join(f"{k}={v}" for k, v in r["settings"].items()) or "no change"
        variant = "its defaults" if r["variant"] == "defaults" else "its study's best"
        cpu = r["median_cpu_s_per_1000"]
        lines.append(
            f"| {r['client']} | {variant} | {settings} | {r['median_records_per_s']:,.0f} | "
            f"{'n/a' if cpu is None else f'{cpu:.4f}'} | {r['rebalances']} | "
            f"{'yes' if r['all_capacity_bound'] else 'NO'} | "
            f"{'yes' if r['offsets_agree'] else 'NO'} |"
        )
    over = [r for r in rows if not r["within_bound"]]
    if over:
        lines += ["", "ABOVE THE MODEL'S BOUND (a measurement error): " + ", ".join(
            f"{r['client']} {r['variant']}" for r in over)]  # fmt: skip
    (RESULTS / "clients.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
