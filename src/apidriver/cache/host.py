"""What the cache needs from the connection that installs it: a small interface the cache owns.

The cache sits under the connection and never imports it. The connection
(an :class:`apidriver.Connection` is a ``CacheHost``) hands itself over
through this: what a sync reads through (``ApiSource``), the SQLite
connection the cache tables are declared on, the statement being run (where
the cache's requests are counted and a refusal is read), a way to prepare a
statement without disturbing it, and where writes to cache tables go.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

import apsw

from ..engine.statement import StatementContext
from ..engine.vtable import RowIds
from ..engine.writes import Writer
from ..replica.upstream import ApiSource


class CacheHost(ApiSource, Protocol):
    """The connection, as the cache sees it."""

    @property
    def sqlite(self) -> apsw.Connection:
        """The SQLite connection the API and cache tables are declared on."""

    @property
    def current_statement(self) -> StatementContext:
        """The statement being prepared or stepped."""

    def probing(self) -> AbstractContextManager[StatementContext]:
        """A throw-away statement context while SQLite only prepares a statement."""

    @property
    def writer(self) -> Writer:
        """Where INSERT and DELETE on a cache table go (to the API, as on the live table)."""

    @property
    def rowids(self) -> RowIds:
        """The rowids SQLite knows the API's objects by."""


__all__ = ["CacheHost"]
