"""History beyond the API's 24 hours: a replica of the account in a real database.

>>> import apidriver
>>> report = apidriver.sync("APIKey=...", to="postgresql+psycopg://me@db/history")
>>> report["Jobs"].inserted, report.requests

The replica has one table per API table (same names, columns and keys, plus
``_synced_at`` and ``_removed_at``) in any SQLAlchemy database; see
:mod:`.schema` and :mod:`.target`. A sync reads only what can have changed
(:mod:`.sync`, reading with :mod:`.reader`, writing with :mod:`.writer`),
can be interrupted at any moment, and never deletes a row. ``apidriver
sync`` is the command-line form; :mod:`.follow` keeps a replica current.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..connection import Connection
    from .sync import Progress, SyncReport
    from .target import Target

# SQLAlchemy is imported by the modules, not here: ``import apidriver`` stays light.
__all__ = ["open_target", "sync"]


def open_target(connection: Connection, to: str | None) -> Target:
    """The replica database ``to`` (a SQLAlchemy URL), or the default SQLite file of the profile."""
    from .sync import replica_specs
    from .target import Target, default_url

    return Target(to or default_url(connection.profile.name), replica_specs(connection.profile.tables))


def sync(
    connection: Connection | str,
    to: str | None = None,
    tables: Iterable[str] | str | None = None,
    *,
    full: bool = False,
    progress: Progress | None = None,
    secrets: bool = False,
) -> SyncReport:
    """Copy the account into the database ``to`` and keep what the API has since forgotten.

    :param connection: an open :class:`apidriver.Connection`, or a connection string.
    :param to: a SQLAlchemy URL (``sqlite:///history.sqlite``, ``postgresql+psycopg://...``);
        by default ``<profile>.sqlite`` in the working directory.
    :param tables: table names (a list or ``"Jobs,Tasks"``); by default the account's data
        (every table but the operations catalogue). Derived tables come with their parent.
    :param full: read every list whole instead of only what can have changed.
    :param secrets: also copy secrets (webhook signing secrets); by default they are stored as NULL,
        and a replica that holds some from before loses them.
    :returns: per table, rows inserted, updated and newly gone, requests and seconds.
    """
    from ..connection import Connection, connect
    from .sync import Replicator

    own = not isinstance(connection, Connection)
    conn = connection if isinstance(connection, Connection) else connect(connection)
    try:
        target = open_target(conn, to)
        try:
            return Replicator(conn, target, progress=progress, secrets=secrets).run(tables, full)
        finally:
            target.close()
    finally:
        if own:
            conn.close()
