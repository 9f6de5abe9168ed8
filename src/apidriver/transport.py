"""What httpx does not do for us: a deadline for a whole exchange, and a cap on what a body may hold.

httpx's timeouts bound each socket operation, not a request: a server that
sends its headers or its body one byte a second never trips them. Here,
every read, write, connect and TLS handshake of the client's connections is
given at most the time left until the deadline of the exchange under way in
that thread (:func:`deadline`), and fails with httpcore's own timeout errors
(which httpx turns into ``httpx.ReadTimeout`` and friends) once it has
passed. httpx offers no hook for this, so :func:`enforce_deadlines` wraps the
network backend of the connection pools the client built (httpcore's public
``NetworkBackend`` interface, reached through httpx's private attributes:
``tests/hostile`` fails if a new httpx moves them).

:func:`read_body` reads a streamed body with a cap on its decoded size. A
compressed body is fed to the decoder in small pieces, so one piece of a
gzip bomb inflates to about a megabyte at most before the cap is checked.
Only the encodings the client asks for (``gzip``, ``deflate``, one layer)
are accepted: brotli or zstd bombs, or a body compressed twice, inflate far
more per byte.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpcore
import httpx

ACCEPT_ENCODING = "gzip, deflate"
ENCODINGS = frozenset({"", "identity", "gzip", "deflate"})
# Compressed bytes handed to the decoder at once: gzip inflates at most ~1032x,
# so one piece makes about a megabyte before the size is checked again.
PIECE = 1024


_TLS: ssl.SSLContext | None = None
_TLS_LOCK = threading.Lock()


def tls_context() -> ssl.SSLContext:
    """The TLS settings every HTTP client of the process shares (httpx's defaults).

    Building them loads the CA bundle, about 20 ms and a megabyte of C
    memory each time: per client, that was most of the cost of ``connect()``
    and, for programs that open many connections, a steady growth of memory.
    """
    global _TLS
    with _TLS_LOCK:
        if _TLS is None:
            _TLS = httpx.create_ssl_context()
        return _TLS


class _Deadlines(threading.local):
    at: float | None = None


_DEADLINES = _Deadlines()


@contextmanager
def deadline(at: float) -> Iterator[None]:
    """The exchanges of this thread inside the block end by ``at`` (``time.monotonic()`` seconds)."""
    previous = _DEADLINES.at
    _DEADLINES.at = at
    try:
        yield
    finally:
        _DEADLINES.at = previous


def _left(timeout: float | None, error: type[Exception]) -> float | None:
    """``timeout`` cut to what is left of this thread's deadline; ``error`` once it has passed."""
    at = _DEADLINES.at
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise error("The time allowed for the whole request and its answer ran out.")
    return left if timeout is None else min(timeout, left)


class DeadlineStream(httpcore.NetworkStream):
    """A connection whose every operation ends by the deadline of the exchange using it."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None) -> httpcore.NetworkStream:
        return DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, _left(timeout, httpcore.ConnectTimeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """Opens connections as ``backend`` does, each a :class:`DeadlineStream`."""

    def __init__(self, backend: httpcore.NetworkBackend) -> None:
        self._backend = backend

    def connect_tcp(
        self, host: str, port: int, timeout: float | None = None, local_address: str | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        stream = self._backend.connect_tcp(host, port, _left(timeout, httpcore.ConnectTimeout), local_address, socket_options)
        return DeadlineStream(stream)

    def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options: Any = None) -> httpcore.NetworkStream:
        return DeadlineStream(self._backend.connect_unix_socket(path, _left(timeout, httpcore.ConnectTimeout), socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def enforce_deadlines(client: httpx.Client) -> bool:
    """Make the connections of ``client`` (direct and through proxies) obey :func:`deadline`.

    Returns whether every connection pool could be reached.
    """
    transports = [client._transport, *client._mounts.values()]
    reached = True
    for transport in transports:
        if transport is None:
            continue
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if not isinstance(backend, httpcore.NetworkBackend):
            reached = False
            continue
        if not isinstance(backend, DeadlineBackend):
            pool._network_backend = DeadlineBackend(backend)  # type: ignore[union-attr]
    return reached


class BodyRefused(Exception):
    """A body the client will not take: larger than allowed (``too_large``), or in an encoding it did not ask for."""

    def __init__(self, message: str, too_large: bool = False) -> None:
        super().__init__(message)
        self.too_large = too_large


def read_body(response: httpx.Response, limit: int) -> bytearray:
    """The decoded body of a streamed ``response``, refusing it past ``limit`` bytes."""
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding not in ENCODINGS:
        raise BodyRefused(f"it is encoded as {encoding[:40]!r}, which was not asked for (only {ACCEPT_ENCODING})")
    if encoding in ("", "identity"):
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise BodyRefused(f"it is {int(declared):,} bytes long, more than MaxResponseSize ({limit:,} bytes)", True)
    else:
        response.stream = _Pieces(response.stream)
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > limit:
            what = "decompressed, it is" if encoding not in ("", "identity") else "it is"
            raise BodyRefused(f"{what} more than MaxResponseSize ({limit:,} bytes)", True)
    return body


class _Pieces(httpx.SyncByteStream):
    """A raw body stream cut into small pieces, so that decoding each stays small."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._stream:
            for start in range(0, len(chunk), PIECE):
                yield chunk[start : start + PIECE]

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()
