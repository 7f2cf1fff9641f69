"""Does the advisor's arithmetic predict what a run measures?

For each workload (constant / exponential / lognormal records, async / cpu handlers, with and
without a per-batch cost, a commit after each batch or auto-commit, two that rebalance), the
advisor reads only the config and predicts the longest gap between polls (the p99 of a poll's
batch) and how long a cpu handler holds the event loop; then plain `tuner run` measures both
(`poll.interval_ms_max`, `poll.loop_blocked_ms_max`) and whether the group rebalanced. A
prediction holds within ±20%; an async handler's loop counts as free below a tenth of a batch.
The risk findings (KT101/KT102 at `risk`) are set against the rebalances, and so is the former
arithmetic (records x the p99 of one record, the loop held for one poll).
Run:  python benchmarks/bench_advice.py [--bootstrap HOST:PORT] [--only NAME]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from tuner.advice import Severity, advise, from_config
from tuner.advice.blocked import loop_hold
from tuner.advice.liveness import poll_work
from tuner.broker import bootstrap_for
from tuner.config import EMBEDDED, parse_config

HERE = Path(__file__).parent
ROOT = HERE.parent
RESULTS = HERE / "results"
TOLERANCE = 0.2
FREE_SHARE = 0.1
LIVENESS = {"KT101", "KT102"}
MANUAL = {"enable.auto.commit": False}


def _workload(
    processing: dict[str, Any], settings: dict[str, Any], *, members: int = 2
) -> dict[str, Any]:
    return {
        "topic": {"partitions": members},
        "workload": {"message_bytes": 1024, "prefill_records": 16000},
        "consumer": {"members": members, "processing": processing, "settings": settings},
        "trial": {"warmup_s": 2, "measure_s": 10},
    }


WORKLOADS: dict[str, tuple[str, dict[str, Any]]] = {
    "constant-async": (
        "constant 4 ms, async, 500 per poll",
        _workload({"per_record_ms": 4}, {"max.poll.records": 500}),
    ),
    "exponential-cpu": (
        "exponential 4 ms, cpu, 500 per poll, commit per batch",
        _workload({"per_record_ms": 4, "distribution": "exponential", "mode": "cpu"},
                  {"max.poll.records": 500, **MANUAL}),
    ),
    "lognormal-cpu-unlimited": (
        "lognormal 2 ms (p99 16 ms), cpu, unlimited per poll",
        _workload({"per_record_ms": 2, "distribution": "lognormal", "p99_ms": 16,
                   "mode": "cpu"}, {}),
    ),
    "constant-async-per-batch": (
        "constant 2 ms + 1 s per batch, async, 500 per poll",
        _workload({"per_record_ms": 2, "per_batch_ms": 1000}, {"max.poll.records": 500}),
    ),
    "lognormal-cpu-per-batch": (
        "lognormal 2 ms (p99 10 ms) + 1.5 s per batch, cpu, 200 per poll, commit per batch",
        _workload({"per_record_ms": 2, "distribution": "lognormal", "p99_ms": 10,
                   "per_batch_ms": 1500, "mode": "cpu"}, {"max.poll.records": 200, **MANUAL}),
    ),
    "constant-cpu-auto-commit": (
        "constant 5 ms, cpu, 200 per poll, auto-commit (the loop held for a whole fetch)",
        _workload({"per_record_ms": 5, "mode": "cpu"}, {"max.poll.records": 200}),
    ),
    "rebalance-session": (
        "constant 8 ms, cpu, 100 per poll, auto-commit, 6 s session",
        _workload({"per_record_ms": 8, "mode": "cpu"},
                  {"max.poll.records": 100, "session.timeout.ms": 6000,
                   "heartbeat.interval.ms": 1500}),
    ),
    "rebalance-poll-interval": (
        "lognormal 8 ms (p99 30 ms), async, 500 per poll, 2 s max.poll.interval.ms",
        _workload({"per_record_ms": 8, "distribution": "lognormal", "p99_ms": 30},
                  {"max.poll.records": 500, "max.poll.interval.ms": 2000}),
    ),
}  # fmt: skip
"""Slug → (what the table calls it, the config)."""


def predict(config: dict[str, Any]) -> dict[str, Any]:
    """The advisor's numbers from the config alone, and the former arithmetic beside them."""
    facts = from_config(parse_config(config))
    w = facts.workload
    if w is None:
        raise ValueError("a config always has a workload")
    work = poll_work(facts, w)
    cpu = w.mode == "cpu"
    hold = loop_hold(facts, w).time.at_quantile_ms if cpu else 0.0
    risks = sorted(
        f.code for f in advise(facts) if f.code in LIVENESS and f.severity is Severity.RISK
    )
    former = work.records * w.record_p99_ms + w.per_batch_ms
    session, interval = facts.ms("session.timeout.ms"), facts.ms("max.poll.interval.ms")
    return {
        "records_per_poll": work.records,
        "gap_ms": work.batch.at_quantile_ms,
        "loop_ms": hold,
        "risks": risks,
        "former_ms": former,
        "former_risk": former >= interval or (cpu and former >= session),
    }


def tuner(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "tuner.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)


def measure(slug: str, config: dict[str, Any], sets: list[str], tmp: Path) -> dict[str, Any]:
    """One plain `tuner run` of the config on its own topic."""
    path, out = tmp / f"{slug}.yaml", tmp / f"{slug}.json"
    topic = {**config["topic"], "name": f"tuner.bench-advice.{slug}.{int(time.time())}"}
    path.write_text(yaml.safe_dump({**config, "topic": topic}))
    done = tuner("run", str(path), "--quiet", "--json", str(out), *sets)
    if not out.exists():
        raise RuntimeError(f"{slug}: tuner run exited {done.returncode}:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.read_text())
    return {
        "gap_ms": result["poll"]["interval_ms_max"],
        "loop_ms": result["poll"]["loop_blocked_ms_max"],
        "records_per_poll": result["poll"]["records_per_poll_avg"],
        "rebalances": result["rebalances"],
        "backlog_emptied": result["backlog_emptied"],
    }


def within(predicted: float, measured: float | None) -> bool:
    return measured is not None and abs(measured - predicted) <= TOLERANCE * predicted


def judge(p: dict[str, Any], m: dict[str, Any]) -> dict[str, bool]:
    gap_ok = within(p["gap_ms"], m["gap_ms"])
    if p["loop_ms"] > 0:
        loop_ok = within(p["loop_ms"], m["loop_ms"])
    else:
        loop_ok = m["loop_ms"] is not None and m["loop_ms"] < FREE_SHARE * p["gap_ms"]
    return {"gap": gap_ok, "loop": loop_ok}


def confusion(rows: list[dict[str, Any]], risk: str) -> dict[str, int]:
    """Counts of (predicted a risk, rebalanced) over the rows."""
    cells = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    for r in rows:
        said, happened = r[risk], r["measured"]["rebalances"] > 0
        cells[("t" if said == happened else "f") + ("p" if said else "n")] += 1
    return cells


def render(rows: list[dict[str, Any]], seconds: float) -> list[str]:
    def ms(v: float | None) -> str:
        return "—" if v is None else f"{v:,.0f}"

    lines = [
        "Advisor benchmark: the advisor's predictions from the config alone against one plain "
        f"`tuner run` of it ({seconds / 60:.1f} min in all)",
        "",
        "| workload | poll gap: predicted (p99) / measured ms | loop held: predicted / measured ms "
        "| risk findings | rebalances | former arithmetic (N x p99) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        p, m, ok = r["predicted"], r["measured"], r["within"]
        loop = "free" if p["loop_ms"] == 0 else ms(p["loop_ms"])
        lines.append(
            f"| {r['workload']} | {ms(p['gap_ms'])} / {ms(m['gap_ms'])} "
            f"{'✓' if ok['gap'] else '✗'} | {loop} / {ms(m['loop_ms'])} "
            f"{'✓' if ok['loop'] else '✗'} | {', '.join(p['risks']) or 'none'} | "
            f"{m['rebalances']} | {ms(p['former_ms'])}{' (risk)' if p['former_risk'] else ''} |"
        )
    lines += ["", "Risk findings against rebalances:", "",
              "| | rebalanced | did not |", "|---|---|---|"]  # fmt: skip
    for name, key in (("advisor: risk", "risk"), ("former arithmetic: risk", "former_risk")):
        c = confusion(rows, key)
        lines.append(f"| {name} | {c['tp']} | {c['fp']} |")
        lines.append(f"| {name.split(':')[0]}: no risk | {c['fn']} | {c['tn']} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--bootstrap", default=EMBEDDED)
    parser.add_argument("--only", choices=list(WORKLOADS))
    parser.add_argument("--metrics-port", type=int, default=0)
    args = parser.parse_args()
    producer_port = args.metrics_port + 1 if args.metrics_port else 0
    ports = ["--set", f"metrics.port={args.metrics_port}",
             "--set", f"metrics.producer_port={producer_port}"]  # fmt: skip
    rows = []
    started = time.monotonic()
    with bootstrap_for(args.bootstrap) as bootstrap, tempfile.TemporaryDirectory() as tmp:
        sets = ["--set", f"cluster.bootstrap_servers={bootstrap}", *ports]
        for slug, (name, config) in WORKLOADS.items():
            if args.only not in (None, slug):
                continue
            predicted = predict(config)
            measured = measure(slug, config, sets, Path(tmp))
            row = {"slug": slug, "workload": name, "config": config, "predicted": predicted,
                   "measured": measured, "within": judge(predicted, measured),
                   "risk": bool(predicted["risks"]),
                   "former_risk": predicted["former_risk"]}  # fmt: skip
            rows.append(row)
            print(f"{name}: predicted {predicted}, measured {measured}", flush=True)
    elapsed = time.monotonic() - started
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "advice.json").write_text(json.dumps({
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "tolerance": TOLERANCE, "seconds": elapsed, "rows": rows,
    }, indent=2) + "\n")  # fmt: skip
    lines = render(rows, elapsed)
    (RESULTS / "advice.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
