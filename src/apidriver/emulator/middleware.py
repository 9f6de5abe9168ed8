"""The ASGI middleware in front of the emulated API: it logs each request, adds the latency,
answers or breaks requests by the faults, counts the rate limit, runs the actions a request sets
off once it is answered (see :mod:`.control` for all of them) and dates every answer.

Latency: an answer starts ``latency`` after its request arrived (or when its work is done, if
that takes longer). The work is done on arrival and the answer held until it is due, so
requests under way together each take the latency, as on a server that serves them in
parallel, instead of each waiting the latency and then queueing behind the others' work on
the one event loop. The request log's ``time`` is the arrival, ``duration_ms`` runs to the
start of the answer, and the ``Date`` header is taken as the answer starts.

It is a plain ASGI middleware so that it sees uvicorn's own ``send``: a
``drop`` fault closes the TCP connection without any answer, as a dropped
connection does.

Every answer carries a ``Date`` header on the emulator's clock (which
``POST /_emulator/clock`` moves), as a server's clock would say it.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qsl

from .control import Action, Control
from .models import encode

Scope = dict[str, Any]


def _json(
    status: int, body: Any, headers: list[tuple[bytes, bytes]] | None = None, *, sync: bool = False
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """A JSON answer written as the host writes every body (compact; see ``models.encode``)."""
    data = encode(body, php=not sync)
    kind = b"application/json; charset=utf-8" if sync else b"application/json"
    return status, [(b"content-type", kind), (b"content-length", str(len(data)).encode())] + (headers or []), data


def _html(status: int, title: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    data = f"<html><head><title>{status} {title}</title></head><body><center><h1>{status} {title}</h1></center><hr><center>nginx</center></body></html>\n".encode()
    return status, [(b"content-type", b"text/html"), (b"content-length", str(len(data)).encode())], data


async def _until(at: float) -> None:
    """Sleep until ``at`` (``time.monotonic()``), if it is still to come."""
    left = at - time.monotonic()
    if left > 0:
        await asyncio.sleep(left)


async def _send_whole(send: Any, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class ControlMiddleware:
    """Wraps the Starlette app; ``/_emulator`` requests pass untouched (but dated)."""

    def __init__(
        self,
        app: Any,
        control: Control,
        is_valid_key: Any,
        clock: Callable[[], float] = time.time,
        run_action: Callable[[Action], None] | None = None,
    ) -> None:
        self.app = app
        self.control = control
        self.is_valid_key = is_valid_key
        self.clock = clock
        self.run_action = run_action

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cycle = getattr(send, "__self__", None)  # uvicorn's request cycle: its transport, for drop and stop
        send = self._dated(send)
        if scope["path"].startswith("/_emulator"):
            await self.app(scope, receive, send)
            return
        await self._logged(scope, receive, send, cycle)
        if self.run_action is not None:
            query = scope.get("query_string", b"").decode("latin-1")
            for action in self.control.due(scope["method"], scope["path"], query):
                self.run_action(action)

    def _dated(self, send: Any) -> Any:
        """``send`` adding a ``Date`` header on the emulator's clock to the answer."""
        clock = self.clock

        async def dated(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"date"]
                headers.append((b"date", formatdate(clock(), usegmt=True).encode()))
                message = {**message, "headers": headers}
            await send(message)

        return dated

    async def _logged(self, scope: Scope, receive: Any, send: Any, cycle: Any) -> None:
        started = time.monotonic()
        method = scope["method"]
        path = scope["path"]
        query = scope.get("query_string", b"").decode("latin-1")
        entry: dict[str, Any] = {
            "method": method,
            "path": path,
            "raw_path": (scope.get("raw_path") or path.encode()).decode("latin-1"),  # as sent: percent-encoded
            "query": query,
            "params": parse_qsl(query, keep_blank_values=True),
            "status": None,
            "fault": None,
            "time": time.time(),
        }
        recorded = False
        self.control.arrived(entry)

        def finish() -> None:
            nonlocal recorded
            if not recorded:
                recorded = True
                entry["duration_ms"] = round((time.monotonic() - started) * 1000, 3)
                self.control.record(entry)

        async def logged_send(message: dict[str, Any]) -> None:
            # Log before the answer goes out, so a client that has its
            # answer always finds the request in the log.
            # A bodiless answer (204) is complete as soon as its headers are out.
            if message["type"] == "http.response.start":
                if entry["status"] is None:
                    entry["status"] = message["status"]
                finish()
            await send(message)

        logged_send.transport = getattr(cycle, "transport", None)  # type: ignore[attr-defined]
        logged_send.finish = finish  # type: ignore[attr-defined]
        try:
            await self._handle(scope, receive, logged_send, entry, started + self.control.latency)
        except asyncio.CancelledError:
            # The emulator is stopping while this request waits (a stall, a sync wait):
            # close the connection without an answer, quietly, as a server going away
            # does (uvicorn's own cycle flag tells it no answer is due; nothing is awaited,
            # as the loop is about to cancel everything again).
            transport = getattr(cycle, "transport", None)
            if transport is None or not hasattr(cycle, "disconnected"):
                raise
            transport.abort()
            cycle.disconnected = True
        finally:
            finish()

    def _counted(self, scope: Scope) -> bool:
        path = scope["path"]
        if not path.startswith("/v2/") or (scope["method"] == "GET" and path == "/v2/users/me"):
            return False
        headers = dict(scope.get("headers") or [])
        auth = headers.get(b"authorization", b"").decode("latin-1")
        return auth.startswith("Bearer ") and bool(self.is_valid_key(auth[7:].strip()))

    async def _handle(self, scope: Scope, receive: Any, send: Any, entry: dict[str, Any], answer_at: float) -> None:
        """Serve one request; its answer starts at ``answer_at`` (``time.monotonic()``), its arrival
        plus the latency, or as soon as its work is done if that takes longer."""
        control = self.control
        fault = control.match(scope["method"], scope["path"], entry["query"])
        if fault is not None:
            entry["fault"] = fault.kind
        sync = scope["path"].startswith("/sync/")
        if fault is not None and fault.kind in ("500", "502", "503", "429"):
            if fault.kind == "500":
                status, headers, body = _json(500, {"message": "Server Error", "code": "INTERNAL_SERVER_ERROR"}, sync=sync)
            elif fault.kind == "429":
                retry_after = f"{fault.retry_after:g}".encode()
                status, headers, body = _json(
                    429, {"message": "Too Many Attempts.", "code": "TOO_MANY_REQUESTS"}, [(b"retry-after", retry_after)], sync=sync
                )
            else:
                status, headers, body = _html(int(fault.kind), "Bad Gateway" if fault.kind == "502" else "Service Temporarily Unavailable")
            entry["status"] = status
            await _until(answer_at)
            await _send_whole(send, status, headers, body)
            return
        extra: list[tuple[bytes, bytes]] = []
        if control.rate_limit is not None and self._counted(scope):
            allowed, remaining, reset = control.take(scope["method"])
            limit = str(control.rate_limit).encode()
            if not allowed:
                status, headers, body = _json(
                    429,
                    {"message": "Too Many Attempts.", "code": "TOO_MANY_REQUESTS"},
                    [
                        (b"retry-after", str(max(1, math.ceil(reset))).encode()),
                        (b"x-ratelimit-limit", limit),
                        (b"x-ratelimit-remaining", b"0"),
                        (b"x-ratelimit-reset", str(int(time.time() + reset)).encode()),
                    ],
                )
                entry["status"] = status
                await _until(answer_at)
                await _send_whole(send, status, headers, body)
                return
            extra = [(b"x-ratelimit-limit", limit), (b"x-ratelimit-remaining", str(remaining).encode())]

        if fault is None:
            async def passthrough(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    entry["status"] = message["status"]
                    message = {**message, "headers": list(message.get("headers", [])) + extra}
                await send(message)

            if answer_at <= time.monotonic():  # no latency (or none left): the answer goes out as it is made
                await self.app(scope, receive, passthrough)
                return
            # The request's work is done now, within the latency, and its answer held until it is due:
            # requests under way at once each take the latency, as on a server that serves them in
            # parallel, rather than queueing behind one another's work after it.
            held: list[dict[str, Any]] = []

            async def hold(message: dict[str, Any]) -> None:
                held.append(message)

            try:
                await self.app(scope, receive, hold)
            except Exception:  # an error's 500 (sent, then raised) goes out too, when due
                await _until(answer_at)
                for message in held:
                    await passthrough(message)
                raise
            await _until(answer_at)
            for message in held:
                await passthrough(message)
            return

        # Ambiguous faults: carry the request out, then fail the answer.
        captured: dict[str, Any] = {"status": 200, "headers": [], "body": b""}

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["headers"] = list(message.get("headers", [])) + extra
            elif message["type"] == "http.response.body":
                captured["body"] += message.get("body", b"")

        await self.app(scope, receive, capture)
        await _until(answer_at)
        if fault.kind == "drop":
            transport = getattr(send, "transport", None)
            if transport is not None:
                getattr(send, "finish", lambda: None)()
                transport.abort()
                await asyncio.sleep(0.01)
                return
            # Any other server: promise more bytes than we send; the server closes.
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"100000")]})
            await send({"type": "http.response.body", "body": b"{", "more_body": True})
            return
        if fault.kind == "stall":
            await asyncio.sleep(fault.stall_seconds)
            entry["status"] = captured["status"]
            await _send_whole(send, captured["status"], captured["headers"], captured["body"])
            return
        # malformed: a 200 whose JSON body is cut in half
        body = captured["body"][: max(1, len(captured["body"]) // 2)]
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        entry["status"] = 200
        await _send_whole(send, 200, headers, body)
