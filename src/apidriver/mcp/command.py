"""The ``apidriver mcp`` command: options, the connection (as ``apidriver query`` opens it), logging, transports.

This module imports neither the SDK nor the server until the command runs,
so that the rest of the command line works without the ``mcp`` extra.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from importlib import metadata

import click

from ..cli.connecting import connection_option, open_connection
from ..cli.errors import Failure
from .http import TOKEN_ENV, check_token, parse_address

__all__ = ["mcp", "scrubber"]

LOG_LEVELS = ("debug", "info", "warning", "error")
SDK_VERSION = (2, 3)
INSTALL_HINT = "pip install 'apidriver[mcp]'"


def scrubber(*secrets: str | None) -> Callable[[str], str]:
    """A function that replaces each secret (the API key, the bearer token) in a text by ``***``."""
    shown = sorted({s for s in secrets if s}, key=len, reverse=True)

    def scrub(text: str) -> str:
        for secret in shown:
            text = text.replace(secret, "***")
        return text

    return scrub


class _ScrubbingFormatter(logging.Formatter):
    """Log lines (tracebacks included) with every secret replaced: the key never reaches a log."""

    def __init__(self, scrub: Callable[[str], str]) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._scrub = scrub

    def format(self, record: logging.LogRecord) -> str:
        return self._scrub(super().format(record))


def _require_sdk() -> None:
    """The ``mcp`` SDK, at a version with ``MCPServer``; otherwise a one-line hint on how to install it."""
    try:
        import mcp.server  # noqa: F401
    except ImportError:
        raise Failure(f"apidriver mcp needs the MCP SDK (the mcp package): {INSTALL_HINT}") from None
    version = metadata.version("mcp")
    parts = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
    if parts < SDK_VERSION:
        raise Failure(f"apidriver mcp needs mcp {'.'.join(map(str, SDK_VERSION))} or later (found {version}): {INSTALL_HINT} --upgrade")


def _logging(level: str, scrub: Callable[[str], str]) -> None:
    """Everything to stderr (stdout is the protocol's channel with stdio), secrets scrubbed."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_ScrubbingFormatter(scrub))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())


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
    other address needs a bearer token). Logs go to stderr.

    \b
    Example:
        apidriver mcp --connect "APIKey=emulator-key;BaseURL=http://127.0.0.1:8000"
    """
    from .queries import Limits

    if default_rows > max_rows:
        raise click.BadParameter(f"--default-rows {default_rows} is more than --max-rows {max_rows}", param_hint="--default-rows")
    host = port = None
    if address is not None:
        try:
            host, port = parse_address(address)
            check_token(host, token)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--http") from None
    _require_sdk()
    # Read-only unless --allow-writes: the connection's own ReadOnly property (its authorizer refuses the rest).
    conn = open_connection(connection) if allow_writes else open_connection(connection, ReadOnly=True)
    scrub = scrubber(conn.settings["APIKey"], token)
    _logging(log_level, scrub)
    from .server import build_server

    try:  # Ctrl-C ends the server quietly, as it ends the emulator
        limits = Limits(default_rows=default_rows, max_rows=max_rows, timeout=timeout or None)
        server = build_server(conn, limits, scrub)
        state = "read-only" if conn.settings["ReadOnly"] else "writes allowed"
        if host is None or port is None:
            click.echo(f"apidriver mcp: serving MCP on stdio ({state})", err=True)
            server.run("stdio")
        else:
            import anyio

            from .http import serve

            app = server.streamable_http_app(host=host)
            announce: Callable[[str], None] = lambda url: click.echo(f"apidriver mcp: serving MCP on {url} ({state})", err=True)
            anyio.run(serve, app, host, port, token, announce)
    except KeyboardInterrupt:
        pass
    finally:
        conn.close()
