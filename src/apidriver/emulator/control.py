"""What sits in front of the emulated API: request log, latency, faults, rate limit.

This is a plain ASGI middleware so that it sees uvicorn's own ``send``: a
``drop`` fault closes the TCP connection without any answer, as a dropped
connection does.

Faults (``POST /_emulator/faults``) match on method, path prefix and
(optionally) a substring of the raw query string (``"query": "page=2"``), and
fire ``count`` times or with probability ``rate``:

- ``500``, ``502``, ``503``, ``429``: answered at once; the request has no
  effect (502/503 have an HTML body, as a proxy in front of the API would send;
  500 and 429 a compact JSON body, as the host writes every body; 429 says
  ``Retry-After: retry_after``, 1 s unless the fault says otherwise).
- ``drop``, ``stall``, ``malformed``: the request IS carried out, then the
  connection is closed without an answer (``drop``), the answer is held back
  for ``stall_seconds`` (``stall``, default 30), or the body is cut short
  (``malformed``). These are the ambiguous failures a client must not retry
  blindly on a POST.

Actions (``POST /_emulator/actions``) change the account once a matching
request has been answered (the ``after``-th one; method, path prefix and
query substring as for faults): ``delete_jobs`` deletes ``count`` jobs from
position ``offset`` of the list (newest first), ``create_jobs`` creates
``count`` jobs (tagged ``tag``), ``advance_clock`` moves the clock ``seconds``
forward. They run on the server's loop before it serves anything else, so a
test can delete or create rows exactly between two pages of a list; each
action records the job ids it touched (``GET /_emulator/actions``).

Every answer carries a ``Date`` header on the emulator's clock (which
``POST /_emulator/clock`` moves), as a server's clock would say it.

Rate limit (on by default in :class:`~.server.Emulator`: 500 requests a
minute, as recorded; ``rate_limit=0`` turns it off): each account may make
``rate_limit`` API requests of each HTTP method per window, which starts at
the first request of that method and lasts ``rate_window`` seconds (60).
The recordings show separate counts for GET, POST and DELETE, and a window
that is not the clock minute. Counted requests carry ``X-RateLimit-Limit``
and ``X-RateLimit-Remaining``; past the limit the answer is ``429`` with
``Retry-After`` (the seconds until the window ends). As in the recorded
traffic, ``GET /v2/users/me``, the sync host and requests without a valid
key are neither counted nor labelled.
"""

from __future__ import annotations

import asyncio
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qsl

from .models import encode

FAULT_KINDS = ("500", "502", "503", "429", "drop", "stall", "malformed")
ACTION_KINDS = ("delete_jobs", "create_jobs", "advance_clock")

Scope = dict[str, Any]


@dataclass
class Fault:
    kind: str
    path: str = "/"
    method: str | None = None
    count: int | None = None
    rate: float | None = None
    stall_seconds: float = 30.0
    query: str | None = None  # only requests whose raw query string contains this
    retry_after: float = 1.0  # the Retry-After of a 429 fault (real servers send whole seconds)

    def __post_init__(self) -> None:
        self.kind = str(self.kind)
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; use one of {', '.join(FAULT_KINDS)}")
        if self.count is None and self.rate is None:
            self.count = 1
        if self.method:
            self.method = self.method.upper()


@dataclass
class Action:
    """A change of the account made once the ``after``-th matching request has been answered."""

    do: str
    path: str = "/"
    method: str | None = None
    query: str | None = None
    after: int = 1
    count: int = 1
    offset: int = 0
    seconds: float = 0.0
    tag: str | None = None
    seen: int = 0  # matching requests answered so far
    done: bool = False
    jobs: list[str] = field(default_factory=list)  # the ids it deleted or created

    def __post_init__(self) -> None:
        if self.do not in ACTION_KINDS:
            raise ValueError(f"unknown action {self.do!r}; use one of {', '.join(ACTION_KINDS)}")
        if int(self.after) < 1 or int(self.count) < 0 or int(self.offset) < 0 or not float(self.seconds) >= 0:
            raise ValueError("after must be 1 or more; count, offset and seconds 0 or more")
        self.after, self.count, self.offset, self.seconds = int(self.after), int(self.count), int(self.offset), float(self.seconds)
        if self.method:
            self.method = self.method.upper()


class Control:
    """Shared, lock-protected state of the middleware, also used from the Python API."""

    def __init__(self, latency_ms: float = 0, rate_limit: int | None = None, rate_window: float = 60.0, seed: int = 0) -> None:
        self.latency = latency_ms / 1000.0
        self.rate_limit = rate_limit or None
        self.rate_window = rate_window
        self._lock = threading.Lock()
        self._log: list[dict[str, Any]] = []
        self._pending: dict[int, dict[str, Any]] = {}  # arrived, not answered yet (id of the entry)
        self._faults: list[Fault] = []
        self._seed = seed
        self._random = random.Random(seed)
        self._windows: dict[str, tuple[float, int]] = {}  # method → (window start, requests counted)
        self._actions: list[Action] = []

    def reset(self) -> None:
        """Forget the request log, the faults and the rate-limit windows (requests under way stay)."""
        with self._lock:
            self._log.clear()
            self._faults.clear()
            self._windows.clear()
            self._random = random.Random(self._seed)

    # request log
    def arrived(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._pending[id(entry)] = entry

    def record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._pending.pop(id(entry), None)
            self._log.append(entry)

    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in self._log]

    def pending(self) -> list[dict[str, Any]]:
        """Requests under way: arrived and not answered yet (a stall, a sync wait)."""
        with self._lock:
            return [dict(e) for e in self._pending.values()]

    def clear_requests(self) -> None:
        with self._lock:
            self._log.clear()

    # faults
    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def faults(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(f) for f in self._faults]

    def match(self, method: str, path: str, query: str = "") -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.method not in (None, "", "*", method) or not path.startswith(fault.path):
                    continue
                if fault.query and fault.query not in query:
                    continue
                if fault.count is not None:
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                    return fault
                if fault.rate is not None and self._random.random() < fault.rate:
                    return fault
            return None

    # actions
    def add_action(self, action: Action) -> None:
        with self._lock:
            self._actions.append(action)

    def clear_actions(self) -> None:
        with self._lock:
            self._actions.clear()

    def actions(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(a) for a in self._actions]

    def due(self, method: str, path: str, query: str = "") -> list[Action]:
        """The actions a request just answered sets off (each once)."""
        with self._lock:
            out = []
            for action in self._actions:
                if action.done or action.method not in (None, "", "*", method) or not path.startswith(action.path):
                    continue
                if action.query and action.query not in query:
                    continue
                action.seen += 1
                if action.seen >= action.after:
                    action.done = True
                    out.append(action)
            return out

    # rate limit
    def take(self, method: str = "GET") -> tuple[bool, int, float]:
        """Count one request of ``method``: (allowed, remaining, seconds until its window resets)."""
        assert self.rate_limit is not None
        with self._lock:
            now = time.monotonic()
            start, count = self._windows.get(method, (0.0, 0))
            if count == 0 or now - start >= self.rate_window:
                start, count = now, 0
            reset = start + self.rate_window - now
            if count >= self.rate_limit:
                self._windows[method] = (start, count)
                return False, 0, reset
            count += 1
            self._windows[method] = (start, count)
            return True, self.rate_limit - count, reset


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


async def _send_whole(send: Any, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class ControlMiddleware:
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
            await self._handle(scope, receive, logged_send, entry)
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

    async def _handle(self, scope: Scope, receive: Any, send: Any, entry: dict[str, Any]) -> None:
        control = self.control
        if control.latency:
            await asyncio.sleep(control.latency)
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
                await _send_whole(send, status, headers, body)
                return
            extra = [(b"x-ratelimit-limit", limit), (b"x-ratelimit-remaining", str(remaining).encode())]

        if fault is None:
            async def passthrough(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    entry["status"] = message["status"]
                    message = {**message, "headers": list(message.get("headers", [])) + extra}
                await send(message)

            await self.app(scope, receive, passthrough)
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
