"""Does the report's claimed gain survive an independent re-measurement?

For each reference workload: `tuner optimize` as a user runs it (a subprocess, its own
output directory), then the recommendation it wrote and the measured client's defaults (the
config's fixed settings only: aiokafka's, or librdkafka's for the confluent-kafka rows, on
the classic and the KIP-848 group protocol) are measured again with plain `tuner run`,
interleaved, in 5 pairs. The re-measured gain is a 95% t-interval on the log of the paired
ratios; the claim holds when the report's gain over those defaults lies inside it. Every
re-run must be capacity-bound.
Run:  python benchmarks/bench_trust.py [--pairs 5] [--bootstrap HOST:PORT] [--only NAME]
(`--only` re-measures one workload and keeps the other rows of benchmarks/results/trust.json.)
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuner.broker import bootstrap_for
from tuner.config import EMBEDDED
from tuner.recommend.confirmation import Candidate, Gain, paired_gain

HERE = Path(__file__).parent
ROOT = HERE.parent
RESULTS = HERE / "results"
WORKLOADS = {
    "quickstart": ("rebalance-prone (quickstart)", ROOT / "configs" / "quickstart.yaml"),
    "healthy": ("healthy, live load", HERE / "trust" / "healthy-live.yaml"),
    "large": ("large messages", HERE / "trust" / "large-messages.yaml"),
    "live-small": ("live load, small prefill", HERE / "trust" / "live-small-prefill.yaml"),
    "confluent-classic": (
        "confluent-kafka, classic protocol",
        HERE / "trust" / "confluent-classic.yaml",
    ),
    "confluent-kip848": (
        "confluent-kafka, KIP-848 protocol",
        HERE / "trust" / "confluent-kip848.yaml",
    ),
}
"""Slug → (what the table calls it, its config)."""
BASELINE = Candidate.AIOKAFKA_DEFAULTS
"""The re-runs' key for the measured client's own defaults (the summary's is its `baseline`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Rerun:
    records_per_s: float
    rebalances: int
    capacity_bound: bool


def tuner(*args: str) -> subprocess.CompletedProcess[str]:
    """The `tuner` command of this environment, as a user runs it."""
    command = [sys.executable, "-m", "tuner.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)


def rerun(config: Path, sets: list[str], out: Path) -> Rerun:
    done = tuner("run", str(config), "--quiet", "--json", str(out), *sets)
    if done.returncode not in (0, 1) or not out.exists():
        raise RuntimeError(f"tuner run failed ({done.returncode}):\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.read_text())
    return Rerun(
        records_per_s=result["throughput_records_per_s"],
        rebalances=result["rebalances"],
        capacity_bound=not result["backlog_emptied"],
    )


def settings_args(settings: dict[str, object]) -> list[str]:
    out = []
    for name, value in settings.items():
        out += ["--set", f"consumer.settings.{name}={json.dumps(value)}"]
    return out


def describe(gain: Gain | None) -> str:
    if gain is None:
        return "none given"
    if gain.interval is None:
        return f"{gain.estimate:+.1%} (no interval)"
    low, high = gain.interval
    return f"{gain.estimate:+.1%} [{low:+.1%}, {high:+.1%}]"


def bench(slug: str, bootstrap: str, pairs: int, tmp: Path) -> dict[str, Any]:
    """Optimize, then re-measure the recommendation against aiokafka's defaults."""
    name, config = WORKLOADS[slug]
    out = tmp / slug
    study = f"bench-trust-{slug}-{int(time.time())}"
    common = ["--set", f"cluster.bootstrap_servers={bootstrap}"]
    started = time.monotonic()
    done = tuner("optimize", str(config), "--out", str(out), "--quiet", *common,
                 "--set", f"study.name={study}")  # fmt: skip
    optimize_s = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"{name}: tuner optimize exited {done.returncode}:\n{done.stderr}")
    summary = json.loads((out / "summary.json").read_text())
    claimed = summary["against"][summary["baseline"]]
    recommended: dict[str, object] = dict(summary["settings"])
    print(f"{name}: optimize {optimize_s:.0f} s; recommends {recommended}; claims "
          f"{claimed['gain']} {claimed['interval']} ({claimed['refused'] or 'usable'})",
          flush=True)  # fmt: skip
    runs: dict[str, list[Rerun]] = {"recommendation": [], BASELINE: []}
    for i in range(pairs):
        for label, sets in (("recommendation", settings_args(recommended)), (BASELINE, [])):
            run = rerun(config, [*common, *sets], tmp / f"{slug}-{label[0]}{i}.json")
            runs[label].append(run)
            shown = claimed.get("label", label) if label == BASELINE else label
            print(f"  re-run {i + 1}/{pairs} {shown}: {run.records_per_s:,.0f} records/s, "
                  f"{run.rebalances} rebalances, capacity-bound {run.capacity_bound}",
                  flush=True)  # fmt: skip
    usable = all(r.capacity_bound and r.records_per_s > 0 for rs in runs.values() for r in rs)
    remeasured = (
        paired_gain(
            [r.records_per_s for r in runs["recommendation"]],
            [r.records_per_s for r in runs[BASELINE]],
        )
        if usable
        else None
    )
    claimed_gain = claimed["gain"]
    inside = (
        remeasured is not None
        and remeasured.interval is not None
        and claimed_gain is not None
        and remeasured.interval[0] <= claimed_gain <= remeasured.interval[1]
    )
    return {
        "workload": name,
        "client": summary.get("client", "aiokafka"),
        "group_protocol": summary.get("group_protocol", "classic"),
        "baseline": claimed.get("label", BASELINE),
        "config": str(config.relative_to(ROOT)),
        "optimize_s": optimize_s,
        "recommended": recommended,
        "claimed": claimed,
        "remeasured": None if remeasured is None else {
            "gain": remeasured.estimate, "interval": remeasured.interval, "pairs": remeasured.pairs,
        },
        "rebalances": {k: sum(r.rebalances for r in v) for k, v in runs.items()},
        "runs": {k: [r.records_per_s for r in v] for k, v in runs.items()},
        "all_capacity_bound": usable,
        "claim_inside_remeasured_interval": inside,
    }  # fmt: skip


def merged(rows: list[dict[str, Any]], pairs: int) -> list[dict[str, Any]]:
    """`rows` in place of the same workloads' rows of the stored results, the others kept (in
    `WORKLOADS` order), so `--only` re-measures one workload without dropping the rest; stored
    rows of another number of pairs are dropped rather than shown under this one's."""
    stored = RESULTS / "trust.json"
    old = json.loads(stored.read_text()) if stored.exists() else {}
    kept = old.get("rows", []) if old.get("pairs") == pairs else []
    by_name = {r["workload"]: r for r in kept} | {r["workload"]: r for r in rows}
    order = [name for name, _ in WORKLOADS.values()]
    return sorted(
        by_name.values(),
        key=lambda r: order.index(r["workload"]) if r["workload"] in order else len(order),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--bootstrap", default=EMBEDDED)
    parser.add_argument("--only", choices=list(WORKLOADS))
    args = parser.parse_args()
    rows = []
    with bootstrap_for(args.bootstrap) as bootstrap, tempfile.TemporaryDirectory() as tmp:
        for slug in WORKLOADS:
            if args.only in (None, slug):
                rows.append(bench(slug, bootstrap, args.pairs, Path(tmp)))
    RESULTS.mkdir(exist_ok=True)
    if args.only is not None:
        rows = merged(rows, args.pairs)
    (RESULTS / "trust.json").write_text(json.dumps({
        "machine": f"{platform.machine()}, {platform.python_version()}", "pairs": args.pairs,
        "rows": rows,
    }, indent=2) + "\n")  # fmt: skip
    lines = [
        "Trust benchmark: the report's gain over the measured client's defaults against a "
        f"re-measurement with plain `tuner run`, {args.pairs} interleaved pairs (95% t-interval "
        "on log ratios)",
        "",
        "| workload | baseline | recommendation | claimed by the report | re-measured | "
        "rebalances (recommendation / defaults, re-runs) | claim inside? | optimize wall time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        claimed = r["claimed"]
        claim = (
            f"{claimed['gain']:+.1%} [{claimed['interval'][0]:+.1%}, {claimed['interval'][1]:+.1%}]"
            if claimed["gain"] is not None and claimed["interval"]
            else f"refused: {claimed['refused']}"
            if claimed["refused"]
            else "no interval"
        )
        re = r["remeasured"]
        remeasured = (
            "not comparable (a re-run ran out of backlog)" if re is None
            else describe(Gain(pairs=re["pairs"], estimate=re["gain"],
                               interval=tuple(re["interval"]) if re["interval"] else None))
        )  # fmt: skip
        changes = ", ".join(f"{k}={v}" for k, v in r["recommended"].items()) or "none"
        lines.append(
            f"| {r['workload']} | {r.get('baseline', BASELINE)} | {changes} | {claim} | "
            f"{remeasured} | "
            f"{r['rebalances']['recommendation']} / {r['rebalances'][BASELINE]} | "
            f"{'yes' if r['claim_inside_remeasured_interval'] else 'NO'} | "
            f"{r['optimize_s'] / 60:.1f} min |"
        )
    (RESULTS / "trust.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
