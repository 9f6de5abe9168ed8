"""The MCP server: its tools, resources and prompts, on the official SDK's ``MCPServer``.

Everything an assistant can do goes through one DB-API connection, opened
as ``apidriver query`` opens it. Whether it may write is the connection's
own ``ReadOnly`` property (its authorizer refuses writes, account-changing
procedures, ``REPLICATE`` and ``CACHE`` before anything is sent); the
tools' annotations say the same to the client.
"""

import functools
import logging
from collections.abc import Callable
from typing import Annotated, Any

import orjson
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.server.mcpserver.resources import FunctionResource
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from .. import Connection, __version__
from . import catalogue, prompts
from .queries import Limits, QueryRunner, StatementError
from .results import TableDescription, TableList

__all__ = ["build_server", "instructions"]

logger = logging.getLogger(__name__)

TABLE_URI = "apidriver://tables/{name}"
REFERENCE_URI = "apidriver://tables"


SOURCES = {
    None: "The API keeps jobs and tasks for 24 hours after they end.",
    "explicit": "Plain table names read the API (which keeps jobs 24 hours); cache.Jobs etc. read a local cache with older history.",
    "auto": "Tables read a local cache, brought up to date before a query when stale, with history beyond the API's 24 hours; "
    "live.Jobs etc. read the API itself.",
    "offline": "Every table reads a local cache (history beyond the API's 24 hours, as of its last sync); nothing is sent to the API.",
}


def instructions(read_only: bool, limits: Limits, profile_name: str, cache_mode: str | None = None) -> str:
    """What the assistant is told about the server when it connects."""
    writes = (
        "The server is read-only: INSERT, DELETE, procedures that change the account, REPLICATE and CACHE are refused."
        if read_only
        else "Writes are allowed: INSERT and DELETE become API calls at once (no rollback), procedures such as CreateJob "
        "run conversions that spend the account's credits. Ask the user before any of them."
    )
    return (
        f"SQL over the {profile_name} API: its objects are SQLite tables (list_tables, describe_table), queried with "
        "run_query in SQLite's dialect (joins, aggregates, CTEs, window functions, json_extract on JSON columns). "
        "Conditions = and IN on the columns describe_table marks as pushed down are sent to the API; everything else "
        "is evaluated locally on the rows fetched, so filter on those columns to send fewer requests. "
        "Timestamps are ISO 8601 UTC text and compare as instants. "
        f"A result has at most {limits.default_rows} rows unless max_rows asks for more (up to {limits.max_rows}); "
        f"'truncated' says when rows were left out. {SOURCES.get(cache_mode, '')} {writes}"
    )


def build_server(connection: Connection, limits: Limits, scrub: Callable[[str], str] = lambda text: text) -> MCPServer:
    """The server over ``connection``; ``scrub`` removes secrets from any error text."""
    profile = connection.profile
    read_only = bool(connection.settings["ReadOnly"])
    runner = QueryRunner(connection, limits)
    server: MCPServer = MCPServer(
        "apidriver",
        title=f"apidriver: {profile.name} as SQL",
        version=__version__,
        instructions=instructions(read_only, limits, profile.name, connection.cache.mode if connection.cache is not None else None),
        website_url="https://github.com/apidriver/apidriver/blob/main/docs/mcp.md",
    )
    catalogue_hints = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)

    @server.tool(
        title="List tables",
        description="Every table and procedure, each with a one-line description, the columns whose filters go to "
        "the API, and the writes it accepts. Start here.",
        annotations=catalogue_hints,
    )
    def list_tables() -> Annotated[CallToolResult, TableList]:
        listed = catalogue.listing(profile)
        return CallToolResult(content=[TextContent(type="text", text=catalogue.listing_text(listed))], structured_content=listed)

    @server.tool(
        title="Describe a table",
        description="A table's (or procedure's) columns with types and descriptions, its key, foreign keys, which "
        "conditions are sent to the API, the writes it accepts, and an example query.",
        annotations=catalogue_hints,
    )
    def describe_table(
        table: Annotated[str, Field(description="A table or procedure name from list_tables (any case), e.g. Jobs.")],
    ) -> Annotated[CallToolResult, TableDescription]:
        found = catalogue.describe(profile, table)
        if found is None:
            known = ", ".join(name for name, _ in catalogue.resource_names(profile))
            raise ToolError(f"No table or procedure {table!r}. Known: {known}.")
        text, structured = found
        return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=structured)

    @server.tool(
        title="Run a SQL statement",
        description="Run one SQLite statement against the API's tables. The result is one JSON object: columns "
        "(the names, once), rows (each a list in column order; timestamps ISO 8601 UTC text, JSON columns nested), "
        "row_count (rows in the result, null when truncated), truncated (more rows than max_rows exist), max_rows, "
        "rows_affected (INSERT/DELETE), requests (HTTP requests sent) with request_log, elapsed_ms, and a note when "
        "there is something to do next."
        + ("" if read_only else " Writes are allowed on this server: INSERT, DELETE and account-changing procedures act at once."),
        annotations=ToolAnnotations(
            read_only_hint=read_only, destructive_hint=not read_only, idempotent_hint=False, open_world_hint=True
        ),
    )
    async def run_query(
        sql: Annotated[str, Field(description="One SQLite statement, e.g. SELECT id, status FROM Jobs WHERE status = ? LIMIT 10.")],
        ctx: Context,
        parameters: Annotated[
            list[Any] | dict[str, Any] | None,
            Field(description="Values for the statement's placeholders: a list for ?, an object for :name."),
        ] = None,
        max_rows: Annotated[
            int | None,
            Field(ge=1, description=f"Rows to return at most (default {limits.default_rows}, at most {limits.max_rows})."),
        ] = None,
    ) -> CallToolResult:
        # The compact JSON text alone: the same rows again as structuredContent would double what the client
        # receives (and perhaps what the model reads), and cost the SDK several times the statement's own time.
        async def progress(requests: int, rows: int) -> None:
            await ctx.report_progress(requests + rows, None, f"{requests} requests sent, {rows} rows read")

        try:
            result = await runner.run(sql, parameters, max_rows, progress)
        except StatementError as error:
            raise ToolError(scrub(str(error))) from None
        return CallToolResult(content=[TextContent(type="text", text=orjson.dumps(result).decode())])

    def reference() -> str:
        return catalogue.reference(profile)

    server.add_resource(
        FunctionResource.from_function(
            reference,
            uri=REFERENCE_URI,
            name="tables",
            title="Table reference",
            description="Every table and procedure, and the rules of what is sent to the API (docs/tables.md).",
            mime_type="text/markdown",
        )
    )
    for name, description in catalogue.resource_names(profile):
        server.add_resource(
            FunctionResource.from_function(
                _section(profile, name),
                uri=TABLE_URI.format(name=name),
                name=name,
                description=description,
                mime_type="text/markdown",
            )
        )

    @server.resource(TABLE_URI, name="table", title="One table", description="A table's or procedure's reference section.", mime_type="text/markdown")
    def table_reference(name: str) -> str:
        found = catalogue.describe(profile, name)
        if found is None:
            known = ", ".join(n for n, _ in catalogue.resource_names(profile))
            raise ResourceError(f"No table or procedure {name!r}. Known: {known}.")
        return found[0]

    server.prompt(
        title="Explain failed jobs",
        description="Explain the jobs that failed in a period (default: the last 24 hours): what failed, why, what to change.",
    )(_prompt(prompts.explain_failed_jobs))
    server.prompt(
        title="Credits used",
        description="Conversion credits used in a period (default: the last 24 hours), per job tag or per operation.",
    )(_prompt(prompts.credits_used))
    return server


def _prompt(function: Callable[..., str]) -> Callable[..., str]:
    """``function``, its bad arguments answered as invalid parameters with their message (not an internal error)."""

    @functools.wraps(function)
    def render(*args: Any, **kwargs: Any) -> str:
        try:
            return function(*args, **kwargs)
        except ValueError as error:
            raise MCPError(code=INVALID_PARAMS, message=str(error)) from None

    return render


def _section(profile: Any, name: str) -> Callable[[], str]:
    def read() -> str:
        found = catalogue.describe(profile, name)
        assert found is not None
        return found[0]

    read.__name__ = f"table_{name}"
    return read
