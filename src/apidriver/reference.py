"""The table reference, generated from the profile specs (docs/tables.md, ``apidriver tables``).

Run ``python -m apidriver.reference > docs/tables.md`` after changing a
profile; a test keeps the file in step with the code.
"""

from __future__ import annotations

from .engine.schema import Table
from .engine.system import pushdown, system_tables
from .profiles import Profile, load

RULES = """\
## What is sent to the API

- `column = value` and `column IN (...)` on a column whose *Push-down* cell is
  filled become request parameters (or one GET per id); several `IN` values
  mean one request per value, sent concurrently. Every other condition
  (`LIKE`, `<`, `>`, functions, `OR` across columns, ...) is evaluated by
  SQLite on the rows fetched.
- Values the API filters on are re-checked locally with SQL's own rules, so a
  looser API match (say, case-insensitive) never changes a result.
- `LIMIT` is sent as a smaller page size only when every condition of the
  query was sent to the API and there is no `ORDER BY`; `OFFSET` becomes a
  page number only for a plain scan. The API guarantees no order, so `ORDER BY`
  is done by SQLite (over every row), unless `TrustListOrder=true` vouches for
  the order lists are seen to come in (newest first): then
  `ORDER BY created_at DESC LIMIT n` on one list reads only the pages it needs.
- Lists are read page by page until a short page; pages after the first are
  fetched ahead, concurrently. A page that fails after retries fails the query.
- Within one statement nothing is fetched twice: a join of Jobs, Tasks and
  TaskFiles reads each job list once, and the tasks arrive inside the jobs
  (`include=tasks` is asked for only when the statement reads Tasks or a table
  derived from it).
"""


def _tables(profile: Profile) -> list[Table]:
    tables = list(profile.tables)
    return tables + system_tables(lambda: tables)


def describe_table(table: Table, tables: dict[str, Table]) -> str:
    """One table as a Markdown section."""
    lines = [f"## {table.name}", "", table.description, ""]
    if table.derived is not None:
        lines.append(f"Rows: cut from the objects of **{table.derived.parent}**.")
    elif table.list is not None:
        get = table.get.path.replace("{key}", "{" + table.get_key + "}") if table.get else ""
        source = f"`GET {table.list.path}`" + (f", `GET {get}`" if get else "")
        scope = f" (scope `{table.list.scope}`)" if table.list.scope else " (no API key scope needed)"
        lines.append(f"Rows: {source}{scope}.")
    elif table.static is not None:
        lines.append("Rows: the driver's own metadata.")
    if table.write is not None and table.write.insert is not None:
        ins = table.write.insert
        path = ins.path if isinstance(ins.path, str) else "/{operation}"
        required = f" (required: {', '.join(ins.required)})" if ins.required else ""
        lines.append(f"INSERT: sets {', '.join(ins.columns)}{required}; one `POST {path}` per row.")
    if table.write is not None and table.write.delete is not None:
        lines.append(f"DELETE: one `DELETE {table.write.delete.path.replace('{key}', '{' + table.key[0] + '}')}` per row.")
    if table.static is None and table.derived is None:
        lines.append("UPDATE: not possible (the API cannot change these objects)." if table.write else "Read-only.")
    key = ", ".join(table.key)
    if key:
        lines.append(f"Primary key: {key}.")
    lines += ["", "| Column | Type | Description | Push-down |", "|---|---|---|---|"]
    for c in table.columns:
        extra = []
        if c.references:
            extra.append(f"→ {c.references}")
        if c.include:
            extra.append(f"asks the API for `include={c.include}`")
        description = c.description + (f" ({'; '.join(extra)})" if extra else "")
        how = pushdown(table, c, tables) if table.static is None else ""
        lines.append(f"| `{c.name}` | {c.type} | {description} | {how} |")
    return "\n".join(lines) + "\n"


def _scope(scope: str | None) -> str:
    return f"`{scope}`" if scope else "none"


def read_scope(table: Table, tables: dict[str, Table]) -> str | None:
    """The scope reading ``table`` needs (a derived table's is its parent's)."""
    if table.derived is not None:
        return read_scope(tables[table.derived.parent.lower()], tables)
    endpoint = table.list or table.get
    return endpoint.scope if endpoint is not None else None


def scopes_markdown(profile: Profile) -> str:
    """Which API key scope each table and procedure needs: from the tables' endpoint specs and the
    profile's ``procedure_scopes``."""
    tables = {t.name.lower(): t for t in profile.tables}
    lines = [
        "## Scopes",
        "",
        "What an API key needs for each table and procedure (a key has the scopes chosen when it",
        "was made). A statement that needs a scope the key lacks fails with `PermissionDeniedError`,",
        "naming the scope. The `sys_*` tables send no request and need none. A DELETE reads the rows",
        "it deletes, so it needs the SELECT scope too, unless its condition is only `id = ?`.",
        "",
        "| Table or procedure | SELECT, or a call | INSERT | DELETE |",
        "|---|---|---|---|",
    ]
    for t in profile.tables:
        insert = t.write.insert if t.write is not None else None
        delete = t.write.delete if t.write is not None else None
        lines.append(
            f"| {t.name} | {_scope(read_scope(t, tables))} | {_scope(insert.scope) if insert else '—'} | {_scope(delete.scope) if delete else '—'} |"
        )
    procedure_scopes = profile.extras.get("procedure_scopes", {})
    for p in profile.procedures:
        if p.name in procedure_scopes:
            needs = ", ".join(f"`{s.split()[0]}`{s[len(s.split()[0]):]}" for s in procedure_scopes[p.name]) or "none"
            lines.append(f"| {p.name}() | {needs} | — | — |")
    return "\n".join(lines) + "\n"


def markdown(profile: Profile) -> str:
    tables = _tables(profile)
    by_name = {t.name.lower(): t for t in tables}
    parts = [
        f"# Table reference: {profile.name} profile",
        "",
        "Generated from the profile by `python -m apidriver.reference`; do not edit by hand.",
        "Also available at run time: `SELECT * FROM sys_tables`, `SELECT * FROM sys_tablecolumns`.",
        "",
        RULES,
        scopes_markdown(profile),
    ]
    parts += [describe_table(t, by_name) for t in tables]
    parts.append(procedures_markdown(profile))
    return "\n".join(parts)


def procedures_markdown(profile: Profile) -> str:
    lines = [
        "## Procedures",
        "",
        "Call them with `cursor.callproc(name, params)` or as table-valued functions:",
        "`SELECT * FROM CancelTask('task-id')`. Within one statement a procedure runs once",
        "per set of arguments. Those marked *writes* are refused when `ReadOnly=true`.",
        "",
    ]
    for p in profile.procedures:
        signature = ", ".join(a.name if a.required else f"[{a.name}]" for a in p.params)
        lines += [f"### {p.name}({signature})", "", p.description + (" *(writes)*" if p.writes else ""), ""]
        lines += [f"- `{a.name}` {a.type}{'' if a.required else ', optional'}: {a.description}" for a in p.params]
        lines += ["", "Returns: " + ", ".join(f"`{c.name}`" for c in p.columns) + ".", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(load("CloudConvert")), end="")
