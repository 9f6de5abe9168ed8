"""History beyond the API's 24 hours: a replica of the account in a real database.

>>> import apidriver
>>> report = apidriver.sync("APIKey=...", to="postgresql+psycopg://me@db/history")
>>> report["Jobs"].inserted, report.requests

The replica has one table per API table (same names, columns and keys, plus
``_synced_at`` and ``_removed_at``) in any SQLAlchemy database; see
:mod:`.schema`, :mod:`.target` and :mod:`.conversions`. A sync reads only
what can have changed (:mod:`.replicator`, table by table with
:mod:`.table_sync`, reading with :mod:`.reader` and :mod:`.scan`, writing
with :mod:`.recorder` and :mod:`.writer`, finding what went with
:mod:`.reconcile`), can be interrupted at any moment, and never deletes a
row. ``apidriver sync`` is the command-line form; :mod:`.follow` keeps a
replica current.

The replica never imports the connection, the cursor or the cache: it reads
through what its caller hands it (:mod:`.upstream`). ``apidriver.sync``
(the package root) also takes a connection string and opens the connection.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .report import Progress, SyncReport
    from .target import Target
    from .upstream import ApiSource

# SQLAlchemy is imported by the modules, not here: ``import apidriver`` stays light.
__all__ = ["open_target", "sync"]


def open_target(connection: ApiSource, to: str | None) -> Target:
    """The replica database ``to`` (a SQLAlchemy URL), or the default SQLite file of the profile."""
    from .schema import replica_specs
    from .target import Target, default_url

    return Target(to or default_url(connection.profile.name), replica_specs(connection.profile.tables))


def sync(
    connection: ApiSource,
    to: str | None = None,
    tables: Iterable[str] | str | None = None,
    *,
    full: bool = False,
    progress: Progress | None = None,
    secrets: bool = False,
) -> SyncReport:
    """Copy the account into the database ``to`` and keep what the API has since forgotten
    (``apidriver.sync`` documents the parameters)."""
    from .replicator import Replicator

    target = open_target(connection, to)
    try:
        return Replicator(connection, target, progress=progress, secrets=secrets).run(tables, full)
    finally:
        target.close()
