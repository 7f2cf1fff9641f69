"""Naming and importing the user's handler: `file.py:function` or `package.module:function`.

The loader imports every reference once, so a typo or a missing dependency is a config error
before anything starts; each member process imports them again, in its own interpreter, so
module-level state in the handler's module is per member.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from tuner.config.spec import HandlerSpec


class HandlerImportError(Exception):
    """A reference that names no importable module or no callable in it."""


def is_file_reference(ref: str) -> bool:
    """Whether `ref` names a file (`handlers.py:handle`, `lib/h.py:handle`), not a module path."""
    module = ref.rpartition(":")[0]
    return module.endswith(".py") or "/" in module or os.sep in module


def short(ref: str) -> str:
    """A reference as messages name it: a file without its directories."""
    module, _, name = ref.rpartition(":")
    return f"{Path(module).name if is_file_reference(ref) else module}:{name}"


def resolve(ref: str, base_dir: Path) -> str:
    """`ref` with a relative file made absolute against `base_dir` (module paths unchanged)."""
    module, sep, name = ref.rpartition(":")
    if not sep or not is_file_reference(ref) or Path(module).is_absolute():
        return ref
    return f"{(base_dir / module).resolve()}:{name}"


def resolve_spec(spec: HandlerSpec, base_dir: Path) -> HandlerSpec:
    """Every reference of `spec` resolved against `base_dir`; a bare `setup`/`teardown` name
    becomes a name in the function's module."""
    function = resolve(spec.function, base_dir)
    module = function.rpartition(":")[0]

    def hook(ref: str | None) -> str | None:
        if ref is None:
            return None
        return resolve(ref, base_dir) if ":" in ref else f"{module}:{ref}"

    return HandlerSpec(function=function, setup=hook(spec.setup), teardown=hook(spec.teardown))


def load(ref: str) -> Callable[..., Any]:
    """The callable `ref` names, importing its module (once per process)."""
    module_name, sep, name = ref.rpartition(":")
    if not sep or not module_name or not name:
        raise HandlerImportError(
            f"expected file.py:function or package.module:function, got {ref!r}"
        )
    shown = short(ref)
    module = _import_file(module_name) if is_file_reference(ref) else _import_module(module_name)
    target: object = module
    for part in name.split("."):
        if not hasattr(target, part):
            raise HandlerImportError(f"{shown!r}: the module has no attribute {part!r}")
        target = getattr(target, part)
    if not callable(target):
        raise HandlerImportError(
            f"{shown!r} is not callable: it is a {type(target).__name__}, "
            "expected a function taking the list of records"
        )
    return target


def is_async(function: Callable[..., Any]) -> bool:
    """Whether `function` is a coroutine function (awaited) rather than a plain one (which
    runs on the event loop and holds it, heartbeats included, until it returns)."""
    call = getattr(function, "__call__", None)  # noqa: B004 - an object with async __call__
    return inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(call)


def check(spec: HandlerSpec) -> list[str]:
    """Import every reference of an already resolved `spec`; one problem per bad reference,
    as `consumer.handler[.setup|.teardown]: message`."""
    problems: list[str] = []
    for field, ref in (("", spec.function), (".setup", spec.setup), (".teardown", spec.teardown)):
        if ref is None:
            continue
        try:
            load(ref)
        except HandlerImportError as exc:
            problems.append(f"consumer.handler{field}: {exc}")
    return problems


_FILE_MODULES: dict[str, ModuleType] = {}


def _import_file(path: str) -> ModuleType:
    """The module in the file `path`, under its file name (or a unique one when that name is
    taken by another module); its directory goes on `sys.path` so its own imports work."""
    file = Path(path)
    key = str(file.resolve())
    if key in _FILE_MODULES:
        return _FILE_MODULES[key]
    if not file.is_file():
        raise HandlerImportError(f"no file {file.name!r} in {str(file.parent)!r}")
    name = file.stem
    taken = sys.modules.get(name)
    if taken is not None and getattr(taken, "__file__", None) != key:
        name = f"tuner_handler_{abs(hash(key)):x}_{file.stem}"
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise HandlerImportError(f"{file.name!r} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    if str(file.parent) not in sys.path:
        sys.path.insert(0, str(file.parent))
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise HandlerImportError(f"importing {file.name!r} failed: {_one_line(exc)}") from exc
    _FILE_MODULES[key] = module
    return module


def _import_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except Exception as exc:
        raise HandlerImportError(f"importing {name!r} failed: {_one_line(exc)}") from exc


def _one_line(exc: BaseException) -> str:
    """`ModuleNotFoundError: No module named 'x' (handlers.py:3)`: the error and, for a failure
    inside the user's module, where it happened."""
    where = ""
    if isinstance(exc, SyntaxError):
        where = f" ({Path(exc.filename or '?').name}:{exc.lineno})"
    else:
        tb = exc.__traceback__
        last = None
        while tb is not None:
            last = tb
            tb = tb.tb_next
        if last is not None and "importlib" not in last.tb_frame.f_code.co_filename:
            where = f" ({Path(last.tb_frame.f_code.co_filename).name}:{last.tb_lineno})"
    return f"{type(exc).__name__}: {exc}{where}"
