"""Which live rows of the replica the API no longer has, and when that was found.

Rows never come back on the API, so a row is gone when the API provably no
longer lists it, and no observation newer than the reading that missed it
exists (a webhook's write during the reading):

- after a **complete scan** (:class:`~.scan.Scan`), every live row it did
  not list, found gone when the scan ended;
- for a list newest first read only in part, the **tail**: the last page of
  the list (found from the replica's count of live rows, by bisection if the
  API has fewer) says which is the oldest object the API still has; live
  rows older than it are gone. If the replica still has more live rows than
  the API lists, rows went in the middle (deleted by hand, or ended while
  older ones still run): the list is scanned whole, and what a complete scan
  does not list is gone;
- nothing is inferred from a list out of order: the next sync reads it whole.

Pages read on the way are written like any other (:class:`~.recorder.Recorder`).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import sqlalchemy as sa

from ..engine.schema import Table
from .clock import ApiClock, Moment
from .conversions import as_utc
from .reader import ApiReader, Page
from .recorder import Recorder
from .scan import OrderCheck, Scan
from .schema import REMOVED_AT, SYNCED_AT
from .writer import Key


class Reconciler:
    """Finds the rows the API no longer has, for one run (reading through its recorder's target)."""

    def __init__(self, recorder: Recorder, clock: ApiClock) -> None:
        self.recorder = recorder
        self.target = recorder.target
        self.plan = recorder.plan
        self.clock = clock

    def live_count(self, spec: Table) -> int:
        """How many rows of ``spec`` the replica holds as live."""
        table = self.target.table(spec.name)
        with self.target.read(f"counting {spec.name}") as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(table).where(table.c[REMOVED_AT].is_(None))).scalar() or 0

    def not_listed(self, conn: sa.Connection, spec: Table, seen: set[Key], started: dt.datetime) -> list[Key]:
        """Live rows a complete scan that began at ``started`` did not list (``seen``), unless shown since."""
        table = self.target.table(spec.name)
        statement = sa.select(*(table.c[k] for k in spec.key), table.c[SYNCED_AT]).where(table.c[REMOVED_AT].is_(None))
        live = [(tuple(r[:-1]), as_utc(r[-1])) for r in conn.execute(statement)]
        return [k for k, synced in live if k not in seen and _before(synced, started)]

    def gone(
        self,
        spec: Table,
        reader: ApiReader,
        includes: frozenset[str],
        order: OrderCheck,
        seen: set[Key],
        known: set[Key],
        complete: Scan | None,
    ) -> dict[Key, Moment]:
        """The live rows the API no longer has, with when that was found (``complete``: the head scanned
        the whole list; ``known``: rows already found gone)."""
        assert spec.list is not None and spec.list.order is not None
        created = spec.column(spec.list.order[0])
        if complete is not None:
            return self._unlisted(spec, complete, seen, known)
        tail_started = self.clock.moment()
        last, total = self._tail(spec, reader, includes, order)
        unseen = self._unseen(spec, seen, known, tail_started.local)
        if last is None:
            now = self.clock.moment()
            return {k: now for k, _ in unseen}  # the API's list is empty: nothing is left
        if order.broken:
            return {}  # nothing can be inferred from a list out of order; the next sync reads it whole
        # Newest first: whatever is older than the oldest object the API lists is gone.
        oldest = created.value(last.objects[-1])
        gone = {k: last.observed for k, c in unseen if c is not None and oldest is not None and c < oldest}
        live = self.live_count(spec)
        if live - len(known) - len(gone) > total:
            # More live rows than the API has, and not at the end of the list: deleted in the middle
            # (by hand, or ended while older jobs still run). Scan the list whole to find them.
            scan = self.plan.scan(spec, reader, includes, expected=total)
            for page in scan:
                self.recorder.write_page(spec, page, includes)
            gone.update(self._unlisted(spec, scan, seen, known | set(gone)))
        return gone

    def _unlisted(self, spec: Table, scan: Scan, seen: set[Key], known: set[Key]) -> dict[Key, Moment]:
        """Live rows a complete scan did not list: gone (rows never come back), unless something showed
        them after the scan began (a webhook's write during the scan); found gone when it ended."""
        assert scan.complete and scan.started is not None and scan.ended is not None
        return {k: scan.ended for k, _ in self._unseen(spec, seen, known, scan.started.local)}

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

    def _tail(self, spec: Table, reader: ApiReader, includes: frozenset[str], order: OrderCheck) -> tuple[Page | None, int]:
        """The API's last non-empty page of ``spec``'s list (None if the list is empty), and how many rows the list has.

        Probed where the replica's count of live rows puts it, then searched
        backwards (bisection) if the API has fewer, read forward if it has more.
        """
        assert spec.list is not None and spec.list.order is not None
        live = self.live_count(spec)
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
                self.recorder.write_page(spec, page, includes)
                last = page
        if last is None:
            return None, 0
        order.check([created.value(o) for o in last.objects], fresh=True)
        self.recorder.write_page(spec, last, includes)
        return last, (last.number - 1) * reader.size + len(last.objects)


def _before(synced: dt.datetime | None, moment: dt.datetime) -> bool:
    """Whether a row last shown at ``synced`` was shown before ``moment`` (rows without a time were)."""
    return synced is None or synced < moment
