"""``apidriver mcp --http HOST:PORT``: streamable HTTP, where it may listen, and the bearer token it asks for.

It listens on 127.0.0.1 unless told otherwise. Any other address can be
reached from other machines, so it needs a bearer token (``--token`` or
``$APIDRIVER_MCP_TOKEN``): every HTTP request must then carry
``Authorization: Bearer <token>``, compared in constant time, or it is
answered 401 before it reaches the MCP session. On loopback a token is
optional, and checked when given.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import socket
from collections.abc import Callable
from typing import Any

__all__ = ["TOKEN_ENV", "BearerToken", "check_token", "is_loopback", "parse_address", "serve"]

logger = logging.getLogger(__name__)

TOKEN_ENV = "APIDRIVER_MCP_TOKEN"
MIN_TOKEN_LENGTH = 16
PATH = "/mcp"
MAKE_TOKEN = "python -c \"import secrets; print(secrets.token_urlsafe(32))\""

Scope = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[IPV6]:PORT`` or a bare ``PORT`` (on 127.0.0.1); port 0 picks a free one."""
    text = text.strip()
    host, port = "127.0.0.1", text
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":") if rest.startswith(":") else ""
    elif ":" in text:
        host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{text!r} is not HOST:PORT; write e.g. 127.0.0.1:8765 (or 8765 alone; port 0 picks a free one).")
    return host, int(port)


def is_loopback(host: str) -> bool:
    """Whether ``host`` can only be reached from this machine (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_token(host: str, token: str | None) -> None:
    """Refuse a non-loopback address without a token, and a token too short to guess at."""
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise ValueError(f"the bearer token is shorter than {MIN_TOKEN_LENGTH} characters; make one with: {MAKE_TOKEN}")
    if token is None and not is_loopback(host):
        raise ValueError(
            f"--http {host}: an address other than 127.0.0.1 can be reached from other machines, so it needs a bearer token: "
            f"set {TOKEN_ENV} (or pass --token); make one with: {MAKE_TOKEN}"
        )


class BearerToken:
    """ASGI middleware: HTTP requests without ``Authorization: Bearer <token>`` get 401 and reach nothing else."""

    def __init__(self, app: Callable[..., Any], token: str) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # the lifespan
            await self.app(scope, receive, send)
            return
        given = next((value for name, value in scope.get("headers", ()) if name == b"authorization"), b"")
        if hmac.compare_digest(given, self._expected):
            await self.app(scope, receive, send)
            return
        problem = "missing" if not given else "wrong"
        logger.warning("refused an HTTP request from %s: %s bearer token", _client(scope), problem)
        body = json.dumps(
            {"error": "invalid_token", "error_description": f"{problem} bearer token: send Authorization: Bearer <the server's token>"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b'Bearer realm="apidriver mcp"'),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "an unknown client"


def url_of(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}{PATH}"


async def serve(app: Callable[..., Any], host: str, port: int, token: str | None, announce: Callable[[str], None]) -> None:
    """Serve ``app`` (the SDK's streamable HTTP app) until interrupted; ``announce(url)`` once listening."""
    import uvicorn

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.create_server((host, port), family=family, reuse_port=False)
    # Accepted connections inherit it: without it, a small answer after the SSE headers waits for the client's
    # delayed ACK (Nagle), about 40 ms a call.
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    wrapped = BearerToken(app, token) if token is not None else app
    config = uvicorn.Config(wrapped, log_config=None, lifespan="on", timeout_graceful_shutdown=5, server_header=False)
    server = uvicorn.Server(config)
    announce(url_of(host, listener.getsockname()[1]))
    try:
        await server.serve(sockets=[listener])
    finally:
        listener.close()
