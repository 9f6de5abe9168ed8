"""Procedures (actions) as table-valued functions: ``SELECT * FROM CancelTask(?)``.

Each profile procedure becomes an eponymous APSW virtual table whose hidden
columns are its parameters, so it works from plain SQL, from SQLAlchemy
``select()``/``text()``, and through ``Cursor.callproc``. Within one
statement a procedure runs at most once per set of arguments, even if SQLite
scans it again: an action is never repeated by accident.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from typing import Any

import apsw
import httpx

from .. import exceptions as exc
from ..client import ApiClient, segment
from ..values import BOOLEAN, INTEGER, JSON, REAL
from .executor import StatementContext
from .planner import EQ
from .schema import Procedure

Submit = Callable[..., Future[Any]]


class ProcedureContext:
    """What a procedure may use: the API client, a storage client, settings.

    ``storage`` is a separate HTTP client without the ``Authorization``
    header: upload forms and download URLs point at storage hosts, which must
    never see the API key.
    """

    def __init__(
        self,
        client: ApiClient,
        storage: httpx.Client,
        statement: StatementContext,
        settings: Mapping[str, Any],
        extras: Mapping[str, Any],
        submit: Submit | None = None,
    ) -> None:
        self.client = client
        self.storage = storage
        self.statement = statement
        self.settings = settings
        self.extras = extras
        self.submit = submit

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call the API (relative path or absolute URL); return the parsed body's ``data`` (or the body).

        A GET (a read, or a long wait on the sync host) runs on a worker and is
        waited for through the statement, so cancelling the statement ends the
        wait at once; a write runs here, and a cancel stops its retries.
        """
        call = functools.partial(self.client.request, method, path, observer=self.statement.observe, cancel=self.statement.cancel, **kwargs)
        if method.upper() == "GET" and self.submit is not None:
            response = self.statement.result(self.submit(call))
        else:
            response = call()
        if response is None:
            return None
        body = response.body
        return body.get("data", body) if isinstance(body, Mapping) else body

    def path(self, template: str, key: Any, what: str) -> str:
        """``template`` with ``{key}`` replaced by ``key`` as one path segment.

        Raises :class:`NotFoundError` without sending anything for ``.``,
        ``..`` and the empty string: no object has such an id, and sent
        they would address another endpoint.
        """
        encoded = segment(key)
        if encoded is None:
            raise exc.NotFoundError(f"There is no {what} with the id {str(key)!r} (ids are never '', '.' or '..'). Nothing was sent.")
        return template.replace("{key}", encoded)


def coerce(value: Any, sql_type: str, name: str, procedure: str) -> Any:
    """An argument as the Python value a procedure expects."""
    if value is None:
        return None
    try:
        if sql_type == JSON:
            return json.loads(value) if isinstance(value, str) else value
        if sql_type == BOOLEAN:
            if isinstance(value, str):
                return value.strip().lower() in ("1", "true", "yes", "on")
            return bool(value)
        if sql_type == INTEGER:
            return int(value)
        if sql_type == REAL:
            return float(value)
    except (TypeError, ValueError) as error:
        raise exc.ProgrammingError(f"{procedure}: argument {name} must be {sql_type}: {error}.") from None
    return value if isinstance(value, str) else str(value)


class ProcedureRunner:
    """Runs procedures for one connection, once per statement and arguments."""

    def __init__(
        self,
        client: ApiClient,
        storage: httpx.Client,
        context: Callable[[], StatementContext],
        settings: Mapping[str, Any],
        extras: Mapping[str, Any],
        read_only: bool,
        submit: Submit | None = None,
    ) -> None:
        self.client = client
        self.storage = storage
        self.context = context
        self.settings = settings
        self.extras = extras
        self.read_only = read_only
        self.submit = submit

    def refusal(self, procedure: Procedure) -> exc.Error | None:
        if procedure.writes and self.read_only:
            return exc.NotSupportedError(
                f"{procedure.name} changes data and the connection is read-only (ReadOnly=true). Nothing was sent."
            )
        return None

    def run(self, procedure: Procedure, args: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        refused = self.refusal(procedure)
        if refused is not None:
            raise refused
        missing = [p.name for p in procedure.params if p.required and args.get(p.name) is None]
        if missing:
            signature = ", ".join(p.name if p.required else f"[{p.name}]" for p in procedure.params)
            raise exc.ProgrammingError(f"{procedure.name}({signature}) needs {', '.join(missing)}.")
        values = {
            p.name: coerce(args.get(p.name), p.type, p.name, procedure.name) if args.get(p.name) is not None else p.default
            for p in procedure.params
        }
        statement = self.context()
        key = (procedure.name, json.dumps(values, sort_keys=True, default=str))
        if key not in statement.procedure_results:
            ctx = ProcedureContext(self.client, self.storage, statement, self.settings, self.extras, self.submit)
            statement.procedure_results[key] = list(procedure.run(ctx, values))
        return statement.procedure_results[key]


class ProcedureModule:
    def __init__(self, procedure: Procedure, runner: ProcedureRunner) -> None:
        self.procedure = procedure
        self.runner = runner

    def Create(self, connection: apsw.Connection, modulename: str, databasename: str, tablename: str, *args: str) -> tuple[str, ProcedureTable]:  # noqa: N802
        p = self.procedure
        # Arguments are hidden columns; "arg_" keeps them apart from result columns of the same name.
        cols = [f'"{c.name}" {c.type}' for c in p.columns] + [f'"arg_{a.name}" {a.type} HIDDEN' for a in p.params]
        return f"CREATE TABLE x({', '.join(cols)})", ProcedureTable(self)

    Connect = Create


class ProcedureTable:
    def __init__(self, module: ProcedureModule) -> None:
        self.module = module
        self.plans: list[tuple[str, ...]] = []

    def BestIndexObject(self, info: apsw.IndexInfo) -> bool:  # noqa: N802
        p = self.module.procedure
        first_param = len(p.columns)
        given: list[str] = []
        missing_usable = False
        for i in range(info.nConstraint):
            col = info.get_aConstraint_iColumn(i)
            if col < first_param or info.get_aConstraint_op(i) != EQ:
                continue
            if not info.get_aConstraint_usable(i):
                missing_usable = True
                continue
            given.append(p.params[col - first_param].name)
            info.set_aConstraintUsage_argvIndex(i, len(given))
            info.set_aConstraintUsage_omit(i, True)
        plan = tuple(given)
        if plan not in self.plans:
            self.plans.append(plan)
        info.idxNum = self.plans.index(plan)
        info.estimatedCost = 1e12 if missing_usable else 10.0
        info.estimatedRows = 1
        return True

    def Open(self) -> ProcedureCursor:  # noqa: N802
        return ProcedureCursor(self)

    def Disconnect(self) -> None:  # noqa: N802
        pass

    Destroy = Disconnect


class ProcedureCursor:
    def __init__(self, table: ProcedureTable) -> None:
        self.table = table
        self.procedure = table.module.procedure
        self._rows: Iterator[Mapping[str, Any]] = iter(())
        self.row: Mapping[str, Any] | None = None
        self.args: dict[str, Any] = {}
        self._n = 0

    def Filter(self, indexnum: int, indexname: str, constraintargs: tuple[Any, ...]) -> None:  # noqa: N802
        names = self.table.plans[indexnum]
        self.args = dict(zip(names, constraintargs))
        self._rows = iter(self.table.module.runner.run(self.procedure, self.args))
        self._n = 0
        self.Next()

    def Eof(self) -> bool:  # noqa: N802
        return self.row is None

    def Next(self) -> None:  # noqa: N802
        self.row = next(self._rows, None)
        self._n += 1

    def Rowid(self) -> int:  # noqa: N802
        return self._n

    def Column(self, number: int) -> Any:  # noqa: N802
        columns = self.procedure.columns
        if number < 0:
            return self._n
        if number < len(columns):
            assert self.row is not None
            return columns[number].value(self.row)
        return self.args.get(self.procedure.params[number - len(columns)].name)

    def Close(self) -> None:  # noqa: N802
        self.row = None
