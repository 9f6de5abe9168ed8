"""A seeded generator of SELECT statements over the CloudConvert tables.

Every statement is produced twice from the same random choices: once for the
driver and once for the plain SQLite copy. They differ only where the issue
under test says the driver must be cleverer than plain text: a timestamp
written in some ISO 8601 form (``T``, ``Z``, ``+02:00``, no zone, date only)
reaches the driver as written and the copy in the stored UTC text, so the
copy answers with the comparison of instants.

What it covers: equality, IN, NOT/OR, IS [NOT] NULL, LIKE/GLOB, ranges on
numbers and timestamps (literals and parameters of every form), COLLATE,
ORDER BY with and without LIMIT/OFFSET, inner/left/self joins (including the
derived tables and a join across affinities), IN/EXISTS/correlated
subqueries (empty ones, and IN written every way SQLite accepts),
GROUP BY/HAVING/DISTINCT/aggregates, json_extract and ``->>``, UNION, CTEs,
joins reading ``Tasks.payload`` (never embedded in job lists) with conditions on the inner table,
keys that are not plain ids (``.``, ``..``, ``../users/me``), URL-special
characters, unicode, empty strings and NULLs.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from apidriver.engine.schema import Table
from apidriver.values import format_timestamp, parse_timestamp

UTC = dt.timezone.utc

# Joins that mean something, and two that test SQLite's rules more than the data.
JOINS: tuple[tuple[str, str, str, str], ...] = (
    ("Tasks", "job_id", "Jobs", "id"),
    ("TaskFiles", "task_id", "Tasks", "id"),
    ("TaskFiles", "job_id", "Jobs", "id"),
    ("TaskDependencies", "task_id", "Tasks", "id"),
    ("TaskDependencies", "depends_on_task_id", "Tasks", "id"),
    ("Tasks", "retry_of_task_id", "Tasks", "id"),
    ("Tasks", "user_id", "Users", "id"),
    ("Jobs", "tag", "Jobs", "tag"),
    ("Jobs", "tag", "Tasks", "percent"),  # TEXT = INTEGER: numeric affinity applies to the tag
    ("TaskFiles", "task_id", "TaskDependencies", "depends_on_task_id"),
)
# (outer table, outer column, inner table, inner column) for IN and EXISTS subqueries.
LINKS: tuple[tuple[str, str, str, str], ...] = JOINS[:7] + (
    ("Jobs", "id", "Tasks", "job_id"),
    ("Tasks", "id", "TaskFiles", "task_id"),
    ("Tasks", "id", "TaskDependencies", "task_id"),
    ("Jobs", "status", "Tasks", "status"),
    ("Tasks", "operation", "Operations", "operation"),
    ("Jobs", "tag", "Tasks", "percent"),  # TEXT IN (INTEGER values): numeric affinity
    ("Tasks", "percent", "Jobs", "tag"),
)
SPECIAL_TEXT = ("", "'", "''", "%", "_", "&", "#", "+", " ", "Ünïcødé ✓", "ERROR", "error ", "1e2", "100", ".", "..", "../users/me", "a/b", "[x]")
JSON_PATHS = {
    "tasks": ("$[0].operation", "$[0].status", "$[1].name", "$[#-1].operation"),
    "payload": ("$.output_format", "$.operation", "$.input", "$.url"),
    "result": ("$.files[0].filename", "$.files[1].filename", "$.files[0].size", "$.form.url"),
    "depends_on_task_ids": ("$[0]", "$[1]"),
    "events": ("$[0]", "$[1]"),
    "meta": ("$.group",),
    "options": ("$[0].name",),
    "engine_versions": ("$[0].version",),
}
PROCEDURE_FREE = ("Jobs", "Tasks", "TaskFiles", "TaskDependencies", "Users", "Webhooks", "Operations")


@dataclass(frozen=True)
class Instant:
    """A timestamp value: the driver gets ``text`` (any ISO form, or a datetime), the copy the stored text."""

    value: dt.datetime
    form: str

    def driver(self) -> Any:
        v = self.value
        if self.form == "datetime":
            return v.astimezone(dt.timezone(dt.timedelta(hours=2)))
        if self.form == "naive-datetime":
            return v.replace(tzinfo=None)
        if self.form == "T+00:00":
            return v.isoformat()
        if self.form == "Z":
            return v.strftime("%Y-%m-%dT%H:%M:%S") + (f".{v.microsecond:06d}" if v.microsecond else "") + "Z"
        if self.form == "+02:00":
            return v.astimezone(dt.timezone(dt.timedelta(hours=2))).isoformat()
        if self.form == "-05:30":
            return v.astimezone(dt.timezone(-dt.timedelta(hours=5, minutes=30))).isoformat()
        if self.form == "T-naive":
            return v.replace(tzinfo=None).isoformat()
        if self.form == "date":
            return v.date().isoformat()
        if self.form == "millis-Z":
            return v.strftime("%Y-%m-%dT%H:%M:%S.") + f"{v.microsecond // 1000:03d}Z"
        return format_timestamp(v)  # "stored"

    def oracle(self) -> str:
        v = self.value
        if self.form == "date":
            v = dt.datetime.combine(v.date(), dt.time(), UTC)
        elif self.form == "millis-Z":
            v = v.replace(microsecond=v.microsecond // 1000 * 1000)
        return format_timestamp(v)


FORMS = ("stored", "T+00:00", "Z", "+02:00", "-05:30", "T-naive", "date", "millis-Z", "datetime", "naive-datetime")


@dataclass
class Val:
    value: Any
    param: bool


class Q:
    """SQL under construction: text, and values that are rendered per side (literal or ``?``)."""

    def __init__(self, *parts: Any) -> None:
        self.parts: list[Any] = []
        for p in parts:
            self.add(p)

    def add(self, part: Any) -> Q:
        if isinstance(part, Q):
            self.parts.extend(part.parts)
        else:
            self.parts.append(part)
        return self

    def render(self, driver: bool) -> tuple[str, list[Any]]:
        text: list[str] = []
        params: list[Any] = []
        for p in self.parts:
            if isinstance(p, str):
                text.append(p)
                continue
            value = p.value
            if isinstance(value, Instant):
                value = value.driver() if driver else value.oracle()
                if not p.param and not isinstance(value, str):
                    value = format_timestamp(value)  # a datetime can only be a parameter
            if p.param:
                text.append("?")
                params.append(value)
            else:
                text.append(literal(value))
        return "".join(text), params


def literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def join(parts: Sequence[Any], sep: str) -> Q:
    q = Q()
    for i, p in enumerate(parts):
        if i:
            q.add(sep)
        q.add(p)
    return q


@dataclass
class Statement:
    """One generated statement, for both sides, and how to compare its results."""

    driver_sql: str
    driver_params: list[Any]
    oracle_sql: str
    oracle_params: list[Any]
    tables: frozenset[str]
    ordered: bool
    limited: bool = False  # LIMIT without a total order: compare size, and rows against ``whole``
    whole: Statement | None = None
    tags: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.driver_sql}  -- params {self.driver_params!r}"


@dataclass
class Scope:
    """Tables in the FROM clause: alias → table."""

    aliases: dict[str, Table] = field(default_factory=dict)


class Generator:
    def __init__(self, tables: dict[str, Table], values: dict[tuple[str, str], list[Any]], seed: int) -> None:
        self.tables = {n: t for n, t in tables.items() if n in PROCEDURE_FREE}
        self.values = values
        self.rng = random.Random(seed)
        self._alias = 0
        instants = [
            parse_timestamp(v)
            for (_, c), vs in values.items()
            if c.endswith("_at")
            for v in vs
            if isinstance(v, str) and v[:1].isdigit()
        ]
        self.instants = sorted(set(instants)) or [dt.datetime(2026, 12, 1, tzinfo=UTC)]

    # -- values ----------------------------------------------------------------------------------

    def alias(self) -> str:
        self._alias += 1
        return f"a{self._alias}"

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def param(self) -> bool:
        return self.chance(0.4)

    def pool(self, table: Table, column: str) -> list[Any]:
        return [v for v in self.values.get((table.name, column), []) if v is not None] or [None]

    def value_for(self, table: Table, column: str) -> Any:
        col = table.column(column)
        r = self.rng.random()
        if col.type == "TIMESTAMP":
            return self.instant()
        if r < 0.75:
            v = self.rng.choice(self.pool(table, column))
            if col.type == "JSON" and isinstance(v, str) and self.chance(0.5):
                return v
            return v
        if col.type in ("INTEGER", "REAL"):
            return self.rng.choice([0, 1, 100, 50, -1, 2**40, 1.5, "100", "1e2", "50.0", " 100", "x"])
        if col.type == "BOOLEAN":
            return self.rng.choice([0, 1, "1", "true", 2])
        return self.rng.choice(SPECIAL_TEXT + (100, 1e2, 0))

    def instant(self) -> Instant:
        base = self.rng.choice(self.instants)
        shift = self.rng.choice([0, 0, 0, 1, -1, 3600, -3600, 86400, -86400, 7200])
        micro = self.rng.choice([0, 0, 0, 500000])
        return Instant(base + dt.timedelta(seconds=shift, microseconds=micro), self.rng.choice(FORMS))

    def v(self, value: Any) -> Val:
        return Val(value, self.param() or isinstance(value, Instant) and value.form in ("datetime", "naive-datetime"))

    # -- predicates -----------------------------------------------------------------------------

    def column(self, table: Table, types: Sequence[str] | None = None) -> str:
        cols = [c.name for c in table.columns if types is None or c.type in types]
        return self.rng.choice(cols or [table.columns[0].name])

    def predicate(self, scope: Scope, depth: int = 0) -> Q:
        r = self.rng.random()
        if depth < 2 and r < 0.12:
            return Q("(", self.predicate(scope, depth + 1), " OR ", self.predicate(scope, depth + 1), ")")
        if depth < 2 and r < 0.2:
            return Q("(", self.predicate(scope, depth + 1), " AND ", self.predicate(scope, depth + 1), ")")
        if depth < 2 and r < 0.26:
            return Q("NOT (", self.predicate(scope, depth + 1), ")")
        alias = self.rng.choice(list(scope.aliases))
        return self.column_predicate(alias, scope.aliases[alias])

    def column_predicate(self, alias: str, table: Table) -> Q:
        name = self.column(table)
        col = table.column(name)
        ref = f'{alias}."{name}"'
        rng = self.rng
        if col.type == "JSON":
            paths = JSON_PATHS.get(name, ("$.x",))
            path = rng.choice(paths)
            kind = rng.random()
            if kind < 0.4:
                fn = rng.choice(["json_extract({}, '{}')", "{} ->> '{}'"])
                expr = fn.format(ref, path)
                probe = rng.choice(["convert", "export/url", "pdf", "png", 0, 1, None, "error", "finished"])
                op = rng.choice(["=", "!=", "IS", "IS NOT"])
                return Q(f"{expr} {op} ", self.v(probe))
            if kind < 0.6:
                return Q(f"{ref} IS {rng.choice(['', 'NOT '])}NULL")
            if kind < 0.8:
                return Q(f"json_array_length({ref}) {rng.choice(['>', '=', '<'])} ", self.v(rng.randint(0, 3)))
            return Q(f"{ref} LIKE ", self.v(rng.choice(["%convert%", "%pdf%", "[%", "{%", "%\"%"])))
        kind = rng.random()
        if kind < 0.3:
            return self.eq(ref, table, name)
        if kind < 0.5:
            return self.in_list(ref, table, name)
        if kind < 0.58:
            return Q(f"{ref} IS {rng.choice(['', 'NOT '])}NULL")
        if kind < 0.7 and col.type in ("TEXT", "JSON"):
            pattern = self.pattern(table, name)
            op = rng.choice(["LIKE", "NOT LIKE", "GLOB"])
            return Q(f"{ref} {op} ", self.v(pattern))
        if kind < 0.85:
            op = rng.choice(["<", "<=", ">", ">=", "!=", "<>", "IS NOT"])
            return Q(f"{ref} {op} ", self.v(self.value_for(table, name)))
        low, high = self.value_for(table, name), self.value_for(table, name)
        return Q(f"{ref} {rng.choice(['', 'NOT '])}BETWEEN ", self.v(low), " AND ", self.v(high))

    def collated(self, value: Any) -> tuple[Any, str]:
        """A value and a COLLATE clause under which it still matches what it came from."""
        if not isinstance(value, str) or not self.chance(0.3):
            return value, ""
        how = self.rng.choice(["NOCASE", "RTRIM", "BINARY"])
        if how == "NOCASE":
            value = "".join(ch.upper() if self.chance(0.5) else ch.lower() for ch in value)
        elif how == "RTRIM":
            value = value + " " * self.rng.randint(0, 2)
        return value, f" COLLATE {how}"

    def eq(self, ref: str, table: Table, name: str) -> Q:
        value, collate = self.collated(self.value_for(table, name))
        op = self.rng.choice(["=", "=", "==", "IS"])
        if self.chance(0.15):
            return Q(self.v(value), f" {op} {ref}{collate}")
        return Q(f"{ref}{collate} {op} ", self.v(value))

    def in_list(self, ref: str, table: Table, name: str) -> Q:
        values = [self.value_for(table, name) for _ in range(self.rng.randint(1, 4))]
        collate = ""
        if self.chance(0.2):
            pairs = [self.collated(v) for v in values]
            values = [p[0] for p in pairs]
            collate = next((p[1] for p in pairs if p[1]), "")
        neg = "NOT " if self.chance(0.2) else ""
        return Q(f"{ref}{collate} {neg}IN (", join([self.v(v) for v in values], ", "), ")")

    def pattern(self, table: Table, name: str) -> str:
        v = self.rng.choice(self.pool(table, name))
        text = str(v) if v is not None else "x"
        r = self.rng.random()
        if r < 0.3:
            return text[: self.rng.randint(0, max(1, len(text)))] + "%"
        if r < 0.5:
            return "%" + text[-self.rng.randint(1, max(1, len(text))) :]
        if r < 0.7:
            return text.upper()
        if r < 0.85:
            return text[:3] + "*"
        return "%" + self.rng.choice(["&", "'", "%", "_", "Ü", "/", "."]) + "%"

    # -- statements ---------------------------------------------------------------------------

    def statement(self) -> Statement:
        kinds: list[tuple[float, Callable[[], Statement]]] = [
            (30, self.single),
            (8, self.by_key),
            (20, self.joined),
            (14, self.subquery),
            (10, self.grouped),
            (5, self.union),
            (5, self.cte),
            (5, self.correlated),
            (3, self.limited_aggregate),
            (6, self.payload_join),
        ]
        total = sum(w for w, _ in kinds)
        r = self.rng.uniform(0, total)
        for weight, make in kinds:
            if r < weight:
                return make()
            r -= weight
        return self.single()

    def finish(
        self,
        select: Q,
        tables: set[str],
        ncols: int,
        order: bool | None = None,
        limit: bool = True,
        tags: tuple[str, ...] = (),
    ) -> Statement:
        """Add ORDER BY (total over the output, or none) and maybe LIMIT/OFFSET."""
        ordered = self.chance(0.5) if order is None else order
        q = Q(select)
        if ordered:
            terms = []
            for i in range(1, ncols + 1):
                term = str(i)
                if self.chance(0.3):
                    term += " DESC"
                if self.chance(0.15):
                    term += self.rng.choice([" NULLS FIRST", " NULLS LAST"])
                terms.append(term)
            q.add(" ORDER BY " + ", ".join(terms))
        whole = self.make(q, tables, ordered, tags=tags)
        if limit and self.chance(0.35):
            n = self.rng.choice([0, 1, 2, 3, 5, 10, 50, 150, 1000])
            lim = Q(" LIMIT ", Val(n, self.param()))
            if self.chance(0.4):
                lim.add(Q(" OFFSET ", Val(self.rng.choice([0, 1, 2, 5, 99, 100, 101, 250, 2170]), self.param())))
            q = Q(q, lim)
            stmt = self.make(q, tables, ordered, tags=tags + ("limit",))
            if not ordered:
                stmt.limited = True
                stmt.whole = whole
            return stmt
        return whole

    def make(self, q: Q, tables: set[str], ordered: bool, tags: tuple[str, ...] = ()) -> Statement:
        dsql, dparams = q.render(True)
        osql, oparams = q.render(False)
        return Statement(dsql, dparams, osql, oparams, frozenset(tables), ordered, tags=tags)

    def table(self) -> Table:
        weights = {"Jobs": 5, "Tasks": 5, "TaskFiles": 3, "TaskDependencies": 2, "Users": 1, "Webhooks": 1, "Operations": 2}
        names = list(weights)
        return self.tables[self.rng.choices(names, [weights[n] for n in names])[0]]

    def select_list(self, scope: Scope) -> tuple[Q, int]:
        items: list[Any] = []
        if len(scope.aliases) == 1 and self.chance(0.25):
            alias, table = next(iter(scope.aliases.items()))
            return Q(f"{alias}.*"), len(table.columns)
        for alias, table in scope.aliases.items():
            for _ in range(self.rng.randint(1, 3)):
                name = self.column(table)
                ref = f'{alias}."{name}"'
                r = self.rng.random()
                if r < 0.7:
                    items.append(ref)
                elif r < 0.8:
                    items.append(f"lower({ref})")
                elif r < 0.9:
                    items.append(f"length({ref})")
                else:
                    items.append(f"coalesce({ref}, 'none')")
        return join(items, ", "), len(items)

    def where(self, scope: Scope) -> Q:
        if self.chance(0.15):
            return Q()
        count = self.rng.choice([1, 1, 1, 2, 2, 3])
        return Q(" WHERE ", join([self.predicate(scope) for _ in range(count)], " AND "))

    def single(self) -> Statement:
        table = self.table()
        alias = self.alias()
        scope = Scope({alias: table})
        cols, n = self.select_list(scope)
        distinct = "DISTINCT " if self.chance(0.1) else ""
        q = Q(f"SELECT {distinct}", cols, f' FROM "{table.name}" {alias}', self.where(scope))
        return self.finish(q, {table.name}, n, tags=("single",))

    def by_key(self) -> Statement:
        table = self.tables[self.rng.choice(["Jobs", "Tasks", "TaskFiles", "TaskDependencies", "Webhooks", "Operations"])]
        alias = self.alias()
        key = table.key[0]
        pool = self.pool(table, key)
        odd = [".", "..", "../users/me", "", "%2e", "a b", "?x=1", "#f", "ÿ", "00000000-0000-0000-0000-000000000000"]
        picks = [self.rng.choice(pool) if self.chance(0.6) else self.rng.choice(odd) for _ in range(self.rng.randint(1, 3))]
        if len(picks) == 1:
            value, collate = self.collated(picks[0])
            cond = Q(f'{alias}."{key}"{collate} = ', self.v(value))
        else:
            cond = Q(f'{alias}."{key}" IN (', join([self.v(p) for p in picks], ", "), ")")
        scope = Scope({alias: table})
        if self.chance(0.3):
            cond = Q(cond, " AND ", self.predicate(scope))
        cols, n = self.select_list(scope)
        q = Q("SELECT ", cols, f' FROM "{table.name}" {alias} WHERE ', cond)
        return self.finish(q, {table.name}, n, tags=("key",))

    def joined(self) -> Statement:
        left_name, left_col, right_name, right_col = self.rng.choice(JOINS)
        a, b = self.alias(), self.alias()
        left, right = self.tables[left_name], self.tables[right_name]
        if self.chance(0.5):  # either side may come first
            left, right, left_col, right_col, a, b = right, left, right_col, left_col, b, a
        kind = self.rng.choice(["JOIN", "LEFT JOIN", "JOIN", "LEFT JOIN", "CROSS JOIN", ","])
        on = f'{b}."{right_col}" = {a}."{left_col}"' if self.chance(0.5) else f'{a}."{left_col}" = {b}."{right_col}"'
        scope = Scope({a: left, b: right})
        tables = {left.name, right.name}
        if kind in ("CROSS JOIN", ","):
            frm = Q(f' FROM "{left.name}" {a} {kind} "{right.name}" {b}')
            where = self.where(scope)
            where = Q(" WHERE ", on, " AND (", where.parts[1:] and Q(*where.parts[1:]) or Q("1"), ")") if where.parts else Q(" WHERE ", on)
        else:
            on_q = Q(on)
            if kind == "LEFT JOIN" and self.chance(0.3):
                on_q = Q(on, " AND ", self.column_predicate(b, right))
            frm = Q(f' FROM "{left.name}" {a} {kind} "{right.name}" {b} ON ', on_q)
            where = self.where(Scope({a: left}) if kind == "LEFT JOIN" and self.chance(0.5) else scope)
        if self.chance(0.25):
            c = self.alias()
            third = self.tables["Jobs"] if "Jobs" not in tables else self.tables["Users"]
            via = next((x for x, t in scope.aliases.items() if t.name == "Tasks"), None)
            if via is not None and third.name == "Jobs":
                frm.add(f' LEFT JOIN "Jobs" {c} ON {c}."id" = {via}."job_id"')
                scope.aliases[c] = third
                tables.add("Jobs")
        if self.chance(0.3):
            q = Q("SELECT count(*), count(DISTINCT ", f'{a}."{left.columns[0].name}"', ")", frm, where)
            return self.make(q, tables, True, tags=("join", "count"))
        cols, n = self.select_list(scope)
        q = Q("SELECT ", cols, frm, where)
        return self.finish(q, tables, n, tags=("join",))

    def subquery_source(self, inner: Table, inner_col: str) -> tuple[Q, set[str]]:
        b = self.alias()
        scope = Scope({b: inner})
        where = self.where(scope)
        if self.chance(0.15):
            where = Q(" WHERE 0") if self.chance(0.5) else Q(where, " AND 0" if where.parts else " WHERE 0")
        sub = Q(f'SELECT {b}."{inner_col}" FROM "{inner.name}" {b}', where)
        if self.chance(0.1):
            sub = Q(sub, " UNION SELECT ", self.v(self.value_for(inner, inner_col)))
        return sub, {inner.name}

    def subquery(self) -> Statement:
        outer_name, outer_col, inner_name, inner_col = self.rng.choice(LINKS)
        outer, inner = self.tables[outer_name], self.tables[inner_name]
        a = self.alias()
        scope = Scope({a: outer})
        tables = {outer.name}
        r = self.rng.random()
        ref = f'{a}."{outer_col}"'
        neg = "NOT " if self.chance(0.2) else ""
        if r < 0.6:
            sub, t = self.subquery_source(inner, inner_col)
            tables |= t
            spelling = self.rng.randrange(7)
            if spelling == 0:
                cond = Q(f"{ref} {neg}IN (", sub, ")")
            elif spelling == 1:
                cond = Q(f"{ref} {neg}IN /**/ (", sub, ")")
            elif spelling == 2:
                cond = Q(f"{ref} {neg}IN ( /* in (select */ ", sub, " -- in\n)")
            elif spelling == 3:
                cond = Q(f"{ref} {neg}IN ((", sub, " ORDER BY 1 LIMIT 1))")  # ordered: one row, the same on both sides
            elif spelling == 4:
                cond = Q(f"{ref} {neg}in(WITH w AS (", sub, ") SELECT * FROM w)")
            elif spelling == 5:
                vals = [self.value_for(outer, outer_col) for _ in range(self.rng.randint(1, 3))]
                cond = Q(f"{ref} {neg}IN (VALUES ", join([Q("(", self.v(v), ")") for v in vals], ", "), ")")
            else:
                cond = Q(f"{ref} {neg}IN (SELECT * FROM (", sub, "))")
        else:
            b = self.alias()
            inner_scope = Scope({b: inner})
            extra = self.where(inner_scope)
            corr = f'{b}."{inner_col}" = {ref}'
            body = Q(f'SELECT 1 FROM "{inner.name}" {b} WHERE {corr}')
            if extra.parts:
                body = Q(body, " AND ", Q(*extra.parts[1:]))
            cond = Q(f"{neg}EXISTS (", body, ")")
            tables.add(inner.name)
        if self.chance(0.5):
            cond = Q(cond, " AND ", self.predicate(scope))
        cols, n = self.select_list(scope)
        q = Q("SELECT ", cols, f' FROM "{outer.name}" {a} WHERE ', cond)
        return self.finish(q, tables, n, tags=("subquery",))

    def grouped(self) -> Statement:
        table = self.table()
        a = self.alias()
        scope = Scope({a: table})
        key = self.column(table, ("TEXT", "INTEGER", "BOOLEAN"))
        measure = self.column(table)
        aggs = [
            "count(*)",
            f'count(DISTINCT {a}."{measure}")',
            f'min({a}."{measure}")',
            f'max({a}."{measure}")',
            f'sum(length({a}."{measure}"))',
            f'avg(length({a}."{measure}"))',
            f'group_concat({a}."{measure}", \'|\' ORDER BY {a}."{measure}")',
        ]
        chosen = self.rng.sample(aggs, self.rng.randint(1, 3))
        q = Q(f'SELECT {a}."{key}", ', ", ".join(chosen), f' FROM "{table.name}" {a}', self.where(scope), f' GROUP BY {a}."{key}"')
        if self.chance(0.4):
            q.add(Q(" HAVING count(*) ", self.rng.choice([">", ">=", "<"]), " ", Val(self.rng.randint(1, 20), self.param())))
        return self.finish(q, {table.name}, 1 + len(chosen), tags=("group",))

    def union(self) -> Statement:
        parts = []
        tables: set[str] = set()
        for _ in range(2):
            table = self.table()
            a = self.alias()
            name = self.column(table, ("TEXT",))
            scope = Scope({a: table})
            parts.append(Q(f'SELECT {a}."{name}" FROM "{table.name}" {a}', self.where(scope)))
            tables.add(table.name)
        op = self.rng.choice([" UNION ", " UNION ALL ", " INTERSECT ", " EXCEPT "])
        return self.finish(Q(parts[0], op, parts[1]), tables, 1, tags=("union",))

    def cte(self) -> Statement:
        table = self.table()
        a = self.alias()
        scope = Scope({a: table})
        cols = [c.name for c in table.columns[: self.rng.randint(2, len(table.columns))]]
        inner = Q(f"SELECT {', '.join(f'{a}.{chr(34)}{c}{chr(34)}' for c in cols)} FROM \"{table.name}\" {a}", self.where(scope))
        c = self.alias()
        tables = {table.name}
        if table.name == "Tasks" and self.chance(0.6):
            j = self.alias()
            body = Q(f"SELECT {c}.*, {j}.\"tag\" FROM c {c} LEFT JOIN \"Jobs\" {j} ON {j}.\"id\" = {c}.\"job_id\"" if "job_id" in cols else f"SELECT {c}.* FROM c {c}")
            tables.add("Jobs")
            n = len(cols) + (1 if "job_id" in cols else 0)
        else:
            body = Q(f"SELECT * FROM c {c}")
            n = len(cols)
        return self.finish(Q("WITH c AS (", inner, ") ", body), tables, n, tags=("cte",))

    def correlated(self) -> Statement:
        outer_name, outer_col, inner_name, inner_col = self.rng.choice(LINKS[7:10] + LINKS[:1])
        outer, inner = self.tables[outer_name], self.tables[inner_name]
        a, b = self.alias(), self.alias()
        scope = Scope({a: outer})
        agg = self.rng.choice(["count(*)", f'max({b}."{self.column(inner)}")', f'min({b}."{self.column(inner)}")'])
        extra = self.where(Scope({b: inner}))
        cond = Q(f'{b}."{inner_col}" = {a}."{outer_col}"')
        if extra.parts:
            cond = Q(cond, " AND ", Q(*extra.parts[1:]))
        sub = Q(f'(SELECT {agg} FROM "{inner.name}" {b} WHERE ', cond, ")")
        q = Q(f'SELECT {a}."{outer.key[0]}", ', sub, f' FROM "{outer.name}" {a}', self.where(scope))
        return self.finish(q, {outer.name, inner.name}, 2, tags=("correlated",))

    def payload_join(self) -> Statement:
        """Jobs joined with Tasks reading ``payload``, which job lists never embed (it needs
        ``include=payload`` on the task list), with conditions on the inner table in the ON or
        the WHERE clause: IN lists on its API filters, timestamps, anything. The inner loop
        looks tasks up per job, and must still keep the request rule."""
        j, t = self.alias(), self.alias()
        jobs, tasks = self.tables["Jobs"], self.tables["Tasks"]
        kind = self.rng.choice(["JOIN", "LEFT JOIN", "LEFT JOIN"])
        on = Q(f'{t}."job_id" = {j}."id"' if self.chance(0.5) else f'{j}."id" = {t}."job_id"')
        for _ in range(self.rng.choice([0, 1, 1, 2])):
            on = Q(on, " AND ", self.inner_predicate(t, tasks))
        where = Q()
        if self.chance(0.6):
            scope = Scope({t: tasks}) if kind == "JOIN" or self.chance(0.3) else Scope({j: jobs})
            alias = next(iter(scope.aliases))
            where = Q(" WHERE ", self.inner_predicate(alias, scope.aliases[alias]) if alias == t else self.predicate(scope))
        payload = self.rng.choice([f'{t}."payload"', f"json_extract({t}.\"payload\", '$.operation')", f'{t}."payload" IS NOT NULL'])
        frm = Q(f' FROM "Jobs" {j} {kind} "Tasks" {t} ON ', on, where)
        if self.chance(0.25):
            q = Q(f'SELECT count(*), count({t}."payload") ', frm)
            return self.make(q, {"Jobs", "Tasks"}, True, tags=("payload",))
        cols = [f'{j}."{self.column(jobs)}"', payload]
        if self.chance(0.4):
            cols.append(f'{t}."{self.column(tasks)}"')
        return self.finish(Q("SELECT ", ", ".join(cols), frm), {"Jobs", "Tasks"}, len(cols), tags=("payload",))

    def inner_predicate(self, alias: str, table: Table) -> Q:
        """A condition on a joined table, leaning to its API filters (lists per value) and timestamps."""
        r = self.rng.random()
        filters = [c.name for c in table.columns if c.filter and c.name != "job_id"] or [table.columns[0].name]
        if r < 0.35:
            name = self.rng.choice(filters)
            return self.in_list(f'{alias}."{name}"', table, name)
        if r < 0.55:
            name = self.rng.choice(filters)
            return self.eq(f'{alias}."{name}"', table, name)
        if r < 0.75:
            name = self.column(table, ("TIMESTAMP",))
            op = self.rng.choice(["<", "<=", ">", ">=", "IS NOT", "IS"])
            value = self.instant() if op not in ("IS NOT", "IS") or self.chance(0.5) else None
            return Q(f'{alias}."{name}" {op} ', self.v(value))
        return self.column_predicate(alias, table)

    def limited_aggregate(self) -> Statement:
        table = self.table()
        a = self.alias()
        scope = Scope({a: table})
        n = self.rng.choice([0, 1, 5, 100, 101, 1000])
        off = self.rng.choice([0, 0, 1, 100, 2170])
        q = Q(f'SELECT count(*) FROM (SELECT * FROM "{table.name}" {a}', self.where(scope), " LIMIT ", Val(n, self.param()), " OFFSET ", Val(off, self.param()), ")")
        return self.make(q, {table.name}, True, tags=("limit", "count"))
