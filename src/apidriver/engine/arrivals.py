"""What the API's answers brought: objects counted and indexed for the statement's store.

Every page or object that arrives goes through ``Arrivals.register``: its
objects (and the children they embed) count towards the statement's
``rows_read`` at once, and are indexed by key and by embedded child set
only when the store is next used (``StatementStore.defer``); a ``CacheTTL``
snapshot's page keeps its index, so it is made once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .schema import Table
from .statement import Obj, PageIndex, StatementContext


class Arrivals:
    """Registers what arrives for one connection's tables (``tables``: by lower-case name)."""

    def __init__(self, tables: Mapping[str, Table]) -> None:
        self.tables = tables
        # Per table: (field, child table, its name, the column the set is by) of each embedded list.
        self._embeds: dict[str, list[tuple[str, Table, str, str]]] = {}

    def register(
        self, ctx: StatementContext, table: Table, objs: list[Obj], includes: frozenset[str], memo: dict[Any, Any] | None = None
    ) -> None:
        """Remember fetched objects, and the complete child sets they embed (when the store is next used).

        ``memo``: where the page keeps what was made from it (a ``CacheTTL`` snapshot's page).
        The objects are counted at once (``rows_read``, for progress lines); indexing waits.
        """
        count = self.count_objects(table, objs)
        ctx.rows_read += count

        def index() -> PageIndex:
            if memo is None:
                return self.index(table, objs, includes)
            key = ("index", table.name, includes)
            made = memo.get(key)
            if made is None:
                made = memo[key] = self.index(table, objs, includes)
            return made

        ctx.store.defer(index, count)

    def count_objects(self, table: Table, objs: list[Obj]) -> int:
        """How many objects a page brought, with the child objects they embed."""
        count = len(objs)
        for embed in table.embeds:
            child = self.tables[embed.table.lower()]
            for obj in objs:
                children = obj.get(embed.field) if isinstance(obj, dict) else None
                if isinstance(children, list):
                    count += self.count_objects(child, children)
        return count

    def index(self, table: Table, objs: list[Obj], includes: frozenset[str]) -> PageIndex:
        """The objects of one page by key, and the child sets they embed (recursively)."""
        out = PageIndex(includes)
        self._add(out, table, objs, out.objects)
        return out

    def _add(self, out: PageIndex, table: Table, objs: list[Obj], into: dict[tuple[str, Any], Obj]) -> None:
        # A method, not a closure calling itself: such a closure is a reference cycle, and the
        # page it indexed would wait for the cyclic garbage collector instead of going with its statement.
        # Every object of every page passes here, so the common case (one text key) calls nothing.
        name = table.name
        embeds = self._embeds.get(name)
        if embeds is None:
            embeds = self._embeds[name] = [
                (e.field, child, child.name, e.key.lower()) for e in table.embeds for child in (self.tables[e.table.lower()],)
            ]
        keyed = bool(table.key)
        field = table.text_key
        sets = out.sets
        for obj in objs:
            if not isinstance(obj, dict):
                continue
            first: Any = None  # the key (its first part, for a composite key) the embedded sets go by
            if field is not None and ((value := obj.get(field)) is None or isinstance(value, str)):
                first = value
                into[(name, value)] = obj
            elif keyed:
                key = table.key_of(obj)
                first = key[0]
                into[(name, first if len(key) == 1 else key)] = obj
            for embed_field, child, child_name, column in embeds:
                children = obj.get(embed_field)
                if isinstance(children, list):
                    sets[(child_name, column, first)] = children
                    self._add(out, child, children, out.children)
