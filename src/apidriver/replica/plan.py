"""How a profile's tables are replicated: its hints, which tables a sync takes, in what order, how each is read.

``profile.extras["replica"]`` says what the API itself cannot: which column
settles a row (``settled``: once ``ended_at`` is set the API changes a job
no more), which filter finds the rows still open (``open``), which table is
the account, how long the API keeps what ended (``retention``) and which
columns are secrets. A table whose list comes newest first, that can be
read by key and whose rows settle is synced incrementally
(:mod:`.table_sync`); the others are scanned whole.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .. import exceptions as exc
from ..engine.schema import Table
from ..profiles.base import Profile
from .reader import ApiReader
from .scan import Scan
from .schema import replica_specs
from .writer import spec_key


class ReplicaPlan:
    """The replica's tables of ``profile`` and its hints about them.

    ``secrets``: also replicate the columns the profile marks as secrets;
    without it ``secret_columns`` names them (stored as NULL).
    """

    def __init__(self, profile: Profile, secrets: bool = False) -> None:
        self.specs = {t.name: t for t in replica_specs(profile.tables)}
        hints: Mapping[str, Any] = profile.extras.get("replica", {})
        self.settled: Mapping[str, str] = hints.get("settled", {})
        self.open: Mapping[str, tuple[str, Sequence[str]]] = hints.get("open", {})
        self.account_table: str | None = hints.get("account")
        retention = hints.get("retention")
        self.retention = dt.timedelta(seconds=float(retention)) if retention else None
        self.secret_columns: Mapping[str, Sequence[str]] = {} if secrets else hints.get("secrets", {})

    # -- which tables ------------------------------------------------------------------------------

    def resolve(self, tables: Iterable[str] | str | None) -> list[str]:
        """Table names as the profile spells them, with the tables they travel with.

        None means the account's data: every table whose list needs an API
        scope (the catalogue, which needs none, only when named). A derived
        table brings its parent, and a parent its derived tables.
        """
        by_lower = {name.lower(): name for name in self.specs}
        if tables is None:
            chosen = [name for name, spec in self.specs.items() if self._source(spec).list is not None and self._source(spec).list.scope]  # type: ignore[union-attr]
        else:
            names = [t.strip() for t in (tables.split(",") if isinstance(tables, str) else tables) if t.strip()]
            unknown = [n for n in names if n.lower() not in by_lower]
            if unknown:
                raise exc.ProgrammingError(f"No table {', '.join(unknown)} to sync; tables: {', '.join(self.specs)}.")
            chosen = [by_lower[n.lower()] for n in names]
        selected = set(chosen)
        for name in list(selected):
            spec = self.specs[name]
            if spec.derived is not None:
                selected.add(spec.derived.parent)
        for name, spec in self.specs.items():
            if spec.derived is not None and spec.derived.parent in selected:
                selected.add(name)
        return [name for name in self.specs if name in selected]

    def _source(self, spec: Table) -> Table:
        return self.specs[spec.derived.parent] if spec.derived is not None else spec

    def units(self, names: Sequence[str]) -> list[Table]:
        """The tables read from the API: the account first, embedded tables before their parents.

        Tasks read from their own list carry every ``include=`` (the payload);
        the same tasks embedded in a job then compare unchanged, so a sync
        counts as updated only what really changed.
        """
        units = [self.specs[n] for n in names if self.specs[n].derived is None and self.specs[n].list is not None]
        embedded = {e.table for s in units for e in s.embeds}
        return sorted(units, key=lambda s: (s.name != self.account_table, s.name not in embedded, names.index(s.name)))

    # -- how each is read -------------------------------------------------------------------------------

    def incremental(self, spec: Table) -> bool:
        """Whether ``spec`` is synced incrementally: newest first, paged, read by key, rows that settle."""
        endpoint = spec.list
        return bool(
            endpoint is not None
            and endpoint.paginated
            and endpoint.order is not None
            and endpoint.order[1]
            and spec.get is not None
            and spec.name in self.settled
            and len(spec.key) == 1
        )

    def scan(self, spec: Table, reader: ApiReader, includes: frozenset[str], **options: Any) -> Scan:
        """A complete scan of ``spec``'s list (rows by key, ordered by its creation column if newest first)."""
        assert spec.list is not None
        order = None
        if spec.list.order is not None and spec.list.order[1]:
            created = spec.column(spec.list.order[0])
            order = created.value
        return Scan(reader, spec.list, includes, lambda o: spec_key(spec, o), order, **options)
