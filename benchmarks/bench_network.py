"""Do fetch settings matter across a network? aiokafka's defaults against the recommendation.

For RTT 0 (loopback, no profile), 2, 10 and 40 ms: `tuner optimize` as a user runs it on the
light-processing workload `network/reference.yaml` (a subprocess with a cache dir of its own,
so it starts its own broker behind a proxy with that round trip), searching the fetch
settings. Its confirmation runs the recommendation and aiokafka's defaults interleaved
(`confirm.repeats` each): the table gives both medians, the paired gain with its 95% interval,
and what the recommendation changes. The proxy's CPU is sampled every second during each
study; first, its cost per MB is measured on its own, which says at which throughput it would
become the bottleneck.
Run:  python benchmarks/bench_network.py [--rtts 0,2,10,40] [--proxy-mb 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tuner import broker
from tuner.broker import netem
from tuner.config import NetworkSpec
from tuner.report import Candidate
from tuner.search import space

HERE = Path(__file__).parent
ROOT = HERE.parent
RESULTS = HERE / "results"
CONFIG = HERE / "network" / "reference.yaml"
RTTS = (0.0, 2.0, 10.0, 40.0)
BASELINE = Candidate.AIOKAFKA_DEFAULTS


@dataclass(frozen=True, slots=True, kw_only=True)
class ProxyCost:
    rtt_ms: float
    cpu_ms_per_mb: float
    """Median over runs: the proxy process's CPU time per MB forwarded."""
    wall_mb_per_s: float
    """What this one-connection test pushed (its sender and sink share one loop)."""

    @property
    def ceiling_mb_per_s(self) -> float:
        """The throughput at which the proxy would use a whole core: its bottleneck."""
        return 1000.0 / self.cpu_ms_per_mb


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a live process has used (`/proc/<pid>/stat`)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])


async def _push(port: int, megabytes: int, received: asyncio.Event) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    chunk = bytes(1 << 20)
    for _ in range(megabytes):
        writer.write(chunk)
        await writer.drain()
    await received.wait()
    writer.close()


async def _through_proxy(rtt_ms: float, megabytes: int) -> tuple[float, float]:
    """(proxy CPU seconds, wall seconds) to forward `megabytes` MiB to a sink behind a proxy."""
    total, seen = megabytes << 20, 0
    received = asyncio.Event()

    async def sink(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal seen
        while data := await reader.read(1 << 20):
            seen += len(data)
            if seen >= total:
                received.set()
        writer.close()

    server = await asyncio.start_server(sink, "127.0.0.1", 0)
    port = broker.free_port()
    target = ("127.0.0.1", int(server.sockets[0].getsockname()[1]))
    argv = netem.command(NetworkSpec(rtt_ms=rtt_ms), target=target, port=port)
    proxy = await asyncio.create_subprocess_exec(*argv)
    try:
        async with asyncio.timeout(10):
            while not broker.port_in_use(port):  # noqa: ASYNC110 - polling another process
                await asyncio.sleep(0.05)
        cpu_before, started = cpu_seconds(proxy.pid), time.perf_counter()
        await _push(port, megabytes, received)
        wall = time.perf_counter() - started
        cpu = cpu_seconds(proxy.pid) - cpu_before
    finally:
        proxy.terminate()
        await proxy.wait()
        server.close()
    return cpu, wall


def proxy_cost(rtt_ms: float, megabytes: int, runs: int) -> ProxyCost:
    per_mb, rates = [], []
    for _ in range(runs):
        cpu, wall = asyncio.run(_through_proxy(rtt_ms, megabytes))
        mb = megabytes * (1 << 20) / 1e6
        per_mb.append(cpu * 1000 / mb)
        rates.append(mb / wall)
    return ProxyCost(
        rtt_ms=rtt_ms,
        cpu_ms_per_mb=statistics.median(per_mb),
        wall_mb_per_s=statistics.median(rates),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Row:
    rtt_ms: float
    defaults_records_per_s: float | None
    recommended_records_per_s: float | None
    gain: float | None
    interval: tuple[float, float] | None
    refused: str | None
    changes: dict[str, Any]
    """Settings the recommendation sets off aiokafka's defaults."""
    measured_under: str
    """The report's own line: the profile and the best trial's fetch latency p50."""
    proxy_cpu_peak: float | None
    """The proxy's busiest second during the study, in cores (None: no proxy at RTT 0)."""
    proxy_cpu_mean: float | None
    wall_s: float


def _private_cache(tmp: Path) -> dict[str, str]:
    """An environment whose cache dir is `tmp` (the jars linked in), so `tuner optimize`
    starts a broker of its own with the profile instead of reusing one already running."""
    jars = broker.cache_dir() / f"kafka-{broker.KAFKA_VERSION}"
    broker.classpath()
    (tmp / "kafka-tuner").mkdir(parents=True, exist_ok=True)
    (tmp / "kafka-tuner" / jars.name).symlink_to(jars)
    return {**os.environ, "XDG_CACHE_HOME": str(tmp)}


def _proxies(parent: int) -> list[int]:
    """The network proxy processes `parent` started (the broker's, inside `tuner optimize`)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if b"tuner.broker.netem" in (proc / "cmdline").read_bytes() and parent_of(
                int(proc.name)
            ) == (parent):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def optimize_under(rtt_ms: float, out: Path, env: dict[str, str]) -> Row:
    """One `tuner optimize` of the reference workload at `rtt_ms`, its proxy sampled each second."""
    sets = [] if rtt_ms == 0 else ["--set", f"cluster.network.rtt_ms={rtt_ms:g}"]
    argv = [sys.executable, "-m", "tuner.cli", "optimize", str(CONFIG), "--out", str(out),
            "--quiet", *sets]  # fmt: skip
    started = time.monotonic()
    with (out.parent / f"optimize-{rtt_ms:g}.log").open("w") as log:
        run = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
        cpu_seen: dict[int, float] = {}
        peak, busy_s, sampled_s = 0.0, 0.0, 0.0
        while run.poll() is None:
            time.sleep(1.0)
            for pid in _proxies(run.pid):
                try:
                    cpu = cpu_seconds(pid)
                except OSError:
                    continue
                delta = cpu - cpu_seen.get(pid, cpu)
                cpu_seen[pid] = cpu
                peak, busy_s = max(peak, delta), busy_s + delta
            if cpu_seen:
                sampled_s += 1.0
    wall = time.monotonic() - started
    if run.returncode != 0:
        raise RuntimeError(f"tuner optimize at RTT {rtt_ms:g} ms exited {run.returncode}")
    summary = json.loads((out / "summary.json").read_text())
    against = summary["against"][summary["baseline"]]
    aio = space.aiokafka_defaults()
    under = re.search(r"Measured under: (.*?)\.\s", (out / "report.md").read_text())
    return Row(
        rtt_ms=rtt_ms,
        defaults_records_per_s=against["median_records_per_s"],
        recommended_records_per_s=summary["best_median_records_per_s"],
        gain=against["gain"],
        interval=None if against["interval"] is None else tuple(against["interval"]),
        refused=against["refused"],
        changes={k: v for k, v in sorted(summary["settings"].items()) if aio.get(k) != v},
        measured_under=under.group(1) if under else "(not in the report)",
        proxy_cpu_peak=peak if cpu_seen else None,
        proxy_cpu_mean=busy_s / sampled_s if sampled_s else None,
        wall_s=wall,
    )


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def _gain(row: Row) -> str:
    if row.gain is None:
        return f"not compared ({row.refused})" if row.refused else "too few runs"
    low, high = row.interval or (row.gain, row.gain)
    return f"{row.gain:+.0%} [{low:+.0%}, {high:+.0%}]"


def _changes(row: Row) -> str:
    return ", ".join(f"{k}={v}" for k, v in row.changes.items()) or "none"


def _fetch_p50(row: Row) -> str:
    found = re.search(r"fetch latency p50: ([\d.,]+ ms)", row.measured_under)
    return found.group(1) if found else "n/a"


def _cores(value: float | None) -> str:
    return "no proxy" if value is None else f"{value:.0%}"


def render(rows: list[Row], costs: list[ProxyCost]) -> list[str]:
    lines = [
        "Network benchmark (`network/reference.yaml`: 1 member, 1 partition, 1 KiB records at "
        "20 µs each; an 8-trial study over three fetch settings, the ablation, then 3 "
        "interleaved confirmation runs of the recommendation and of aiokafka's defaults; RTT 0 "
        "is loopback without a profile)",
        "",
        "| RTT | aiokafka defaults, median records/s | recommended, median records/s | gain "
        "[95% interval] | the recommendation changes | fetch latency p50 (best trial) | proxy "
        "CPU, mean / busiest second | study wall time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.rtt_ms:g} ms | {_rate(r.defaults_records_per_s)} | "
        f"{_rate(r.recommended_records_per_s)} | {_gain(r)} | {_changes(r)} | "
        f"{_fetch_p50(r)} | {_cores(r.proxy_cpu_mean)} / {_cores(r.proxy_cpu_peak)} | "
        f"{r.wall_s / 60:.1f} min |"
        for r in rows
    ]
    lines += [
        "",
        "Proxy cost on its own (one connection, 1 MiB writes, median of 3 runs):",
        "",
        "| profile | CPU per MB forwarded | would use a whole core at | this test pushed |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| RTT {c.rtt_ms:g} ms | {c.cpu_ms_per_mb:.2f} ms | {c.ceiling_mb_per_s:,.0f} MB/s | "
        f"{c.wall_mb_per_s:,.0f} MB/s |"
        for c in costs
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rtts", default=",".join(f"{r:g}" for r in RTTS))
    parser.add_argument("--proxy-mb", type=int, default=200)
    args = parser.parse_args()
    rtts = [float(r) for r in args.rtts.split(",")]
    started = time.monotonic()
    costs = [proxy_cost(rtt, args.proxy_mb, runs=3) for rtt in (0.0, 40.0)]
    for c in costs:
        print(f"  proxy at RTT {c.rtt_ms:g} ms: {c.cpu_ms_per_mb:.2f} ms CPU per MB", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-network-") as tmp:
        env = _private_cache(Path(tmp) / "cache")
        for rtt in rtts:
            row = optimize_under(rtt, Path(tmp) / f"rtt-{rtt:g}", env)
            rows.append(row)
            print(f"  RTT {rtt:g} ms: defaults {_rate(row.defaults_records_per_s)}/s, "
                  f"recommended {_rate(row.recommended_records_per_s)}/s ({_gain(row)}), "
                  f"changes: {_changes(row)}; {row.wall_s / 60:.1f} min", flush=True)  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "network.json").write_text(json.dumps({
        "machine": f"{platform.machine()}, {platform.python_version()}, {os.cpu_count()} CPUs",
        "total_s": time.monotonic() - started,
        "proxy_cost": [{**asdict(c), "ceiling_mb_per_s": c.ceiling_mb_per_s} for c in costs],
        "rows": [asdict(r) for r in rows],
    }, indent=2) + "\n")  # fmt: skip
    lines = render(rows, costs)
    (RESULTS / "network.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"total: {(time.monotonic() - started) / 60:.1f} min")


if __name__ == "__main__":
    main()
