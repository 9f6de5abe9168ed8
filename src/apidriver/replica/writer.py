"""Writing API objects into the replica: insert what is new, update what changed, never delete.

Rows are compared by primary key with what the replica holds (in the
target's own types, so ``jsonb`` key order or ``timestamptz`` rendering make
no difference): new keys are inserted, changed rows updated, unchanged rows
only get ``_synced_at``. Rows found gone are marked (``_removed_at``,
``_removed_reason``), never deleted: the history is the point.

Every write carries the time (this machine's clock, ``_synced_at``) its
request went out, and a state observed earlier than the one the replica
holds never replaces it: a page read before a webhook's fetch, a second sync
running behind the first. Marking a row gone is an observation too
(``_synced_at`` moves on with it), so a row marked gone comes back
(``_removed_at`` NULL again) only if it is seen after it was found gone,
which never happens on CloudConvert.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..engine.schema import Column, Table
from .conversions import as_utc
from .schema import EXACT, REMOVED_AT, REMOVED_REASON, REPLACED, SYNCED_AT
from .target import Target

CHUNK = 400  # keys per IN (...) list


@dataclass
class Counts:
    """Rows of one table a sync inserted, updated (changed or back) and newly found gone."""

    inserted: int = 0
    updated: int = 0
    removed: int = 0

    def add(self, other: Counts) -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.removed += other.removed


Key = tuple[Any, ...]


def spec_key(spec: Table, obj: Mapping[str, Any]) -> Key:
    """The key of an API object of ``spec`` (its primary-key columns' values)."""
    return tuple(c.value(obj) for c in spec.columns if c.primary_key)


def _value_or_raw(column: Column, obj: Mapping[str, Any]) -> Any:
    try:
        return column.value(obj)
    except (ValueError, TypeError, OverflowError):
        raw = column.raw(obj)
        return raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False, separators=(",", ":"))


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class ReplicaWriter:
    """Upserts and removal marks for the tables of one target."""

    def __init__(self, target: Target) -> None:
        self.target = target

    def key_clause(self, table: sa.Table, spec: Table, keys: Sequence[Key]) -> Any:
        """``key IN keys``; composite keys may have NULL parts, matched with IS NULL (indexes stay usable)."""
        columns = [table.c[k] for k in spec.key]
        if len(columns) == 1:
            return columns[0].in_([k[0] for k in keys])
        by_mask: dict[tuple[bool, ...], list[Key]] = {}
        for key in keys:
            by_mask.setdefault(tuple(v is None for v in key), []).append(key)
        conditions = []
        for mask, group in by_mask.items():
            present = [c for c, null in zip(columns, mask) if not null]
            parts = [c.is_(None) for c, null in zip(columns, mask) if null]
            if present:
                values = [tuple(v for v, null in zip(k, mask) if not null) for k in group]
                parts.append(present[0].in_([v[0] for v in values]) if len(present) == 1 else sa.tuple_(*present).in_(values))
            conditions.append(sa.and_(*parts))
        return sa.or_(*conditions)

    def rows_of(self, spec: Table, objects: Iterable[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
        """API objects as rows of driver values, in the spec's column order.

        A value the driver cannot convert (a timestamp it cannot read) is kept
        as the API sent it (text; other JSON as JSON text): one odd value
        never costs its row, nor the row its page.
        """
        columns = spec.columns
        out = []
        for obj in objects:
            try:
                out.append(tuple(c.value(obj) for c in columns))
            except (ValueError, TypeError, OverflowError):
                out.append(tuple(_value_or_raw(c, obj) for c in columns))
        return out

    def key_of(self, spec: Table, row: Sequence[Any]) -> Key:
        return tuple(row[spec.index(k)] for k in spec.key)

    def upsert(
        self,
        conn: Connection,
        spec: Table,
        rows: Sequence[Sequence[Any]],
        observed: dt.datetime,
        unknown: frozenset[str] = frozenset(),
        older: set[Key] | None = None,
        force: bool = False,
    ) -> tuple[Counts, set[Key]]:
        """Write ``rows`` (driver values in column order) as the API showed them at ``observed``;
        returns the counts and the inserted keys.

        ``unknown`` columns were not sent by this source (an ``include=`` it
        did not ask for): existing rows keep their values, new rows get NULL.
        Rows the replica holds from a later observation (or found gone later)
        are left alone, their keys added to ``older``. With ``force`` (a state
        known to be newer by the object's own progress) rows are written
        whatever their observation times, and removal marks stay.
        """
        counts = Counts()
        inserted: set[Key] = set()
        if not rows:
            return counts, inserted
        target = self.target
        table = target.table(spec.name)
        stamp = target.timestamp(observed)
        columns = [(c.name, c.type) for c in spec.columns]
        known = [(i, c) for i, c in enumerate(spec.columns) if c.name not in unknown]
        by_key: dict[Key, tuple[list[Any], str | None]] = {}
        for row in rows:
            values, exact = target.row_to_target(columns, row)
            by_key[self.key_of(spec, values)] = (values, exact)
        keys = list(by_key)
        selected = [table.c[c.name] for _, c in known] + [table.c[EXACT], table.c[SYNCED_AT], table.c[REMOVED_AT]]
        existing: dict[Key, Sequence[Any]] = {}
        key_positions = [next(j for j, (_, c) in enumerate(known) if c.name == k) for k in spec.key]
        for chunk in chunks(keys):
            for found in conn.execute(sa.select(*selected).where(self.key_clause(table, spec, chunk))):
                existing[tuple(found[j] for j in key_positions)] = found
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        forced: list[dict[str, Any]] = []
        touched: list[Key] = []
        for key, (values, exact) in by_key.items():
            old = existing.get(key)
            if old is None:
                record = {c.name: (None if c.name in unknown else values[i]) for i, c in enumerate(spec.columns)}
                record.update({EXACT: exact, SYNCED_AT: stamp, REMOVED_AT: None, REMOVED_REASON: None})
                inserts.append(record)
                inserted.add(key)
                continue
            old_exact, synced, removed = old[-3], as_utc(old[-2]), as_utc(old[-1])
            if force:
                changed = old_exact != exact or any(old[j] != values[i] for j, (i, _) in enumerate(known))
                if changed:
                    forced.append({**{f"v_{c.name}": values[i] for i, c in known}, **{f"k_{n}": key[j] for j, n in enumerate(spec.key)}, "v_" + EXACT: exact})
            elif (removed is not None and observed <= removed) or (removed is None and synced is not None and observed < synced):
                if older is not None:
                    older.add(key)
            elif removed is not None or old_exact != exact or any(old[j] != values[i] for j, (i, _) in enumerate(known)):
                record = {f"v_{c.name}": values[i] for i, c in known}
                record.update({f"k_{name}": key[n] for n, name in enumerate(spec.key)})
                record["v_" + EXACT] = exact
                record["v_" + SYNCED_AT] = stamp
                updates.append(record)
            else:
                touched.append(key)
        if inserts:
            conn.execute(table.insert(), inserts)
            counts.inserted = len(inserts)
        by_mask: dict[tuple[bool, ...], list[dict[str, Any]]] = {}
        for record in updates:
            by_mask.setdefault(tuple(record[f"k_{name}"] is None for name in spec.key), []).append(record)
        for mask, group in by_mask.items():
            match = [table.c[name].is_(None) if null else table.c[name] == sa.bindparam(f"k_{name}") for name, null in zip(spec.key, mask)]
            assignments: dict[str, Any] = {c.name: sa.bindparam(f"v_{c.name}") for _, c in known}
            assignments.update(
                {EXACT: sa.bindparam("v_" + EXACT), SYNCED_AT: sa.bindparam("v_" + SYNCED_AT), REMOVED_AT: None, REMOVED_REASON: None}
            )
            conn.execute(table.update().where(sa.and_(*match)).values(assignments), group)
        for record in forced:  # (one row at a time: a webhook's object and its children)
            match = [table.c[name].is_(None) if record[f"k_{name}"] is None else table.c[name] == record[f"k_{name}"] for name in spec.key]
            assigned = {c.name: record[f"v_{c.name}"] for _, c in known}
            assigned[EXACT] = record["v_" + EXACT]
            conn.execute(table.update().where(sa.and_(*match)).values(assigned))
        counts.updated = len(updates) + len(forced)
        for chunk in chunks(touched):
            conn.execute(table.update().where(self.key_clause(table, spec, chunk)).values({SYNCED_AT: stamp}))
        return counts, inserted

    def mark_removed(self, conn: Connection, spec: Table, reasons: Mapping[Key, str], removed_at: dt.datetime, synced_at: dt.datetime) -> int:
        """Mark rows gone (those not marked already), each with its reason: found gone at ``removed_at``
        (the API's clock), ``synced_at`` on ours; returns how many were."""
        table = self.target.table(spec.name)
        values = {REMOVED_AT: self.target.timestamp(removed_at), SYNCED_AT: self.target.timestamp(synced_at)}
        count = 0
        by_reason: dict[str, list[Key]] = {}
        for key, reason in reasons.items():
            by_reason.setdefault(reason, []).append(key)
        for reason, keys in by_reason.items():
            for chunk in chunks(keys):
                result = conn.execute(
                    table.update()
                    .where(self.key_clause(table, spec, chunk))
                    .where(table.c[REMOVED_AT].is_(None))
                    .values({**values, REMOVED_REASON: reason})
                )
                count += result.rowcount
        return count

    def mark_removed_where(
        self, conn: Connection, spec: Table, column: str, reasons: Mapping[Any, str], removed_at: dt.datetime, synced_at: dt.datetime
    ) -> int:
        """Mark the live rows whose ``column`` is a key of ``reasons`` gone (children of removed parents), with its reason."""
        table = self.target.table(spec.name)
        values = {REMOVED_AT: self.target.timestamp(removed_at), SYNCED_AT: self.target.timestamp(synced_at)}
        count = 0
        by_reason: dict[str, list[Any]] = {}
        for value, reason in reasons.items():
            by_reason.setdefault(reason, []).append(value)
        for reason, values_ in by_reason.items():
            for chunk in chunks(values_):
                result = conn.execute(
                    table.update()
                    .where(table.c[column].in_(list(chunk)))
                    .where(table.c[REMOVED_AT].is_(None))
                    .values({**values, REMOVED_REASON: reason})
                )
                count += result.rowcount
        return count

    def live_keys(self, conn: Connection, spec: Table, where: Any = None) -> list[Key]:
        """Keys of the rows not marked gone (optionally filtered)."""
        table = self.target.table(spec.name)
        statement = sa.select(*(table.c[k] for k in spec.key)).where(table.c[REMOVED_AT].is_(None))
        if where is not None:
            statement = statement.where(where)
        return [tuple(r) for r in conn.execute(statement)]

    def replace_children(
        self,
        conn: Connection,
        spec: Table,
        parent_column: str,
        parents: Sequence[Any],
        rows: Sequence[Sequence[Any]],
        observed: dt.datetime,
        api_time: dt.datetime | None = None,
    ) -> Counts:
        """The rows of a derived table cut from ``parents`` (read at ``observed``, ``api_time`` on the API's
        clock): upsert them, mark the parents' other rows gone (``replaced``)."""
        counts, _ = self.upsert(conn, spec, rows, observed)
        if not parents:
            return counts
        table = self.target.table(spec.name)
        current = {self.key_of(spec, r) for r in rows}
        stale: dict[Key, str] = {}
        for chunk in chunks(list(parents)):
            for found in self.live_keys(conn, spec, table.c[parent_column].in_(list(chunk))):
                if found not in current:
                    stale[found] = REPLACED
        counts.removed += self.mark_removed(conn, spec, stale, api_time or observed, observed)
        return counts
