"""The replica's tables, made from the profile's table specs (never written out twice).

One table per API table, with the same name, the same columns and the same
key (a primary key; a composite key is a unique index, as its parts may be
NULL), plus bookkeeping columns:

- ``_synced_at``: when the request that last showed the row (or found it
  gone) went out, on this machine's clock; a state observed earlier never
  replaces the one the row holds.
- ``_removed_at``: when the row was first found gone from the API, on the
  API's clock (its ``Date`` headers), so that it compares with ``ended_at``;
  NULL while it is live.
- ``_removed_reason``: why it went, where that can be known: ``expired``
  (gone once the API's retention after its end had run out), ``deleted``
  (gone before: someone deleted it), ``replaced`` (a row cut from its parent,
  such as a task's file, that the parent no longer lists). NULL while live,
  and for rows found gone before schema version 2.
- ``_exact``: NULL, or the exact values of the columns this database cannot
  hold exactly (a NUL character or a lone surrogate in text on PostgreSQL,
  an integer beyond 64 bits, a timestamp PostgreSQL cannot represent): a
  JSON object (ASCII, with ``\\u`` escapes) of column name → the value a live query
  gives. The column itself then holds the closest value it can (U+0000 and
  lone surrogates replaced by U+FFFD) or NULL. Reading the cache puts the
  exact values back.

Indexes cover the columns the API can filter on and ``created_at``; on
PostgreSQL, text columns get hash indexes (equality is what the cache asks,
and a B-tree refuses a row whose text is longer than about 2,700 bytes).

Column types follow the target:

- SQLite: the driver's own declared types (``TEXT``, ``INTEGER``, ``REAL``,
  ``BOOLEAN``, ``TIMESTAMP``, ``JSON``) holding exactly the values a live
  query returns: timestamps as UTC text ``YYYY-MM-DD HH:MM:SS[.ffffff]``,
  JSON as compact text. A query over the cache then compares, sorts and
  groups exactly as the same query over the API.
- PostgreSQL: native types: ``timestamptz``, ``jsonb``, ``boolean``,
  ``bigint``, ``double precision``, ``text``.
- Any other SQLAlchemy database: SQLAlchemy's generic types (``DateTime``
  with time zone, ``JSON``, ...).

Two bookkeeping tables: ``_apidriver_replica`` (what the database holds:
schema version, profile, API root, account) and ``_apidriver_sync`` (per
table: the newest ``created_at`` a complete sync saw, and when it ended).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import TypeEngine, UserDefinedType

from ..engine.schema import Table
from ..values import BOOLEAN, INTEGER, JSON, REAL, TEXT, TIMESTAMP

SCHEMA_VERSION = 2  # 2: _removed_reason, _exact; _removed_at on the API's clock; hash indexes on PostgreSQL text
SYNCED_AT = "_synced_at"
REMOVED_AT = "_removed_at"
REMOVED_REASON = "_removed_reason"
EXACT = "_exact"
BOOKKEEPING = (SYNCED_AT, REMOVED_AT, REMOVED_REASON, EXACT)
EXPIRED, DELETED, REPLACED = "expired", "deleted", "replaced"
META_TABLE = "_apidriver_replica"
STATE_TABLE = "_apidriver_sync"

# What a target database is, for the choice of column types and value conversions.
SQLITE = "sqlite"
POSTGRESQL = "postgresql"
GENERIC = "generic"


class Declared(UserDefinedType[Any]):
    """A SQLite column declared with the driver's own type name; values pass through unchanged."""

    cache_ok = True

    def __init__(self, name: str) -> None:
        self.name = name

    def get_col_spec(self, **kw: Any) -> str:
        return self.name


def column_type(sql_type: str, kind: str, indexed: bool = False) -> TypeEngine[Any]:
    """The replica column type of a column declared ``sql_type`` on a target of ``kind``."""
    if kind == SQLITE:
        return Declared(sql_type)
    if sql_type == TIMESTAMP:
        return sa.DateTime(timezone=True)
    if sql_type == JSON:
        return postgresql.JSONB() if kind == POSTGRESQL else sa.JSON()
    if sql_type == BOOLEAN:
        return sa.Boolean()
    if sql_type == INTEGER:
        return sa.BigInteger()
    if sql_type == REAL:
        return sa.Double()
    assert sql_type == TEXT, sql_type
    # Keys and indexed text need a length on databases such as MySQL; PostgreSQL and SQLite do not care.
    return sa.String(255) if indexed and kind == GENERIC else sa.Text()


def replica_specs(profile_tables: Iterable[Table]) -> list[Table]:
    """The tables a replica holds: every profile table (``sys_*`` tables are not the API's)."""
    return [t for t in profile_tables if not t.name.lower().startswith("sys_")]


def indexed_columns(spec: Table) -> list[str]:
    """Columns the replica indexes: API filters (also of the parent, for derived tables) and created_at."""
    names = [c.name for c in spec.columns if c.filter]
    if spec.derived is not None:
        names += list(spec.derived.columns)
    names += [c.name for c in spec.columns if c.name == "created_at"]
    key = list(spec.key)
    out: list[str] = []
    for name in names:
        if name not in out and [name] != key[:1]:  # the primary key's first column is indexed already
            out.append(name)
    return out


def replica_metadata(specs: Iterable[Table], kind: str) -> sa.MetaData:
    """The replica's tables (and the bookkeeping tables) for a target of ``kind``."""
    metadata = sa.MetaData()
    timestamp = column_type(TIMESTAMP, kind)
    for spec in specs:
        indexed = set(indexed_columns(spec))
        single = len(spec.key) == 1
        columns: list[Any] = [
            sa.Column(c.name, column_type(c.type, kind, c.primary_key or c.name in indexed), primary_key=c.primary_key and single)
            for c in spec.columns
        ]
        columns += [
            sa.Column(SYNCED_AT, column_type(TIMESTAMP, kind), nullable=False),
            sa.Column(REMOVED_AT, column_type(TIMESTAMP, kind), nullable=True),
            sa.Column(REMOVED_REASON, column_type(TEXT, kind), nullable=True),
            sa.Column(EXACT, column_type(TEXT, kind), nullable=True),
        ]
        table = sa.Table(spec.name, metadata, *columns, comment=spec.description)
        if not single:
            # A composite key may have empty parts (catalogue entries without an output format),
            # which a primary key cannot hold: a unique index (NULLs equal on PostgreSQL) instead.
            sa.Index(f"pk_{spec.name}".lower(), *(table.c[k] for k in spec.key), unique=True, postgresql_nulls_not_distinct=True)
        for name in indexed_columns(spec):
            if kind == POSTGRESQL and spec.column(name).type == TEXT:
                sa.Index(hash_index_name(spec.name, name), table.c[name], postgresql_using="hash")
            else:
                sa.Index(index_name(spec.name, name), table.c[name])
    sa.Table(
        META_TABLE,
        metadata,
        sa.Column("name", column_type(TEXT, kind, True), primary_key=True),
        sa.Column("value", column_type(TEXT, kind)),
        comment="What this replica holds: schema version, profile, API root and account.",
    )
    sa.Table(
        STATE_TABLE,
        metadata,
        sa.Column("table_name", column_type(TEXT, kind, True), primary_key=True),
        sa.Column("watermark", column_type(TEXT, kind)),
        sa.Column("synced_at", timestamp),
        sa.Column("full_at", timestamp),
        comment="Per table: the newest created_at a complete sync saw (UTC text) and when syncs ended.",
    )
    return metadata


def index_name(table: str, column: str) -> str:
    return f"ix_{table}_{column}".lower()


def hash_index_name(table: str, column: str) -> str:
    """A hash index (PostgreSQL text); it replaces the B-tree ``index_name`` of schema version 1."""
    return f"hx_{table}_{column}".lower()
