"""The subpackages form layers: no two of them import each other, counting every import in
the tree (lazy ones inside functions and `TYPE_CHECKING` ones too), as DESIGN.md's map draws."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import tuner

ROOT = Path(tuner.__file__).parent


def _units(root: Path) -> frozenset[str]:
    """The units of layering: each subpackage and each module at the top of `tuner/`."""
    packages = [path.name for path in root.iterdir() if (path / "__init__.py").is_file()]
    modules = [path.stem for path in root.glob("*.py") if path.name != "__init__.py"]
    return frozenset(packages + modules)


def _unit(module: str, units: frozenset[str]) -> str | None:
    parts = module.split(".")
    if parts[0] != "tuner" or len(parts) < 2 or parts[1] not in units:
        return None  # another library, or a name from `tuner/__init__.py`
    return parts[1]


def _imported(node: ast.Import | ast.ImportFrom, package: list[str]) -> list[str]:
    """The modules an import statement names, resolved (relative imports, `from tuner import x`)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        base = ".".join([*package[: len(package) - node.level + 1], *([base] if base else [])])
    return [base, *(f"{base}.{alias.name}" for alias in node.names)]


def imports_between_units(root: Path = ROOT) -> dict[tuple[str, str], list[str]]:
    """`(importer, imported)` → the import lines (`path:line: statement`) that make that edge."""
    units = _units(root)
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in sorted(root.rglob("*.py")):
        parts = ["tuner", *path.relative_to(root).with_suffix("").parts]
        package = parts if parts[-1] == "__init__" else parts[:-1]
        source = _unit(".".join(parts), units)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            targets = {_unit(name, units) for name in _imported(node, package)} - {None, source}
            for target in sorted(t for t in targets if t is not None):
                where = f"{path.relative_to(root.parent)}:{node.lineno}: {ast.unparse(node)}"
                edges[str(source), target].append(where)
    return dict(edges)


def test_no_two_subpackages_import_each_other() -> None:
    """For every pair of units, imports go one way only; a failure lists both directions' lines."""
    edges = imports_between_units()
    both = sorted((a, b) for a, b in edges if a < b and (b, a) in edges)
    lines = [f"{a} <-> {b}:\n  " + "\n  ".join([*edges[a, b], *edges[b, a]]) for a, b in both]
    assert not both, "subpackages that import each other:\n" + "\n".join(lines)


def test_the_imports_form_layers() -> None:
    """No longer cycle either (a → b → c → a): the units can be drawn as layers."""
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in imports_between_units():
        graph[a].add(b)
    done: set[str] = set()

    def visit(unit: str, path: tuple[str, ...]) -> None:
        if unit in path:
            cycle = " -> ".join([*path[path.index(unit) :], unit])
            raise AssertionError(f"an import cycle between subpackages: {cycle}")
        if unit in done:
            return
        for imported in sorted(graph[unit]):
            visit(imported, (*path, unit))
        done.add(unit)

    for unit in sorted(graph):
        visit(unit, ())


def test_the_reader_sees_lazy_relative_and_type_only_imports(tmp_path: Path) -> None:
    """An import inside a function, a relative one and one under `TYPE_CHECKING` all count."""
    root = tmp_path / "tuner"
    for package in ("low", "high", "other"):
        (root / package).mkdir(parents=True)
        (root / package / "__init__.py").write_text("")
    (root / "top.py").write_text("")
    (root / "low" / "a.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from tuner.high.b import B\n"
        "def f():\n    from ..other import c\n"
    )
    (root / "high" / "b.py").write_text("from tuner import low, top\nimport tuner.other.c\n")
    edges = imports_between_units(root)
    assert sorted(edges) == [
        ("high", "low"), ("high", "other"), ("high", "top"), ("low", "high"), ("low", "other"),
    ]  # fmt: skip
    assert edges["low", "high"] == ["tuner/low/a.py:3: from tuner.high.b import B"]
