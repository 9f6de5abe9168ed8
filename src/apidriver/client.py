"""The HTTP client: one pooled httpx client per connection, retries, errors.

This module knows HTTP and nothing of SQL. Every API or network failure is
turned into a DB-API exception here, in one place, with a message that says
what happened and what to do. The API key travels only in the
``Authorization`` header; it is never logged and never part of a message.

Retry policy:

- GET and DELETE are idempotent: 5xx answers, timeouts, dropped connections
  and unparseable bodies are retried ``max_retries`` times with exponential
  backoff, then raise :class:`APIUnavailableError`.
- POST is retried only when the request certainly did not take effect: the
  connection could not be opened, or the API answered 429. After a timeout,
  a dropped connection or a 5xx the outcome is unknown, so it raises
  :class:`AmbiguousWriteError` instead of risking a duplicate.
- A DELETE is idempotent too: when an attempt got no answer (timeout,
  dropped connection, unreadable body) and the retry answers 404, the first
  attempt took effect, and the DELETE succeeded.
- 429 waits for ``Retry-After`` (at most ``max_wait`` seconds each time, a
  few times), then raises :class:`RateLimitError`.
- A request whose URL would be longer than servers accept
  (``MAX_URL_LENGTH``), or that has a ``.`` or ``..`` path segment (which
  would address another endpoint), is refused before anything is sent.

Waits and retries are logged at INFO on the ``apidriver`` logger, give-ups
at WARNING, each request at DEBUG. A :class:`~.cancel.Cancel` passed with a
request ends its backoffs and waits, and stops its retries.
"""

from __future__ import annotations

import email.utils
import hashlib
import logging
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
from .cancel import Cancel

logger = logging.getLogger("apidriver")
logger.addHandler(logging.NullHandler())  # a library: the application decides where records go

RETRYABLE_STATUS = frozenset({500, 502, 503, 504})
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
    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)


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
        self.pacer = RatePacer(window=rate_window, reserve=2 * max_connections)
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self._http = httpx.Client(
            headers=dict(headers), timeout=timeout, limits=limits, follow_redirects=False, verify=tls_context()
        )
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
            try:
                response = self._http.request(
                    method,
                    url,
                    params=list(params or []),
                    json=json,
                    timeout=attempt.timeout(timeout),
                )
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
                    raise self._give_up(self._error(
                        exc.APIUnavailableError,
                        f"Could not get an answer from {method} {shown} after {attempt.number} attempts ({kind}: "
                        f"{sentence(str(error) or kind)}) {attempt.outcome()}Check BaseURL and the network, or raise "
                        "Timeout/MaxRetries.",
                        method, shown,
                    )) from error
                self._backoff(attempt, kind)
                continue
            except RuntimeError as error:  # httpx: the client was closed from another thread meanwhile
                if not self._closed:
                    raise
                raise exc.InterfaceError(f"{method} {shown} was cut short: the connection was closed.") from error
            duration = (time.monotonic() - started) * 1000
            status = response.status_code
            self._note(RequestRecord(method, shown, status, duration, attempt.number), observer)
            self.pacer.update(response.headers)
            if status == 429:
                attempt.limited += 1
                wait = self._retry_after(response.headers.get("retry-after"), attempt.number)
                if attempt.limited > max(3, self.max_retries) or wait > self.max_wait or not attempt.allows(wait):
                    raise self._give_up(self._error(
                        exc.RateLimitError,
                        f"The API rate limit was hit ({method} {shown} answered 429 {attempt.limited} times; it asked to "
                        f"wait {wait:.0f} s). Wait a minute, lower MaxConcurrency, or narrow the query so it needs fewer "
                        "requests.",
                        method, shown, status, self._details(response),
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
                        method, shown, status, self._details(response),
                    ))
                attempt.server_error = status
                if attempt.last():
                    raise self._give_up(self._error(
                        exc.APIUnavailableError,
                        f"{method} {shown} kept failing: {status} {response.reason_phrase} after {attempt.number} "
                        f"attempts. {attempt.outcome()}The API may be down; try again later.",
                        method, shown, status, self._details(response),
                    ))
                self._backoff(attempt, f"{status} {response.reason_phrase}")
                continue
            if status == 404 and method == "DELETE" and attempt.unanswered:
                logger.info(
                    "%s %s answered 404 after an attempt that got no answer: that attempt took effect", method, shown
                )
                return ApiResponse(status, None, response.headers)
            if status == 404 and allow_404:
                return None
            if status >= 400:
                raise self._status_error(response, method, shown, scope, attempt)
            if status == 204 or not response.content:
                return ApiResponse(status, None, response.headers)
            try:
                body = orjson.loads(response.content)
            except ValueError as error:
                if not idempotent:
                    raise self._give_up(self._error(
                        exc.AmbiguousWriteError,
                        f"{method} {shown} answered {status}, so it took effect, but its body is not valid JSON: what it "
                        "made is unknown. It was not retried, to avoid doing it twice; check the current state (e.g. "
                        "SELECT the objects by tag).",
                        method, shown, status,
                    )) from error
                attempt.unanswered = True
                if attempt.last():
                    raise self._give_up(self._error(
                        exc.APIUnavailableError,
                        f"{method} {shown} kept answering with a body that is not valid JSON ({attempt.number} attempts).",
                        method, shown, status,
                    )) from error
                self._backoff(attempt, "a body that is not valid JSON")
                continue
            return ApiResponse(status, body, response.headers)

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

    def _details(self, response: httpx.Response) -> tuple[str | None, str | None, dict[str, Any] | None]:
        try:
            return self.error_details(response.json())
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

    def _status_error(self, response: httpx.Response, method: str, url: str, scope: str | None, attempt: _Attempt) -> exc.Error:
        status = response.status_code
        code, message, errors = self._details(response)
        said = f"{status} {code}" if code else f"{status} {response.reason_phrase}"
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

    def timeout(self, timeout: float | None) -> Any:
        if self.deadline is None:
            return timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT
        remaining = max(0.001, self.deadline - time.monotonic())
        return min(timeout if timeout is not None else self.default_timeout, remaining)

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
