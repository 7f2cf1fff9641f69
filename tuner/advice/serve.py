"""The advisor as a service: check every so often, serve the findings as metrics and JSON.

`/metrics` has the `tuner_advice_*` series (and the check counters), `/findings` the last
check's findings as JSON. A check that fails keeps the last findings served and counts an
error; the service keeps going.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

from tuner.advice.findings import Finding
from tuner.advice.prometheus import PrometheusError
from tuner.metrics.advice import AdviceMetrics

DEFAULT_PORT = 9402
"""Where `tuner advise --every` serves unless told: the `tuner-advise` job of the shipped
Prometheus configs scrapes it there, next to the exporter (9400) and Locust (9401)."""

log = logging.getLogger(__name__)

Check = Callable[[], tuple[Finding, ...]]
StartResponse = Callable[[str, list[tuple[str, str]]], Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class Round:
    """One check: when, its findings, or why it failed."""

    at: float
    findings: tuple[Finding, ...]
    error: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "checked_at": self.at,
            "error": self.error,
            "findings": [f.to_dict() for f in self.findings],
        }


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds would flood stderr."""


class _Threading(WSGIServer):
    daemon_threads = True


class AdviceService:
    """The last round and its metrics; `app` serves both."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.metrics = AdviceMetrics(self.registry)
        self.last = Round(at=0.0, findings=())
        self._metrics_app = make_wsgi_app(self.registry)

    def check(self, check: Check) -> Round:
        """Run one check and publish it; a Prometheus that fails keeps the last findings."""
        now = time.time()
        try:
            findings = check()
        except PrometheusError as exc:
            log.warning("check failed: %s", exc)
            self.metrics.failed()
            self.last = Round(at=now, findings=self.last.findings, error=str(exc))
            return self.last
        self.metrics.checked(((f.code, f.severity.value, f.group) for f in findings), now)
        self.last = Round(at=now, findings=findings)
        return self.last

    def app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "/").rstrip("/") == "/findings":
            body = json.dumps(self.last.to_dict(), indent=2).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        return self._metrics_app(environ, start_response)  # type: ignore[no-any-return]  # prometheus_client's WSGI app is untyped


@contextlib.contextmanager
def serving(service: AdviceService, *, host: str, port: int) -> Iterator[int]:
    """Serve `/metrics` and `/findings` while the block runs; yields the bound port."""
    server = make_server(host, port, service.app, server_class=_Threading, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, name="advice-http", daemon=True)
    thread.start()
    try:
        yield int(server.server_port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def watch(
    service: AdviceService,
    check: Check,
    *,
    every_s: float,
    stop: threading.Event,
    on_round: Callable[[Round], None] | None = None,
) -> None:
    """Check now and every `every_s` until `stop` is set."""
    while True:
        done = service.check(check)
        if on_round is not None:
            on_round(done)
        if stop.wait(every_s):
            return
