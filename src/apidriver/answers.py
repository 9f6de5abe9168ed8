"""What the API answered, and what each answer means.

The records of exchanges (:class:`RequestRecord`, as cursors and logs show
them), a successful answer (:class:`ApiResponse`), the statuses each method
succeeds with, and the DB-API error for every other answer
(:class:`ErrorTranslator`): one place that turns HTTP into the exception
hierarchy of :mod:`.exceptions`, with messages that say what to do and
never hold the API key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from . import exceptions as exc
from .exceptions import Details, api_error, sentence
from .transport import BodyRefused

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

"""``(code, message, field errors)`` of an error answer."""


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
class Answer:
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


def json_body(answer: Answer) -> tuple[Any, str | None]:
    """``(JSON body, None)``, or ``(None, what came instead)``: an empty body, an HTML page, not JSON."""
    kind = answer.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if not answer.content or answer.content.isspace():  # (not strip(): that copies the whole body)
        return None, "an empty body"
    if kind and "json" not in kind:
        page = " (perhaps from a proxy or a captive portal)" if kind in ("text/html", "application/xhtml+xml") else ""
        return None, f"a body of type {kind[:60]}{page}"
    try:
        return orjson.loads(answer.content), None
    except ValueError:
        return None, "a body that is not valid JSON (cut short?)" if kind else "a body that is not JSON"


def destination(url: str, location: str | None) -> str:
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


def default_error_details(body: Any) -> Details:
    """``(code, message, field errors)`` of an error body shaped ``{message, code, errors}``."""
    if isinstance(body, Mapping):
        errors = body.get("errors")
        return body.get("code"), body.get("message"), errors if isinstance(errors, dict) else None
    return None, None, None


class ErrorTranslator:
    """The DB-API error for each answer that is not a success, with the profile's hints.

    ``auth_hint`` ends the message of a 401 (where the key comes from);
    ``error_details`` reads an error body in the API's own shape.
    """

    def __init__(self, auth_hint: str, error_details: Callable[[Any], Details] = default_error_details) -> None:
        self.auth_hint = auth_hint
        self.error_details = error_details

    def details(self, answer: Answer) -> Details:
        """What an error answer's body says, if it is JSON in the API's shape."""
        if not answer.content:
            return None, None, None
        try:
            return self.error_details(orjson.loads(answer.content))
        except ValueError:
            return None, None, None

    def status_error(self, answer: Answer, method: str, url: str, scope: str | None, earlier: int | None = None) -> exc.Error:
        """The error of a 4xx/5xx answer; ``earlier``: a 5xx an earlier attempt of the same request got."""
        status = answer.status
        code, message, errors = self.details(answer)
        said = f"{status} {code}" if code else f"{status} {answer.reason}"
        text = f" {sentence(str(message))}" if message else ""
        if status == 401:
            return api_error(
                exc.AuthenticationError,
                f"The API rejected the credentials ({said}).{text} {self.auth_hint}",
                method, url, status, (code, message, errors),
            )
        if status == 403:
            need = f" The key needs the scope '{scope}'; create a key with that scope." if scope else ""
            return api_error(
                exc.PermissionDeniedError,
                f"The API key is not allowed to {method} {url} ({said}).{text}{need}",
                method, url, status, (code, message, errors),
            )
        if status == 402:
            return api_error(
                exc.InsufficientCreditsError,
                f"The API refused new work ({said}).{text} Add credits to the account or wait for running jobs to end.",
                method, url, status, (code, message, errors),
            )
        if status == 422:
            fields = " ".join(
                sentence(f"{name}: {' '.join(map(str, msgs)) if isinstance(msgs, list) else msgs}")
                for name, msgs in (errors or {}).items()
            )
            return api_error(
                exc.InvalidDataError,
                f"The API rejected the data ({said}).{text}" + (f" {fields}" if fields else ""),
                method, url, status, (code, message, errors),
            )
        if status == 404:
            removed = (
                f" An earlier attempt answered {earlier}: if the object existed, that attempt may have "
                "removed it."
                if earlier and method not in ("GET", "HEAD")
                else ""
            )
            return api_error(
                exc.NotFoundError,
                f"{method} {url}: not found ({said}).{text}{removed}",
                method, url, status, (code, message, errors),
            )
        return api_error(
            exc.BadRequestError if status < 500 else exc.APIUnavailableError,
            f"{method} {url} failed ({said}).{text}",
            method, url, status, (code, message, errors),
        )

    def unexpected(self, answer: Answer, method: str, shown: str, url: str) -> exc.Error:
        """The error for an answer that is not one the API gives: a redirect, an odd status, a refused body."""
        status = answer.status
        said = f"{status} {answer.reason}".rstrip()
        elsewhere = (
            "Something between here and the API (a proxy, a captive portal) may be answering instead of it; "
            "check BaseURL and the network."
        )
        if 300 <= status < 400 and status != 304:
            to = destination(url, answer.headers.get("location"))
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
            return api_error(exc.UnexpectedResponseError, f"{method} {shown} {what}. {fix}", method, shown, status)
        return api_error(
            exc.AmbiguousWriteError,
            f"{method} {shown} {what}. Whether the {method} took effect is unknown; it was not retried. Check the "
            f"current state (e.g. SELECT the objects by tag) before trying again. {fix}",
            method, shown, status,
        )
