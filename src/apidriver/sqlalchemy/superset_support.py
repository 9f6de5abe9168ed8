"""What the Superset engine spec (:mod:`.superset`) does that needs no Superset: tested without it.

- **The SQL parser's dialect.** Superset parses every statement with sqlglot,
  picking the dialect by the spec's engine name from its table
  ``SQLGLOT_DIALECTS``; a name missing there is parsed generically, which
  refuses SQLite's ``DATETIME(x, modifier, modifier)`` of the week and
  quarter time grains. Our SQL is SQLite's: :func:`register_sqlglot_dialect`
  adds our engine names to that table.
- **Error kinds.** Superset shows a database error as a type
  (``SupersetErrorType``) and a message, found by the spec's
  ``custom_errors`` patterns in the error's text. Its test-connection path
  keeps only the text (``DBAPIError(str(error), None, None)``), so the
  patterns read the driver's own messages; :func:`driver_message` gives that
  text back without SQLAlchemy's ``(builtins.NoneType) None [SQL: ...]``
  wrapping.
- **Stopping a query.** :class:`StopWatch` asks, while a statement runs,
  whether Superset has marked the query stopped (in its metadata database,
  shared by every web and worker process), and then calls
  ``Connection.interrupt()``: the statement ends at once with
  ``QueryCancelledError`` and the connection stays usable.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, MutableMapping
from types import TracebackType
from typing import Any, Self

from ..exceptions import Error

__all__ = ["ERROR_PATTERNS", "SQLGLOT_DIALECT", "StopWatch", "driver_message", "error_kind", "register_sqlglot_dialect", "shown_message"]

logger = logging.getLogger(__name__)

SQLGLOT_DIALECT = "sqlite"
"""sqlglot's name of the dialect our SQL is written in (``Dialects.SQLITE``)."""

# The driver's messages (client.py, cursor.translate) → the name of a SupersetErrorType member, and the
# form fields Superset's "connect a database" dialog should mark. First match wins; anything else is a
# GENERIC_DB_ENGINE_ERROR with the driver's message.
ERROR_PATTERNS: list[tuple[re.Pattern[str], str, dict[str, Any]]] = [
    (re.compile(r"The API rejected the credentials \("), "CONNECTION_INVALID_PASSWORD_ERROR", {"invalid": ["password"]}),
    (re.compile(r"The API key is not allowed to "), "CONNECTION_DATABASE_PERMISSIONS_ERROR", {}),
    (re.compile(r"Could not get an answer from |\S+ \S+ kept failing: "), "CONNECTION_HOST_DOWN_ERROR", {"invalid": ["host"]}),
    (re.compile(r"no such column: "), "COLUMN_DOES_NOT_EXIST_ERROR", {}),
    (re.compile(r"no such table: "), "TABLE_DOES_NOT_EXIST_ERROR", {}),
    (re.compile(r'near "[^"]*": syntax error|incomplete input'), "SYNTAX_ERROR", {}),
]

KEY_HINT = " In Superset the key is the password of the SQLAlchemy URI: cloudconvert://:API_KEY@"


def register_sqlglot_dialect(table: MutableMapping[str, Any], names: list[str], dialect: Any) -> None:
    """Map each engine name to ``dialect`` in Superset's ``SQLGLOT_DIALECTS``."""
    for name in names:
        table[name] = dialect


def _driver_error(error: BaseException) -> Error | None:
    """The driver's exception behind ``error``: itself, SQLAlchemy's ``orig``, or up the cause chain."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, Error):
            return current
        orig = getattr(current, "orig", None)
        if isinstance(orig, Error):
            return orig
        current = current.__cause__ or current.__context__
    return None


def driver_message(error: BaseException | str) -> str | None:
    """The driver's message for ``error``, or None when the driver did not raise it.

    Superset's test connection keeps only the text: ``DBAPIError(message,
    None, None)``, whose ``str`` is ``(builtins.NoneType) None [SQL: message]``;
    there the message is the "statement". SQL Lab hands over text alone
    (``extract_errors(str(error))``): text is taken as it is.
    """
    if isinstance(error, str):
        return error
    found = _driver_error(error)
    if found is not None:
        return str(found)
    statement = getattr(error, "statement", None)
    if getattr(error, "orig", False) is None and isinstance(statement, str):
        return statement
    return None


def shown_message(error: BaseException | str) -> str | None:
    """:func:`driver_message`, plus where the key goes in Superset when the key was refused (once)."""
    message = driver_message(error)
    if message is not None and error_kind(message) == "CONNECTION_INVALID_PASSWORD_ERROR" and KEY_HINT not in message:
        message += KEY_HINT
    return message


def error_kind(message: str) -> str:
    """The name of the ``SupersetErrorType`` for a driver message (GENERIC_DB_ENGINE_ERROR if none fits)."""
    for pattern, kind, _ in ERROR_PATTERNS:
        if pattern.search(message):
            return kind
    return "GENERIC_DB_ENGINE_ERROR"


class StopWatch:
    """While a statement runs, ask every ``interval`` seconds whether it was stopped; if so, ``interrupt()``.

    ``stopped`` runs on the watch's own thread (Superset's: a query of its
    metadata database); an error there is logged and the watch goes on.
    :meth:`stop` (or leaving the ``with`` block) ends the watch; once it
    returns, ``interrupt`` is not called any more.
    """

    def __init__(self, stopped: Callable[[], bool], interrupt: Callable[[], None], interval: float = 1.0) -> None:
        self._stopped = stopped
        self._interrupt = interrupt
        self._interval = interval
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="apidriver-superset-stop", daemon=True)
        self.interrupted = False

    def _watch(self) -> None:
        while not self._done.wait(self._interval):
            try:
                if not self._stopped():
                    continue
            except Exception:  # the metadata database may be busy: ask again next time
                logger.debug("Could not read whether the query was stopped", exc_info=True)
                continue
            if not self._done.is_set():
                logger.info("The query was stopped: interrupting its statement")
                self.interrupted = True
                self._interrupt()
            return

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._done.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
