"""The subpackages form layers: no two of them import each other, counting every import in
the tree (lazy ones inside functions and `TYPE_CHECKING` ones too), as DESIGN.md's map draws."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import tuner
from tuner.clients import CLIENTS

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


NOT_A_CLIENT_CHOICE = frozenset({
    "tuner/consumer/auth_failures.py: LOGGER = 'aiokafka'",
    "tuner/consumer/auth_failures.py: record.name == LOGGER",
})  # fmt: skip
"""Places that spell a client's name without choosing a client (`path: code`): aiokafka's
logger, which only an aiokafka member has."""


def _names_a_client(node: ast.expr, names: frozenset[str], constants: set[str]) -> bool:
    """A client's name as a value (`"aiokafka"`, one in a tuple) or a constant that holds one."""
    if isinstance(node, ast.Constant):
        return node.value in names
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return any(_names_a_client(e, names, constants) for e in node.elts)
    if isinstance(node, ast.Name | ast.Attribute):
        return (node.id if isinstance(node, ast.Name) else node.attr) in constants
    return False


def client_branches(root: Path = ROOT, *, names: frozenset[str] | None = None) -> list[str]:
    """`path:line: code` of every place outside `tuner/clients/` that decides by a client's
    name: a comparison or `case` against it, a mapping keyed by it, a `Literal` of the names
    spelt again, or a module constant bound to one (`CONFLUENT = "confluent-kafka"`) and the
    comparisons with it. A default (`client: ClientName = "aiokafka"`) decides nothing. The
    service bootstrap is left out: it runs in the service's own interpreter, standard library
    only, and cannot import `tuner.clients`, so its table of the libraries it wraps is its own."""
    names = frozenset(CLIENTS) if names is None else names
    outside = (root / "clients", root / "consumer" / "service" / "bootstrap")
    trees = {
        path: ast.parse(path.read_text(), str(path))
        for path in sorted(root.rglob("*.py"))
        if not any(path.is_relative_to(o) for o in outside)
    }
    constants = {
        target.id
        for tree in trees.values()
        for node in tree.body
        if isinstance(node, ast.Assign) and _names_a_client(node.value, names, set())
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    found: dict[tuple[Path, int], str] = {}
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                hit = any(
                    _names_a_client(s, names, constants) for s in [node.left, *node.comparators]
                )
            elif isinstance(node, ast.Dict):
                hit = any(k is not None and _names_a_client(k, names, set()) for k in node.keys)
            elif isinstance(node, ast.MatchValue):
                hit = _names_a_client(node.value, names, constants)
            elif isinstance(node, ast.Subscript):
                hit = ast.unparse(node.value).endswith("Literal") and _names_a_client(
                    node.slice, names, set()
                )
            elif isinstance(node, ast.Assign) and node in tree.body:
                hit = _names_a_client(node.value, names, set())
            else:
                continue
            if hit:
                line = ast.unparse(node).splitlines()[0]
                where = f"{path.relative_to(root.parent)}:{node.lineno}"
                found.setdefault((path, node.lineno), f"{where}: {line}")
    return [found[key] for key in sorted(found)]


def test_only_the_clients_ask_which_client_runs() -> None:
    """Nothing outside `tuner/clients/` branches on a client's name: each client's behaviour
    is a method of its module (as nothing outside optuna's `samplers/` asks which sampler
    runs), so a new client is one module plus its entry in the registry."""
    found = [
        where for where in client_branches()
        if f"{where.split(':')[0]}: {where.split(': ', 1)[1]}" not in NOT_A_CLIENT_CHOICE
    ]  # fmt: skip
    assert not found, "decided by a client's name outside tuner/clients/:\n" + "\n".join(found)


def test_the_client_branch_reader_sees_each_form(tmp_path: Path) -> None:
    """A comparison, a membership test, a `case`, a mapping key, a `Literal` and a constant
    bound to a name all count; a field's default and a message naming a client do not."""
    (tmp_path / "tuner" / "clients").mkdir(parents=True)
    (tmp_path / "tuner" / "clients" / "base.py").write_text('if c == "a":\n    pass\n')
    (tmp_path / "tuner" / "m.py").write_text(
        'A = "a"\n'
        'if c == "a" or c in ("b",) or c is A:\n    pass\n'
        'match c:\n    case "b":\n        pass\n'
        'M = {"a": 1}\n'
        'T = Literal["a", "b"]\n'
        'class S:\n    client: T = "a"\n'
        'log("only with client a")\n'
    )
    found = client_branches(tmp_path / "tuner", names=frozenset({"a", "b"}))
    assert [line.split(": ", 1)[0] for line in found] == [
        "tuner/m.py:1", "tuner/m.py:2", "tuner/m.py:5", "tuner/m.py:7", "tuner/m.py:8",
    ]  # fmt: skip
