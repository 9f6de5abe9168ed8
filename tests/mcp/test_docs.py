"""docs/mcp.md documents every option of apidriver mcp (its blocks run in tests/docs/test_mcp.py)."""

from __future__ import annotations

from pathlib import Path

from apidriver.cli import cli

DOC = Path(__file__).resolve().parents[2] / "docs" / "mcp.md"


def test_every_option_is_documented() -> None:
    text = DOC.read_text()
    options = [opt for param in cli.commands["mcp"].params for opt in param.opts if opt.startswith("--")]
    assert options and [o for o in options if f"`{o}" not in text] == []
