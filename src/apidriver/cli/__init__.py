"""The ``apidriver`` command: demo, query, shell, tables, describe, emulator.

Each command is thin: it opens a connection with :func:`apidriver.connect`
and formats what the DB-API returns. ``main`` is the console script.
"""

from __future__ import annotations

from collections.abc import Sequence

from .commands import cli

__all__ = ["cli", "main"]


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line (exits with the command's status)."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="apidriver")
