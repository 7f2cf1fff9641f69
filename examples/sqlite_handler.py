"""An example handler for `consumer.handler`: parse each record as JSON, write the batch to SQLite.

Each member process writes its own database file (`<member>.sqlite`, e.g. `m0.sqlite`) in the
directory `SQLITE_HANDLER_DIR` (default: `kafka-tuner-sqlite` in the system's temp directory),
one transaction per polled batch, as a service that stores what it consumes would. Each member
starts on an empty file, so every trial writes under the same conditions (and the files hold
only the last trial's rows). A value
that is not JSON (the producer writes random bytes unless the workload gives payloads) is
stored as it is, in the `raw` column.

`handle` is a plain `def`: sqlite3 blocks, so it runs on the event loop and holds it (and the
consumer's heartbeats) for the whole transaction, as it would in a service.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

_db: sqlite3.Connection | None = None


def database_dir() -> Path:
    """Where the members' database files go."""
    default = Path(tempfile.gettempdir()) / "kafka-tuner-sqlite"
    return Path(os.environ.get("SQLITE_HANDLER_DIR", default))


def open_db() -> None:
    """Once per member, before it joins the group: open (or create) its database."""
    global _db  # noqa: PLW0603 - one connection per member process, by design
    folder = database_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{os.environ.get('TUNER_MEMBER', 'member')}.sqlite"
    path.unlink(missing_ok=True)
    _db = sqlite3.connect(path)
    _db.execute(
        "CREATE TABLE IF NOT EXISTS records (grp TEXT, topic TEXT, part INTEGER, "
        "off INTEGER, key BLOB, doc TEXT, raw BLOB)"
    )
    _db.commit()


def handle(records: list[Any]) -> None:
    """One polled batch (aiokafka `ConsumerRecord`s): one row per record, one transaction."""
    if _db is None:
        open_db()
    assert _db is not None  # noqa: S101 - set by open_db
    group = os.environ.get("TUNER_GROUP", "")
    rows = []
    for record in records:
        try:
            doc, raw = json.dumps(json.loads(record.value), sort_keys=True), None
        except ValueError:  # not JSON (or not UTF-8): keep the bytes
            doc, raw = None, record.value
        rows.append((group, record.topic, record.partition, record.offset, record.key, doc, raw))
    with _db:  # one transaction: committed when the block ends, rolled back on an error
        _db.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?)", rows)


def close_db() -> None:
    """Once per member, after it has left the group."""
    if _db is not None:
        _db.close()
