"""Serving a registry on `/metrics`, with the Java-named view when the config asks for it."""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import threading
from collections.abc import Iterator
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server

from tuner.config import MetricsSpec
from tuner.metrics.java import JavaCompatibleCollector

log = logging.getLogger(__name__)


class PortInUseError(Exception):
    """A metrics port of the config is taken: bad input, named by its config path."""

    def __init__(self, field: str, host: str, port: int) -> None:
        super().__init__(
            f"{field}: {host}:{port} is already in use; set another port, or 0 for a free one"
        )


def check_ports(spec: MetricsSpec, *, producer: bool) -> None:
    """Raise `PortInUseError` if a port the run will bind (`metrics.port`, and with Locust load
    `metrics.producer_port`) is taken now, so that is said before anything starts."""
    wanted = [("metrics.port", spec.port)]
    if producer:
        wanted.append(("metrics.producer_port", spec.producer_port))
    for field, port in wanted:
        if port == 0:
            continue
        family = socket.AF_INET6 if ":" in spec.host else socket.AF_INET
        with socket.socket(family) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds
            try:
                sock.bind((spec.host, port))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise PortInUseError(field, spec.host, port) from None
                raise


@contextlib.contextmanager
def exposed(registry: CollectorRegistry, *, java_compatible: bool) -> Iterator[CollectorRegistry]:
    """What to serve: the registry, plus the Java-named view of it when asked for, sampling
    on its own clock while the block runs."""
    if not java_compatible:
        yield registry
        return
    java = JavaCompatibleCollector(registry)
    served = CollectorRegistry(auto_describe=False)
    served.register(registry)
    served.register(java)
    with java.ticking():
        yield served


@contextlib.contextmanager
def serve(
    registry: CollectorRegistry, *, host: str, port: int, java_compatible: bool = False
) -> Iterator[int]:
    """Serve `/metrics` for the registry (and its Java-named view when `java_compatible`)
    while the block runs; yields the bound port."""
    server: WSGIServer
    thread: threading.Thread
    with exposed(registry, java_compatible=java_compatible) as served:
        try:
            server, thread = start_http_server(port, addr=host, registry=served)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUseError("metrics.port", host, port) from None
            raise
        bound = int(server.server_port)
        log.info("serving metrics on http://%s:%d/metrics", host, bound)
        try:
            yield bound
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
