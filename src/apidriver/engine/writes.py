"""SQL writes as API calls: INSERT → create, DELETE → delete, UPDATE → refused.

Writes are autocommit: each row's request is sent when SQLite hands the row
over, and no ROLLBACK can undo it. What the API cannot do (UPDATE, writes to
read-only tables, any write with ``ReadOnly=true``) is refused while the
statement is being prepared, by the connection's authorizer calling
:meth:`Writer.refusal`, so nothing is sent at all.

A create answers with the created object; it is kept on the statement
(``StatementContext.created``) so that ``INSERT ... RETURNING`` can return
what the API made (ids, secrets, timestamps) instead of SQLite's echo of the
inputs, and so that a failure part-way can say what was already created.

A DELETE of several rows that fails on one row sends nothing more: SQLite
still hands over the remaining rows, which are recorded as not attempted,
and the statement then fails with the first error, saying which rows were
deleted, which failed and which were not attempted (:func:`delete_failure`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from .. import exceptions as exc
from ..client import ApiClient, segment
from ..values import JSON
from .executor import Engine, StatementContext
from .schema import Table
from .vtable import RowIds


def delete_failure(ctx: StatementContext) -> exc.Error:
    """The error a DELETE that failed part-way ends with: the failure, plus what was and was not done.

    The error keeps its class and API details and gains ``deleted`` (keys
    deleted before the failure), ``failed`` (the key whose DELETE failed)
    and ``not_attempted`` (keys of the rows after it, for which nothing was
    sent).
    """
    assert ctx.delete_failure is not None
    _, failed, error = ctx.delete_failure
    deleted = [key for _, key in ctx.deleted]
    skipped = [key for _, key in ctx.not_attempted]
    base = error if isinstance(error, exc.Error) else exc.InternalError(str(error))
    if deleted or skipped:
        message = (
            f"{error} Deleted by this statement before the failure (not undone): {', '.join(map(str, deleted)) or 'none'}; "
            f"failed: {failed}; not attempted: {', '.join(map(str, skipped)) or 'none'}."
        )
        out = exc.with_message(base, message)
    else:
        out = base
    out.deleted = deleted  # type: ignore[attr-defined]
    out.failed = failed  # type: ignore[attr-defined]
    out.not_attempted = skipped  # type: ignore[attr-defined]
    out.__cause__ = error if out is not error else error.__cause__
    return out


def partial_failure(ctx: StatementContext, error: exc.Error) -> exc.Error:
    """``error`` (a statement stopped by it: SQL, a cancel, a failed page) saying what its writes already did."""
    if ctx.delete_failure is not None:
        return delete_failure(ctx)
    note = ""
    if ctx.created and "Already created by this statement" not in str(error):
        note += describe_created(ctx)
    if ctx.deleted:
        note += f" Deleted by this statement before the failure (not undone): {', '.join(str(k) for _, k in ctx.deleted)}."
    if not note:
        return error
    out = exc.with_message(error, f"{error}{note}")
    out.deleted = [key for _, key in ctx.deleted]  # type: ignore[attr-defined]
    out.created = [key for _, key, _ in ctx.created]  # type: ignore[attr-defined]
    return out


def describe_created(ctx: StatementContext) -> str:
    if not ctx.created:
        return ""
    keys = ", ".join(str(k) for _, k, _ in ctx.created)
    return f" Already created by this statement before the failure (not undone): {keys}."


class Writer:
    def __init__(self, engine: Engine, client: ApiClient, context: Callable[[], StatementContext], rowids: RowIds, read_only: bool) -> None:
        self.engine = engine
        self.client = client
        self.context = context
        self.rowids = rowids
        self.read_only = read_only

    # -- refusing before anything is sent ---------------------------------------------------

    def refusal(self, table: Table, action: str) -> exc.Error | None:
        """Why ``action`` (INSERT, UPDATE, DELETE) on ``table`` cannot run, or None if it can."""
        if self.read_only:
            return exc.NotSupportedError(
                f"{action} on {table.name} refused: the connection is read-only (ReadOnly=true). Nothing was sent."
            )
        writable = [
            f"{t.name} ({', '.join(t.write.operations)})"
            for t in self.engine.tables.values()
            if t.write is not None and t.write.operations
        ]
        ops = table.write.operations if table.write is not None else ()
        if action in ops:
            return None
        if not ops:
            why = f"{table.name} is read-only: the API offers no way to change it."
        elif action == "UPDATE":
            why = f"The API cannot change existing {table.name} (it accepts {' and '.join(ops)} only)."
        else:
            why = f"{table.name} does not accept {action} (it accepts {' and '.join(ops)})."
        return exc.NotSupportedError(f"{why} Nothing was sent. Tables that accept writes: {'; '.join(writable)}.")

    # -- INSERT -------------------------------------------------------------------------------

    def insert(self, table: Table, fields: tuple[Any, ...]) -> int:
        spec = table.write.insert if table.write is not None else None
        if spec is None:
            raise self.refusal(table, "INSERT") or exc.NotSupportedError(f"{table.name} does not accept INSERT.")
        ctx = self.context()
        values = {c.name: v for c, v in zip(table.columns, fields) if v is not None}
        settable = ", ".join(spec.columns)
        extra = [name for name in values if name not in spec.columns]
        if extra:
            raise exc.ProgrammingError(
                f"INSERT INTO {table.name} cannot set {', '.join(extra)}: the API assigns it. Columns you can set: {settable}."
                + describe_created(ctx)
            )
        missing = [name for name in spec.required if name not in values]
        if missing:
            raise exc.ProgrammingError(
                f"INSERT INTO {table.name} needs {', '.join(missing)} (columns you can set: {settable})." + describe_created(ctx)
            )
        row: dict[str, Any] = {}
        for name, value in values.items():
            column = table.column(name)
            if column.type == JSON and isinstance(value, str):
                try:
                    value = json.loads(value)
                except ValueError as error:
                    raise exc.ProgrammingError(
                        f"{table.name}.{name} must be JSON text (or a dict/list parameter): {error}." + describe_created(ctx)
                    ) from None
            row[name] = value
        if spec.check is not None:
            try:
                spec.check(row)
            except exc.Error as error:
                raise exc.with_message(error, f"{error}{describe_created(ctx)}") from None
        path = spec.path(row) if callable(spec.path) else spec.path
        try:
            response = self.client.request(
                "POST", path, json=spec.body(row), scope=spec.scope, observer=ctx.observe, cancel=ctx.cancel
            )
        except exc.Error as error:
            if ctx.created:
                raise exc.with_message(error, f"{error}{describe_created(ctx)}") from error
            raise
        created = response.body.get("data") if response is not None and isinstance(response.body, Mapping) else None
        if not isinstance(created, Mapping) or None in table.key_of(created):
            # A success without the object: the API may have made it, and nothing says what it made.
            status = response.status if response is not None else None
            url = response.url if response is not None and response.url else path
            ambiguous = exc.AmbiguousWriteError(
                f"POST {url} answered {status} without the object it created (an object with its key in \"data\"), so "
                "whether it created one, and which, is unknown. It was not retried, to avoid doing it twice; check the "
                f"current state (e.g. SELECT the objects by tag) before trying again.{describe_created(ctx)}"
            )
            ambiguous._set_api(status, None, None, "POST", url)
            raise ambiguous
        key = table.key_of(created)
        single = key[0] if len(key) == 1 else key
        ctx.created.append((table.name, single, created))
        return self.rowids.rowid(table.name, single)

    # -- DELETE -------------------------------------------------------------------------------

    def delete(self, table: Table, rowid: int) -> None:
        spec = table.write.delete if table.write is not None else None
        if spec is None:
            raise self.refusal(table, "DELETE") or exc.NotSupportedError(f"{table.name} does not accept DELETE.")
        ctx = self.context()
        _, key = self.rowids.key(rowid)
        if ctx.delete_failure is not None:
            ctx.not_attempted.append((table.name, key))  # see delete_failure: nothing more is sent
            return
        # A row fetched a moment ago and gone now (404) is what was asked for; a key
        # given alone (a stub, never fetched) that does not exist is an error.
        stub = (table.name, key) in ctx.stubs
        try:
            encoded = segment(key)
            if encoded is None:
                raise exc.NotFoundError(f"DELETE FROM {table.name}: there is no row with key {str(key)!r}. Nothing was sent.")
            path = spec.path.replace("{key}", encoded)
            self.client.request("DELETE", path, scope=spec.scope, observer=ctx.observe, allow_404=not stub, cancel=ctx.cancel)
        except exc.Error as error:
            ctx.delete_failure = (table.name, key, error)
            return
        ctx.deleted.append((table.name, key))

    def update(self, table: Table) -> None:
        raise self.refusal(table, "UPDATE") or exc.NotSupportedError(f"{table.name} cannot be updated.")

