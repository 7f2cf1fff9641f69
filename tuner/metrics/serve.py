"""Serving a registry on `/metrics`, with the Java-named view when the config asks for it."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server

from tuner.metrics.java import JavaCompatibleCollector

log = logging.getLogger(__name__)


def exposed(registry: CollectorRegistry, *, java_compatible: bool) -> CollectorRegistry:
    """What to serve: the registry, plus the Java-named view of it when asked for."""
    if not java_compatible:
        return registry
    served = CollectorRegistry(auto_describe=False)
    served.register(registry)
    served.register(JavaCompatibleCollector(registry))
    return served


@contextlib.contextmanager
def serve(registry: CollectorRegistry, *, host: str, port: int) -> Iterator[int]:
    """Serve `/metrics` for the registry while the block runs; yields the bound port."""
    server: WSGIServer
    thread: threading.Thread
    server, thread = start_http_server(port, addr=host, registry=registry)
    bound = int(server.server_port)
    log.info("serving metrics on http://%s:%d/metrics", host, bound)
    try:
        yield bound
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
