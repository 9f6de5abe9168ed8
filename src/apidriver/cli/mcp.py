"""``apidriver mcp``: the options of the MCP server; :mod:`apidriver.mcp.launch` starts it (and imports the SDK)."""

from __future__ import annotations

import click

from ..mcp.http import TOKEN_ENV, check_token, parse_address
from .connecting import connection_option

LOG_LEVELS = ("debug", "info", "warning", "error")


@click.command(short_help="Serve the tables to AI assistants (Model Context Protocol).")
@connection_option
@click.option("--http", "address", metavar="HOST:PORT", help="Serve streamable HTTP on this address instead of stdio (e.g. 127.0.0.1:8765).")
@click.option("--token", envvar=TOKEN_ENV, metavar="TOKEN", help=f"Bearer token HTTP clients must send; required off loopback (default: ${TOKEN_ENV}).")
@click.option("--allow-writes", is_flag=True, help="Let run_query write (INSERT, DELETE, CreateJob, ...): calls that change the account and spend credits.")
@click.option("--default-rows", type=click.IntRange(min=1), default=100, show_default=True, help="Rows a result holds when the call does not say.")
@click.option("--max-rows", type=click.IntRange(min=1), default=1000, show_default=True, help="Rows a result may hold at most, whatever the call asks.")
@click.option("--timeout", type=click.FloatRange(min=0), default=300, show_default=True, help="Seconds a statement may run before it is cancelled; 0: no limit.")
@click.option("--log-level", type=click.Choice(LOG_LEVELS), default="warning", show_default=True, help="Logging on stderr.")
def mcp(
    connection: str | None,
    address: str | None,
    token: str | None,
    allow_writes: bool,
    default_rows: int,
    max_rows: int,
    timeout: float,
    log_level: str,
) -> None:
    """Serve the tables to AI assistants over the Model Context Protocol.

    Tools: list_tables, describe_table, run_query; the table reference as
    resources apidriver://tables/{name}; prompts explain_failed_jobs and
    credits_used. It connects as apidriver query does (--connect,
    $APIDRIVER_CONNECTION, $CLOUDCONVERT_API_KEY; any property, e.g.
    Offline=true to answer from the cache alone). It is read-only unless
    --allow-writes is given. It speaks stdio, as desktop assistants start
    it; --http HOST:PORT serves streamable HTTP instead (on 127.0.0.1; any
    other address needs a bearer token). Logs go to stderr. Needs the mcp
    extra: pip install 'apidriver[mcp]'.

    \b
    Example:
        apidriver mcp --connect "APIKey=emulator-key;BaseURL=http://127.0.0.1:8000"
    """
    if default_rows > max_rows:
        raise click.BadParameter(f"--default-rows {default_rows} is more than --max-rows {max_rows}", param_hint="--default-rows")
    if address is not None:
        try:
            host, _ = parse_address(address)
            check_token(host, token)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--http") from None
    from ..mcp.launch import serve

    serve(connection, address, token, allow_writes, default_rows, max_rows, timeout, log_level)
