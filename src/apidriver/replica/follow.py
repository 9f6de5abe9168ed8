"""Keeping a replica current: webhook deliveries written as they arrive, or polling.

With a listen address and a public URL, :class:`Follower` serves HTTP,
registers a webhook for the profile's events (``INSERT INTO Webhooks``),
checks each delivery's signature with the webhook's secret, reads the
objects the delivery names from the API and writes them, answers 200 once
they are committed, and runs an incremental sync every ``interval`` seconds
to catch anything a delivery missed. On the way out (Ctrl-C, SIGTERM,
:meth:`Follower.stop`) it deletes its webhook. A webhook left by a follower
that was killed (same URL) is deleted when the next one starts.

A delivery is a signal, not a state: CloudConvert's signature carries no
time or nonce, so a retried delivery can arrive after newer ones, and a
captured one can be replayed. Writing its payload could roll a row back
(a ``job.created`` re-sent after the job finished). So each delivery costs
one request, the object's current state, and an older state never replaces
a newer one (:mod:`.writer`); only when the API no longer has the object is
the payload used, if it shows more progress than the row
(:meth:`~.replicator.Replicator.refresh`).

The listener bounds what clients can hold: a read times out after
``read_timeout`` seconds, a request must be complete within
``request_deadline`` seconds, and at most ``max_connections`` are served at
once (more are answered 503 at once, which the API retries later).

Without a public URL it syncs every ``interval`` seconds.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .. import exceptions as exc
from .replicator import Replicator
from .report import SyncReport
from .upstream import ApiConnection

MAX_BODY = 16 * 2**20  # bytes of one delivery (a job with its tasks is a few KiB)
READ_TIMEOUT = 10.0  # seconds a listener's read waits for the client
REQUEST_DEADLINE = 30.0  # seconds a client has to send a whole delivery
MAX_CONNECTIONS = 32  # deliveries served at once; more are answered 503 (the API retries)
BUSY = b"HTTP/1.0 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
KEY_LOCKS = 64  # deliveries of one object are handled one at a time (by hash of its key)


@dataclass
class Delivery:
    """One webhook delivery as the follower handled it."""

    event: str
    keys: list[str]
    received: float  # time.time() when the request arrived
    written: float | None  # when its rows were committed (None: refused)
    status: int


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (or ``:PORT``, or ``PORT``) as an address to listen on."""
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = "", value
    try:
        number = int(port)
    except ValueError:
        raise exc.ProgrammingError(f"Bad listen address {value!r}: use HOST:PORT, e.g. 0.0.0.0:8787.") from None
    if not 0 <= number <= 65535:
        raise exc.ProgrammingError(f"Bad port in {value!r}: use 0 to 65535.")
    return host.strip("[]") or "127.0.0.1", number


class _Listener(ThreadingHTTPServer):
    """A thread per delivery, but a bounded number of them, each with a deadline."""

    daemon_threads = True
    request_queue_size = 128  # connections waiting to be accepted (socketserver's default, 5, drops bursts)

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], max_connections: int, deadline: float) -> None:
        self._slots = threading.BoundedSemaphore(max_connections)
        self.deadline = deadline
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            try:
                request.settimeout(0.1)
                request.sendall(BUSY)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        timer = threading.Timer(self.deadline, _cut, (request,))
        timer.daemon = True
        timer.start()
        try:
            super().process_request_thread(request, client_address)
        finally:
            timer.cancel()
            self._slots.release()


def _cut(request: Any) -> None:
    """End a connection that overstayed its deadline (its thread's read then fails at once)."""
    try:
        request.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class Follower:
    """Follows an account into a replica until :meth:`stop` (or a signal) ends it."""

    def __init__(
        self,
        connection: ApiConnection,
        replicator: Replicator,
        tables: Iterable[str] | str | None = None,
        interval: float = 60.0,
        listen: str | None = None,
        public_url: str | None = None,
        on_sync: Callable[[SyncReport], None] | None = None,
        on_delivery: Callable[[Delivery], None] | None = None,
        read_timeout: float = READ_TIMEOUT,
        request_deadline: float = REQUEST_DEADLINE,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        if (listen is None) != (public_url is None):
            raise exc.ProgrammingError("Webhooks need both --listen HOST:PORT and --public-url URL (the URL the API can reach).")
        hints: Mapping[str, Any] = connection.profile.extras.get("replica", {})
        self.webhooks: Mapping[str, Any] | None = hints.get("webhooks")
        if listen is not None and self.webhooks is None:
            raise exc.NotSupportedError(f"The {connection.profile.name} profile declares no webhooks: follow by polling (no --listen).")
        self.connection = connection
        self.replicator = replicator
        self.tables = tables
        self.interval = interval
        self.listen = parse_listen(listen) if listen is not None else None
        self.public_url = public_url
        self.on_sync = on_sync
        self.on_delivery = on_delivery
        self.webhook_id: Any = None
        self.secret: str | None = None
        self.read_timeout = read_timeout
        self.request_deadline = request_deadline
        self.max_connections = max_connections
        self._stop = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._written = set(replicator.resolve(tables))
        self._key_locks = [threading.Lock() for _ in range(KEY_LOCKS)]

    @property
    def address(self) -> tuple[str, int] | None:
        """Where the listener listens (the port once bound)."""
        if self._server is None:
            return None
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self) -> None:
        """Sync, then keep the replica current until stopped; the webhook is deleted on the way out."""
        try:
            if self.listen is not None:
                self._serve()
                self._register()
            while not self._stop.is_set():
                report = self.replicator.run(self.tables)
                if self.on_sync is not None:
                    self.on_sync(report)
                self._stop.wait(self.interval)
        finally:
            self.close()

    def close(self) -> None:
        self._stop.set()
        try:
            self._unregister()
        finally:
            if self._server is not None:
                self._server.shutdown()
                self._server.server_close()
                self._server = None

    # -- the webhook -------------------------------------------------------------------------------

    def _register(self) -> None:
        assert self.webhooks is not None and self.public_url is not None
        table = self.webhooks["table"]
        cursor = self.connection.cursor()
        cursor.execute(f'DELETE FROM "{table}" WHERE url = ?', (self.public_url,))  # left by a follower that was killed
        cursor.execute(
            f'INSERT INTO "{table}" (url, events) VALUES (?, ?) RETURNING id, signing_secret',
            (self.public_url, list(self.webhooks["events"])),
        )
        row = cursor.fetchone()
        assert row is not None
        self.webhook_id, self.secret = row

    def _unregister(self) -> None:
        if self.webhook_id is None or self.webhooks is None:
            return
        webhook_id, self.webhook_id = self.webhook_id, None
        cursor = self.connection.cursor()
        cursor.execute(f'DELETE FROM "{self.webhooks["table"]}" WHERE id = ?', (webhook_id,))

    # -- the listener --------------------------------------------------------------------------------

    def _serve(self) -> None:
        assert self.listen is not None
        follower = self

        class Handler(BaseHTTPRequestHandler):
            timeout = follower.read_timeout  # each read of the connection (StreamRequestHandler sets it)

            def do_POST(self) -> None:  # noqa: N802
                received = time.time()
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    length = -1
                delivery: Delivery | None
                if not 0 <= length <= MAX_BODY:
                    status, delivery = 413, Delivery("", [], received, None, 413)
                else:
                    status, delivery = follower.handle(self.rfile.read(length), self.headers, received)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                if follower.on_delivery is not None and delivery is not None:
                    follower.on_delivery(delivery)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = _Listener(self.listen, Handler, self.max_connections, self.request_deadline)
        threading.Thread(target=self._server.serve_forever, name="apidriver-follow", daemon=True).start()

    def handle(self, body: bytes, headers: Any, received: float) -> tuple[int, Delivery | None]:
        """One delivery: 401 without a valid signature, else its objects are read from the API and
        written, and 200 answered (503 if that failed: the API delivers again later).

        ``headers`` is the request's header mapping (any case of the names).
        """
        hooks = self.webhooks
        assert hooks is not None
        signature = headers.get(hooks["signature_header"]) or ""
        if self.secret is None or not hooks["verify"](body, signature, self.secret):
            return 401, Delivery("", [], received, None, 401)
        try:
            payload = json.loads(body)
        except ValueError:
            return 400, Delivery("", [], received, None, 400)
        table, objects = hooks["objects"](payload)
        event = str(payload.get("event", "")) if isinstance(payload, dict) else ""
        spec = self.replicator.specs[table]
        keys = [str(spec.key_of(o)[0]) for o in objects]
        if not objects:
            return 200, Delivery(event, keys, received, time.time(), 200)
        try:
            with self._key_locks[hash(keys[0]) % KEY_LOCKS]:
                self.replicator.refresh(table, objects, self._written)
        except exc.Error:
            return 503, Delivery(event, keys, received, None, 503)  # the API retries the delivery
        return 200, Delivery(event, keys, received, time.time(), 200)
