"""What one run writes into the replica: objects as the API showed them, and rows found gone, with why.

An object is written with what it embeds (a job's tasks) and what is
derived from it (task files, dependencies), secret columns blanked unless
the replica keeps secrets. ``_synced_at`` is when the request that showed a
row (or found it gone) went out, on this machine's clock, and an older
observation never replaces a newer one (:mod:`.writer`). A row is only
marked gone if no observation newer than the reading that missed it exists;
``_removed_at`` is when it was found gone on the API's clock
(:class:`~.clock.ApiClock`) and ``_removed_reason`` says why
(:meth:`Recorder.reasons`); what came with it goes with it.

Every page is written in its own transaction; a page the database refuses
is written row by row, so that one row it cannot take never costs the
others, and the table's sync then fails naming them
(:meth:`Recorder.check_rejected`). The recorder remembers what the run saw,
for what the run decides afterwards: which rows the API no longer has,
which parents a new child may have re-opened.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from .. import exceptions as exc
from ..engine.schema import Embed, Table
from .clock import Moment
from .conversions import as_utc
from .plan import ReplicaPlan
from .reader import Obj, Page
from .report import Progress, SyncReport
from .schema import DELETED, EXPIRED, REMOVED_AT
from .target import Target
from .writer import Counts, Key, ReplicaWriter, chunks, spec_key

EXPIRY_SLACK = dt.timedelta(seconds=1)  # the API's Date headers have whole seconds


class Recorder:
    """The writes of one run into ``target``, for the tables ``written``, counted in ``report``."""

    def __init__(
        self,
        plan: ReplicaPlan,
        target: Target,
        writer: ReplicaWriter,
        written: set[str],
        report: SyncReport,
        progress: Progress | None = None,
    ) -> None:
        self.plan = plan
        self.target = target
        self.writer = writer
        self.written = written
        self.report = report
        self.progress = progress
        self.seen: dict[str, set[Key]] = {}
        self.settled_seen: dict[str, set[Key]] = {}  # seen in this run and settled: they cannot have changed since
        self.new_children: dict[str, set[Any]] = {}  # parent table → parent keys of children first seen outside it
        self.rejected: dict[str, list[tuple[Key, str]]] = {}  # rows the replica database refused, with why

    # -- what travels with an object -----------------------------------------------------------------

    def embeds(self, spec: Table) -> list[tuple[Embed, Table]]:
        """Tables embedded in ``spec``'s objects that this run writes."""
        return [(e, self.plan.specs[e.table]) for e in spec.embeds if e.table in self.written]

    def derived(self, spec: Table) -> list[tuple[Table, str]]:
        """Derived tables written from ``spec``'s objects, with their column holding the parent's key."""
        out = []
        for child in self.plan.specs.values():
            if child.derived is not None and child.derived.parent == spec.name and child.name in self.written and len(spec.key) == 1:
                column = next((c for c, p in child.derived.columns.items() if p == spec.key[0]), None)
                if column is not None:
                    out.append((child, column))
        return out

    def unknown(self, spec: Table, includes: frozenset[str]) -> frozenset[str]:
        """Columns of ``spec`` that objects read with ``includes`` do not carry (left as they are)."""
        return frozenset(c.name for c in spec.columns if c.include is not None and c.include not in includes)

    def _rows(self, spec: Table, objects: Sequence[Obj]) -> list[tuple[Any, ...]]:
        """The rows of ``objects``, secret columns blanked unless the replica keeps secrets."""
        rows = self.writer.rows_of(spec, objects)
        secret = [spec.index(name) for name in self.plan.secret_columns.get(spec.name, ())]
        if secret:
            rows = [tuple(None if i in secret else v for i, v in enumerate(row)) for row in rows]
        return rows

    # -- objects seen ---------------------------------------------------------------------------------

    def write(
        self, conn: sa.Connection, spec: Table, objects: Sequence[Obj], unknown: frozenset[str], observed: Moment, force: bool = False
    ) -> dict[str, Counts]:
        """Write ``objects`` of ``spec`` (as the API showed them at ``observed``) with what they embed
        and what is derived from them; returns the counts per table (the caller reports them once committed).

        Objects the replica holds from a later observation are left alone, with their children.
        """
        out: dict[str, Counts] = {}

        def note(table: str, counts: Counts) -> None:
            out.setdefault(table, Counts()).add(counts)

        if spec.name in self.written:
            rows = self._rows(spec, objects)
            older: set[Key] = set()
            counts, inserted = self.writer.upsert(conn, spec, rows, observed.local, unknown, older, force)
            note(spec.name, counts)
            self.seen.setdefault(spec.name, set()).update(self.writer.key_of(spec, r) for r in rows)  # (older ones too: listed)
            if older:
                keep = [i for i, row in enumerate(rows) if self.writer.key_of(spec, row) not in older]
                rows, objects = [rows[i] for i in keep], [objects[i] for i in keep]
            settled = self.plan.settled.get(spec.name)
            if settled is not None:
                position = spec.index(settled)
                self.settled_seen.setdefault(spec.name, set()).update(self.writer.key_of(spec, r) for r in rows if r[position] is not None)
            for derived, column in self.derived(spec):
                parents = [self.writer.key_of(spec, r)[0] for r in rows]
                cut = [row for obj in objects for row in derived.derived.rows(obj)]  # type: ignore[union-attr]
                note(derived.name, self.writer.replace_children(conn, derived, column, parents, self._rows(derived, cut), observed.local, observed.api))
            self._note_new_children(spec, rows, inserted)
        for embed, child in self.embeds(spec):
            done = self.settled_seen.get(child.name, set())
            children = [c for obj in objects for c in (obj.get(embed.field) or []) if isinstance(c, dict) and spec_key(child, c) not in done]
            if children:
                for table, counts in self.write(conn, child, children, self.unknown(child, frozenset()), observed, force).items():
                    out.setdefault(table, Counts()).add(counts)
        return out

    def _note(self, counts: Mapping[str, Counts]) -> None:
        for table, c in counts.items():
            if table in self.report.tables:
                self.report.tables[table].add(c)

    def _note_new_children(self, spec: Table, rows: Sequence[Sequence[Any]], inserted: set[Key]) -> None:
        """Children first seen on their own (a retried task) may have re-opened a settled parent."""
        for parent in self.plan.specs.values():
            for embed in parent.embeds:
                if embed.table != spec.name or parent.name not in self.written:
                    continue
                position = spec.index(embed.key)
                keys = {
                    row[position]
                    for row in rows
                    if self.writer.key_of(spec, row) in inserted and row[position] is not None
                }
                if keys:
                    self.new_children.setdefault(parent.name, set()).update(keys)

    def write_page(self, spec: Table, page: Page, includes: frozenset[str]) -> None:
        """Write one page in its own transaction; if the replica database refuses it, row by row, so
        that one row it cannot take never costs the others (those are reported at the table's end)."""
        if not page.objects:
            return
        unknown = self.unknown(spec, includes)
        try:
            with self.target.write(f"writing {spec.name}") as conn:
                counts = self.write(conn, spec, page.objects, unknown, page.observed)
        except exc.DatabaseError as error:
            if len(page.objects) == 1:
                self.rejected.setdefault(spec.name, []).append((spec_key(spec, page.objects[0]), str(error)))
                return
            failures = 0
            for obj in page.objects:
                try:
                    with self.target.write(f"writing {spec.name}") as conn:
                        self._note(self.write(conn, spec, [obj], unknown, page.observed))
                except exc.DatabaseError as one:
                    failures += 1
                    self.rejected.setdefault(spec.name, []).append((spec_key(spec, obj), str(one)))
            if failures == len(page.objects):
                raise
        else:
            self._note(counts)
        if self.progress is not None:
            self.progress(spec.name, len(page.objects), 0)

    def check_rejected(self, spec: Table) -> None:
        """A table whose rows the database refused is not synced: say so (its bookkeeping stays as it was)."""
        rejected = self.rejected.get(spec.name)
        if rejected:
            keys = ", ".join(str(k[0] if len(k) == 1 else k) for k, _ in rejected[:5])
            raise exc.DataError(
                f"The replica {self.target.shown} refused {len(rejected)} row(s) of {spec.name} (key {keys}"
                f"{', ...' if len(rejected) > 5 else ''}); the other rows are written. First error: {rejected[0][1]}"
            )

    # -- rows found gone ---------------------------------------------------------------------------------

    def reasons(self, conn: sa.Connection, spec: Table, keys: Sequence[Key], found: Moment) -> dict[Key, str]:
        """Why rows found gone at ``found`` went: ``expired`` if the API's retention after their end had run
        out by then (on the API's clock), else ``deleted`` (also for rows that never ended: they do not expire)."""
        settled, retention = self.plan.settled.get(spec.name), self.plan.retention
        if settled is None or retention is None or len(spec.key) != 1:
            return {k: DELETED for k in keys}
        table = self.target.table(spec.name)
        ended: dict[Key, dt.datetime | None] = {}
        for chunk in chunks(list(keys)):
            for key, value in conn.execute(sa.select(table.c[spec.key[0]], table.c[settled]).where(self.writer.key_clause(table, spec, chunk))):
                ended[(key,)] = _stored_time(value)
        out = {}
        for key in keys:
            end = ended.get(key)
            out[key] = EXPIRED if end is not None and end + retention <= found.api + EXPIRY_SLACK else DELETED
        return out

    def cascade_removed(self, conn: sa.Connection, spec: Table, reasons: Mapping[Key, str], at: Moment) -> None:
        """Mark ``reasons``' keys of ``spec`` found gone at ``at``, each with its reason, and what came with
        them (embedded children, derived rows: with their parent's reason)."""
        if not reasons:
            return
        removed = self.writer.mark_removed(conn, spec, reasons, at.api, at.local)
        if spec.name in self.report.tables:
            self.report.tables[spec.name].removed += removed
        if len(spec.key) != 1:
            return
        singles = {k[0]: reason for k, reason in reasons.items()}
        for derived, column in self.derived(spec):
            count = self.writer.mark_removed_where(conn, derived, column, singles, at.api, at.local)
            if derived.name in self.report.tables:
                self.report.tables[derived.name].removed += count
        for embed, child in self.embeds(spec):
            table = self.target.table(child.name)
            child_reasons: dict[Key, str] = {}
            for chunk in chunks(list(singles)):
                for row in conn.execute(
                    sa.select(*(table.c[k] for k in child.key), table.c[embed.key]).where(table.c[embed.key].in_(chunk)).where(table.c[REMOVED_AT].is_(None))
                ):
                    child_reasons[tuple(row[: len(child.key)])] = singles[row[-1]]
            self.cascade_removed(conn, child, child_reasons, at)


def _stored_time(value: Any) -> dt.datetime | None:
    """A stored timestamp (our UTC text on SQLite, a datetime elsewhere) as an aware datetime; None if unreadable."""
    try:
        return as_utc(value)
    except (ValueError, TypeError, OverflowError):
        return None
