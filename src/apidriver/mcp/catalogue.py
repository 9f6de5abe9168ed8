"""What the assistant reads about the tables: the list, one table's description, an example query.

The text is the generated table reference (:mod:`apidriver.reference`, the
same Markdown as ``docs/tables.md`` and ``apidriver describe --markdown``),
so the assistant, the documentation and the command line never disagree;
the structured parts are read from the same profile specs.
"""

from __future__ import annotations

from typing import Any

from ..cli.describe import all_tables, find, markdown, pushed_columns, signature
from ..engine.schema import Procedure, Table
from ..engine.system import pushdown
from ..profiles import Profile
from ..reference import markdown as reference_markdown

__all__ = ["describe", "example", "kind_of", "listing", "listing_text", "reference", "resource_names"]


def kind_of(table: Table) -> str:
    """``table`` (rows from the API), ``derived`` (cut from another table's rows) or ``system`` (apidriver's metadata)."""
    return "system" if table.static is not None else "derived" if table.derived is not None else "table"


def listing(profile: Profile) -> dict[str, Any]:
    """Every table and procedure with a one-line description (``list_tables``)."""
    tables = all_tables(profile)
    return {
        "tables": [
            {
                "name": t.name,
                "kind": kind_of(t),
                "description": t.description,
                "pushdown": pushed_columns(t, tables),
                "writes": list(t.write.operations) if t.write is not None else [],
            }
            for t in tables
        ],
        "procedures": [
            {"name": p.name, "signature": signature(p), "description": p.description, "writes": p.writes} for p in profile.procedures
        ],
    }


def listing_text(listed: dict[str, Any]) -> str:
    """The listing as short lines: what an assistant reads before choosing a table."""
    lines = ["Tables (SQLite dialect; describe_table NAME gives columns and what goes to the API):"]
    for t in listed["tables"]:
        extra = f" [filters sent to the API: {', '.join(t['pushdown'])}]" if t["pushdown"] else ""
        writes = f" [writes: {', '.join(t['writes'])}]" if t["writes"] else ""
        lines.append(f"- {t['name']} ({t['kind']}): {t['description']}{extra}{writes}")
    lines.append("Procedures (SELECT * FROM Name(args)):")
    for p in listed["procedures"]:
        lines.append(f"- {p['signature']}: {p['description']}{' [changes the account]' if p['writes'] else ''}")
    return "\n".join(lines)


def describe(profile: Profile, name: str) -> tuple[str, dict[str, Any]] | None:
    """One table's or procedure's reference section and its structured form, or None when there is no such name."""
    item = find(profile, name)
    if item is None:
        return None
    text = markdown(profile, item)
    query = example(profile, item)
    text += f"\nExample: `{query}`\n"
    if isinstance(item, Procedure):
        return text, {
            "name": item.name,
            "kind": "procedure",
            "description": item.description,
            "signature": signature(item),
            "writes": ["CALL"] if item.writes else [],
            "primary_key": [],
            "columns": [_column(c) for c in item.columns],
            "parameters": [{"name": a.name, "type": a.type, "required": a.required, "description": a.description} for a in item.params],
            "example": query,
        }
    tables = {t.name.lower(): t for t in all_tables(profile)}
    return text, {
        "name": item.name,
        "kind": kind_of(item),
        "description": item.description,
        "signature": None,
        "writes": list(item.write.operations) if item.write is not None else [],
        "primary_key": list(item.key),
        "columns": [_column(c, pushdown(item, c, tables) if item.static is None else "") for c in item.columns],
        "parameters": [],
        "example": query,
    }


def _column(column: Any, pushed: str = "") -> dict[str, Any]:
    return {
        "name": column.name,
        "type": column.type,
        "description": column.description,
        "references": column.references,
        "pushdown": pushed or None,
    }


def example(profile: Profile, item: Table | Procedure) -> str:
    """A query that shows how the table is meant to be read: its filters the API answers, its join, or its call."""
    if isinstance(item, Procedure):
        arguments = ", ".join("?" for a in item.params if a.required)
        return f"SELECT * FROM {item.name}({arguments})"
    tables = all_tables(profile)
    single_key = item.key[0] if len(item.key) == 1 else None
    pushed = [c for c in pushed_columns(item, tables) if c != single_key]
    shown = ", ".join(c.name for c in _plain(item)[:4])
    joined = next((c for c in item.columns if c.references and not c.references.startswith(f"{item.name}.")), None)
    if joined is not None and item.static is None:
        other, key = joined.references.split(".", 1)  # type: ignore[union-attr]
        other_table = next(t for t in tables if t.name.lower() == other.lower())
        label = next((c.name for c in other_table.columns if c.name in ("tag", "name", "operation", "status")), key)
        filters = [c for c in pushed if c != joined.name]
        where = f" WHERE x.{filters[0]} = ?" if filters else ""
        columns = ", ".join(f"x.{c.name}" for c in _plain(item)[:3])
        return f"SELECT {columns}, y.{label} FROM {item.name} x JOIN {other} y ON y.{key} = x.{joined.name}{where} LIMIT 20"
    if pushed:
        return f"SELECT {shown} FROM {item.name} WHERE {pushed[0]} = ? LIMIT 20"
    if single_key and item.get is not None:
        return f"SELECT {shown} FROM {item.name} WHERE {single_key} = ?"
    return f"SELECT {shown} FROM {item.name} LIMIT 20"


def _plain(table: Table) -> list[Any]:
    """The columns worth showing in an example: not secrets, not JSON documents."""
    return [c for c in table.columns if "secret" not in c.name and c.type != "JSON"] or list(table.columns)


def reference(profile: Profile) -> str:
    """The whole table reference (docs/tables.md): the rules of what is sent to the API, every table and procedure."""
    return reference_markdown(profile)


def resource_names(profile: Profile) -> list[tuple[str, str]]:
    """``(name, description)`` of every table and procedure, each a resource ``apidriver://tables/{name}``."""
    tables: list[Table | Procedure] = [*all_tables(profile), *profile.procedures]
    return [(t.name, t.description) for t in tables]
