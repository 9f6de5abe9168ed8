"""Every document has its blocks run (a module of this directory names it as its DOC), and every
document the code and the documents cite exists."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from .harness import DOCUMENTS, ROOT, blocks

TESTS = Path(__file__).resolve().parent
GENERATED = {"docs/tables.md"}  # written by python -m apidriver.reference; no code blocks


def test_every_document_has_its_test() -> None:
    tested = set()
    for path in TESTS.glob("test_*.py"):
        module = importlib.import_module(f"{__package__}.{path.stem}")
        if hasattr(module, "DOC"):
            tested.add(module.DOC)
    assert sorted(set(DOCUMENTS) - GENERATED - tested) == []
    assert not [b for doc in GENERATED for b in blocks(doc)]


def test_every_cited_document_exists() -> None:
    sources = [*ROOT.glob("src/**/*.py"), ROOT / "README.md", ROOT / "ARCHITECTURE.md", *ROOT.glob("docs/*.md")]
    cited = {(m, str(p.relative_to(ROOT))) for p in sources for m in re.findall(r"\bdocs/[\w-]+\.md\b", p.read_text())}
    assert cited and sorted((doc, where) for doc, where in cited if not (ROOT / doc).exists()) == []


def test_installs_are_said_one_way() -> None:
    """``pip install apidriver`` or ``pip install 'apidriver[EXTRA]'`` (quoted: zsh reads [...] as a
    pattern), with extras pyproject.toml declares."""
    import tomllib

    extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    for doc in DOCUMENTS:
        text = (ROOT / doc).read_text()
        assert not re.findall(r"pip install apidriver\[", text), doc
        named = set(re.findall(r"'apidriver\[([a-z]\w*)\]'", text))  # (EXTRA: the placeholder)
        assert named <= extras, (doc, named - extras)
