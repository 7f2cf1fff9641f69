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
from dataclasses import fields, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, Union, cast, get_args, get_origin, get_type_hints

import yaml

from tuner.config import handler
from tuner.config.checks import check_spec, show
from tuner.config.errors import ConfigError
from tuner.config.payloads import with_payloads
from tuner.config.read import read_yaml
from tuner.config.service import service_shorthand, with_service
from tuner.config.spec import HandlerSpec, StudySpec
from tuner.settings import SETTINGS, ParameterSpec

__all__ = ["ConfigError", "load_config", "parse_config"]


def load_config(
    path: str | os.PathLike[str],
    *,
    overrides: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
    rules: bool = True,
) -> StudySpec:
    """Read a YAML config into a `StudySpec`, or raise one `ConfigError` with every problem
    (`rules=False`: all but the consumer settings' cross-setting rules). A handler file and a
    payload file are relative to the config file's directory."""
    return parse_config(
        read_yaml(path),
        overrides=overrides,
        environ=environ,
        rules=rules,
        base_dir=Path(path).resolve().parent,
    )


def parse_config(
    data: object,
    *,
    overrides: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
    rules: bool = True,
    base_dir: Path | None = None,
) -> StudySpec:
    """Validate already-parsed YAML (plus `KEY=VALUE` overrides) into a `StudySpec`.

    `consumer.handler` is imported here and a payload file read (relative paths against
    `base_dir`, the config's directory; default the working directory), so a handler or
    payloads that cannot be used are refused before anything starts.
    """
    problems: list[str] = []
    if not isinstance(data, dict):
        raise ConfigError([f"the config must be a mapping of sections, got {show(data)}"])
    data = copy.deepcopy(data)
    overridden = {}
    for item in overrides:
        key = _apply_override(data, item, problems)
        if key is not None:
            overridden[key] = item
    _check_password_is_a_reference(data, problems)
    _handler_shorthand(data, problems)
    data = _substitute_env(data, "", os.environ if environ is None else environ, problems)
    spec = cast(StudySpec, _build(StudySpec, data, "", problems))
    check_spec(spec, problems, rules=rules)
    if spec.consumer.handler is not None:
        spec = _with_handler(spec, spec.consumer.handler, base_dir or Path.cwd(), problems)
    spec = with_service(spec, base_dir or Path.cwd(), problems)
    spec = with_payloads(spec, base_dir or Path.cwd(), problems)
    if problems:
        raise ConfigError([_origin(p, overridden) for p in problems])
    return spec


def _handler_shorthand(data: Mapping[str, object], problems: list[str]) -> None:
    """`handler: handlers.py:handle` is short for `handler: {function: handlers.py:handle}`;
    the handler replaces the processing model, so giving both is a mistake."""
    consumer = data.get("consumer")
    if isinstance(consumer, dict):
        service_shorthand(consumer, problems)
    if not isinstance(consumer, dict) or consumer.get("handler") is None:
        return
    if isinstance(consumer["handler"], str):
        consumer["handler"] = {"function": consumer["handler"]}
    if consumer.get("processing") is not None:  # `--set consumer.processing=null` drops it
        problems.append(
            "consumer.handler: consumer.handler and consumer.processing are alternatives (your "
            "code, or the simulated model of it): remove one of them"
        )


def _with_handler(
    spec: StudySpec, given: HandlerSpec, base_dir: Path, problems: list[str]
) -> StudySpec:
    """`spec` with its handler's files made absolute, after importing every reference."""
    if not given.function:
        problems.append("consumer.handler.function: is required (file.py:function)")
        return spec
    resolved = handler.resolve_spec(given, base_dir)
    problems.extend(handler.check(resolved))
    return replace(spec, consumer=replace(spec.consumer, handler=resolved))


def _origin(problem: str, overridden: Mapping[str, str]) -> str:
    """The problem, saying which `--set` gave the value when one did."""
    path = problem.partition(": ")[0]
    item = overridden.get(path)
    return problem if item is None else f"{problem} (from --set {_shown(item)})"


def _shown(item: str) -> str:
    """A `--set KEY=VALUE` as an error may echo it: a value for a key naming a password (even
    misspelt) is never repeated."""
    key, sep, _ = item.partition("=")
    secret = any(word in key.lower() for word in ("pass", "pasw", "pwd", "secret"))
    return f"{key}=***" if sep and secret else item


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


def _apply_override(data: dict[str, Any], item: str, problems: list[str]) -> str | None:
    """Set `KEY=VALUE` in `data`; returns the key, or None after adding why it cannot be set."""
    key, sep, raw = item.partition("=")
    if not sep or not key:
        problems.append(f"--set {_shown(item)}: expected KEY=VALUE, e.g. consumer.members=2")
        return None
    try:
        value = yaml.safe_load(raw) if raw else ""
    except yaml.YAMLError:
        value = raw
    parts = _key_parts(key)
    wrong = _unknown_key(parts)
    if wrong is not None:
        problems.append(f"--set {_shown(item)}: {wrong}")
        return None
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            problems.append(f"--set {_shown(item)}: {part} is not a section")
            return None
        node = child
    node[parts[-1]] = value
    return key


def _key_parts(key: str) -> list[str]:
    """The path of a `--set` key; Kafka property names (which contain dots) stay whole."""
    parts = key.split(".")
    if parts[:2] == ["consumer", "settings"] and len(parts) > 2:
        return [*parts[:2], ".".join(parts[2:])]
    if parts[:2] == ["search", "parameters"] and len(parts) > 2:
        fields_of_one = {f.name for f in fields(ParameterSpec)}
        if parts[-1] in fields_of_one and len(parts) > 3:
            return [*parts[:2], ".".join(parts[2:-1]), parts[-1]]
        return [*parts[:2], ".".join(parts[2:])]
    return parts


def _unknown_key(parts: Sequence[str]) -> str | None:
    """Why a `--set` key names no field of the config (with the key it likely meant), or None.

    Checked against the spec before the value is set, so the message can say it came from
    `--set`; a Kafka property given bare is pointed to `consumer.settings`.
    """
    cls: Any = StudySpec
    for i, part in enumerate(parts):
        path = ".".join(parts[: i + 1])
        if not dataclasses.is_dataclass(cls):
            if get_origin(cls) is collections.abc.Mapping:
                return None  # property or parameter names: the loader checks them
            return f"{'.'.join(parts[:i])} is a value, not a section"
        known = {f.name for f in fields(cls)}
        if part not in known:
            rest = ".".join(parts[i:])
            if i == 0 and rest in SETTINGS:
                hint = f"; did you mean consumer.settings.{rest}?"
            else:
                close = difflib.get_close_matches(part, sorted(known), n=1)
                where = ".".join(parts[:i])
                hint = (
                    f"; did you mean {_join(where, close[0])}?"
                    if close
                    else f"; allowed: {', '.join(sorted(known))}"
                )
            return f"{path}: unknown key{hint}"
        cls = get_type_hints(cls)[part]
        if get_origin(cls) in (types.UnionType, Union):
            options = [a for a in get_args(cls) if a is not type(None)]
            deeper = i + 1 < len(parts)
            cls = next((a for a in options if dataclasses.is_dataclass(a) == deeper), options[0])
    return None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


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
        section = next((a for a in inner if dataclasses.is_dataclass(a)), None)
        if section is not None and (isinstance(value, dict) or len(inner) == 1):
            return _build(cast(type[Any], section), value, path, problems)
        if section is not None and inner[0] is int and not _is_int(value):
            problems.append(f"{path}: must be an integer or a mapping, got {show(value)}")
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
        if args and dataclasses.is_dataclass(args[0]):
            item = cast(type[Any], args[0])
            return tuple(_build(item, v, f"{path}[{i}]", problems) for i, v in enumerate(value))
        if args and args[0] is str:
            return tuple(_convert(str, v, f"{path}[{i}]", problems) for i, v in enumerate(value))
        return tuple(value)
    if origin is collections.abc.Mapping and args[1] is str:  # environment variables
        if not isinstance(value, dict):
            problems.append(f"{path}: must be a mapping of names to strings, got {show(value)}")
            return None
        return MappingProxyType({
            str(k): _convert(str, v, f"{path}.{k}", problems) for k, v in value.items()
        })  # fmt: skip
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
