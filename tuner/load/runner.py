"""Live producer load: Locust, headless, in its own process, for the length of a trial.

`tuner` never imports locust (it monkey-patches the process for gevent, which breaks
asyncio); it starts `locust -f locustfiles/kafka_producer.py --headless …` and reads the
cumulative counts the locustfile appends to a stats file every second. Window statistics are
deltas between two of those lines, as with the consumers' instruments.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from tuner import children
from tuner.config import SecuritySpec, WorkloadSpec
from tuner.load.stats import StatsLine
from tuner.metrics import delta_buckets, histogram_quantile

log = logging.getLogger(__name__)

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
SASL_PASSWORD_ENV = "KAFKA_TUNER_SASL_PASSWORD"  # noqa: S105 - a variable name, not a password
"""Where the locustfile reads the SASL password: its environment, never an option (options
show in `ps` and the web UI, and a master sends them to its workers)."""


class LoadError(Exception):
    """Locust could not produce (not installed, broker unreachable, process died)."""


def locustfile() -> Path:
    """The producer locustfile: `$KAFKA_TUNER_LOCUSTFILE`, else `locustfiles/` of this project."""
    given = os.environ.get("KAFKA_TUNER_LOCUSTFILE")
    path = Path(given) if given else Path(__file__).resolve().parents[2] / "locustfiles"
    path = path / "kafka_producer.py" if path.is_dir() else path
    if not path.is_file():
        raise LoadError(
            f"no locustfile at {path}: run from a checkout of kafka-tuner or set "
            "KAFKA_TUNER_LOCUSTFILE to locustfiles/kafka_producer.py"
        )
    return path


@dataclass(frozen=True, slots=True, kw_only=True)
class ProducerStats:
    """Locust's producer over a window: what it achieved, how fast deliveries came back."""

    records_sent: int
    records_per_s: float
    send_latency_ms_p50: float | None
    send_latency_ms_p99: float | None
    failures: int

    @classmethod
    def between(cls, start: StatsLine, end: StatsLine) -> ProducerStats:
        seconds = max(end.at - start.at, 1e-9)
        buckets = delta_buckets(start.latency_buckets, end.latency_buckets)

        def ms(q: float) -> float | None:
            value = histogram_quantile(q, buckets)
            return None if value is None else value * 1000

        sent = end.sent - start.sent
        return cls(
            records_sent=sent,
            records_per_s=sent / seconds,
            send_latency_ms_p50=ms(0.5),
            send_latency_ms_p99=ms(0.99),
            failures=end.failed - start.failed,
        )


def locust_args(
    workload: WorkloadSpec,
    *,
    bootstrap_servers: str,
    topic: str,
    stats_file: Path,
    metrics_port: int = 0,
    metrics_host: str = "127.0.0.1",
    security: SecuritySpec | None = None,
) -> list[str]:
    """Command-line arguments that hand the YAML `workload` section to the locustfile, and
    how to reach the cluster (all but the password: see `SASL_PASSWORD_ENV`)."""
    p, shape, size = workload.producer, workload.shape, workload.message_bytes
    args = [
        "--headless", "--users", str(p.users), "--spawn-rate", str(p.spawn_rate),
        "--kafka-bootstrap", bootstrap_servers, "--kafka-topic", topic,
        "--message-bytes", str(workload.mean_message_bytes),
        "--key-distribution", workload.key_distribution, "--acks", p.acks,
        "--linger-ms", str(p.linger_ms), "--compression", p.compression,
        "--batch-bytes", str(p.batch_bytes), "--rate-per-user", str(p.rate_per_user),
        "--shape", shape.kind, "--step-users", str(shape.step_users),
        "--step-every-s", str(shape.step_every_s), "--spike-users", str(shape.spike_users),
        "--spike-at-s", str(shape.spike_at_s), "--spike-for-s", str(shape.spike_for_s),
        "--stats-file", str(stats_file), "--only-summary", "--loglevel", "WARNING",
        "--metrics-port", str(metrics_port), "--metrics-host", metrics_host,
    ]  # fmt: skip
    if not isinstance(size, int):
        args += ["--size-distribution", size.distribution, "--size-tail", str(size.p99 or 0)]
    payloads = workload.payloads
    if payloads is not None and payloads.file is not None:
        args += ["--payloads", payloads.file, "--payloads-format", payloads.file_format,
                 "--payloads-order", payloads.order,
                 "--payloads-seed", str(payloads.seed)]  # fmt: skip
    sec = security or SecuritySpec()
    args += ["--kafka-security-protocol", sec.protocol]
    if sec.sasl_mechanism and sec.username:
        args += ["--kafka-sasl-mechanism", sec.sasl_mechanism,
                 "--kafka-sasl-username", sec.username]  # fmt: skip
    if sec.ssl_cafile:
        args += ["--kafka-ssl-ca", sec.ssl_cafile]
    if workload.locust.mode == "master":
        locust = workload.locust
        args += ["--master", "--expect-workers", str(locust.expect_workers),
                 "--master-bind-port", str(locust.master_port)]  # fmt: skip
    return args


class LocustLoad:
    """`async with LocustLoad(...)`: Locust produces until the block ends, then stops cleanly."""

    def __init__(
        self,
        workload: WorkloadSpec,
        *,
        bootstrap_servers: str,
        topic: str,
        metrics_port: int = 0,
        metrics_host: str = "127.0.0.1",
        security: SecuritySpec | None = None,
    ) -> None:
        self.workload = workload
        sec = security or SecuritySpec()
        self._env = {**os.environ, SASL_PASSWORD_ENV: sec.password or ""}
        self._dir = Path(tempfile.mkdtemp(prefix="kafka-tuner-locust-"))
        self.stats_file = self._dir / "stats.jsonl"
        files = str(locustfile())
        if workload.shape.kind != "constant":
            files += f",{locustfile().with_name('shapes.py')}"
        self.argv = [
            sys.executable, "-m", "locust", "-f", files,
            *locust_args(workload, bootstrap_servers=bootstrap_servers, topic=topic,
                         stats_file=self.stats_file, metrics_port=metrics_port,
                         metrics_host=metrics_host, security=sec),
        ]  # fmt: skip
        self.proc: asyncio.subprocess.Process | None = None
        self.final: StatsLine | None = None
        """The counts after Locust stopped (its last line, written on its way out)."""
        self._stderr = self._dir / "stderr.log"

    async def __aenter__(self) -> LocustLoad:
        with self._stderr.open("wb") as err:
            self.proc = await asyncio.create_subprocess_exec(
                # Locust ends with us, even on SIGKILL; at once, for its graceful stop flushes
                # the producer for up to 10 s, with nobody left to read what it says.
                *children.guarded(self.argv, signal.SIGKILL),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,  # its own process group: nothing of it can outlive us
                cwd=self._dir,
                env=self._env,
            )
        try:
            await self._wait_for_first_delivery()
        except BaseException:
            await self.stop()
            raise
        return self

    async def _wait_for_first_delivery(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            self.check()
            snap = self.snapshot()
            if snap is not None and snap.sent > 0:
                return
            if snap is not None and snap.failed > 0:
                raise LoadError(f"the producer cannot deliver: {snap.last_error}")
            await asyncio.sleep(0.2)
        last = self.snapshot()
        reason = last.last_error if last else "no stats written"
        raise LoadError(f"Locust delivered nothing within {START_TIMEOUT_S:.0f} s ({reason})")

    def check(self) -> None:
        """Raise `LoadError` if Locust exited, or nothing has been delivered for long."""
        if self.proc is not None and self.proc.returncode is not None:
            raise LoadError(
                f"Locust (pid {self.proc.pid}) {children.describe_exit(self.proc.returncode)} "
                f"mid-trial:\n{self._stderr_tail()}".rstrip()
            )

    def _stderr_tail(self, lines: int = 15) -> str:
        try:
            text = self._stderr.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def snapshot(self) -> StatsLine | None:
        """The latest cumulative counts Locust wrote, or None before the first line."""
        try:
            with self.stats_file.open("rb") as stats:
                stats.seek(0, os.SEEK_END)
                stats.seek(max(stats.tell() - 4096, 0))
                lines = stats.read().decode(errors="replace").strip().splitlines()
        except OSError:
            return None
        for line in reversed(lines):
            try:
                return StatsLine.parse(line)
            except ValueError:
                continue  # a line being written
        return None

    async def stop(self) -> None:
        """SIGTERM (Locust stops users and reports), then SIGKILL the group after a deadline."""
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            async with asyncio.timeout(STOP_TIMEOUT_S):
                await proc.wait()
        except TimeoutError:
            log.warning("Locust did not stop in %.0f s; killing it", STOP_TIMEOUT_S)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # any straggler in its group

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.shield(self.stop())
        self.final = self.snapshot()
        shutil.rmtree(self._dir, ignore_errors=True)
