"""The PEP 249 exception hierarchy, plus the API errors that refine it.

::

    Warning
    Error
     ├── InterfaceError
     └── DatabaseError
          ├── DataError
          │    └── InvalidDataError        422: the API rejected the data (field errors)
          ├── OperationalError
          │    ├── AuthenticationError     401: the API key is missing or wrong
          │    ├── PermissionDeniedError   403: the key lacks a scope
          │    ├── RateLimitError          429, still limited after waiting
          │    ├── InsufficientCreditsError 402
          │    ├── APIUnavailableError     5xx, timeouts, dropped connections (after retries)
          │    ├── AmbiguousWriteError     a write whose outcome is unknown (never retried)
          │    ├── UnexpectedResponseError not the API's answer: a redirect, an odd status or shape, too large
          │    └── QueryCancelledError     cancelled by Connection.interrupt(), Cursor.cancel() or close()
          ├── IntegrityError
          ├── InternalError
          ├── ProgrammingError             bad SQL, unknown table/column/property
          │    ├── NotFoundError           404 where the object had to exist
          │    └── BadRequestError         other 4xx answers
          └── NotSupportedError            what the API cannot do; read-only mode

Every error raised by the driver carries a message saying what happened and
what to do about it; the API key never appears in one.
"""

from __future__ import annotations

from typing import Any


class Warning(Exception):  # noqa: A001 - the name is mandated by PEP 249
    """Important warnings, such as data truncation."""


class Error(Exception):
    """Base class of every error raised by the driver."""


class InterfaceError(Error):
    """Misuse of the driver's interface (e.g. a closed cursor)."""


class DatabaseError(Error):
    """Errors related to the data source: here, the API."""


class DataError(DatabaseError):
    """The data was rejected: bad values, wrong types, out of range."""


class OperationalError(DatabaseError):
    """The API could not be used: auth, scopes, rate limits, network, server errors."""


class IntegrityError(DatabaseError):
    """A relational integrity problem, e.g. an id the API already uses."""


class InternalError(DatabaseError):
    """The driver got into a state it should never be in; please report it."""


class ProgrammingError(DatabaseError):
    """Bad SQL, unknown tables or columns, wrong parameters or properties."""


class NotSupportedError(DatabaseError):
    """The API (or read-only mode) does not allow this operation."""


class APIErrorMixin:
    """Details of an HTTP error answer, kept on the exception for callers."""

    status: int | None = None
    code: str | None = None
    errors: dict[str, Any] | None = None
    method: str | None = None
    url: str | None = None

    def _set_api(self, status: int | None, code: str | None, errors: dict[str, Any] | None, method: str | None, url: str | None) -> None:
        self.status = status
        self.code = code
        self.errors = errors
        self.method = method
        self.url = url


class InvalidDataError(APIErrorMixin, DataError):
    """The API answered 422: ``errors`` holds its field errors."""


class AuthenticationError(APIErrorMixin, OperationalError):
    """The API answered 401: the key is missing, wrong or revoked."""


class PermissionDeniedError(APIErrorMixin, OperationalError):
    """The API answered 403: the key lacks the scope named in the message."""


class InsufficientCreditsError(APIErrorMixin, OperationalError):
    """The API answered 402: the account has run out of credits (or job slots)."""


class RateLimitError(APIErrorMixin, OperationalError):
    """The API kept answering 429 after the driver waited as told."""


class APIUnavailableError(APIErrorMixin, OperationalError):
    """Server errors, timeouts or dropped connections persisted after retries."""


class AmbiguousWriteError(APIErrorMixin, OperationalError):
    """A write failed in a way that leaves its outcome unknown; it was not retried."""


class UnexpectedResponseError(APIErrorMixin, OperationalError):
    """A read was answered with something the API never answers: a redirect (never followed), a
    status it does not use, a list page that is not a page, a repeated page, a body past
    ``MaxResponseSize``. Not retried: the same request would get the same answer."""


class QueryCancelledError(OperationalError):
    """The statement was cancelled from another thread (``Connection.interrupt()``,
    ``Cursor.cancel()``, or ``close()`` while it ran); the connection stays usable."""


class NotFoundError(APIErrorMixin, ProgrammingError):
    """The API answered 404 where the object had to exist (e.g. a write by id)."""


class BadRequestError(APIErrorMixin, ProgrammingError):
    """The API rejected the request itself (400, 405, ...): a driver or usage problem."""


def with_message(error: Error, message: str) -> Error:
    """A copy of ``error`` (same class, same API details) saying ``message``."""
    copy = type(error)(message)
    for attr in ("status", "code", "errors", "method", "url"):
        if hasattr(error, attr):
            setattr(copy, attr, getattr(error, attr))
    return copy


def chained(error: BaseException, cause: BaseException) -> BaseException:
    """``error``, to raise while handling ``cause``: chained to it, unless it *is* ``cause``.

    ``raise translate(e) from e`` with a ``translate`` that may return ``e``
    itself makes ``e.__cause__ is e``, and ``while e.__cause__`` loops
    forever; ``raise chained(translate(e), e)`` keeps ``e``'s own cause.
    """
    if error is not cause:
        error.__cause__ = cause  # as ``raise error from cause`` does
        error.__suppress_context__ = True
    return error


__all__ = [
    "APIErrorMixin",
    "APIUnavailableError",
    "AmbiguousWriteError",
    "AuthenticationError",
    "BadRequestError",
    "DataError",
    "DatabaseError",
    "Error",
    "InsufficientCreditsError",
    "IntegrityError",
    "InterfaceError",
    "InternalError",
    "InvalidDataError",
    "NotFoundError",
    "NotSupportedError",
    "OperationalError",
    "PermissionDeniedError",
    "ProgrammingError",
    "QueryCancelledError",
    "RateLimitError",
    "UnexpectedResponseError",
    "Warning",
    "chained",
]


def sentence(text: str) -> str:
    """``text`` ending with a full stop (API messages often have none)."""
    text = text.rstrip()
    return text if not text or text[-1] in ".!?" else text + "."
