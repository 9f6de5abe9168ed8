"""System tables: the table reference, queryable with SQL.

``sys_tables``, ``sys_tablecolumns`` (types, descriptions and what pushes
down) and ``sys_foreignkeys`` (which SQLite cannot report for virtual tables
through ``PRAGMA foreign_key_list``; the SQLAlchemy dialect reads them here).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ..values import BOOLEAN, INTEGER, TEXT
from .schema import Column, Procedure, Table


def pushdown(table: Table, column: Column, tables: Mapping[str, Table]) -> str:
    """What a condition on ``column`` turns into, in words."""
    source, name = table, column.name
    if table.derived is not None:
        mapped = table.derived.columns.get(column.name)
        if mapped is None:
            return ""
        source, name = tables[table.derived.parent.lower()], mapped
    if source.get is not None and source.get_key.lower() == name.lower():
        how = f"GET {source.get.path.replace('{key}', '{' + name + '}')}, one request per value"
    elif source.list is not None and source.column(name).filter:
        how = f"{source.column(name).filter}=value on GET {source.list.path}, one request per value"
    else:
        return ""
    via = f" (via {source.name}.{name})" if source is not table else ""
    return f"=, IN: {how}{via}"


def system_tables(tables: Callable[[], Sequence[Table]], procedures: Callable[[], Sequence[Procedure]] = lambda: ()) -> list[Table]:
    def by_name() -> dict[str, Table]:
        return {t.name.lower(): t for t in tables()}

    def table_rows() -> Iterable[Mapping[str, Any]]:
        for t in tables():
            kind = "system" if t.static is not None else "derived" if t.derived is not None else "api"
            if t.derived is not None:
                source = f"rows of {t.derived.parent}"
            elif t.list is not None:
                source = f"GET {t.list.path}" + (f", GET {t.get.path}" if t.get is not None else "")
            else:
                source = ""
            writes = ", ".join(getattr(t.write, "operations", ()) or ()) if t.write is not None else ""
            yield {"name": t.name, "description": t.description, "kind": kind, "source": source, "writes": writes or None}

    def column_rows() -> Iterable[Mapping[str, Any]]:
        specs = by_name()
        for t in tables():
            for i, c in enumerate(t.columns):
                yield {
                    "table_name": t.name,
                    "column_name": c.name,
                    "ordinal": i,
                    "type": c.type,
                    "description": c.description,
                    "primary_key": int(c.primary_key),
                    "refers_to": c.references,
                    "pushdown": (pushdown(t, c, specs) or None) if t.static is None else None,
                    "needs_include": c.include,
                    "api_assigned": int(
                        t.write is not None and t.write.insert is not None and c.name not in t.write.insert.columns
                    ),
                }

    def procedure_rows() -> Iterable[Mapping[str, Any]]:
        for p in procedures():
            signature = ", ".join(a.name if a.required else f"[{a.name}]" for a in p.params)
            yield {
                "name": p.name,
                "description": p.description,
                "signature": f"{p.name}({signature})",
                "returns": ", ".join(c.name for c in p.columns),
                "writes": int(p.writes),
            }

    def parameter_rows() -> Iterable[Mapping[str, Any]]:
        for p in procedures():
            for i, a in enumerate(p.params):
                yield {
                    "procedure_name": p.name,
                    "name": a.name,
                    "ordinal": i,
                    "type": a.type,
                    "required": int(a.required),
                    "description": a.description,
                }

    def fk_rows() -> Iterable[Mapping[str, Any]]:
        for t in tables():
            for c in t.columns:
                if c.references:
                    ref_table, _, ref_col = c.references.partition(".")
                    yield {"table_name": t.name, "column_name": c.name, "referenced_table": ref_table, "referenced_column": ref_col}

    out = [
        Table(
            "sys_tables",
            "Every table: what it holds, where its rows come from, which writes it accepts.",
            (
                Column("name", TEXT, "Table name.", primary_key=True),
                Column("description", TEXT, "What the table holds."),
                Column("kind", TEXT, "api, derived (cut from another table's objects) or system."),
                Column("source", TEXT, "The API requests that fill it."),
                Column("writes", TEXT, "The SQL writes it accepts (INSERT, DELETE, ...), if any."),
            ),
            static=table_rows,
            estimated_rows=20,
        ),
        Table(
            "sys_tablecolumns",
            "Every column: type, description, key, reference, and what a condition on it pushes to the API.",
            (
                Column("table_name", TEXT, "Table name.", primary_key=True),
                Column("column_name", TEXT, "Column name.", primary_key=True),
                Column("ordinal", INTEGER, "Position in the table (0-based)."),
                Column("type", TEXT, "Declared SQL type: TEXT, INTEGER, REAL, BOOLEAN, TIMESTAMP or JSON."),
                Column("description", TEXT, "What the column holds."),
                Column("primary_key", BOOLEAN, "Part of the primary key."),
                Column("refers_to", TEXT, "Table.column this column refers to, if any."),
                Column("pushdown", TEXT, "Operators sent to the API and the request they become; NULL: filtered locally."),
                Column("needs_include", TEXT, "The include= value the API needs to send this column."),
                Column("api_assigned", BOOLEAN, "In a table that accepts INSERT: set by the API, not by you (ids, timestamps...)."),
            ),
            static=column_rows,
            estimated_rows=200,
        ),
        Table(
            "sys_foreignkeys",
            "Declared references between tables (SQLite cannot report them for virtual tables).",
            (
                Column("table_name", TEXT, "Referencing table.", primary_key=True),
                Column("column_name", TEXT, "Referencing column.", primary_key=True),
                Column("referenced_table", TEXT, "Referenced table."),
                Column("referenced_column", TEXT, "Referenced column."),
            ),
            static=fk_rows,
            estimated_rows=20,
        ),
        Table(
            "sys_procedures",
            "Actions callable with cursor.callproc(name, params) or as SELECT * FROM Name(args...).",
            (
                Column("name", TEXT, "Procedure name.", primary_key=True),
                Column("description", TEXT, "What it does."),
                Column("signature", TEXT, "Name(param, [optional param], ...)."),
                Column("returns", TEXT, "Columns of the rows it returns."),
                Column("writes", BOOLEAN, "Whether it changes data (refused when ReadOnly=true)."),
            ),
            static=procedure_rows,
            estimated_rows=10,
        ),
        Table(
            "sys_procedureparameters",
            "Parameters of each procedure, in call order.",
            (
                Column("procedure_name", TEXT, "Procedure name.", primary_key=True),
                Column("name", TEXT, "Parameter name.", primary_key=True),
                Column("ordinal", INTEGER, "Position (0-based)."),
                Column("type", TEXT, "SQL type: TEXT, INTEGER, BOOLEAN or JSON."),
                Column("required", BOOLEAN, "Whether it must be given."),
                Column("description", TEXT, "What it means."),
            ),
            static=parameter_rows,
            estimated_rows=30,
        ),
    ]
    return out
