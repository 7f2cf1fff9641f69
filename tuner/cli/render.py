"""What the `tuner` command shows: a trial's result as text, and a study's progress.

Kept apart from the command's parsing and exit codes; it returns strings or writes to the
stream it is given, so tests read exactly what a user sees.
"""

from __future__ import annotations

import time
from typing import TextIO

from tuner.broker import BrokerInfo
from tuner.broker.security import CA_ENV, MECHANISMS, PASSWORD_ENV, client_info
from tuner.clients import ConsumerClient, client_named
from tuner.config import describe_path
from tuner.consumer import LAG_STALE_S
from tuner.metrics.phases import Outcome
from tuner.recommend.ablation import Change
from tuner.search.events import TrialEvent
from tuner.trial.run import LatencyMs, Phase, PollStats, SteadyState, TrialResult


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.1f} ms"


def _quantiles(latency: LatencyMs) -> str:
    return f"p50 {_ms(latency.p50)}  p95 {_ms(latency.p95)}  p99 {_ms(latency.p99)}"


def render_secured(broker: BrokerInfo) -> str | None:
    """A secured broker's listeners and what a client needs (the password stays in its file);
    None for a broker that is not secured."""
    info = client_info(broker.data_dir)
    if info is None:
        return None
    return "\n".join([
        f"SASL_SSL         {info.sasl_ssl}  ({', '.join(MECHANISMS)})",
        f"SSL              {info.ssl}  (broker certificate only)",
        f"CA file          {info.ca_file}",
        f"user             {info.username}",
        f"password         in {info.password_file} (readable by you only)",
        "",
        "For configs/secured.yaml:",
        f"  export {PASSWORD_ENV}=\"$(cat {info.password_file})\"",
        f"  export {CA_ENV}={info.ca_file}",
    ])  # fmt: skip


STUCK_MS = LAG_STALE_S * 1000
"""A gap between polls still open this long at the window's end is a member stuck in a batch."""


def _stuck(open_gap_ms: float | None) -> str:
    """A member still inside one batch when the window ended, from `STUCK_MS` on."""
    if open_gap_ms is None or open_gap_ms < STUCK_MS:
        return ""
    return f"; a member had not polled for {open_gap_ms / 1000:,.1f} s at the window's end"


def _held_across_polls(poll: PollStats, client: ConsumerClient) -> str:
    """Why the loop can be held longer than any gap between polls: a poll that finds records
    already fetched returns without yielding, so batch after batch runs on one turn of the
    loop until the prefetched records run out. The number is right; this says how."""
    held, gap = poll.loop_blocked_ms_max, poll.interval_ms_max or 0.0
    if held is None or held < 100 or held <= 1.5 * gap:
        return ""
    waited = (
        f"{client.name}'s heartbeat task" if client.heartbeats_on_the_loop else "its other tasks"
    )
    return (
        f" across polls (polls that found records already fetched did not yield: "
        f"{waited} waited that long)"
    )


def render_result(result: TrialResult, *, backlog_needed: int | None = None) -> str:
    """A readable summary of one trial; `backlog_needed` names the backlog that would keep a
    run that ran dry capacity-bound."""
    fetch, poll, ms = result.fetch, result.poll, _ms
    lines = [
        f"group            {result.group_id}",
        f"throughput       {result.throughput_records_per_s:,.0f} records/s "
        f"({result.throughput_mb_per_s:,.2f} MB/s) over {result.window_s:.1f} s",
        f"rebalances       {result.rebalances}",
        *([] if result.warmup_s is None else [f"warm-up          {result.warmup_s:.1f} s"]),
        f"record age       {_quantiles(result.record_age_ms)} "
        "(draining a backlog: not a latency the settings cause)",
        *_steady_lines(result.steady),
        f"network          {network_line(result)}",
        *(
            []
            if result.kafka_version is None
            else [f"broker           Apache Kafka {result.kafka_version}"]
        ),
        *([] if result.service is None else [f"service          {result.service.line()}"]),
        *([] if result.payloads is None else [f"records          {result.payloads.line()}"]),
        (
            f"fetch            {fetch.requests:,} requests, latency p50 "
            f"{ms(fetch.latency_ms_p50)} p99 {ms(fetch.latency_ms_p99)}, "
            f"{fetch.records_per_fetch_avg:,.0f} records "
            f"/ {fetch.bytes_per_fetch_avg / 1024:,.0f} KiB per fetch"
            if fetch.requests or not result.offsets.consumed_total
            else "fetch            not reported: the members' client (a service's own) reports "
            "no fetches"
        ),
        f"poll             max interval {ms(poll.interval_ms_max)}, idle ratio "
        + ("n/a" if poll.idle_ratio is None else f"{poll.idle_ratio:.2f}")
        + (
            ""
            if poll.records_per_poll_avg is None
            else f", {poll.records_per_poll_avg:,.0f} records per poll"
        )
        + (
            ""
            if poll.loop_blocked_ms_max is None
            else f", event loop held up to {ms(poll.loop_blocked_ms_max)}"
            + _held_across_polls(poll, client_named(result.client))
        )
        + _stuck(poll.open_gap_ms_max),
        f"lag (end)        {result.lag_max:,} records max per partition"
        + (
            " (the broker's offsets: a member's own reading was stale)"
            if result.lag_from_broker
            else ""
        ),
        f"offsets          consumed {result.offsets.consumed_total:,}, committed "
        f"{result.offsets.committed_total:,}, topic end {result.offsets.end_offsets_total:,}",
    ]
    if result.producer is not None:
        p = result.producer
        lines.append(
            f"producer         {p.records_per_s:,.0f} records/s from Locust, send latency p50 "
            f"{ms(p.send_latency_ms_p50)} p99 {ms(p.send_latency_ms_p99)}, "
            f"{p.failures} failures"
        )
    lines.extend(f"fault            {fault.describe()}" for fault in result.faults)
    if result.backlog_emptied:
        lines.append(
            "NOT CAPACITY     this run measured the supply of records, not the consumers: "
            + (f"{result.supply}; " if result.supply else "")
            + "it still did on a grown backlog, so the throughput above is how fast records "
            "arrived, not what the group can do; set workload.prefill_records to "
            + (f"{backlog_needed:,}" if backlog_needed else "a larger value")
        )
    if result.coarse is not None:
        lines.append(f"NOT MEASURED     the throughput above is not scored: {result.coarse}")
    lines.extend(f"error            {e}" for e in result.errors)
    return "\n".join(lines)


def network_line(result: TrialResult) -> str:
    """The path the trial was measured across, with the fetch round trip it showed."""
    p50 = result.fetch.latency_ms_p50
    seen = "" if p50 is None else f" (fetch latency p50 {p50:,.1f} ms)"
    return describe_path(result.network) + seen


def _steady_lines(steady: SteadyState | None) -> list[str]:
    """The steady state's latency, or why there is none to show."""
    if steady is None:
        return [
            "latency          not measured: it needs a steady state (trial.steady_s > 0, "
            "workload.producer.users and rate_per_user > 0)"
        ]
    seconds = max(steady.window_s, 1e-9)
    verdict = (
        "kept up"
        if steady.kept_up
        else "FELL BEHIND: no steady state, its latency counts as infinite"
    )
    return [
        f"steady state     {steady.target_records_per_s:,.0f} records/s set, "
        f"{steady.produced / seconds:,.0f} produced/s, {steady.consumed / seconds:,.0f} "
        f"consumed/s over {steady.window_s:.1f} s: {verdict}",
        f"latency          {_quantiles(steady.latency_ms)} (end to end, steady state)",
    ]


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return (
        f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"
        if minutes >= 60
        else f"{minutes}:{secs:02d}"
    )


def progress_bar(
    done: int, total: int, elapsed_s: float, width: int = 24, *, eta_s: float | None = None
) -> str:
    """`[#######-----] 7/20 35% elapsed 2:10 ETA 4:02`: the trials' bar, and when they end
    (from the mean time per trial). Given `eta_s` (the search's and the recommendation's runs,
    as planned), it says when the whole study ends: `study ETA 4:02`, which a full bar does
    not end."""
    total = max(total, 1)
    filled = min(width, width * done // total)
    if eta_s is not None:
        eta = f"study ETA {_clock(eta_s)}"
    else:
        eta = "ETA " + ("?" if done == 0 else _clock(elapsed_s / done * max(total - done, 0)))
    return (
        f"[{'#' * filled}{'-' * (width - filled)}] {done}/{total} {done / total:4.0%} "
        f"elapsed {_clock(elapsed_s)} {eta}"
    )


def _latencies(e: TrialEvent) -> str:
    """The steady state's p99, when there is one. Not the capacity window's record age: that
    is how long the backlog waited (297,600 ms on a shared quickstart topic by its 7th
    trial), which a progress line with no room to say so would have read as latency;
    `tuner run` and trials.csv keep it, named for what it is."""
    if e.p99_ms is None:
        return ""
    if e.p99_ms == float("inf"):
        return ", latency p99 inf (no steady state: fell behind the load)"
    return f", latency p99 {e.p99_ms:,.0f} ms"


class StudyProgress:
    """A line per finished trial and the overall bar; on a terminal the bar stays live,
    showing the phase and running throughput of the trial in flight."""

    def __init__(self, total: int, *, stream: TextIO, live: bool) -> None:
        self.total, self.stream, self.live = total, stream, live
        self.done, self.number = 0, 0
        self.started = time.monotonic()
        self.eta: tuple[float, float] | None = None
        """The last trial's ETA and when it was given: the live bar counts it down."""

    def trial(self, e: TrialEvent) -> None:
        changed = ", ".join(f"{k}={v}" for k, v in sorted(e.changed.items())) or "defaults"
        if e.state is Outcome.PRUNED:
            what = f"pruned ({e.reason})"
        elif e.value is None:
            what = f"FAILED ({e.reason})"
        else:
            what = f"{e.value:,.0f} records/s{_latencies(e)}, {e.rebalances} rebalances"
            if e.state is Outcome.INFEASIBLE:
                what += f" (infeasible: {e.reason})"
        best = "-" if e.best_value is None else f"{e.best_value:,.0f} records/s"
        self.done, self.number, self.total = e.done, e.number + 1, e.total
        self.eta = None if e.eta_s is None else (e.eta_s, time.monotonic())
        bar = progress_bar(e.done, e.total, e.elapsed_s, eta_s=e.eta_s)
        self._write(
            f"trial {e.number}: {what} | best {best}\n    {changed}\n"
            + ("" if self.live else bar + "\n")
        )

    def phase(self, phase: Phase, value: float | None) -> None:
        if not self.live:
            return
        doing = phase.value if value is None else f"{phase.value} {value:,.0f} records/s"
        now = time.monotonic()
        eta = None if self.eta is None else max(self.eta[0] - (now - self.eta[1]), 0.0)
        bar = progress_bar(self.done, self.total, now - self.started, eta_s=eta)
        self.stream.write(f"\r\x1b[2K{bar} | trial {self.number}: {doing}")
        self.stream.flush()

    def _write(self, text: str) -> None:
        self.stream.write(("\r\x1b[2K" if self.live else "") + text)
        self.stream.flush()


def ablation_line(done: int, total: int, change: Change) -> str:
    """`  ablation 3/8: max.poll.records back to unlimited: +13.2% (reverted: putting it back
    raised throughput by more than 3%: the change cost throughput)`."""
    effect = "not measured" if change.reverting is None else f"{change.reverting.estimate:+.1%}"
    back = "unlimited" if change.baseline is None else change.baseline
    verdict = f"{'kept' if change.kept else 'reverted'}: {change.reason}"
    return f"  ablation {done}/{total}: {change.name} back to {back}: {effect} ({verdict})"


def confirm_line(done: int, total: int, name: str, result: TrialResult) -> str:
    return (
        f"  confirm {done}/{total}: {name}: {result.throughput_records_per_s:,.0f} records/s, "
        f"{result.rebalances} rebalances"
    )
