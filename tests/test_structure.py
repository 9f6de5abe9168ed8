"""The layers of src/apidriver depend one way (ARCHITECTURE.md, "Layers").

Read from the code's own imports with ``ast``: every import counts, at
module level or inside a function, except those under ``if TYPE_CHECKING:``
(types only, never run). The tests fail on an import circle, on a module
importing a layer above its own, and on one module using another module's
private names (``from .x import _name``, or ``obj._name`` where ``_name`` is
defined only in another of our modules).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "apidriver"

# Lowest first. A module may import its own layer and the layers below, never one above.
# A name is a module or a package (a package's entry covers every module in it).
LAYERS: list[tuple[str, list[str]]] = [
    ("foundations", ["version", "exceptions", "cancel", "values", "properties", "typeobjects"]),
    ("HTTP", ["transport", "answers", "attempts", "pacing", "response_cache", "client"]),
    ("engine and profiles", ["engine", "profiles"]),
    ("replica", ["replica"]),
    ("cache", ["cache"]),
    ("DB-API", ["authorizer", "cursor", "connection"]),
    ("package root", ["__init__", "reference"]),
    ("front ends", ["sqlalchemy", "cli", "mcp", "testing", "demo"]),
]
# The emulator plays the API: it imports nothing of the driver, and only the front ends (the demo, the
# CLI's emulator command, the pytest plugin) import it.
EMULATOR = "emulator"


# Libraries' private names we rely on, each in one module of ours, for a reason a public API does not serve.
THIRD_PARTY_PRIVATE = {
    "_transport": "apidriver.transport",  # httpx: the deadline wraps the transport's network backend
    "_mounts": "apidriver.transport",  # httpx: ... and each mounted transport's
    "_label_returning_column": "apidriver.sqlalchemy.dialect",  # SQLAlchemy's SQLite compiler, RETURNING labels
    "_non_anon_label": "apidriver.sqlalchemy.dialect",  # ... the same
    "_get_table_sql": "apidriver.sqlalchemy.dialect",  # SQLAlchemy's SQLite reflection, overridden
    "_transfer_from": "apidriver.sqlalchemy.provision",  # SQLAlchemy's test plugin: one pool shared, as pysqlite's
    "_get_current_object": "apidriver.sqlalchemy.superset",  # Flask/werkzeug: the object behind Superset's proxy
}


@dataclass
class Module:
    name: str  # dotted, e.g. apidriver.engine.streams
    path: Path
    is_package: bool
    imports: dict[str, int] = field(default_factory=dict)  # imported module → first line
    private_imports: list[tuple[str, str, int]] = field(default_factory=list)  # (module, name, line)
    private_attributes: list[tuple[str, int]] = field(default_factory=list)  # (name, line) of obj._name, obj not self/cls
    private_definitions: set[str] = field(default_factory=set)


def _type_checking(test: ast.expr) -> bool:
    return "TYPE_CHECKING" in ast.unparse(test)


def _walk(node: ast.AST) -> Iterator[ast.AST]:
    """Every node under ``node``, except what ``if TYPE_CHECKING:`` guards."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _type_checking(child.test):
            for orelse in child.orelse:
                yield orelse
                yield from _walk(orelse)
            continue
        yield child
        yield from _walk(child)


@cache
def modules() -> dict[str, Module]:
    found: dict[str, Module] = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        found[".".join(parts)] = Module(".".join(parts), path, is_package)
    for module in found.values():
        _read(module, found)
    return found


def _resolve(module: Module, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.name.split(".")
    if not module.is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _nearest(name: str, known: dict[str, Module]) -> str | None:
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def _read(module: Module, known: dict[str, Module]) -> None:
    tree = ast.parse(module.path.read_text(), str(module.path))
    for node in _walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name.startswith("_"):
            module.private_definitions.add(node.name)
        elif isinstance(node, (ast.Name, ast.Attribute)) and isinstance(node.ctx, ast.Store):
            name = node.id if isinstance(node, ast.Name) else node.attr
            if name.startswith("_") and not name.startswith("__"):
                module.private_definitions.add(name)
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
            name = node.attr
            owner = node.value
            if name.startswith("_") and not name.startswith("__") and not (
                isinstance(owner, ast.Name) and owner.id in ("self", "cls")
            ) and not (isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and owner.func.id == "super"):
                module.private_attributes.append((name, node.lineno))
        targets: list[tuple[str, str | None]] = []
        if isinstance(node, ast.Import):
            targets = [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, node)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                targets.append((sub, None) if sub in known else (base, alias.name))
        for target, name in targets:
            if target.split(".")[0] != PACKAGE:
                continue
            resolved = _nearest(target, known)
            if resolved is None or resolved == module.name:
                continue
            module.imports.setdefault(resolved, node.lineno)
            if name is not None and name.startswith("_") and not name.startswith("__"):
                module.private_imports.append((resolved, name, node.lineno))


def _layer(name: str) -> tuple[int, str] | None:
    """(rank, layer name) of a module, from LAYERS; None for the emulator."""
    rest = name.removeprefix(PACKAGE).lstrip(".") or "__init__"
    top = rest.split(".")[0]
    if top == EMULATOR:
        return None
    for rank, (layer, members) in enumerate(LAYERS):
        if top in members:
            return rank, layer
    raise AssertionError(f"{name} is in no layer of tests/test_structure.py: add it to LAYERS (and to ARCHITECTURE.md)")


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_import_graph_has_no_circle() -> None:
    found = modules()
    graph = {name: set(m.imports) for name, m in found.items()}
    circles = _cycles(graph)
    described = [
        " ; ".join(f"{a} → {b} (line {found[a].imports[b]})" for a in circle for b in sorted(graph[a]) if b in circle)
        for circle in circles
    ]
    assert not circles, "Import circles:\n" + "\n".join(described)


def test_every_module_imports_only_its_own_layer_and_those_below() -> None:
    upward = []
    for name, module in modules().items():
        mine = _layer(name)
        for target, line in module.imports.items():
            theirs = _layer(target)
            if theirs is None and mine is not None and mine[1] != "front ends":
                upward.append(f"{name}:{line} imports {target}: only the front ends may start the emulator")
            if mine is None and theirs is not None:
                upward.append(f"{name}:{line} imports {target}: the emulator stands alone (it plays the API)")
            if mine is None or theirs is None:
                continue
            if theirs[0] > mine[0]:
                upward.append(f"{name}:{line} ({mine[1]}) imports {target} ({theirs[1]}), a layer above")
    assert not upward, "\n".join(upward)


def test_no_module_uses_another_modules_private_names() -> None:
    found = modules()
    defined_by: dict[str, set[str]] = {}
    for name, module in found.items():
        for private in module.private_definitions:
            defined_by.setdefault(private, set()).add(name)
    misuse = [f"{name}:{line} imports {name_} from {target}" for name, m in found.items() for target, name_, line in m.private_imports]
    for name, module in found.items():
        for private, line in module.private_attributes:
            owners = defined_by.get(private, set())
            if owners and name not in owners:
                misuse.append(f"{name}:{line} uses .{private}, private to {', '.join(sorted(owners))}")
            elif not owners and THIRD_PARTY_PRIVATE.get(private) != name:
                misuse.append(
                    f"{name}:{line} uses .{private}, which no module of ours defines: a name renamed away, or a library's "
                    "private name (then add it to THIRD_PARTY_PRIVATE with the reason)"
                )
    assert not misuse, "\n".join(misuse)


def test_the_checks_see_a_circle_and_a_private_name(tmp_path: Path) -> None:
    """The graph reader itself: a circle through a function-level import counts, one under TYPE_CHECKING does not."""
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from .b import thing\n")
    (package / "b.py").write_text("def thing():\n    from . import a\n    return a\n")
    (package / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import thing\n")
    found = {f"pkg.{p.stem}" if p.stem != "__init__" else "pkg": Module(f"pkg.{p.stem}" if p.stem != "__init__" else "pkg", p, p.stem == "__init__") for p in package.glob("*.py")}
    global PACKAGE
    saved, PACKAGE = PACKAGE, "pkg"
    try:
        for module in found.values():
            _read(module, found)
    finally:
        PACKAGE = saved
    assert _cycles({n: set(m.imports) for n, m in found.items()}) == [["pkg.a", "pkg.b"]]
    assert found["pkg.c"].imports == {}
