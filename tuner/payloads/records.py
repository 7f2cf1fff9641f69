"""The user's records, read from a file or a directory, as the producers write them.

Kept free of Kafka clients: the config loader reads a payload file to check it (a config must
load without aiokafka), and the Locust process reads the same file with the same code.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

MAX_BYTES = 1 << 30
"""The most payload bytes read (1 GiB): every producing process holds them in memory."""
MAX_RECORDS = 1_000_000

Format = Literal["values", "records"]


class PayloadError(Exception):
    """The payloads cannot be read or make no records; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class Record:
    """One record as a producer writes it: key (None: no key), value, headers."""

    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


def read_records(path: Path, fmt: Format = "values") -> tuple[Record, ...]:
    """Every record a payload file (one per line) or directory (one per file) holds.

    `values`: a line (without its newline) or a whole file is one record's value, as it is.
    `records`: each line is `{"key": …, "value": …, "headers": {…}}`; a string is written as
    UTF-8, any other JSON value as its compact JSON text; `key_base64`/`value_base64` carry
    binary data (a sample of a topic is stored that way).
    """
    if path.is_dir():
        if fmt == "records":
            raise PayloadError(
                f"{path}: a directory holds one value per file; format: records needs a file"
            )
        return _read_dir(path)
    data = _read_file(path)
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if fmt == "values":
        records = tuple(Record(key=None, value=line.removesuffix(b"\r")) for line in lines)
    else:
        records = tuple(
            _parse_record(line, f"{path}, line {i + 1}")
            for i, line in enumerate(lines)
            if line.strip()
        )
    if not records:
        raise PayloadError(f"{path}: the file is empty; it must hold at least one record")
    if len(records) > MAX_RECORDS:
        raise PayloadError(f"{path}: {len(records):,} records; at most {MAX_RECORDS:,} are used")
    return records


def _read_file(path: Path) -> bytes:
    try:
        with path.open("rb") as file:
            data = file.read(MAX_BYTES + 1)
    except OSError as exc:
        raise PayloadError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise PayloadError(f"{path}: more than {MAX_BYTES:,} bytes of payloads")
    return data


def _read_dir(path: Path) -> tuple[Record, ...]:
    try:
        names = sorted(e.name for e in os.scandir(path) if e.is_file() and e.name[0] != ".")
    except OSError as exc:
        raise PayloadError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not names:
        raise PayloadError(f"{path}: the directory holds no files; each file is one record")
    if len(names) > MAX_RECORDS:
        raise PayloadError(f"{path}: {len(names):,} files; at most {MAX_RECORDS:,} are used")
    records, total = [], 0
    for name in names:
        value = _read_file(path / name)
        total += len(value)
        if total > MAX_BYTES:
            raise PayloadError(f"{path}: more than {MAX_BYTES:,} bytes of payloads")
        records.append(Record(key=None, value=value))
    return tuple(records)


def _parse_record(line: bytes, where: str) -> Record:
    try:
        obj = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PayloadError(f"{where}: not a JSON object ({exc})") from None
    if not isinstance(obj, dict):
        raise PayloadError(f"{where}: must be a JSON object with value, key, headers")
    unknown = set(obj) - set(_FIELDS)
    if unknown:
        raise PayloadError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}; allowed: "
                           f"{', '.join(_FIELDS)}")  # fmt: skip
    if "value" not in obj and "value_base64" not in obj:
        raise PayloadError(f"{where}: no value (or value_base64)")
    value = _bytes(obj, "value", where)
    return Record(
        key=_bytes(obj, "key", where),
        value=value if value is not None else b"",
        headers=_headers(obj, where),
    )


_FIELDS = ("key", "value", "headers", "key_base64", "value_base64", "headers_base64")


def _headers(obj: dict[str, object], where: str) -> tuple[tuple[str, bytes], ...]:
    """`headers`: an object of strings; `headers_base64`: `[[name, base64], …]`, for binary
    values or a name that repeats (Kafka allows both)."""
    headers = obj.get("headers") or {}
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise PayloadError(f"{where}: headers must be an object of strings")
    pairs = [(str(k), v.encode()) for k, v in headers.items()]
    encoded = obj.get("headers_base64") or []
    if not isinstance(encoded, list) or not all(
        isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p) for p in encoded
    ):
        raise PayloadError(f"{where}: headers_base64 must be a list of [name, base64] pairs")
    try:
        pairs += [(name, base64.b64decode(data, validate=True)) for name, data in encoded]
    except binascii.Error as exc:
        raise PayloadError(
            f"{where}: headers_base64 holds a value that is not base64 ({exc})"
        ) from None
    return tuple(pairs)


def _bytes(obj: dict[str, object], name: str, where: str) -> bytes | None:
    encoded = obj.get(f"{name}_base64")
    if encoded is not None:
        if not isinstance(encoded, str):
            raise PayloadError(f"{where}: {name}_base64 must be a string")
        try:
            return base64.b64decode(encoded, validate=True)
        except binascii.Error as exc:
            raise PayloadError(f"{where}: {name}_base64 is not base64 ({exc})") from None
    raw = obj.get(name)
    if raw is None:
        return None
    if isinstance(raw, str):
        return raw.encode()
    return json.dumps(raw, separators=(",", ":")).encode()


def record_line(record: Record) -> str:
    """One line of `format: records` that reads back as `record` (binary kept as base64)."""
    out: dict[str, object] = {}
    for name, data in (("key", record.key), ("value", record.value)):
        if data is not None and _is_text(data):
            out[name] = data.decode()
        elif data is not None:
            out[f"{name}_base64"] = base64.b64encode(data).decode()
    names = [k for k, _ in record.headers]
    plain = len(set(names)) == len(names) and all(_is_text(v) for _, v in record.headers)
    if record.headers and plain:
        out["headers"] = {k: v.decode() for k, v in record.headers}
    elif record.headers:
        out["headers_base64"] = [[k, base64.b64encode(v).decode()] for k, v in record.headers]
    return json.dumps(out, separators=(",", ":"))


def _is_text(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True
