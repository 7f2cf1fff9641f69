"""The study topics this machine's tuner processes own right now, for `tuner clean`.

Each topic is registered (a small file in the user cache dir naming it, its cluster and the
owning pid) while it exists, so after a SIGKILL, which runs no `finally`, `clean` can tell
a dead owner's topic from a live one.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from tuner.broker import cache_dir


@dataclass(frozen=True, slots=True, kw_only=True)
class OwnedTopic:
    """A study topic and the process that made it."""

    topic: str
    prefix: str
    bootstrap_servers: str
    host: str
    pid: int


def owned_dir() -> Path:
    return cache_dir() / "owned"


@contextlib.contextmanager
def registered(owned: OwnedTopic) -> Iterator[None]:
    """Record `owned` while the `with` block runs, so a `clean` after a kill finds the topic."""
    path = owned_dir() / f"{owned.topic}.{owned.pid}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(owned)))
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def owned_here(topic: str, prefix: str, bootstrap_servers: str) -> OwnedTopic:
    """`topic` as owned by this process on this host."""
    return OwnedTopic(topic=topic, prefix=prefix, bootstrap_servers=bootstrap_servers,
                      host=socket.gethostname(), pid=os.getpid())  # fmt: skip


def registrations() -> Iterator[tuple[Path, OwnedTopic]]:
    """Every registered topic with its file (unreadable files are skipped)."""
    for path in sorted(owned_dir().glob("*.json")):
        try:
            yield path, OwnedTopic(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue
