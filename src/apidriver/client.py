"""The HTTP client: one pooled httpx client per connection, sending each request under the retry policy.

This module knows HTTP and nothing of SQL. Every API or network failure
becomes a DB-API exception on its way out of :meth:`ApiClient.request`,
with a message that says what happened and what to do (what each answer
means: :mod:`.answers`; the state of one request's attempts:
:mod:`.attempts`; pacing under the rate limit: :mod:`.pacing`; ``CacheTTL``:
:mod:`.response_cache`; deadlines and capped bodies under httpx:
:mod:`.transport`). The API key travels only in the ``Authorization``
header; it is never logged and never part of a message.

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
(``engine.pages.page_data``): here, only HTTP and JSON.

Waits and retries are logged at INFO on the ``apidriver`` logger, give-ups
at WARNING, each request at DEBUG. A :class:`~.cancel.Cancel` passed with a
request ends its backoffs and waits, and stops its retries.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from . import exceptions as exc
from . import transport
from .answers import (
    RETRYABLE_STATUS,
    SUCCESS,
    Answer,
    ApiResponse,
    ErrorTranslator,
    RequestRecord,
    default_error_details,
    json_body,
)
from .attempts import Attempt
from .cancel import Cancel
from .exceptions import Details, api_error, sentence
from .pacing import RatePacer
from .properties import DEFAULT_MAX_RESPONSE_SIZE
from .response_cache import CACHE
from .transport import (
    ACCEPT_ENCODING,
    BodyRefused,
    enforce_deadlines,
    read_body,
    tls_context,
)

logger = logging.getLogger("apidriver")
logger.addHandler(logging.NullHandler())  # a library: the application decides where records go

# An error answer is read for its message and code only: this much is plenty.
ERROR_BODY_LIMIT = 1 << 20
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
Observer = Callable[[RequestRecord], None]

# Longer URLs are refused by common front ends (nginx answers 414 past 8 KB of request line).
MAX_URL_LENGTH = 8000
Params = Sequence[tuple[str, str]]


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
        error_details: Callable[[Any], Details] = default_error_details,
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
        self.errors = ErrorTranslator(auth_hint, error_details)
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
        attempt = Attempt(method, shown, idempotent, cancel, deadline, self.max_retries, self.timeout, self._stopping, self.backoff)
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
        attempt: Attempt,
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
                    raise self._give_up(api_error(
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
                    raise self._give_up(api_error(
                        exc.APIUnavailableError,
                        f"Could not get an answer from {method} {shown} after {attempt.number} attempts ({why}). "
                        f"{attempt.outcome()}Check BaseURL and the network, or raise Timeout/MaxRetries.",
                        method, shown,
                    )) from error
                attempt.back_off(kind)
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
                wait = attempt.retry_after(answer.headers.get("retry-after"))
                if attempt.limited > max(3, self.max_retries) or wait > self.max_wait or not attempt.allows(wait):
                    raise self._give_up(api_error(
                        exc.RateLimitError,
                        f"The API rate limit was hit ({method} {shown} answered 429 {attempt.limited} times; it asked to "
                        f"wait {wait:.0f} s). Wait a minute, lower MaxConcurrency, or narrow the query so it needs fewer "
                        "requests.",
                        method, shown, status, self.errors.details(answer),
                    ))
                logger.info("Rate limited: %s %s answered 429; waiting %.1f s as Retry-After asks", method, shown, wait)
                attempt.sleep(wait)
                continue
            if status in RETRYABLE_STATUS:
                if not idempotent:
                    raise self._give_up(api_error(
                        exc.AmbiguousWriteError,
                        f"{method} {shown} answered {status}; the API may or may not have carried it out. It was not "
                        "retried, to avoid doing it twice; check the current state before trying again.",
                        method, shown, status, self.errors.details(answer),
                    ))
                attempt.server_error = status
                if attempt.last():
                    raise self._give_up(api_error(
                        exc.APIUnavailableError,
                        f"{method} {shown} kept failing: {status} {answer.reason} after {attempt.number} "
                        f"attempts. {attempt.outcome()}The API may be down; try again later.",
                        method, shown, status, self.errors.details(answer),
                    ))
                attempt.back_off(f"{status} {answer.reason}")
                continue
            if status == 404 and method == "DELETE" and attempt.unanswered:
                logger.info(
                    "%s %s answered 404 after an attempt that got no answer: that attempt took effect", method, shown
                )
                return ApiResponse(status, None, answer.headers, shown)
            if status == 404 and allow_404:
                return None
            if 400 <= status < 600:
                raise self.errors.status_error(answer, method, shown, scope, attempt.server_error)
            if status not in SUCCESS.get(method, SUCCESS[""]) or answer.refused is not None:
                raise self._give_up(self.errors.unexpected(answer, method, shown, url))  # not retried: see the module docstring
            if status == 204:
                return ApiResponse(status, None, answer.headers, shown)
            body, unreadable = json_body(answer)
            if unreadable is None:
                return ApiResponse(status, body, answer.headers, shown)
            if not idempotent:
                raise self._give_up(api_error(
                    exc.AmbiguousWriteError,
                    f"{method} {shown} answered {status}, so it may have taken effect, but with {unreadable} instead of "
                    "the API's JSON: what it did is unknown. It was not retried, to avoid doing it twice; check the "
                    "current state (e.g. SELECT the objects by tag) before trying again.",
                    method, shown, status,
                ))
            attempt.unanswered = True
            if attempt.last():
                raise self._give_up(api_error(
                    exc.APIUnavailableError,
                    f"{method} {shown} kept answering {status} with {unreadable} instead of the API's JSON "
                    f"({attempt.number} attempts). {attempt.outcome()}Something between here and the API (a proxy, a "
                    "captive portal) may be answering instead of it: check BaseURL and the network.",
                    method, shown, status,
                ))
            attempt.back_off(f"{status} with {unreadable}")

    def _exchange(self, method: str, url: str, params: Params | None, json: Any, seconds: float) -> Answer:
        """One request and its answer, headers and body, within ``seconds`` in all; raises httpx's errors.

        A redirect's body is never read; an error answer's body is read for
        its details (at most ``ERROR_BODY_LIMIT``), and a failure to read it
        loses only the details.
        """
        with transport.deadline(time.monotonic() + seconds):
            request = self._http.build_request(method, url, params=list(params or []), json=json, timeout=seconds)
            response = self._http.send(request, stream=True)
            try:
                answer = Answer(response.status_code, response.reason_phrase, response.headers)
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

    # -- helpers ---------------------------------------------------------------------

    def _note(self, record: RequestRecord, observer: Observer | None) -> None:
        logger.debug("%s", record)
        if observer is not None:
            observer(record)

    @staticmethod
    def _give_up(error: exc.Error) -> exc.Error:
        logger.warning("Giving up: %s", error)
        return error
