"""The emulator's modules depend one way, in the order ARCHITECTURE.md lists them (each imports only
modules listed below it, function-level imports included, ``TYPE_CHECKING`` aside), share no code
with the driver, and use no other module's private names."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "apidriver" / "emulator"


def listed_order() -> list[str]:
    """The emulator's modules as ARCHITECTURE.md lists them, top (entry points) to bottom."""
    text = (ROOT / "ARCHITECTURE.md").read_text()
    block = text[text.index("\n  emulator/ ") : text.index("\n    data/ ")]
    return [m.group(1) for m in re.finditer(r"^    (\w+)\.py ", block, re.MULTILINE)]


def imports(path: Path) -> list[ast.ImportFrom | ast.Import]:
    """Every import of a module, wherever it stands, except under ``if TYPE_CHECKING:``."""
    found: list[ast.ImportFrom | ast.Import] = []

    def walk(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for orelse in child.orelse:
                    walk(orelse)
                continue
            if isinstance(child, ast.Import | ast.ImportFrom):
                found.append(child)
            walk(child)

    walk(ast.parse(path.read_text()))
    return found


def emulator_modules_imported(node: ast.ImportFrom | ast.Import) -> set[str]:
    """The emulator's modules ``node`` imports (``from . import x`` names module ``x``)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    elif node.level == 1:
        names = [f"apidriver.emulator.{node.module}"] if node.module else [f"apidriver.emulator.{a.name}" for a in node.names]
    elif node.level == 0 and node.module:
        names = [node.module]
    else:
        names = ["apidriver (outside the emulator)"]
    return {n.split(".")[2] for n in names if n.startswith("apidriver.emulator.")}


def test_architecture_lists_every_module_of_the_emulator() -> None:
    on_disk = sorted(p.stem for p in PACKAGE.glob("*.py"))
    assert sorted(listed_order()) == on_disk


def test_each_module_imports_only_modules_listed_below_it() -> None:
    order = listed_order()
    for position, name in enumerate(order):
        below = set(order[position + 1 :])
        for node in imports(PACKAGE / f"{name}.py"):
            wrong = emulator_modules_imported(node) - below
            assert not wrong, f"{name}.py (line {node.lineno}) imports {', '.join(sorted(wrong))}, listed above it"


def test_the_emulator_shares_no_code_with_the_driver() -> None:
    for path in PACKAGE.glob("*.py"):
        for node in imports(path):
            if isinstance(node, ast.ImportFrom) and node.level > 1:
                raise AssertionError(f"{path.name} (line {node.lineno}) imports from the driver: {ast.unparse(node)}")
            named = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if node.level == 0 else []
            for module in named:
                if module == "apidriver" or module.startswith("apidriver.") or module == "pytest_apidriver":
                    assert module.startswith("apidriver.emulator"), f"{path.name} (line {node.lineno}) imports {module}"


def test_no_module_imports_another_ones_private_names() -> None:
    for path in PACKAGE.glob("*.py"):
        for node in imports(path):
            if isinstance(node, ast.ImportFrom):
                private = [a.name for a in node.names if a.name.startswith("_") and a.name != "__version__"]
                assert not private, f"{path.name} (line {node.lineno}) imports {', '.join(private)}"
