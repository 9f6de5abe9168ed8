"""What SQL from an assistant may not do, beyond what ``ReadOnly=true`` refuses: reach the server's files.

SQLite's ``ATTACH 'path'`` opens (or creates) any database file the server
process can reach, and ``VACUUM INTO 'path'`` writes one; both pass SQLite's
authorizer as ``SQLITE_ATTACH``. A client of ``apidriver mcp`` (perhaps on
another machine, perhaps following instructions planted in the data it
reads) must not read the server's other SQLite files or write new ones,
whether or not it may write to the API. So the server wraps the
connection's authorizer: ``SQLITE_ATTACH`` and ``SQLITE_DETACH`` are denied
while the statement is prepared, before anything runs, and every other
decision stays the connection's own (``ReadOnly``, writes the API cannot do,
the main schema). The cache's own databases were attached when the
connection opened, so ``cache.Jobs`` and ``live.Jobs`` keep working.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import apsw

from ..connection import Connection

__all__ = ["Confinement"]

REFUSAL = (
    "{what} is refused by apidriver mcp: statements may not open, create or detach database files on the server's machine. "
    "For scratch work use CREATE TEMP TABLE."
)


class Confinement:
    """Installed once on the server's connection; :attr:`refused` says why the last statement was denied, if it was us."""

    def __init__(self, connection: Connection) -> None:
        self.refused: str | None = None
        db = connection.sqlite
        inner: Callable[..., int] | None = db.authorizer

        def authorize(action: int, *arguments: Any) -> int:
            if action == apsw.SQLITE_ATTACH:
                self.refused = REFUSAL.format(what="ATTACH (and VACUUM INTO)")
                return apsw.SQLITE_DENY
            if action == apsw.SQLITE_DETACH:
                self.refused = REFUSAL.format(what="DETACH")
                return apsw.SQLITE_DENY
            return inner(action, *arguments) if inner is not None else apsw.SQLITE_OK

        db.authorizer = authorize

    def reset(self) -> None:
        """Forget the last refusal: called before each statement."""
        self.refused = None
