"""The table reference in the terminal (``apidriver tables``, ``apidriver describe``, ``.schema``).

The text is the generated reference of :mod:`apidriver.reference`
(docs/tables.md), rendered by rich, or printed as Markdown.
"""

from __future__ import annotations

from rich import box
from rich.console import Group, RenderableType
from rich.markdown import Markdown
from rich.table import Table as Grid
from rich.text import Text

from ..engine.schema import Procedure, Table
from ..engine.system import pushdown, system_tables
from ..profiles import Profile
from ..reference import RULES, describe_table


def all_tables(profile: Profile) -> list[Table]:
    """The profile's tables, then the ``sys_*`` tables."""
    tables = list(profile.tables)
    return tables + system_tables(lambda: tables, lambda: profile.procedures)


def find(profile: Profile, name: str) -> Table | Procedure | None:
    """The table or procedure called ``name`` (any case)."""
    lowered = name.lower()
    candidates: list[Table | Procedure] = [*all_tables(profile), *profile.procedures]
    for item in candidates:
        if item.name.lower() == lowered:
            return item
    return None


def names(profile: Profile) -> list[str]:
    return [t.name for t in all_tables(profile)] + [p.name for p in profile.procedures]


def pushed_columns(table: Table, tables: list[Table]) -> list[str]:
    """The columns whose ``=``/``IN`` conditions are sent to the API."""
    if table.static is not None:
        return []
    by_name = {t.name.lower(): t for t in tables}
    return [c.name for c in table.columns if pushdown(table, c, by_name)]


def overview(profile: Profile) -> RenderableType:
    """Every table and procedure with its description, what pushes down, and the push-down rules."""
    tables = all_tables(profile)
    grid = Grid(box=box.SIMPLE_HEAD, title=f"Tables of the {profile.name} profile", title_justify="left")
    grid.add_column("Table", style="bold", no_wrap=True)
    grid.add_column("Description · push-down (=, IN) · writes")
    for t in tables:
        cell = Text(t.description)
        pushed = pushed_columns(t, tables)
        writes = ", ".join(getattr(t.write, "operations", ()) or ()) if t.write is not None else ""
        details = [f"push-down: {', '.join(pushed)}"] if pushed else []
        details += [f"writes: {writes}"] if writes else []
        if details:
            cell.append("\n" + " · ".join(details), style="cyan")
        grid.add_row(Text(t.name), cell)
    procedures = Grid(box=box.SIMPLE_HEAD, title="Procedures: SELECT * FROM Name(...), or cursor.callproc", title_justify="left")
    procedures.add_column("Procedure", style="bold")
    procedures.add_column("Description")
    for p in profile.procedures:
        procedures.add_row(Text(signature(p)), Text(p.description + (" (writes)" if p.writes else "")))
    hint = Text("Columns, types and push-down of one table: apidriver describe TABLE", style="dim")
    return Group(grid, procedures, Markdown(RULES), hint)


def signature(procedure: Procedure) -> str:
    return f"{procedure.name}({', '.join(a.name if a.required else f'[{a.name}]' for a in procedure.params)})"


def markdown(profile: Profile, item: Table | Procedure) -> str:
    """One table's section of docs/tables.md, or one procedure's."""
    if isinstance(item, Table):
        tables = all_tables(profile)
        return describe_table(item, {t.name.lower(): t for t in tables})
    lines = [f"## {signature(item)}", "", item.description + (" *(writes)*" if item.writes else ""), ""]
    lines += [f"- `{a.name}` {a.type}{'' if a.required else ', optional'}: {a.description}" for a in item.params]
    lines += ["", "Returns: " + ", ".join(f"`{c.name}`" for c in item.columns) + "."]
    return "\n".join(lines) + "\n"


def rendered(text: str) -> Markdown:
    """Markdown for the terminal; the lines between a heading's paragraph and its table stay lines."""
    out: list[str] = []
    for line in text.splitlines():
        plain = line and not line.startswith(("#", "|", "- "))
        out.append(line + "  " if plain else line)
    return Markdown("\n".join(out))
