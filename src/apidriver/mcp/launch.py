"""Starting ``apidriver mcp``: the SDK, the connection (as ``apidriver query`` opens it), logging, the transport.

The command's options are in :mod:`apidriver.cli.mcp`. This module imports
neither the SDK nor the server until :func:`serve` runs, so that the rest
of the command line works without the ``mcp`` extra.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from importlib import metadata

import click

from ..cli.connecting import open_connection
from ..cli.errors import Failure
from .http import parse_address

__all__ = ["scrubber", "serve"]

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


def serve(
    connection: str | None,
    address: str | None,
    token: str | None,
    allow_writes: bool,
    default_rows: int,
    max_rows: int,
    timeout: float,
    log_level: str,
) -> None:
    """Start the server as ``apidriver mcp`` was told (the options are checked already) and serve until the client leaves."""
    from .queries import Limits

    host, port = parse_address(address) if address is not None else (None, None)
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

            from .http import serve as serve_http

            app = server.streamable_http_app(host=host)
            announce: Callable[[str], None] = lambda url: click.echo(f"apidriver mcp: serving MCP on {url} ({state})", err=True)
            anyio.run(serve_http, app, host, port, token, announce)
    except KeyboardInterrupt:
        pass
    finally:
        conn.close()
