"""One sync: bring the replica's tables up to date with the API, reading only what can have changed.

A table whose list comes newest first (``Endpoint.order``), that can be read
by key and whose rows settle (``profile.extras["replica"]["settled"]``: once
``ended_at`` is set the API changes a job no more) is synced incrementally:

1. **head**: list pages, newest first, until a page reaches the newest
   ``created_at`` the last complete sync saw (the watermark); on the first
   sync, every page. Embedded children (a job's tasks) and derived rows
   (task files, dependencies) are written with their parent.
2. **refresh**: rows not yet settled and not seen in the head are listed by
   the filter that finds open ones (``extras["replica"]["open"]``: status
   waiting, then processing), and those still missing are read by key (a
   404 marks them gone, with their children).
3. **tail**: the last page of the list (found from the replica's count of
   live rows) says which is the oldest object the API still has; live rows
   older than it are gone. Rows the API has and the replica lacks turn up
   there and are inserted.

Other tables (webhooks, the account, the catalogue) are read whole: rows
not listed are marked gone. The list order is checked on every page read;
if the API ever breaks it, that sync reads the whole list instead.

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
from ..client import RequestRecord
from ..engine.schema import Embed, Table
from .reader import ApiReader, Obj, Page
from .schema import REMOVED_AT
from .target import Target
from .writer import Counts, Key, ReplicaWriter

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


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Replicator:
    """Syncs one API connection's tables into one replica database."""

    def __init__(
        self,
        connection: Connection,
        target: Target,
        observer: Callable[[RequestRecord], None] | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.connection = connection
        self.profile = connection.profile
        self.target = target
        self.writer = ReplicaWriter(target)
        self.observer = observer
        self.progress = progress
        self.specs = {t.name: t for t in replica_specs(self.profile.tables)}
        hints: Mapping[str, Any] = self.profile.extras.get("replica", {})
        self.settled: Mapping[str, str] = hints.get("settled", {})
        self.open: Mapping[str, tuple[str, Sequence[str]]] = hints.get("open", {})
        self.account_table: str | None = hints.get("account")
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

    def write_objects(self, table: str, objects: Sequence[Obj], written: set[str] | None = None) -> dict[str, Counts]:
        """Write objects that arrived without a request (webhook payloads): the rows, children, derived rows."""
        self.prepare()
        spec = self.specs[table]
        run = _Run(self, set(written) if written is not None else set(self.resolve(None)), SyncReport(self.target.shown), False)
        with self.target.write("writing a webhook's objects") as conn:
            counts = run.write(conn, spec, objects, frozenset(), _now())
        return counts


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

    def write(
        self, conn: sa.Connection, spec: Table, objects: Sequence[Obj], unknown: frozenset[str], now: dt.datetime
    ) -> dict[str, Counts]:
        """Write ``objects`` of ``spec`` with what they embed and what is derived from them."""
        out: dict[str, Counts] = {}

        def note(table: str, counts: Counts) -> None:
            out.setdefault(table, Counts()).add(counts)
            if table in self.report.tables:
                self.report.tables[table].add(counts)

        if spec.name in self.written:
            rows = self.writer.rows_of(spec, objects)
            counts, inserted = self.writer.upsert(conn, spec, rows, now, unknown)
            note(spec.name, counts)
            self.seen.setdefault(spec.name, set()).update(self.writer.key_of(spec, r) for r in rows)
            settled = self.r.settled.get(spec.name)
            if settled is not None:
                position = spec.index(settled)
                self.settled_seen.setdefault(spec.name, set()).update(self.writer.key_of(spec, r) for r in rows if r[position] is not None)
            for derived, column in self._derived(spec):
                parents = [self.writer.key_of(spec, r)[0] for r in rows]
                cut = [row for obj in objects for row in derived.derived.rows(obj)]  # type: ignore[union-attr]
                note(derived.name, self.writer.replace_children(conn, derived, column, parents, self.writer.rows_of(derived, cut), now))
            self._note_new_children(spec, rows, inserted)
        for embed, child in self._embeds(spec):
            done = self.settled_seen.get(child.name, set())
            children = [c for obj in objects for c in (obj.get(embed.field) or []) if isinstance(c, dict) and spec_key(child, c) not in done]
            if children:
                for table, counts in self.write(conn, child, children, self._unknown(child, frozenset()), now).items():
                    out.setdefault(table, Counts()).add(counts)
        return out

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

    def cascade_removed(self, conn: sa.Connection, spec: Table, keys: Sequence[Key], now: dt.datetime) -> None:
        """Mark ``keys`` of ``spec`` gone, and what came with them: embedded children, derived rows."""
        if not keys:
            return
        removed = self.writer.mark_removed(conn, spec, keys, now)
        if spec.name in self.report.tables:
            self.report.tables[spec.name].removed += removed
        singles = [k[0] for k in keys] if len(spec.key) == 1 else []
        if not singles:
            return
        for derived, column in self._derived(spec):
            count = self.writer.mark_removed_where(conn, derived, column, singles, now)
            if derived.name in self.report.tables:
                self.report.tables[derived.name].removed += count
        for embed, child in self._embeds(spec):
            table = self.target.table(child.name)
            child_keys: list[Key] = []
            for start in range(0, len(singles), 400):
                chunk = singles[start : start + 400]
                child_keys += self.writer.live_keys(conn, child, table.c[embed.key].in_(chunk))
            self.cascade_removed(conn, child, child_keys, now)

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

        return ApiReader(self.r.connection.client, self.r.profile.pagination, settings["PageSize"], settings["MaxConcurrency"], observe)

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

    def _write_page(self, spec: Table, page: Page, includes: frozenset[str]) -> None:
        if not page.objects:
            return
        with self.target.write(f"writing {spec.name}") as conn:
            self.write(conn, spec, page.objects, self._unknown(spec, includes), _now())
        if self.r.progress is not None:
            self.r.progress(spec.name, len(page.objects), 0)

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
        """Small tables: read every page, mark the rows not listed gone."""
        assert spec.list is not None
        listed: set[Key] = set()
        pages = list(reader.pages(spec.list, includes))
        objects = [o for p in pages for o in p.objects]
        self._check_account(spec, objects)
        for page in pages:
            self._write_page(spec, page, includes)
            listed.update(spec_key(spec, o) for o in page.objects)
        now = _now()
        with self.target.write(f"recording the sync of {spec.name}") as conn:
            if spec.key:
                gone = [k for k in self.writer.live_keys(conn, spec) if k not in listed]
                self.cascade_removed(conn, spec, gone, now)
            self.target.save_state(conn, spec.name, None, now, True)

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

        complete = False
        last: Page | None = None
        table = self.target.table(spec.name)
        with self.target.read(f"counting {spec.name}") as conn:
            live_count = conn.execute(sa.select(sa.func.count()).select_from(table).where(table.c[REMOVED_AT].is_(None))).scalar() or 0
        expected = math.ceil(live_count / reader.size) if live_count else None  # when the whole list is read
        for page in reader.pages(spec.list, includes, wanted=wanted, expected=expected):
            order.check([created.value(o) for o in page.objects])
            self._write_page(spec, page, includes)
            last = page if page.objects else last
            complete = not page.more
        newest = order.newest
        seen = self.seen.setdefault(spec.name, set())
        settled = spec.column(self.r.settled[spec.name])
        now = _now()

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
            # A list of what is still open (e.g. status waiting, processing) answers most of them at once.
            column, values = self.r.open[spec.name]
            parameter = spec.column(column).filter or column
            for value in values:
                for page in reader.pages(spec.list, includes, filters={parameter: value}):
                    self._write_page(spec, page, includes)
            todo = [key for key in todo if (key,) not in seen]
        gone = self._read_by_key(spec, reader, todo, includes)

        # 3. what the API no longer has.
        gone += self._gone(spec, reader, includes, order, seen, set(gone), complete, last)
        with self.target.write(f"recording the sync of {spec.name}") as conn:
            self.cascade_removed(conn, spec, gone, now)
            self.target.save_state(conn, spec.name, newest, now, complete)

    def _gone(
        self,
        spec: Table,
        reader: ApiReader,
        includes: frozenset[str],
        order: _OrderCheck,
        seen: set[Key],
        known: set[Key],
        complete: bool,
        last_listed: Page | None,
    ) -> list[Key]:
        """The live rows the API no longer has (``complete``: the head read the whole list, ending at ``last_listed``)."""
        assert spec.list is not None and spec.list.order is not None
        created = spec.column(spec.list.order[0])
        table = self.target.table(spec.name)
        if complete:
            unseen = self._unseen(spec, seen, known)
            if last_listed is None or last_listed.number <= 1:
                return [k for k, _ in unseen]  # empty, or one page: a snapshot of the whole list
            return self._confirm_gone(spec, reader, includes, [k for k, _ in unseen], last_listed.number)
        last, total = self._tail(spec, reader, includes, order)
        unseen = self._unseen(spec, seen, known)
        if last is None:
            return [k for k, _ in unseen]  # the API's list is empty: nothing is left
        if order.broken:
            return []  # nothing can be inferred from a list out of order; the next sync reads it whole
        # Newest first: whatever is older than the oldest object the API lists is gone.
        oldest = created.value(last.objects[-1])
        gone = [k for k, c in unseen if c is not None and oldest is not None and c < oldest]
        with self.target.read(f"counting {spec.name}") as conn:
            live = conn.execute(sa.select(sa.func.count()).select_from(table).where(table.c[REMOVED_AT].is_(None))).scalar() or 0
        if live - len(known) - len(gone) > total:
            # More live rows than the API has, and not at the end of the list: deleted in the middle
            # (by hand, or ended while older jobs still run). Read the list whole to find them.
            listed_keys: set[Key] = set()
            pages = 0
            for page in reader.pages(spec.list, includes, expected=math.ceil(total / reader.size) or None):
                self._write_page(spec, page, includes)
                listed_keys.update(spec_key(spec, o) for o in page.objects)
                pages = page.number
            doubtful = [k for k, _ in unseen if k not in listed_keys and k not in set(gone)]
            gone += self._confirm_gone(spec, reader, includes, doubtful, pages)
        return gone

    def _unseen(self, spec: Table, seen: set[Key], known: set[Key]) -> list[tuple[Key, Any]]:
        """Live rows (key, created) this run has not seen and does not know to be gone."""
        assert spec.list is not None and spec.list.order is not None
        created = spec.column(spec.list.order[0])
        table = self.target.table(spec.name)
        with self.target.read(f"reading {spec.name}") as conn:
            live = conn.execute(sa.select(table.c[spec.key[0]], table.c[created.name]).where(table.c[REMOVED_AT].is_(None))).all()
        return [((r[0],), self.target.from_target(created.type, r[1])) for r in live if (r[0],) not in seen and (r[0],) not in known]

    def _confirm_gone(self, spec: Table, reader: ApiReader, includes: frozenset[str], keys: Sequence[Key], pages: int) -> list[Key]:
        """Rows missing from a listing of several pages: gone, or slipped between pages as others were deleted.

        Asked about one by one when they are few; else the list is read once more, and what is
        missing from both readings is gone (what turns up is written).
        """
        if not keys:
            return []
        if len(keys) <= max(pages, 20):
            return self._read_by_key(spec, reader, [k[0] for k in keys], includes)
        assert spec.list is not None
        again: set[Key] = set()
        for page in reader.pages(spec.list, includes, expected=pages):
            self._write_page(spec, page, includes)
            again.update(spec_key(spec, o) for o in page.objects)
        return [k for k in keys if k not in again]

    def _read_by_key(self, spec: Table, reader: ApiReader, keys: Sequence[Any], includes: frozenset[str]) -> list[Key]:
        """Read ``keys`` one by one (concurrently) and write them; returns the keys the API no longer has."""
        assert spec.get is not None
        gone: list[Key] = []
        batch: list[Obj] = []
        for key, obj in reader.get_many(spec.get, keys, includes):
            if obj is None:
                gone.append((key,))
            else:
                batch.append(obj)
                if len(batch) >= 100:
                    self._write_page(spec, Page(0, batch, False), includes)
                    batch = []
        self._write_page(spec, Page(0, batch, False), includes)
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


def spec_key(spec: Table, obj: Obj) -> Key:
    return tuple(c.value(obj) for c in spec.columns if c.primary_key)


class _OrderCheck:
    """Checks that a list comes newest first, page after page, as the sync assumes."""

    def __init__(self) -> None:
        self.broken = False
        self.newest: str | None = None
        self._previous: Any = None

    def check(self, values: Sequence[Any], fresh: bool = False) -> None:
        if fresh:
            self._previous = None
        for value in values:
            if value is None:
                continue
            if self.newest is None or value > self.newest:
                if not fresh:
                    self.newest = value
            if self._previous is not None and value > self._previous:
                self.broken = True
            self._previous = value
