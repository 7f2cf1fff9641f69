"""Reading a config file into plain YAML data, refusing what is not a config.

A config is a small UTF-8 YAML text: the size read is capped, a binary file or an empty one is
named as such, and a mapping that repeats a key is refused (YAML keeps the last value, silently).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from tuner.config.errors import ConfigError

MAX_BYTES = 1 << 20
"""The largest config read (1 MiB); the shipped ones are a few KiB."""
MAX_NODES = 10_000
"""Values after expanding YAML aliases: a few aliases can otherwise stand for billions."""
_MERGE_TAG = "tag:yaml.org,2002:merge"


def read_yaml(path: str | os.PathLike[str]) -> object:
    """The file's YAML document as plain data; `ConfigError` for anything that is not a config."""
    name = os.fspath(path)
    text = _read_text(Path(path), name)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None or (isinstance(node, ScalarNode) and node.tag.endswith(":null")):
            raise ConfigError([
                f"{name}: the file is empty; a config is a mapping of sections "
                "(cluster, topic, workload, consumer, …), see configs/quickstart.yaml"
            ])  # fmt: skip
        problems = list(_duplicate_keys(node, name))
        if problems:
            raise ConfigError(problems)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{name}: not valid YAML{where}: {problem}"]) from None
    finally:
        loader.dispose()


def _read_text(path: Path, name: str) -> str:
    try:
        with path.open("rb") as file:
            size = os.fstat(file.fileno()).st_size
            data = file.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError([f"cannot read {name}: {exc.strerror or exc}"]) from None
    if len(data) > MAX_BYTES:
        raise ConfigError([
            f"{name}: {max(size, len(data)):,} bytes is too large for a config "
            f"(at most {MAX_BYTES:,} bytes are read)"
        ])  # fmt: skip
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([
            f"{name}: not a text file: byte 0x{data[exc.start]:02x} at offset {exc.start} is "
            "not UTF-8 (a config is YAML text)"
        ]) from None  # fmt: skip


def _duplicate_keys(root: Node, name: str) -> Iterator[str]:
    """`path: duplicate key` for every key a mapping repeats, in document order; stops past
    `MAX_NODES` values."""
    stack: list[tuple[Node, str]] = [(root, "")]
    seen_nodes = 0
    while stack:
        node, path = stack.pop()
        seen_nodes += 1
        if seen_nodes > MAX_NODES:
            yield f"{name}: more than {MAX_NODES:,} values once YAML aliases are expanded"
            return
        if isinstance(node, SequenceNode):
            items = [(item, f"{path}[{i}]") for i, item in enumerate(node.value)]
            stack.extend(reversed(items))
        elif isinstance(node, MappingNode):
            first: dict[str, int] = {}
            children: list[tuple[Node, str]] = []
            for key, value in node.value:
                if key.tag == _MERGE_TAG or not isinstance(key, ScalarNode):
                    children.append((value, path))
                    continue
                where = f"{path}.{key.value}" if path else str(key.value)
                line = key.start_mark.line + 1
                if key.value in first:
                    yield (
                        f"{where}: duplicate key (line {first[key.value]} and line {line}); "
                        "YAML would silently keep the last value"
                    )
                else:
                    first[key.value] = line
                children.append((value, where))
            stack.extend(reversed(children))
