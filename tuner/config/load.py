"""Loading a config: YAML, `--set` overrides and `${ENV}` into a `StudySpec`, or one error.

Every problem is collected with its field path, so a user fixes a config in one pass.
"""

from __future__ import annotations

import collections.abc
import copy
import dataclasses
import difflib
import os
import re
import types
from collections.abc import Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, Union, cast, get_args, get_origin, get_type_hints

import yaml

from tuner.config.checks import check_spec, show
from tuner.config.spec import StudySpec


class ConfigError(Exception):
    """The config has problems; `problems` lists each as `path: message`."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))


def load_config(
    path: str | os.PathLike[str],
    *,
    overrides: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
    rules: bool = True,
) -> StudySpec:
    """Read a YAML config into a `StudySpec`, or raise one `ConfigError` with every problem
    (`rules=False`: all but the consumer settings' cross-setting rules)."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError([f"cannot read {os.fspath(path)}: {exc.strerror or exc}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{os.fspath(path)}: not valid YAML{where}: {problem}"]) from None
    return parse_config(
        {} if data is None else data, overrides=overrides, environ=environ, rules=rules
    )


def parse_config(
    data: object,
    *,
    overrides: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
    rules: bool = True,
) -> StudySpec:
    """Validate already-parsed YAML (plus `KEY=VALUE` overrides) into a `StudySpec`."""
    problems: list[str] = []
    if not isinstance(data, dict):
        raise ConfigError([f"the config must be a mapping of sections, got {show(data)}"])
    data = copy.deepcopy(data)
    for item in overrides:
        _apply_override(data, item, problems)
    _check_password_is_a_reference(data, problems)
    data = _substitute_env(data, "", os.environ if environ is None else environ, problems)
    spec = cast(StudySpec, _build(StudySpec, data, "", problems))
    check_spec(spec, problems, rules=rules)
    if problems:
        raise ConfigError(problems)
    return spec


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _check_password_is_a_reference(data: Mapping[str, object], problems: list[str]) -> None:
    """A password written into the config (or given with `--set`, which every user sees in
    `ps`) would travel with the file; only `${VAR}` is accepted."""
    section = data.get("cluster")
    security = section.get("security") if isinstance(section, dict) else None
    password = security.get("password") if isinstance(security, dict) else None
    if isinstance(password, str) and not _ENV.fullmatch(password.strip()):
        problems.append(
            "cluster.security.password: must name an environment variable, as ${VAR}, "
            "not hold the password itself"
        )


def _substitute_env(
    value: object, path: str, env: Mapping[str, str], problems: list[str]
) -> object:
    if isinstance(value, dict):
        return {k: _substitute_env(v, _join(path, str(k)), env, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute_env(v, f"{path}[{i}]", env, problems) for i, v in enumerate(value)]
    if isinstance(value, str):

        def lookup(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                problems.append(f"{path}: environment variable {name} is not set")
                return ""
            return env[name]

        return _ENV.sub(lookup, value)
    return value


def _apply_override(data: dict[str, Any], item: str, problems: list[str]) -> None:
    key, sep, raw = item.partition("=")
    if not sep or not key:
        problems.append(f"--set {item}: expected KEY=VALUE, e.g. consumer.members=2")
        return
    try:
        value = yaml.safe_load(raw) if raw else ""
    except yaml.YAMLError:
        value = raw
    parts = key.split(".")
    if parts[:2] == ["consumer", "settings"] and len(parts) > 2:
        parts = [*parts[:2], ".".join(parts[2:])]  # Kafka property names contain dots
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            problems.append(f"--set {item}: {part} is not a section")
            return
        node = child
    node[parts[-1]] = value


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _build(cls: type[Any], data: object, path: str, problems: list[str]) -> object:
    """A dataclass from a mapping: unknown keys, wrong types and bad choices become problems."""
    where = path or "the config"
    if data is None:
        data = {}
    if not isinstance(data, dict):
        problems.append(f"{where}: must be a mapping, got {show(data)}")
        return None
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(str(key), sorted(known), n=1)
            hint = (
                f"; did you mean {close[0]!r}?"
                if close
                else f"; allowed: {', '.join(sorted(known))}"
            )
            problems.append(f"{_join(path, str(key))}: unknown key{hint}")
    kwargs: dict[str, object] = {}
    for f in fields(cls):
        if f.name in data:
            before = len(problems)
            value = _convert(hints[f.name], data[f.name], _join(path, f.name), problems)
            if len(problems) == before:  # a bad field keeps its default, so checks go on
                kwargs[f.name] = value
    return cls(**kwargs)


def _convert(hint: Any, value: object, path: str, problems: list[str]) -> object:
    if dataclasses.is_dataclass(hint):
        return _build(cast(type[Any], hint), value, path, problems)
    origin = get_origin(hint)
    args = get_args(hint)
    if origin is Literal:
        if value not in args:
            allowed = ", ".join(show(a) for a in args)
            problems.append(f"{path}: must be one of {allowed}; got {show(value)}")
        return value
    if origin in (types.UnionType, Union):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if inner == [int, bool, str] or set(inner) == {int, bool, str}:  # SettingValue
            return value
        return _convert(inner[0], value, path, problems)
    if origin is collections.abc.Mapping and dataclasses.is_dataclass(args[1]):
        if not isinstance(value, dict):
            problems.append(f"{path}: must be a mapping, got {show(value)}")
            return None
        return MappingProxyType({
            str(k): _build(cast(type[Any], args[1]), v, f"{path}.{k}", problems)
            for k, v in value.items()
        })  # fmt: skip
    if origin is tuple:
        if not isinstance(value, list):
            problems.append(f"{path}: must be a list, got {show(value)}")
            return None
        return tuple(value)
    if origin is collections.abc.Mapping:
        if not isinstance(value, dict):
            problems.append(f"{path}: must be a mapping of Kafka property names, got {show(value)}")
            return None
        return MappingProxyType(dict(value))
    if hint is bool:
        if not isinstance(value, bool):
            problems.append(f"{path}: must be true or false, got {show(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{path}: must be an integer, got {show(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(f"{path}: must be a number, got {show(value)}")
            return value
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            problems.append(f"{path}: must be a string, got {show(value)}")
        return value
    return value  # pragma: no cover - every field type above is handled
