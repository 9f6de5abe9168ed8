"""One sync: bring the replica's tables up to date with the API, reading only what can have changed.

A table whose list comes newest first (``Endpoint.order``), that can be read
by key and whose rows settle (``profile.extras["replica"]["settled"]``: once
``ended_at`` is set the API changes a job no more) is synced incrementally:

1. **head**: a complete scan of the list (:class:`~.reader.Scan`: windows
   that overlap, so no row that exists for the whole read is skipped however
   rows are created or deleted meanwhile), newest first, until an accepted
   window reaches the newest ``created_at`` the last complete sync saw (the
   watermark); on the first sync, the whole list. Embedded children (a job's
   tasks) and derived rows (task files, dependencies) are written with their
   parent.
2. **refresh**: rows not yet settled and not seen in the head are listed by
   the filter that finds open ones (``extras["replica"]["open"]``: status
   waiting, then processing), and those still missing are read by key (a
   404 marks them gone, with their children).
3. **tail**: the last page of the list (found from the replica's count of
   live rows) says which is the oldest object the API still has; live rows
   older than it are gone. If the replica still has more live rows than the
   API lists, the list is scanned whole, and what a complete scan does not
   list is gone.

Other tables (webhooks, the account, the catalogue) are scanned whole: rows
not listed are marked gone. The list order is checked on every page read;
if the API ever breaks it, that sync reads the whole list instead.

``_synced_at`` is when the request that showed a row (or found it gone)
went out, on this machine's clock, and an older observation never replaces
a newer one (:mod:`.writer`). A row is only marked gone if no observation
newer than the reading that missed it exists; ``_removed_at`` is when it was
found gone on the API's clock (:class:`~.reader.ApiClock`) and
``_removed_reason`` says why (:meth:`_Run.reasons`).

Safe to interrupt: every page is written in its own transaction, and a
table's watermark moves only when its whole sync succeeded, so the next
run re-reads whatever an interrupted one did not finish. Nothing is ever
deleted: rows found gone get ``_removed_at``.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .. import exceptions as exc
from ..answers import RequestRecord
from ..engine.schema import Embed, Table
from .reader import ApiReader, Moment, Obj, Page, Scan, clock_of
from .schema import DELETED, EXPIRED, REMOVED_AT, SYNCED_AT
from .target import Target, as_utc
from .writer import Counts, Key, ReplicaWriter, chunks

if TYPE_CHECKING:
    from ..connection import Connection

Progress = Callable[[str, int, int], None]  # (table, objects read, requests sent) since the last call


@dataclass
class TableReport:
    """What a sync did to one table."""

    table: str
    inserted: int = 0
    updated: int = 0
    removed: int = 0
    requests: int = 0
    seconds: float = 0.0
    rereads: int = 0  # pages read again because the list shifted under the scan

    def add(self, counts: Counts) -> None:
        self.inserted += counts.inserted
        self.updated += counts.updated
        self.removed += counts.removed


@dataclass
class SyncReport:
    """Per table: rows inserted, updated, newly gone, requests and seconds (``report["Jobs"].inserted``)."""

    target: str
    tables: dict[str, TableReport] = field(default_factory=dict)
    seconds: float = 0.0

    def __getitem__(self, name: str) -> TableReport:
        for key, value in self.tables.items():
            if key.lower() == name.lower():
                return value
        raise KeyError(name)

    def __iter__(self) -> Any:
        return iter(self.tables.values())

    @property
    def requests(self) -> int:
        return sum(t.requests for t in self.tables.values())

    def as_dict(self) -> dict[str, dict[str, Any]]:
        return {t.table: {k: v for k, v in vars(t).items() if k != "table"} for t in self.tables.values()}


def replica_specs(profile_tables: Iterable[Table]) -> list[Table]:
    """The tables a replica holds: every profile table (``sys_*`` tables are not the API's)."""
    return [t for t in profile_tables if not t.name.lower().startswith("sys_")]


EXPIRY_SLACK = dt.timedelta(seconds=1)  # the API's Date headers have whole seconds


class Replicator:
    """Syncs one API connection's tables into one replica database.

    ``secrets``: also replicate the columns the profile marks as secrets
    (webhook signing secrets); without it they are stored as NULL, and a
    replica that holds some from before loses them at its next sync.
    """

    def __init__(
        self,
        connection: Connection,
        target: Target,
        observer: Callable[[RequestRecord], None] | None = None,
        progress: Progress | None = None,
        secrets: bool = False,
    ) -> None:
        self.connection = connection
        self.profile = connection.profile
        self.target = target
        self.writer = ReplicaWriter(target)
        self.observer = observer
        self.progress = progress
        self.clock = clock_of(connection.root_url)
        self.specs = {t.name: t for t in replica_specs(self.profile.tables)}
        hints: Mapping[str, Any] = self.profile.extras.get("replica", {})
        self.settled: Mapping[str, str] = hints.get("settled", {})
        self.open: Mapping[str, tuple[str, Sequence[str]]] = hints.get("open", {})
        self.account_table: str | None = hints.get("account")
        retention = hints.get("retention")
        self.retention = dt.timedelta(seconds=float(retention)) if retention else None
        self.secrets = secrets
        self.secret_columns: Mapping[str, Sequence[str]] = {} if secrets else hints.get("secrets", {})
        self._prepared = False

    # -- which tables --------------------------------------------------------------------------

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

    def _units(self, names: Sequence[str]) -> list[Table]:
        """The tables read from the API: the account first, embedded tables before their parents.

        Tasks read from their own list carry every ``include=`` (the payload);
        the same tasks embedded in a job then compare unchanged, so a sync
        counts as updated only what really changed.
        """
        units = [self.specs[n] for n in names if self.specs[n].derived is None and self.specs[n].list is not None]
        embedded = {e.table for s in units for e in s.embeds}
        return sorted(units, key=lambda s: (s.name != self.account_table, s.name not in embedded, names.index(s.name)))

    # -- running ---------------------------------------------------------------------------------

    def prepare(self) -> None:
        if not self._prepared:
            self.target.prepare(self.profile.name, self.connection.root_url)
            if self.secret_columns:
                self.target.forget(self.secret_columns)
            self._prepared = True

    def run(self, tables: Iterable[str] | str | None = None, full: bool = False) -> SyncReport:
        """Sync ``tables`` (None: the account's data); ``full`` reads every list whole."""
        started = time.monotonic()
        names = self.resolve(tables)
        self.prepare()
        report = SyncReport(self.target.shown, {name: TableReport(name) for name in names})
        written = set(names)
        run = _Run(self, written, report, full)
        for spec in self._units(names):
            run.unit(spec)
        run.refresh_parents()
        report.seconds = time.monotonic() - started
        return report

    def write_objects(
        self, table: str, objects: Sequence[Obj], written: set[str] | None = None, observed: Moment | None = None
    ) -> dict[str, Counts]:
        """Write objects that arrived without a request as the API's state at ``observed`` (by default now):
        the rows, children, derived rows. Rows the replica holds from a later observation stay."""
        self.prepare()
        spec = self.specs[table]
        run = _Run(self, set(written) if written is not None else set(self.resolve(None)), SyncReport(self.target.shown), False)
        with self.target.write(f"writing objects of {table}") as conn:
            counts = run.write(conn, spec, objects, frozenset(), observed or self.clock.moment())
        return counts

    def refresh(self, table: str, objects: Sequence[Obj], written: set[str] | None = None) -> dict[str, Counts]:
        """Bring the rows of ``objects`` (a webhook delivery's) up to date from the API, by key.

        A delivery is a signal, not a state: its payload may be late or
        replayed (a signature carries no time). Each object is read again and
        the API's answer written (older than what the replica holds: left
        alone). If the API no longer has it, the payload is the last word
        there is: it is written only if it shows more progress than the row
        (a later end: the object's own order), and the row is marked gone.
        """
        self.prepare()
        spec = self.specs[table]
        run = _Run(self, set(written) if written is not None else set(self.resolve(None)), SyncReport(self.target.shown), False)
        reader = run._reader(table)
        out: dict[str, Counts] = {}
        try:
            includes = frozenset(c.include for c in spec.columns if c.include)
            for obj in objects:
                key = spec.key_of(obj)[0]
                found, observed = reader.get(spec.get, key, includes) if spec.get is not None else (obj, self.clock.moment())
                with self.target.write(f"writing objects of {table}") as conn:
                    if found is not None:
                        counts = run.write(conn, spec, [found], run._unknown(spec, includes), observed)
                    else:
                        counts = {}
                        if run.progressed(conn, spec, obj):
                            counts = run.write(conn, spec, [obj], frozenset(), observed, force=True)  # (it carries its includes)
                        run.cascade_removed(conn, spec, run.reasons(conn, spec, [(key,)], observed), observed)
                for name, c in counts.items():
                    out.setdefault(name, Counts()).add(c)
        finally:
            reader.close()
        return out


class _Run:
    """The state of one sync run."""

    def __init__(self, replicator: Replicator, written: set[str], report: SyncReport, full: bool) -> None:
        self.r = replicator
        self.target = replicator.target
        self.writer = replicator.writer
        self.written = written
        self.report = report
        self.full = full
        self.seen: dict[str, set[Key]] = {}
        self.settled_seen: dict[str, set[Key]] = {}  # seen in this run and settled: they cannot have changed since
        self.new_children: dict[str, set[Any]] = {}  # parent table → parent keys of children first seen outside it
        self.rejected: dict[str, list[tuple[Key, str]]] = {}  # rows the replica database refused, with why

    # -- writing -------------------------------------------------------------------------------------

    def _embeds(self, spec: Table) -> list[tuple[Embed, Table]]:
        return [(e, self.r.specs[e.table]) for e in spec.embeds if e.table in self.written]

    def _derived(self, spec: Table) -> list[tuple[Table, str]]:
        """Derived tables written from ``spec``'s objects, with their column holding the parent's key."""
        out = []
        for child in self.r.specs.values():
            if child.derived is not None and child.derived.parent == spec.name and child.name in self.written and len(spec.key) == 1:
                column = next((c for c, p in child.derived.columns.items() if p == spec.key[0]), None)
                if column is not None:
                    out.append((child, column))
        return out

    def _unknown(self, spec: Table, includes: frozenset[str]) -> frozenset[str]:
        return frozenset(c.name for c in spec.columns if c.include is not None and c.include not in includes)

    def _rows(self, spec: Table, objects: Sequence[Obj]) -> list[tuple[Any, ...]]:
        """The rows of ``objects``, secret columns blanked unless the replica keeps secrets."""
        rows = self.writer.rows_of(spec, objects)
        secret = [spec.index(name) for name in self.r.secret_columns.get(spec.name, ())]
        if secret:
            rows = [tuple(None if i in secret else v for i, v in enumerate(row)) for row in rows]
        return rows

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
            settled = self.r.settled.get(spec.name)
            if settled is not None:
                position = spec.index(settled)
                self.settled_seen.setdefault(spec.name, set()).update(self.writer.key_of(spec, r) for r in rows if r[position] is not None)
            for derived, column in self._derived(spec):
                parents = [self.writer.key_of(spec, r)[0] for r in rows]
                cut = [row for obj in objects for row in derived.derived.rows(obj)]  # type: ignore[union-attr]
                note(derived.name, self.writer.replace_children(conn, derived, column, parents, self._rows(derived, cut), observed.local, observed.api))
            self._note_new_children(spec, rows, inserted)
        for embed, child in self._embeds(spec):
            done = self.settled_seen.get(child.name, set())
            children = [c for obj in objects for c in (obj.get(embed.field) or []) if isinstance(c, dict) and spec_key(child, c) not in done]
            if children:
                for table, counts in self.write(conn, child, children, self._unknown(child, frozenset()), observed, force).items():
                    out.setdefault(table, Counts()).add(counts)
        return out

    def _note(self, counts: Mapping[str, Counts]) -> None:
        for table, c in counts.items():
            if table in self.report.tables:
                self.report.tables[table].add(c)

    def _note_new_children(self, spec: Table, rows: Sequence[Sequence[Any]], inserted: set[Key]) -> None:
        """Children first seen on their own (a retried task) may have re-opened a settled parent."""
        for parent in self.r.specs.values():
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

    def progressed(self, conn: sa.Connection, spec: Table, obj: Obj) -> bool:
        """Whether ``obj`` (a payload, of no known time) shows more progress than the replica's row:
        there is none, or it ended later (or ended, where the row had not). Tables without a settled
        column have no such order: never."""
        settled = self.r.settled.get(spec.name)
        if settled is None:
            return False
        table = self.target.table(spec.name)
        stored = conn.execute(sa.select(table.c[settled]).where(self.writer.key_clause(table, spec, [spec_key(spec, obj)]))).first()
        ended = spec.column(settled).value(obj)
        if stored is None:
            return True
        before = self.target.from_target(spec.column(settled).type, stored[0])
        return ended is not None and (before is None or ended > before)

    def reasons(self, conn: sa.Connection, spec: Table, keys: Sequence[Key], found: Moment) -> dict[Key, str]:
        """Why rows found gone at ``found`` went: ``expired`` if the API's retention after their end had run
        out by then (on the API's clock), else ``deleted`` (also for rows that never ended: they do not expire)."""
        settled, retention = self.r.settled.get(spec.name), self.r.retention
        if settled is None or retention is None or len(spec.key) != 1:
            return {k: DELETED for k in keys}
        table = self.target.table(spec.name)
        ended: dict[Key, dt.datetime | None] = {}
        for chunk in chunks(list(keys)):
            for key, value in conn.execute(sa.select(table.c[spec.key[0]], table.c[settled]).where(self.writer.key_clause(table, spec, chunk))):
                ended[(key,)] = _stored_time(self.target, spec.column(settled).type, value)
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
        for derived, column in self._derived(spec):
            count = self.writer.mark_removed_where(conn, derived, column, singles, at.api, at.local)
            if derived.name in self.report.tables:
                self.report.tables[derived.name].removed += count
        for embed, child in self._embeds(spec):
            table = self.target.table(child.name)
            child_reasons: dict[Key, str] = {}
            for chunk in chunks(list(singles)):
                for row in conn.execute(
                    sa.select(*(table.c[k] for k in child.key), table.c[embed.key]).where(table.c[embed.key].in_(chunk)).where(table.c[REMOVED_AT].is_(None))
                ):
                    child_reasons[tuple(row[: len(child.key)])] = singles[row[-1]]
            self.cascade_removed(conn, child, child_reasons, at)

    # -- reading a table ------------------------------------------------------------------------------

    def unit(self, spec: Table) -> None:
        started = time.monotonic()
        includes = frozenset(c.include for c in spec.columns if c.include)
        reader = self._reader(spec.name)
        try:
            if self._incremental(spec):
                self._sync_incremental(spec, reader, includes)
            else:
                self._sync_whole(spec, reader, includes)
        finally:
            reader.close()
            entry = self.report.tables[spec.name]
            entry.requests += reader.requests
            entry.rereads += reader.rereads
            entry.seconds += time.monotonic() - started

    def _reader(self, name: str) -> ApiReader:
        settings = self.r.connection.settings
        progress = self.r.progress
        outer = self.r.observer

        def observe(record: RequestRecord) -> None:
            if outer is not None:
                outer(record)
            if progress is not None:
                progress(name, 0, 1)

        return ApiReader(
            self.r.connection.client, self.r.profile.pagination, settings["PageSize"], settings["MaxConcurrency"], observe, self.r.clock
        )

    def _incremental(self, spec: Table) -> bool:
        endpoint = spec.list
        return bool(
            endpoint is not None
            and endpoint.paginated
            and endpoint.order is not None
            and endpoint.order[1]
            and spec.get is not None
            and spec.name in self.r.settled
            and len(spec.key) == 1
        )

    def _scan(self, spec: Table, reader: ApiReader, includes: frozenset[str], **options: Any) -> Scan:
        assert spec.list is not None
        order = None
        if spec.list.order is not None and spec.list.order[1]:
            created = spec.column(spec.list.order[0])
            order = created.value
        return reader.scan(spec.list, includes, lambda o: spec_key(spec, o), order, **options)

    def _write_page(self, spec: Table, page: Page, includes: frozenset[str]) -> None:
        """Write one page in its own transaction; if the replica database refuses it, row by row, so
        that one row it cannot take never costs the others (those are reported at the table's end)."""
        if not page.objects:
            return
        unknown = self._unknown(spec, includes)
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
        if self.r.progress is not None:
            self.r.progress(spec.name, len(page.objects), 0)

    def _check_rejected(self, spec: Table) -> None:
        """A table whose rows the database refused is not synced: say so (its bookkeeping stays as it was)."""
        rejected = self.rejected.get(spec.name)
        if rejected:
            keys = ", ".join(str(k[0] if len(k) == 1 else k) for k, _ in rejected[:5])
            raise exc.DataError(
                f"The replica {self.target.shown} refused {len(rejected)} row(s) of {spec.name} (key {keys}"
                f"{', ...' if len(rejected) > 5 else ''}); the other rows are written. First error: {rejected[0][1]}"
            )

    def _check_account(self, spec: Table, objects: Sequence[Obj]) -> None:
        """A replica holds one account: refuse to mix another one in."""
        if spec.name != self.r.account_table or len(objects) != 1:
            return
        account = str(spec.key_of(objects[0])[0])
        with self.target.write("checking the account") as conn:
            stored = self.target.meta(conn, "account")
            if stored is None:
                self.target.set_meta(conn, "account", account)
            elif stored != account:
                raise exc.ProgrammingError(
                    f"The replica {self.target.shown} holds the data of account {stored}; this API key belongs to account "
                    f"{account}. Sync each account into its own database."
                )

    def _sync_whole(self, spec: Table, reader: ApiReader, includes: frozenset[str]) -> None:
        """Small tables: scan the list whole, mark the rows it does not list gone."""
        assert spec.list is not None
        scan = self._scan(spec, reader, includes)
        pages = list(scan)
        objects = [o for p in pages if p.accepted for o in p.objects]
        self._check_account(spec, objects)
        for page in pages:
            self._write_page(spec, page, includes)
        self._check_rejected(spec)
        assert scan.started is not None and scan.ended is not None
        with self.target.write(f"recording the sync of {spec.name}") as conn:
            if spec.key:
                gone = [k for k, synced in self._live(conn, spec) if k not in self.seen.get(spec.name, set()) and _before(synced, scan.started.local)]
                self.cascade_removed(conn, spec, self.reasons(conn, spec, gone, scan.ended), scan.ended)
            self.target.save_state(conn, spec.name, None, dt.datetime.now(dt.timezone.utc), True)

    def _sync_incremental(self, spec: Table, reader: ApiReader, includes: frozenset[str]) -> None:
        assert spec.list is not None and spec.list.order is not None and spec.get is not None
        created = spec.column(spec.list.order[0])
        with self.target.read(f"reading the state of {spec.name}") as conn:
            state = self.target.state(conn, spec.name)
        watermark = None if self.full else state["watermark"]
        order = _OrderCheck()

        def wanted(page: Page) -> bool:
            if watermark is None or order.broken:
                return True
            oldest = created.value(page.objects[-1]) if page.objects else None
            return oldest is None or oldest >= watermark

        last: Page | None = None
        table = self.target.table(spec.name)
        with self.target.read(f"counting {spec.name}") as conn:
            live_count = conn.execute(sa.select(sa.func.count()).select_from(table).where(table.c[REMOVED_AT].is_(None))).scalar() or 0
        scan = self._scan(spec, reader, includes, wanted=wanted, expected=live_count if watermark is None else None)
        for page in scan:
            order.check([created.value(o) for o in page.objects])
            self._write_page(spec, page, includes)
            if page.accepted:
                last = page if page.objects else last
        complete = scan.complete
        newest = order.newest
        seen = self.seen.setdefault(spec.name, set())
        settled = spec.column(self.r.settled[spec.name])

        # 2. rows not settled yet, not seen above: read them by key.
        covered = self._covered_by_parent(spec)
        with self.target.read(f"reading {spec.name}") as conn:
            open_rows = conn.execute(
                sa.select(*(table.c[k] for k in spec.key), *(table.c[c] for c in covered))
                .where(table.c[settled.name].is_(None))
                .where(table.c[REMOVED_AT].is_(None))
            ).all()
        todo = [r[0] for r in open_rows if (r[0],) not in seen and not any(v is not None for v in r[1:])]
        if todo and spec.name in self.r.open:
            # A list of what is still open (e.g. status waiting, processing) answers most of them at once;
            # it need not be complete: what it misses is read by key below.
            column, values = self.r.open[spec.name]
            parameter = spec.column(column).filter or column
            for value in values:
                for page in reader.pages(spec.list, includes, filters={parameter: value}):
                    self._write_page(spec, page, includes)
            todo = [key for key in todo if (key,) not in seen]
        gone = self._read_by_key(spec, reader, todo, includes)

        # 3. what the API no longer has.
        gone.update(self._gone(spec, reader, includes, order, seen, set(gone), scan if complete else None, last))
        self._check_rejected(spec)
        with self.target.write(f"recording the sync of {spec.name}") as conn:
            for at, keys in _by_time(gone).items():
                self.cascade_removed(conn, spec, self.reasons(conn, spec, keys, at), at)
            self.target.save_state(conn, spec.name, newest, dt.datetime.now(dt.timezone.utc), complete)

    def _gone(
        self,
        spec: Table,
        reader: ApiReader,
        includes: frozenset[str],
        order: _OrderCheck,
        seen: set[Key],
        known: set[Key],
        complete: Scan | None,
        last_listed: Page | None,
    ) -> dict[Key, Moment]:
        """The live rows the API no longer has, with when that was found (``complete``: the head scanned
        the whole list)."""
        assert spec.list is not None and spec.list.order is not None
        created = spec.column(spec.list.order[0])
        table = self.target.table(spec.name)
        if complete is not None:
            return self._unlisted(spec, complete, seen, known)
        tail_started = self.r.clock.moment()
        last, total = self._tail(spec, reader, includes, order)
        unseen = self._unseen(spec, seen, known, tail_started.local)
        if last is None:
            now = self.r.clock.moment()
            return {k: now for k, _ in unseen}  # the API's list is empty: nothing is left
        if order.broken:
            return {}  # nothing can be inferred from a list out of order; the next sync reads it whole
        # Newest first: whatever is older than the oldest object the API lists is gone.
        oldest = created.value(last.objects[-1])
        gone = {k: last.observed for k, c in unseen if c is not None and oldest is not None and c < oldest}
        with self.target.read(f"counting {spec.name}") as conn:
            live = conn.execute(sa.select(sa.func.count()).select_from(table).where(table.c[REMOVED_AT].is_(None))).scalar() or 0
        if live - len(known) - len(gone) > total:
            # More live rows than the API has, and not at the end of the list: deleted in the middle
            # (by hand, or ended while older jobs still run). Scan the list whole to find them.
            scan = self._scan(spec, reader, includes, expected=total)
            for page in scan:
                self._write_page(spec, page, includes)
            gone.update(self._unlisted(spec, scan, seen, known | set(gone)))
        return gone

    def _unlisted(self, spec: Table, scan: Scan, seen: set[Key], known: set[Key]) -> dict[Key, Moment]:
        """Live rows a complete scan did not list: gone (rows never come back), unless something showed
        them after the scan began (a webhook's write during the scan); found gone when it ended."""
        assert scan.complete and scan.started is not None and scan.ended is not None
        return {k: scan.ended for k, _ in self._unseen(spec, seen, known, scan.started.local)}

    def _live(self, conn: sa.Connection, spec: Table) -> list[tuple[Key, dt.datetime | None]]:
        table = self.target.table(spec.name)
        statement = sa.select(*(table.c[k] for k in spec.key), table.c[SYNCED_AT]).where(table.c[REMOVED_AT].is_(None))
        return [(tuple(r[:-1]), as_utc(r[-1])) for r in conn.execute(statement)]

    def _unseen(self, spec: Table, seen: set[Key], known: set[Key], before: dt.datetime) -> list[tuple[Key, Any]]:
        """Live rows (key, created) this run has not seen, does not know to be gone, last shown before ``before``."""
        assert spec.list is not None and spec.list.order is not None
        created = spec.column(spec.list.order[0])
        table = self.target.table(spec.name)
        with self.target.read(f"reading {spec.name}") as conn:
            live = conn.execute(
                sa.select(table.c[spec.key[0]], table.c[created.name], table.c[SYNCED_AT]).where(table.c[REMOVED_AT].is_(None))
            ).all()
        return [
            ((r[0],), self.target.from_target(created.type, r[1]))
            for r in live
            if (r[0],) not in seen and (r[0],) not in known and _before(as_utc(r[2]), before)
        ]

    def _read_by_key(self, spec: Table, reader: ApiReader, keys: Sequence[Any], includes: frozenset[str]) -> dict[Key, Moment]:
        """Read ``keys`` one by one (concurrently) and write them; returns the keys the API no longer has,
        with when it said so."""
        assert spec.get is not None
        gone: dict[Key, Moment] = {}
        batch: list[Obj] = []
        when: Moment | None = None
        for key, obj, observed in reader.get_many(spec.get, keys, includes):
            if obj is None:
                gone[(key,)] = observed
            else:
                batch.append(obj)
                when = observed if when is None or observed.local < when.local else when
                if len(batch) >= 100:
                    self._write_page(spec, Page(0, batch, False, when), includes)
                    batch, when = [], None
        if batch and when is not None:
            self._write_page(spec, Page(0, batch, False, when), includes)
        return gone

    def _covered_by_parent(self, spec: Table) -> list[str]:
        """Columns that name a parent read in this run: such rows are refreshed with their parent."""
        out = []
        for name in self.written:
            parent = self.r.specs[name]
            for embed in parent.embeds:
                if embed.table == spec.name and parent.name in self.written and self._incremental(parent):
                    out.append(embed.key)
        return out

    def _tail(self, spec: Table, reader: ApiReader, includes: frozenset[str], order: _OrderCheck) -> tuple[Page | None, int]:
        """The API's last non-empty page of ``spec``'s list (None if the list is empty), and how many rows the list has.

        Probed where the replica's count of live rows puts it, then searched
        backwards (bisection) if the API has fewer, read forward if it has more.
        """
        assert spec.list is not None and spec.list.order is not None
        table = self.target.table(spec.name)
        with self.target.read(f"counting {spec.name}") as conn:
            live = conn.execute(sa.select(sa.func.count()).select_from(table).where(table.c[REMOVED_AT].is_(None))).scalar() or 0
        created = spec.column(spec.list.order[0])
        probe = max(1, math.ceil(live / reader.size))
        page = reader.fetch_page(spec.list, includes, probe)
        if not page.objects and probe > 1:
            found: Page | None = None
            low, high = 1, probe - 1
            while low <= high:
                middle = (low + high) // 2
                candidate = reader.fetch_page(spec.list, includes, middle)
                if candidate.objects:
                    found = candidate
                    if not candidate.more:
                        break
                    low = middle + 1
                else:
                    high = middle - 1
            page = found if found is not None else page
        last = page if page.objects else None
        while page.more:
            page = reader.fetch_page(spec.list, includes, page.number + 1)
            if page.objects:
                order.check([created.value(o) for o in page.objects], fresh=True)
                self._write_page(spec, page, includes)
                last = page
        if last is None:
            return None, 0
        order.check([created.value(o) for o in last.objects], fresh=True)
        self._write_page(spec, last, includes)
        return last, (last.number - 1) * reader.size + len(last.objects)

    def refresh_parents(self) -> None:
        """Parents of children first seen on their own: a new task in an ended job re-opened it."""
        for name, keys in self.new_children.items():
            spec = self.r.specs[name]
            todo = [k for k in keys if (k,) not in self.seen.get(name, set())]
            if not todo or spec.get is None:
                continue
            includes = frozenset(c.include for c in spec.columns if c.include)
            reader = self._reader(name)
            started = time.monotonic()
            try:
                self._read_by_key(spec, reader, todo, includes)  # (a parent gone meanwhile is found by the next sync)
            finally:
                reader.close()
                entry = self.report.tables[name]
                entry.requests += reader.requests
                entry.seconds += time.monotonic() - started
            self._check_rejected(spec)


def spec_key(spec: Table, obj: Obj) -> Key:
    return tuple(c.value(obj) for c in spec.columns if c.primary_key)


def _before(synced: dt.datetime | None, moment: dt.datetime) -> bool:
    """Whether a row last shown at ``synced`` was shown before ``moment`` (rows without a time were)."""
    return synced is None or synced < moment


def _by_time(gone: Mapping[Key, Moment]) -> dict[Moment, list[Key]]:
    out: dict[Moment, list[Key]] = {}
    for key, at in gone.items():
        out.setdefault(at, []).append(key)
    return out


def _stored_time(target: Target, sql_type: str, value: Any) -> dt.datetime | None:
    """A stored timestamp (our UTC text on SQLite, a datetime elsewhere) as an aware datetime; None if unreadable."""
    try:
        return as_utc(value)
    except (ValueError, TypeError, OverflowError):
        return None


class _OrderCheck:
    """Checks that a list comes newest first, page after page, as the sync assumes.

    A scan's windows overlap, so each page is checked on its own (``fresh``);
    the newest value seen is the watermark of the next sync.
    """

    def __init__(self) -> None:
        self.broken = False
        self.newest: str | None = None
        self._previous: Any = None

    def check(self, values: Sequence[Any], fresh: bool = True) -> None:
        if fresh:
            self._previous = None
        for value in values:
            if value is None:
                continue
            if self.newest is None or value > self.newest:
                self.newest = value
            if self._previous is not None and value > self._previous:
                self.broken = True
            self._previous = value
