"""The HTTP client: one pooled httpx client per connection, retries, errors.

This module knows HTTP and nothing of SQL. Every API or network failure is
turned into a DB-API exception here, in one place, with a message that says
what happened and what to do. The API key travels only in the
``Authorization`` header; it is never logged and never part of a message.

An answer is the API's answer only if it is one the API documents; anything
else is an error, never an empty result:

- GET succeeds with 200 and a JSON body; POST with 200, 201 or 202 and a
  JSON body; DELETE with 204, or 200/202 and a JSON body. A 404 is an answer
  where the caller allows it (a lookup by id).
- ``Timeout`` bounds each attempt as a whole (connecting, sending, the
  headers and the body; :mod:`.transport`), not each socket read: a server
  that drips bytes fails like one that does not answer.
- Bodies are read streaming, decoded (gzip or deflate only) and refused past
  ``MaxResponseSize`` bytes, so memory stays bounded whatever comes back.

Retry policy:

- GET and DELETE are idempotent: 5xx answers, timeouts, dropped connections,
  bodies cut short, and 200s without JSON (an empty body, an HTML page from a
  proxy, invalid JSON: often a glitch on the way) are retried ``max_retries``
  times with exponential backoff, then raise :class:`APIUnavailableError`.
- POST is retried only when the request certainly did not take effect: the
  connection could not be opened, or the API answered 429. After a timeout,
  a dropped connection, a 5xx, or a success without the JSON it should
  carry, the outcome is unknown, so it raises :class:`AmbiguousWriteError`
  instead of risking a duplicate.
- A DELETE is idempotent too: when an attempt got no answer (timeout,
  dropped connection, unreadable body) and the retry answers 404, the first
  attempt took effect, and the DELETE succeeded.
- Answers the same request would get again are not retried: a redirect
  (3xx, never followed: the key stays with BaseURL), a status the API does
  not use for the method (1xx, 203, 206, 6xx, ...), a body past
  ``MaxResponseSize`` or in an encoding not asked for. A read raises
  :class:`UnexpectedResponseError`; a write :class:`AmbiguousWriteError`,
  since it may have taken effect.
- 429 waits for ``Retry-After`` (at most ``max_wait`` seconds each time, a
  few times), then raises :class:`RateLimitError`.
- A request whose URL would be longer than servers accept
  (``MAX_URL_LENGTH``), or that has a ``.`` or ``..`` path segment (which
  would address another endpoint), is refused before anything is sent; so is
  any request from a child process made by ``fork()`` (the connection's
  sockets and threads belong to the parent).

What a list page or an object must look like is the engine's concern
(``engine.streams.page_data``): here, only HTTP and JSON.

Waits and retries are logged at INFO on the ``apidriver`` logger, give-ups
at WARNING, each request at DEBUG. A :class:`~.cancel.Cancel` passed with a
request ends its backoffs and waits, and stops its retries.
"""

from __future__ import annotations

import email.utils
import hashlib
import logging
import os
import random
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import orjson

from . import exceptions as exc
from . import transport
from .cancel import Cancel
from .transport import ACCEPT_ENCODING, BodyRefused, enforce_deadlines, read_body

logger = logging.getLogger("apidriver")
logger.addHandler(logging.NullHandler())  # a library: the application decides where records go

RETRYABLE_STATUS = frozenset({500, 502, 503, 504})
# The successful statuses the API answers, by method ("": any other method). Anything else
# that is not a 4xx/5xx (a redirect, 1xx, 203, 206, 6xx) is not the API's answer.
SUCCESS: dict[str, frozenset[int]] = {
    "GET": frozenset({200}),
    "HEAD": frozenset({200}),
    "POST": frozenset({200, 201, 202}),
    "DELETE": frozenset({200, 202, 204}),
    "": frozenset({200, 201, 202, 204}),
}
# An error answer is read for its message and code only: this much is plenty.
ERROR_BODY_LIMIT = 1 << 20
# MaxResponseSize's default: far above a page of 1,000 jobs with their tasks.
DEFAULT_MAX_RESPONSE_SIZE = 32 << 20
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Longer URLs are refused by common front ends (nginx answers 414 past 8 KB of request line).
MAX_URL_LENGTH = 8000
Params = Sequence[tuple[str, str]]


def sentence(text: str) -> str:
    """``text`` ending with a full stop (API messages often have none)."""
    text = text.rstrip()
    return text if not text or text[-1] in ".!?" else text + "."


def segment(value: Any) -> str | None:
    """``value`` as exactly one percent-encoded path segment; None for ``.``, ``..`` and the empty string,
    which name no object (sent, they would address another endpoint)."""
    text = str(value)
    if text in ("", ".", ".."):
        return None
    return quote(text, safe="")


def _dot_segment(url: str) -> bool:
    path = urlsplit(url).path
    return any(part in (".", "..") for part in path.split("/"))


@dataclass
class RequestRecord:
    """One HTTP exchange as the cursor and the logs show it (no secrets)."""

    method: str
    url: str
    status: int | None
    duration_ms: float
    attempt: int = 1
    error: str | None = None
    cached: bool = False

    def __str__(self) -> str:
        status = self.status if self.status is not None else self.error
        extra = " (cache)" if self.cached else f" (attempt {self.attempt})" if self.attempt > 1 else ""
        return f"{self.method} {self.url} -> {status} in {self.duration_ms:.1f} ms{extra}"


@dataclass
class ApiResponse:
    """A successful answer: its status, parsed JSON body (None for a 204), headers and the URL as shown."""

    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)
    url: str = ""


@dataclass
class _Answer:
    """What one attempt got back: the status line, the headers, and the decoded body as read.

    ``content`` is None when the body was not read (a redirect, a 204) or
    could not be (an error answer's body that broke off); ``refused`` says
    why a body was not taken (too large, an encoding not asked for).
    """

    status: int
    reason: str
    headers: httpx.Headers
    content: bytearray | None = None
    refused: BodyRefused | None = None


def _parse(answer: _Answer) -> tuple[Any, str | None]:
    """``(JSON body, None)``, or ``(None, what came instead)``: an empty body, an HTML page, not JSON."""
    kind = answer.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if not answer.content or not answer.content.strip():
        return None, "an empty body"
    if kind and "json" not in kind:
        page = " (perhaps from a proxy or a captive portal)" if kind in ("text/html", "application/xhtml+xml") else ""
        return None, f"a body of type {kind[:60]}{page}"
    try:
        return orjson.loads(answer.content), None
    except ValueError:
        return None, "a body that is not valid JSON (cut short?)" if kind else "a body that is not JSON"


def _destination(url: str, location: str | None) -> str:
    """Where a redirect points, for a message: only the scheme and host (a URL may hold a token)."""
    if not location:
        return " without a Location"
    try:
        target = httpx.URL(url).join(location)
    except (httpx.InvalidURL, ValueError):
        return " to an unreadable Location"
    here = httpx.URL(url)
    if (target.scheme, target.host, target.port) == (here.scheme, here.host, here.port):
        return " to another path on the same host"
    port = f":{target.port}" if target.port else ""
    return f" to {target.scheme}://{target.host}{port}"


Observer = Callable[[RequestRecord], None]


def default_error_details(body: Any) -> tuple[str | None, str | None, dict[str, Any] | None]:
    """``(code, message, field errors)`` of an error body shaped ``{message, code, errors}``."""
    if isinstance(body, Mapping):
        errors = body.get("errors")
        return body.get("code"), body.get("message"), errors if isinstance(errors, dict) else None
    return None, None, None


class RatePacer:
    """Slows requests down as ``X-RateLimit-Remaining`` approaches zero.

    While plenty of the window's budget is left, requests go out at full
    speed. With ``reserve`` or fewer left, the requests of the connection
    follow one shared schedule (whatever the concurrency) that spreads what
    is left over what is left of the window, so a long scan stretches to the
    window's end instead of running into 429s, and runs at full speed again
    when a new window starts (``Remaining`` jumps back up). The API does not
    say how long its window is or when it started: ``window`` is a minute
    unless the ``RateLimitWindow`` property says otherwise, and a window is
    taken to start when a jump (or the first answer) is seen. A 429 that
    still comes is waited out by the client.
    """

    def __init__(self, window: float = 60.0, reserve: int = 16) -> None:
        self.window = window
        self.reserve = reserve
        self.limit: int | None = None
        self.remaining: int | None = None
        self.window_start = 0.0
        self._next_slot = 0.0
        self._lock = threading.Lock()

    def update(self, headers: Mapping[str, str]) -> None:
        try:
            limit = int(headers["x-ratelimit-limit"])
            remaining = int(headers["x-ratelimit-remaining"])
        except (KeyError, ValueError):
            return
        with self._lock:
            if self.remaining is None or remaining > self.remaining + self.reserve:
                self.window_start = time.monotonic()  # a new window
                self._next_slot = 0.0
                self.remaining = remaining
            else:  # answers lag behind requests already scheduled: keep the lower count
                self.remaining = min(self.remaining, remaining)
            self.limit = limit

    def wait(self, sleep: Callable[[float], None] = time.sleep) -> float:
        """Sleep until this request's turn (when pacing); returns the seconds slept."""
        with self._lock:
            if self.limit is None or self.remaining is None or self.remaining > self.reserve:
                return 0.0
            now = time.monotonic()
            reset = self.window_start + self.window
            if reset <= now:
                return 0.0  # the window has ended: the next answer says how much is left
            slot = max(now, self._next_slot)
            self._next_slot = slot + (reset - slot) / max(1, self.remaining)
            self.remaining -= 1  # in flight: later answers will say the same
        delay = slot - now
        if delay > 0:
            sleep(delay)
        return delay


class ResponseCache:
    """GET answers kept across statements (``CacheTTL``), shared by the connections of a process.

    Entries are keyed by a hash of the credentials and API root plus the full
    URL, so answers are never shared across API keys. A successful write
    through a connection drops every entry of its credentials.
    """

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str], tuple[float, ApiResponse]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, owner: str, url: str, ttl: float) -> ApiResponse | None:
        with self._lock:
            hit = self._entries.get((owner, url))
            if hit is None:
                return None
            if time.monotonic() - hit[0] > ttl:
                del self._entries[(owner, url)]
                return None
            self._entries.move_to_end((owner, url))
            return hit[1]

    def put(self, owner: str, url: str, response: ApiResponse) -> None:
        with self._lock:
            self._entries[(owner, url)] = (time.monotonic(), response)
            self._entries.move_to_end((owner, url))
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self, owner: str | None = None) -> None:
        with self._lock:
            if owner is None:
                self._entries.clear()
            else:
                for key in [k for k in self._entries if k[0] == owner]:
                    del self._entries[key]


CACHE = ResponseCache()


def clear_cache() -> None:
    """Drop every cached GET answer (of every connection of this process)."""
    CACHE.clear()


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


class ApiClient:
    """Sends requests to one API root and returns parsed JSON, or raises."""

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str],
        *,
        timeout: float = 30.0,
        max_retries: int = 4,
        max_connections: int = 8,
        auth_hint: str = "Check the APIKey connection property.",
        error_details: Callable[[Any], tuple[str | None, str | None, dict[str, Any] | None]] = default_error_details,
        max_wait: float = 60.0,
        backoff: float = 0.1,
        cache_ttl: float = 0.0,
        rate_window: float = 60.0,
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.cache_ttl = cache_ttl
        credentials = "\n".join(f"{k}:{v}" for k, v in sorted(headers.items()) if k.lower() == "authorization")
        self.cache_owner = hashlib.sha256(f"{self.base_url}\n{credentials}".encode()).hexdigest()
        self.max_retries = max_retries
        self.timeout = timeout
        self.max_wait = max_wait
        self.backoff = backoff
        self.auth_hint = auth_hint
        self.error_details = error_details
        self.max_connections = max_connections
        self.max_response_size = max_response_size
        self.pid = os.getpid()
        self.pacer = RatePacer(window=rate_window, reserve=2 * max_connections)
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self._http = httpx.Client(
            headers={"Accept-Encoding": ACCEPT_ENCODING, **headers},
            timeout=timeout,
            limits=limits,
            follow_redirects=False,
            verify=tls_context(),
        )
        if not enforce_deadlines(self._http):
            logger.warning("httpx's connection pools could not be reached: Timeout bounds each socket read only")
        self._closed = False
        self._stopping = Cancel()  # set by stop(): ends every backoff and 429 wait at once

    def stop(self) -> None:
        """Send nothing more: requests under way end on their own, their retries and waits are not made."""
        self._closed = True
        self._stopping.set("The connection was closed.")

    def close(self) -> None:
        self.stop()
        if not self._http.is_closed:
            self._http.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return self.base_url + path

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json: Any = None,
        scope: str | None = None,
        observer: Observer | None = None,
        idempotent: bool | None = None,
        allow_404: bool = False,
        timeout: float | None = None,
        cacheable: bool = False,
        cancel: Cancel | None = None,
        deadline: float | None = None,
    ) -> ApiResponse | None:
        """Send one request, retrying as the policy allows.

        Returns None for a 404 when ``allow_404`` (a lookup by id of something
        that does not exist), else the response with its parsed JSON body.
        ``cancel`` ends waits and stops retries; ``deadline`` (``time.monotonic()``
        seconds) bounds every attempt and retry of the request together.
        """
        method = method.upper()
        if os.getpid() != self.pid:
            raise exc.ProgrammingError(
                f"{method} not sent: this connection was opened in process {self.pid} and this is process "
                f"{os.getpid()}, a child made by fork(). Its sockets and threads belong to the parent; open a new "
                "connection in the child (e.g. in a multiprocessing initializer)."
            )
        if idempotent is None:
            idempotent = method in ("GET", "HEAD", "DELETE", "PUT", "OPTIONS")
        url = self.url(path)
        shown = self._checked_url(method, url, params)
        use_cache = cacheable and method == "GET" and self.cache_ttl > 0
        if use_cache:
            cached = CACHE.get(self.cache_owner, shown, self.cache_ttl)
            if cached is not None:
                self._note(RequestRecord(method, shown, cached.status, 0.0, cached=True), observer)
                return cached if cached.status != 404 else None
        attempt = _Attempt(method, shown, idempotent, cancel, deadline, self.max_retries, self.timeout, self._stopping)
        response_out = self._send(attempt, url, params, json, scope, observer, allow_404, timeout)
        if use_cache and (response_out is not None or allow_404):
            CACHE.put(self.cache_owner, shown, response_out if response_out is not None else ApiResponse(404, None))
        elif method != "GET" and self.cache_ttl > 0:
            CACHE.clear(self.cache_owner)  # a write: what was cached may be stale now
        return response_out

    def _checked_url(self, method: str, url: str, params: Params | None) -> str:
        """The full URL as shown in records and messages; refuses URLs no server should get."""
        if _dot_segment(url):
            raise exc.ProgrammingError(
                f"{method} not sent: its path has a '.' or '..' segment, which would address another endpoint. "
                "An id is never '.' or '..'; pass ids through apidriver.client.segment()."
            )
        try:
            shown = str(httpx.URL(url, params=list(params or [])))
        except httpx.InvalidURL:
            shown = ""
        if not shown or len(shown) > MAX_URL_LENGTH:
            longest = max([len(part) for part in urlsplit(url).path.split("/")] + [len(str(v)) for _, v in params or []])
            raise exc.DataError(
                f"{method} not sent: its URL would be too long ({len(shown) or 'over 65536'} characters; servers accept "
                f"about {MAX_URL_LENGTH}), because a key or filter value is {longest} characters long. Shorten the value, "
                "or make SQLite check the condition itself by writing it as an expression (e.g. tag || '' = ?) so it "
                "is not sent to the API."
            )
        return shown

    def _send(
        self,
        attempt: _Attempt,
        url: str,
        params: Params | None,
        json: Any,
        scope: str | None,
        observer: Observer | None,
        allow_404: bool,
        timeout: float | None,
    ) -> ApiResponse | None:
        method, shown, idempotent = attempt.method, attempt.shown, attempt.idempotent
        while True:
            attempt.next()
            self.pacer.wait(attempt.sleep)
            attempt.check()
            if self._closed:
                raise exc.InterfaceError(f"{method} {shown} not sent: the connection was closed.")
            started = time.monotonic()
            seconds = attempt.seconds(timeout)
            try:
                answer = self._exchange(method, url, params, json, seconds)
            except httpx.HTTPError as error:
                duration = (time.monotonic() - started) * 1000
                kind = type(error).__name__
                self._note(RequestRecord(method, shown, None, duration, attempt.number, kind), observer)
                certainly_not_sent = isinstance(error, NOT_SENT)
                if not idempotent and not certainly_not_sent:
                    raise self._give_up(self._error(
                        exc.AmbiguousWriteError,
                        f"{method} {shown} failed with {kind} before an answer arrived, so it is unknown whether it "
                        "took effect. It was not retried, to avoid doing it twice; check the current state "
                        "(e.g. SELECT the objects by tag) before trying again.",
                        method, shown,
                    )) from error
                if not certainly_not_sent:
                    attempt.unanswered = True
                if attempt.last():
                    if isinstance(error, httpx.TimeoutException):  # Timeout bounds the whole attempt (see above)
                        why = f"{kind}: no complete answer within {seconds:g} s"
                    else:
                        why = f"{kind}: {sentence(str(error) or kind).rstrip('.')}"
                    raise self._give_up(self._error(
                        exc.APIUnavailableError,
                        f"Could not get an answer from {method} {shown} after {attempt.number} attempts ({why}). "
                        f"{attempt.outcome()}Check BaseURL and the network, or raise Timeout/MaxRetries.",
                        method, shown,
                    )) from error
                self._backoff(attempt, kind)
                continue
            except RuntimeError as error:  # httpx: the client was closed from another thread meanwhile
                if not self._closed:
                    raise
                raise exc.InterfaceError(f"{method} {shown} was cut short: the connection was closed.") from error
            duration = (time.monotonic() - started) * 1000
            status = answer.status
            self._note(RequestRecord(method, shown, status, duration, attempt.number), observer)
            self.pacer.update(answer.headers)
            if status == 429:
                attempt.limited += 1
                wait = self._retry_after(answer.headers.get("retry-after"), attempt.number)
                if attempt.limited > max(3, self.max_retries) or wait > self.max_wait or not attempt.allows(wait):
                    raise self._give_up(self._error(
                        exc.RateLimitError,
                        f"The API rate limit was hit ({method} {shown} answered 429 {attempt.limited} times; it asked to "
                        f"wait {wait:.0f} s). Wait a minute, lower MaxConcurrency, or narrow the query so it needs fewer "
                        "requests.",
                        method, shown, status, self._details(answer),
                    ))
                logger.info("Rate limited: %s %s answered 429; waiting %.1f s as Retry-After asks", method, shown, wait)
                attempt.sleep(wait)
                continue
            if status in RETRYABLE_STATUS:
                if not idempotent:
                    raise self._give_up(self._error(
                        exc.AmbiguousWriteError,
                        f"{method} {shown} answered {status}; the API may or may not have carried it out. It was not "
                        "retried, to avoid doing it twice; check the current state before trying again.",
                        method, shown, status, self._details(answer),
                    ))
                attempt.server_error = status
                if attempt.last():
                    raise self._give_up(self._error(
                        exc.APIUnavailableError,
                        f"{method} {shown} kept failing: {status} {answer.reason} after {attempt.number} "
                        f"attempts. {attempt.outcome()}The API may be down; try again later.",
                        method, shown, status, self._details(answer),
                    ))
                self._backoff(attempt, f"{status} {answer.reason}")
                continue
            if status == 404 and method == "DELETE" and attempt.unanswered:
                logger.info(
                    "%s %s answered 404 after an attempt that got no answer: that attempt took effect", method, shown
                )
                return ApiResponse(status, None, answer.headers, shown)
            if status == 404 and allow_404:
                return None
            if 400 <= status < 600:
                raise self._status_error(answer, method, shown, scope, attempt)
            if status not in SUCCESS.get(method, SUCCESS[""]) or answer.refused is not None:
                raise self._give_up(self._unexpected(answer, method, shown, url))  # not retried: see the module docstring
            if status == 204:
                return ApiResponse(status, None, answer.headers, shown)
            body, unreadable = _parse(answer)
            if unreadable is None:
                return ApiResponse(status, body, answer.headers, shown)
            if not idempotent:
                raise self._give_up(self._error(
                    exc.AmbiguousWriteError,
                    f"{method} {shown} answered {status}, so it may have taken effect, but with {unreadable} instead of "
                    "the API's JSON: what it did is unknown. It was not retried, to avoid doing it twice; check the "
                    "current state (e.g. SELECT the objects by tag) before trying again.",
                    method, shown, status,
                ))
            attempt.unanswered = True
            if attempt.last():
                raise self._give_up(self._error(
                    exc.APIUnavailableError,
                    f"{method} {shown} kept answering {status} with {unreadable} instead of the API's JSON "
                    f"({attempt.number} attempts). {attempt.outcome()}Something between here and the API (a proxy, a "
                    "captive portal) may be answering instead of it: check BaseURL and the network.",
                    method, shown, status,
                ))
            self._backoff(attempt, f"{status} with {unreadable}")

    def _exchange(self, method: str, url: str, params: Params | None, json: Any, seconds: float) -> _Answer:
        """One request and its answer, headers and body, within ``seconds`` in all; raises httpx's errors.

        A redirect's body is never read; an error answer's body is read for
        its details (at most ``ERROR_BODY_LIMIT``), and a failure to read it
        loses only the details.
        """
        with transport.deadline(time.monotonic() + seconds):
            request = self._http.build_request(method, url, params=list(params or []), json=json, timeout=seconds)
            response = self._http.send(request, stream=True)
            try:
                answer = _Answer(response.status_code, response.reason_phrase, response.headers)
                if 300 <= answer.status < 400 or answer.status == 204:
                    return answer
                failed = answer.status >= 400
                try:
                    answer.content = read_body(response, ERROR_BODY_LIMIT if failed else self.max_response_size)
                except BodyRefused as why:
                    answer.refused = why
                except httpx.HTTPError:
                    if not failed:
                        raise
                return answer
            finally:
                response.close()

    def _unexpected(self, answer: _Answer, method: str, shown: str, url: str) -> exc.Error:
        """The error for an answer that is not one the API gives: a redirect, an odd status, a refused body."""
        status = answer.status
        said = f"{status} {answer.reason}".rstrip()
        elsewhere = (
            "Something between here and the API (a proxy, a captive portal) may be answering instead of it; "
            "check BaseURL and the network."
        )
        if 300 <= status < 400 and status != 304:
            to = _destination(url, answer.headers.get("location"))
            what = f"answered {said}, a redirect{to}. Redirects are never followed, so the API key never goes anywhere else"
            fix = "Check BaseURL: its scheme (http:// or https://), host and path."
        elif answer.refused is not None:
            what = f"answered {said}, but the answer was refused: {answer.refused}"
            larger = "Raise MaxResponseSize if answers this large are expected, or lower PageSize."
            fix = larger if answer.refused.too_large else elsewhere
        else:
            what = f"answered {said}, which is not an answer the API gives to a {method}"
            fix = elsewhere
        if method in ("GET", "HEAD"):
            return self._error(exc.UnexpectedResponseError, f"{method} {shown} {what}. {fix}", method, shown, status)
        return self._error(
            exc.AmbiguousWriteError,
            f"{method} {shown} {what}. Whether the {method} took effect is unknown; it was not retried. Check the "
            f"current state (e.g. SELECT the objects by tag) before trying again. {fix}",
            method, shown, status,
        )

    # -- helpers ---------------------------------------------------------------------

    def _note(self, record: RequestRecord, observer: Observer | None) -> None:
        logger.debug("%s", record)
        if observer is not None:
            observer(record)

    def _backoff(self, attempt: _Attempt, why: str) -> None:
        delay = min(5.0, self.backoff * 2.0 ** (attempt.number - 1)) * (0.5 + random.random() / 2)
        logger.info(
            "Retrying %s %s in %.2f s after %s (attempt %d of %d)",
            attempt.method, attempt.shown, delay, why, attempt.number + 1, self.max_retries + 1,
        )
        attempt.sleep(delay)

    @staticmethod
    def _give_up(error: exc.Error) -> exc.Error:
        logger.warning("Giving up: %s", error)
        return error

    def _retry_after(self, value: str | None, attempt: int) -> float:
        if value:
            try:
                return max(0.0, float(value))
            except ValueError:
                try:
                    parsed = email.utils.parsedate_to_datetime(value)  # Retry-After may be an HTTP date
                except (TypeError, ValueError):
                    parsed = None
                if parsed is not None:
                    return max(0.0, float(parsed.timestamp()) - time.time())
        return min(10.0, self.backoff * 2.0**attempt)

    def _details(self, answer: _Answer) -> tuple[str | None, str | None, dict[str, Any] | None]:
        if not answer.content:
            return None, None, None
        try:
            return self.error_details(orjson.loads(answer.content))
        except ValueError:
            return None, None, None

    @staticmethod
    def _error(
        cls: type[exc.Error],
        message: str,
        method: str,
        url: str,
        status: int | None = None,
        details: tuple[str | None, str | None, dict[str, Any] | None] = (None, None, None),
    ) -> exc.Error:
        """An API error of class ``cls`` (an ``APIErrorMixin`` subclass) with its details."""
        error = cls(message)
        assert isinstance(error, exc.APIErrorMixin)
        error._set_api(status, details[0], details[2], method, url)
        return error

    def _status_error(self, answer: _Answer, method: str, url: str, scope: str | None, attempt: _Attempt) -> exc.Error:
        status = answer.status
        code, message, errors = self._details(answer)
        said = f"{status} {code}" if code else f"{status} {answer.reason}"
        text = f" {sentence(str(message))}" if message else ""
        if status == 401:
            return self._error(
                exc.AuthenticationError,
                f"The API rejected the credentials ({said}).{text} {self.auth_hint}",
                method, url, status, (code, message, errors),
            )
        if status == 403:
            need = f" The key needs the scope '{scope}'; create a key with that scope." if scope else ""
            return self._error(
                exc.PermissionDeniedError,
                f"The API key is not allowed to {method} {url} ({said}).{text}{need}",
                method, url, status, (code, message, errors),
            )
        if status == 402:
            return self._error(
                exc.InsufficientCreditsError,
                f"The API refused new work ({said}).{text} Add credits to the account or wait for running jobs to end.",
                method, url, status, (code, message, errors),
            )
        if status == 422:
            fields = " ".join(
                sentence(f"{name}: {' '.join(map(str, msgs)) if isinstance(msgs, list) else msgs}")
                for name, msgs in (errors or {}).items()
            )
            return self._error(
                exc.InvalidDataError,
                f"The API rejected the data ({said}).{text}" + (f" {fields}" if fields else ""),
                method, url, status, (code, message, errors),
            )
        if status == 404:
            earlier = (
                f" An earlier attempt answered {attempt.server_error}: if the object existed, that attempt may have "
                "removed it."
                if attempt.server_error and method not in ("GET", "HEAD")
                else ""
            )
            return self._error(
                exc.NotFoundError,
                f"{method} {url}: not found ({said}).{text}{earlier}",
                method, url, status, (code, message, errors),
            )
        return self._error(
            exc.BadRequestError if status < 500 else exc.APIUnavailableError,
            f"{method} {url} failed ({said}).{text}",
            method, url, status, (code, message, errors),
        )


class _Attempt:
    """The state of one request across its attempts: counts, what was seen, cancel and deadline."""

    def __init__(
        self,
        method: str,
        shown: str,
        idempotent: bool,
        cancel: Cancel | None,
        deadline: float | None,
        max_retries: int,
        default_timeout: float,
        stopping: Cancel,
    ) -> None:
        self.method = method
        self.shown = shown
        self.idempotent = idempotent
        self.cancel = cancel
        self.deadline = deadline
        self.number = 0
        self.limited = 0
        self.unanswered = False  # an attempt was sent and got no (readable) answer
        self.server_error: int | None = None
        self.max_retries = max_retries
        self.default_timeout = default_timeout
        self.stopping = stopping

    def next(self) -> None:
        self.number += 1

    def check(self) -> None:
        if self.cancel is not None:
            self.cancel.check(self._cancel_note())
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise exc.APIUnavailableError(
                f"{self.method} {self.shown}: no answer within the time allowed ({self.number - 1} attempts)."
            )

    def _cancel_note(self) -> str:
        if self.number > 1 and self.method not in ("GET", "HEAD") and (self.unanswered or self.server_error):
            return f" ({self.method} {self.shown} had been sent without a clear answer: it may have taken effect.)"
        return ""

    def sleep(self, seconds: float) -> None:
        """Sleep (a backoff, a 429 wait, a pacing slot) unless cancelled or the client stops meanwhile."""
        if self.deadline is not None:
            seconds = min(seconds, max(0.0, self.deadline - time.monotonic()))
        self.stopping.wait(seconds, *([self.cancel] if self.cancel is not None else []))
        if self.cancel is not None:
            self.cancel.check(self._cancel_note())
        if self.stopping.is_set:
            raise exc.InterfaceError(f"{self.method} {self.shown}: not sent again, the connection was closed.")

    def seconds(self, timeout: float | None) -> float:
        """The time this attempt may take, all of it: connecting, sending, the headers and the body."""
        seconds = timeout if timeout is not None else self.default_timeout
        if self.deadline is None:
            return seconds
        return min(seconds, max(0.001, self.deadline - time.monotonic()))

    def allows(self, wait: float) -> bool:
        """Whether a wait of ``wait`` seconds ends before the deadline."""
        return self.deadline is None or time.monotonic() + wait < self.deadline

    def last(self) -> bool:
        """Whether this attempt was the last one allowed."""
        return self.number > self.max_retries or (self.deadline is not None and time.monotonic() >= self.deadline)

    def outcome(self) -> str:
        """What a failed non-GET may have done, for a message ('' or a sentence and a space)."""
        if self.method in ("GET", "HEAD") or not (self.unanswered or self.server_error):
            return ""
        return "Whether it took effect is unknown; check the current state before trying again. "
