"""Declarative table specs: what a profile says about an API resource.

A profile describes each table once — columns with types and descriptions,
which request parameter each filterable column maps to, the list and
single-object endpoints, which child objects arrive embedded, and how derived
tables are cut from their parent's objects. The engine is generic over these
specs and knows nothing of any particular API.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ..values import COLUMN_TYPES, INTEGER, ISO8601, TEXT, TIMESTAMP, sql_converter

_MISSING = object()


@dataclass(frozen=True)
class Column:
    """One column: its SQL type, a one-line description, where its value comes from.

    ``filter`` names the request parameter that implements ``column = value``
    on the API; ``include`` names the ``include=`` value the API needs to send
    this field at all.
    """

    name: str
    type: str
    description: str
    path: str | None = None
    filter: str | None = None
    references: str | None = None
    primary_key: bool = False
    include: str | None = None
    compute: Callable[[Mapping[str, Any]], Any] | None = None

    def __post_init__(self) -> None:
        if self.type not in COLUMN_TYPES:
            raise ValueError(f"column {self.name}: unknown type {self.type!r}")
        object.__setattr__(self, "_parts", tuple((self.path or self.name).split(".")))
        object.__setattr__(self, "_convert", sql_converter(self.type))

    def raw(self, obj: Mapping[str, Any]) -> Any:
        """The API's JSON value of this column in ``obj`` (None when absent)."""
        if self.compute is not None:
            return self.compute(obj)
        parts: tuple[str, ...] = self._parts  # type: ignore[attr-defined]
        # Objects are decoded JSON: dicts (isinstance against dict is much cheaper than Mapping).
        if len(parts) == 1:
            return obj.get(parts[0]) if isinstance(obj, dict) else None
        value: Any = obj
        for part in parts:
            if not isinstance(value, dict):
                return None
            value = value.get(part, _MISSING)
            if value is _MISSING:
                return None
        return value

    def value(self, obj: Mapping[str, Any]) -> Any:
        """The SQLite value of this column in ``obj``."""
        convert: Callable[[Any], Any] = self._convert  # type: ignore[attr-defined]
        return convert(self.raw(obj))

    def values(self, objs: Sequence[Any], dicts: bool = False) -> list[Any]:
        """The SQLite values of this column in each of ``objs``, in one pass (a page at a time).

        ``dicts``: every object is a dict (decoded JSON), so the common case, one
        plain field, needs no call per object but the conversion (none for text).
        """
        parts: tuple[str, ...] = self._parts  # type: ignore[attr-defined]
        convert: Callable[[Any], Any] = self._convert  # type: ignore[attr-defined]
        if not dicts or self.compute is not None or len(parts) != 1:
            return [convert(self.raw(o)) for o in objs]
        name = parts[0]
        if self.type == TEXT:
            return [v if (v := o.get(name)) is None or type(v) is str else convert(v) for o in objs]
        if self.type == INTEGER:
            return [v if (v := o.get(name)) is None or type(v) is int else convert(v) for o in objs]
        return [None if (v := o.get(name)) is None else convert(v) for o in objs]


@dataclass(frozen=True)
class Endpoint:
    """A read endpoint.

    ``path`` may hold ``{key}`` for the single-object form. ``paginated``
    endpoints take page/size parameters; an answer whose ``data`` is one
    object rather than a list counts as a list of one. ``scope`` is what the
    key needs.
    ``order`` is the order lists are seen to come in when the API does not
    promise one: it is used only if the user says so (``TrustListOrder``).
    """

    path: str
    scope: str | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    paginated: bool = False
    order: tuple[str, bool] | None = None  # (column, descending) the list is observed to come in


@dataclass(frozen=True)
class Embed:
    """This table's objects carry, in ``field``, every ``table`` row whose ``key`` equals their id.

    ``include`` is the ``include=`` value that makes the API send them; it is
    asked for only when the statement also reads ``table`` (or a table
    derived from it), so plain scans stay small.
    """

    table: str
    field: str
    key: str
    include: str | None = None


@dataclass(frozen=True)
class Derived:
    """Rows cut from the objects of another table (``TaskFiles`` from ``Tasks``).

    ``columns`` maps this table's columns to the parent's, so constraints on
    them become constraints on the parent. ``rows`` turns one parent object
    into this table's row objects.
    """

    parent: str
    rows: Callable[[Mapping[str, Any]], list[dict[str, Any]]]
    columns: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Table:
    name: str
    description: str
    columns: tuple[Column, ...]
    list: Endpoint | None = None
    get: Endpoint | None = None
    get_key: str = "id"
    derived: Derived | None = None
    embeds: tuple[Embed, ...] = ()
    estimated_rows: int = 1000
    write: Writes | None = None
    static: Callable[[], Iterable[Mapping[str, Any]]] | None = None

    def __post_init__(self) -> None:
        names = [c.name.lower() for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"table {self.name}: duplicate column names")

    @cached_property
    def key(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.primary_key)

    @cached_property
    def _by_name(self) -> dict[str, tuple[int, Column]]:
        return {c.name.lower(): (i, c) for i, c in enumerate(self.columns)}

    @cached_property
    def _key_columns(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.primary_key)

    def column(self, name: str) -> Column:
        return self._by_name[name.lower()][1]

    def index(self, name: str) -> int:
        return self._by_name[name.lower()][0]

    @cached_property
    def text_key(self) -> str | None:
        """The field holding the key, when the key is one plain TEXT field (the common case): its
        value is the key as it is (text or None), with no conversion."""
        keys = self._key_columns
        if len(keys) == 1 and keys[0].type == "TEXT" and keys[0].compute is None and "." not in (keys[0].path or keys[0].name):
            return keys[0].path or keys[0].name
        return None

    def key_of(self, obj: Mapping[str, Any]) -> tuple[Any, ...]:
        field = self.text_key
        if field is not None:
            value = obj.get(field)
            if value is None or isinstance(value, str):
                return (value,)
        return tuple(c.value(obj) for c in self._key_columns)

    def create_sql(self, name: str = "x", key: bool = True, collate: bool = True) -> str:
        """The schema SQLite is told for this virtual table (``name``: for a real table of the same
        columns; ``key``: with its PRIMARY KEY, which a real table would enforce and index;
        ``collate``: timestamps with their ISO8601 collation)."""
        parts = []
        for c in self.columns:
            # Timestamps compare as instants with any ISO 8601 text (values.iso8601_collation).
            collation = f" COLLATE {ISO8601}" if c.type == TIMESTAMP and collate else ""
            parts.append(f'"{c.name}" {c.type}{collation}')
        if self.key and key:
            parts.append("PRIMARY KEY (" + ", ".join(f'"{k}"' for k in self.key) + ")")
        quoted = name if name == "x" else '"' + name.replace('"', '""') + '"'
        return f"CREATE TABLE {quoted}({', '.join(parts)})"


@dataclass(frozen=True)
class Pagination:
    """How a profile's list endpoints page: parameter names and default size."""

    page_param: str = "page"
    size_param: str = "per_page"
    default_size: int = 100
    max_size: int | None = None
    next_link: Callable[[Mapping[str, Any]], Any] | None = None


@dataclass(frozen=True)
class Insert:
    """How ``INSERT INTO table (...) VALUES (...)`` becomes a create request.

    ``columns`` may be set (others must be NULL); ``required`` must be.
    ``path`` and ``body`` get the row as Python values (JSON columns decoded);
    ``check`` may raise :class:`ProgrammingError` before anything is sent.
    """

    path: str | Callable[[Mapping[str, Any]], str]
    columns: tuple[str, ...]
    body: Callable[[Mapping[str, Any]], Any]
    required: tuple[str, ...] = ()
    scope: str | None = None
    check: Callable[[Mapping[str, Any]], None] | None = None


@dataclass(frozen=True)
class Delete:
    """``DELETE`` of a row: one request to ``path`` with ``{key}`` = its key."""

    path: str
    scope: str | None = None


@dataclass(frozen=True)
class Writes:
    """What the API lets SQL change in a table (UPDATE is never possible here)."""

    insert: Insert | None = None
    delete: Delete | None = None

    @property
    def operations(self) -> tuple[str, ...]:
        return tuple(op for op, spec in (("INSERT", self.insert), ("DELETE", self.delete)) if spec is not None)


@dataclass(frozen=True)
class Param:
    """A parameter of a procedure (a hidden column of its table-valued function)."""

    name: str
    type: str
    description: str
    required: bool = True
    default: Any = None


@dataclass(frozen=True)
class Procedure:
    """An action: callable with ``cursor.callproc`` or as ``SELECT * FROM Name(...)``.

    ``run`` gets a :class:`ProcedureContext`-like object and the arguments by
    name, and returns result rows (mappings keyed by ``columns`` names).
    ``writes`` procedures are refused in read-only mode.
    """

    name: str
    description: str
    params: tuple[Param, ...]
    columns: tuple[Column, ...]
    run: Callable[[Any, dict[str, Any]], list[Mapping[str, Any]]]
    writes: bool = True
