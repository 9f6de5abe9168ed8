"""Small misbehaving HTTP servers on 127.0.0.1, written on raw sockets.

A :class:`HostileServer` accepts connections on a free port and hands each
request to a handler, which answers through a :class:`Wire`: a well-formed
reply, or anything else (a drip, a lie, a cut connection, raw bytes). Raw
sockets, because the point is to send what no HTTP framework would.

The handlers used by the tests live beside them; :func:`jobs_page` builds a
CloudConvert-shaped list page (``data``, ``links``, ``meta``) so that a
server can answer page 1 correctly and then misbehave.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

KEY = "sk-HOSTILE-CANARY-5f1e2d"

REASONS = {
    200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 206: "Partial Content",
    301: "Moved Permanently", 302: "Found", 303: "See Other", 304: "Not Modified",
    307: "Temporary Redirect", 308: "Permanent Redirect", 401: "Unauthorized", 404: "Not Found",
    500: "Internal Server Error",
}


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.target).query, keep_blank_values=True))

    @property
    def page(self) -> int:
        return int(self.query.get("page", "1"))

    @property
    def per_page(self) -> int:
        return int(self.query.get("per_page", "100"))


class Wire:
    """One client connection, as the handler answers on it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.closed = False

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def reply(
        self,
        status: int,
        body: bytes | str | Any = b"",
        *,
        headers: Iterable[tuple[str, str]] = (),
        content_type: str | None = "application/json",
        length: int | None = None,
        reason: str | None = None,
    ) -> None:
        """A complete answer; ``body`` that is not bytes/str is sent as JSON; ``length`` overrides Content-Length."""
        if not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        data = body.encode() if isinstance(body, str) else body
        self.send(head(status, headers, content_type, len(data) if length is None else length, reason) + data)

    def drip(self, data: bytes, interval: float, stop: threading.Event) -> None:
        """``data`` one byte at a time, ``interval`` seconds apart (ends when the client goes)."""
        for i in range(len(data)):
            if stop.is_set():
                return
            try:
                self.sock.sendall(data[i : i + 1])
            except OSError:
                return
            stop.wait(interval)

    def close(self) -> None:
        """Close the connection (after what was sent so far)."""
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def head(
    status: int,
    headers: Iterable[tuple[str, str]] = (),
    content_type: str | None = "application/json",
    length: int | None = None,
    reason: str | None = None,
) -> bytes:
    """A status line and headers, ending with the blank line."""
    lines = [f"HTTP/1.1 {status} {reason if reason is not None else REASONS.get(status, 'Whatever')}"]
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    if length is not None:
        lines.append(f"Content-Length: {length}")
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


Handler = Callable[[Request, Wire], None]


class HostileServer:
    """An HTTP/1.1 server on a free port of 127.0.0.1 that answers through ``handler``.

    Keeps every request it got (``requests``); ``stop()`` closes the
    listening socket and every open connection, and ends every drip.
    """

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[Request] = []
        self.stopping = threading.Event()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, name="hostile-accept", daemon=True)

    def start(self) -> HostileServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        try:
            self._listener.close()
        except OSError:
            pass
        with self._lock:
            for sock in list(self._open):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
            self._open.clear()

    def __enter__(self) -> HostileServer:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def count(self, method: str = "GET", path: str | None = None) -> int:
        """Requests received with this method (and path)."""
        return sum(1 for r in self.requests if r.method == method and (path is None or r.path == path))

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._open.add(sock)
            threading.Thread(target=self._serve, args=(sock,), name="hostile-conn", daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        wire = Wire(sock)
        buffer = b""
        try:
            while not wire.closed and not self.stopping.is_set():
                request, buffer = read_request(sock, buffer)
                if request is None:
                    return
                self.requests.append(request)
                self.handler(request, wire)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(sock)
            try:
                sock.close()
            except OSError:
                pass


def read_request(sock: socket.socket, buffer: bytes) -> tuple[Request | None, bytes]:
    """The next request on ``sock`` (None when the client closed), and what was read past it."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            return None, b""
        buffer += chunk
    header_bytes, buffer = buffer.split(b"\r\n\r\n", 1)
    lines = header_bytes.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(buffer) < length:
        chunk = sock.recv(65536)
        if not chunk:
            return None, b""
        buffer += chunk
    return Request(method, target, headers, buffer[:length]), buffer[length:]


# -- CloudConvert-shaped answers -----------------------------------------------------------------


def job(number: int) -> dict[str, Any]:
    """A finished job, ``job-0001`` style (newest first means the highest number first)."""
    job_id = f"job-{number:04d}"
    return {
        "id": job_id,
        "tag": f"t{number}",
        "status": "finished",
        "created_at": f"2026-12-04T10:{number // 60 % 60:02d}:{number % 60:02d}+00:00",
        "started_at": None,
        "ended_at": None,
        "tasks": [],
        "links": {"self": f"https://api.cloudconvert.com/v2/jobs/{job_id}"},
    }


def jobs_page(request: Request, total: int, *, page: int | None = None) -> dict[str, Any]:
    """Page ``page`` (default: the one asked for) of a list of ``total`` jobs, in the API's envelope."""
    number = request.page if page is None else page
    size = request.per_page
    start = (number - 1) * size
    data = [job(total - i) for i in range(start, min(total, start + size))]
    more = start + size < total
    return {
        "data": data,
        "links": {
            "first": f"https://api.cloudconvert.com/v2/jobs?page=1",
            "last": None,
            "prev": None if number == 1 else f"https://api.cloudconvert.com/v2/jobs?page={number - 1}",
            "next": f"https://api.cloudconvert.com/v2/jobs?page={number + 1}" if more else None,
        },
        "meta": {"current_page": number, "from": start + 1, "path": "https://api.cloudconvert.com/v2/jobs", "per_page": size, "to": start + len(data)},
    }


@dataclass
class Scripted:
    """A handler that answers the healthy list of ``total`` jobs, except where ``hostile`` says otherwise.

    ``hostile(request, wire)`` returns True when it answered the request itself.
    """

    total: int
    hostile: Callable[[Request, Wire], bool] = lambda request, wire: False
    seen: list[Request] = field(default_factory=list)

    def __call__(self, request: Request, wire: Wire) -> None:
        if self.hostile(request, wire):
            return
        if request.method == "GET" and request.path == "/v2/jobs":
            wire.reply(200, jobs_page(request, self.total))
        elif request.method == "GET" and request.path.startswith("/v2/jobs/"):
            number = int(request.path.rsplit("-", 1)[-1]) if "-" in request.path else 0
            if 1 <= number <= self.total:
                wire.reply(200, {"data": job(number)})
            else:
                wire.reply(404, {"message": "Not found", "code": "NOT_FOUND"})
        elif request.method == "DELETE" and request.path.startswith("/v2/jobs/"):
            wire.reply(204, content_type=None, length=0)
        elif request.method == "POST" and request.path == "/v2/jobs":
            wire.reply(201, {"data": {**job(self.total + 1), "status": "waiting"}})
        else:
            wire.reply(404, {"message": "Not found", "code": "NOT_FOUND"})


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.01)
    return condition()
