"""What killed `tuner` processes leave behind, and `tuner clean`, which removes it.

A SIGKILLed process runs no `finally`: its study topic and its trial's consumer groups stay in
the cluster, its broker's and Locust's temp dirs stay on disk, and (for a worker) its lease
stays in the study's storage until it expires. `clean` removes only what a dead process of this
machine owned (topics as `tuner.cluster.owned` registered them, and only under the tuner's
prefix), the empty groups under the prefix (the broker refuses to delete a group with members),
and temp dirs no process uses that are older than `MIN_AGE_S` (a younger one may be in the
middle of being set up).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from aiokafka.errors import NonEmptyGroup
from sqlalchemy import create_engine, delete
from sqlalchemy.pool import NullPool

from tuner import broker
from tuner.cluster import admin as cluster
from tuner.cluster.owned import registrations
from tuner.config import EMBEDDED, ClusterSpec
from tuner.search.lease import LEASES, coordination_url

TEMP_PREFIXES = ("kafka-tuner-broker-", "kafka-tuner-locust-")
"""The temp dirs the tuner makes (an embedded broker's data, a Locust run's files)."""
MIN_AGE_S = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Cleaned:
    """What `clean` removed, and what it had to leave (with why)."""

    topics: list[str] = field(default_factory=list)
    """`topic at bootstrap` for each topic deleted."""
    groups: list[str] = field(default_factory=list)
    """`group at bootstrap` for each consumer group deleted."""
    dirs: list[str] = field(default_factory=list)
    leases: int = 0
    """Expired leases deleted from the storage."""
    left: list[str] = field(default_factory=list)


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def _used_by_a_process(path: Path) -> bool:
    """True if a running process works in `path` or names it on its command line."""
    needle = str(path).encode()
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            if needle in (proc / "cmdline").read_bytes():
                return True
        with contextlib.suppress(OSError):
            if os.readlink(proc / "cwd").startswith(str(path)):
                return True
    return False


def _clean_topics(cluster_spec: ClusterSpec | None, out: Cleaned) -> None:
    here = socket.gethostname()
    for marker, owned in registrations():
        if owned.host != here or _alive(owned.pid) or not owned.topic.startswith(owned.prefix):
            continue
        spec = cluster_spec or ClusterSpec(topic_prefix=owned.prefix)
        conn = cluster.Connection(bootstrap_servers=owned.bootstrap_servers, cluster=spec)
        try:
            asyncio.run(cluster.delete_topic(conn, owned.topic))
        except Exception as exc:  # an unreachable cluster: keep the record for the next clean
            out.left.append(f"{owned.topic} at {owned.bootstrap_servers}: {exc or type(exc)}")
            continue
        out.topics.append(f"{owned.topic} at {owned.bootstrap_servers}")
        marker.unlink(missing_ok=True)


def _group_clusters(cluster_spec: ClusterSpec | None) -> dict[str, ClusterSpec]:
    """Bootstrap address → how to reach it, for each cluster whose groups `clean` looks at:
    the config's (or, embedded, the running `tuner broker`s), and those that registered
    topics name; none that a live tuner process of this machine is using, since its trial's
    group is empty for a moment between its members leaving and the run deleting it."""
    spec = cluster_spec or ClusterSpec()
    found: dict[str, ClusterSpec] = {}
    if spec.bootstrap_servers != EMBEDDED:
        found[spec.bootstrap_servers] = spec
    else:
        found |= {b.bootstrap_servers: spec for b in broker.running()}
    here, busy = socket.gethostname(), set()
    for _marker, owned in registrations():
        found.setdefault(owned.bootstrap_servers, replace(spec, topic_prefix=owned.prefix))
        if owned.host == here and _alive(owned.pid):
            busy.add(owned.bootstrap_servers)
    return {address: c for address, c in found.items() if address not in busy}


def _clean_groups(cluster_spec: ClusterSpec | None, out: Cleaned) -> None:
    for address, spec in _group_clusters(cluster_spec).items():
        conn = cluster.Connection(bootstrap_servers=address, cluster=spec)
        try:
            groups = asyncio.run(cluster.owned_groups(conn))
        except Exception as exc:  # an unreachable cluster: nothing to do there now
            out.left.append(f"the groups at {address}: {exc or type(exc)}")
            continue
        for group in groups:
            try:
                deleted = asyncio.run(cluster.delete_groups(conn, [group], wait_s=0))
            except NonEmptyGroup:
                out.left.append(f"group {group} at {address}: it has members (in use)")
                continue
            except Exception as exc:
                out.left.append(f"group {group} at {address}: {exc or type(exc)}")
                continue
            out.groups.extend(f"{g} at {address}" for g in deleted)


def _clean_dirs(out: Cleaned) -> None:
    for path in sorted(Path(tempfile.gettempdir()).glob("kafka-tuner-*")):
        if not (path.is_dir() and path.name.startswith(TEMP_PREFIXES)):
            continue
        if time.time() - path.stat().st_mtime > MIN_AGE_S and not _used_by_a_process(path):
            shutil.rmtree(path, ignore_errors=True)
            out.dirs.append(str(path))


def _clean_leases(storage: str, out: Cleaned) -> Cleaned:
    engine = create_engine(coordination_url(storage), poolclass=NullPool)
    try:
        with engine.begin() as db:
            gone = db.execute(delete(LEASES).where(LEASES.c.expires_at < time.time()))
    finally:
        engine.dispose()
    return replace(out, leases=gone.rowcount)


def clean(*, cluster_spec: ClusterSpec | None = None, storage: str | None = None) -> Cleaned:
    """Remove what dead tuner processes of this machine left: their study topics (through
    `cluster_spec`'s security settings when given), the empty consumer groups under the prefix
    (on `cluster_spec`'s cluster and those the topics name), the temp dirs no process uses, and
    with `storage` the expired leases of a shared study."""
    out = Cleaned()
    _clean_topics(cluster_spec, out)
    _clean_groups(cluster_spec, out)
    _clean_dirs(out)
    return out if storage is None else _clean_leases(storage, out)
