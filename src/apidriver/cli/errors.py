"""How the command line fails: one line on stderr and an exit status, or a traceback with --debug.

The shell shows an error SQLite located with the statement and a caret under
that place, as sqlite3 does (:func:`pointer`). Ctrl-C ends a command with
status 130 (128 + SIGINT), the shell convention, with no traceback.
"""

from __future__ import annotations

import errno
import os
import sys
import traceback
from typing import IO, Any

import apsw
import click

from .. import Error

PROG = "apidriver"
INTERRUPTED = 130  # 128 + SIGINT: how shells report a command stopped by Ctrl-C


class Failure(click.ClickException):
    """A command failed: ``apidriver: <message>`` on one line of stderr, exit status 1."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"{PROG}: {self.format_message()}", err=file is None, file=file)


class NoConnection(Failure):
    """No API key anywhere: a hint on how to give one, exit status 2 (a usage error)."""

    exit_code = 2


def one_line(message: str) -> str:
    return " ".join(part.strip() for part in str(message).splitlines() if part.strip()) or "failed"


def describe_error(error: BaseException) -> str:
    """An exception as the one line the command line shows."""
    if isinstance(error, Error):
        return one_line(str(error))
    return one_line(f"{type(error).__name__}: {error}")


def error_offset(sql: str, error: BaseException) -> int | None:
    """Where in ``sql`` SQLite found ``error`` (a character index), or None.

    SQLite reports it as a byte offset into the statement it prepared; APSW
    keeps it on its exception (``error_offset``), which the DB-API error was
    raised from.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        offset = getattr(current, "error_offset", -1)
        if isinstance(current, apsw.Error) and isinstance(offset, int) and offset >= 0:
            encoded = sql.encode("utf-8")
            return len(encoded[:offset].decode("utf-8", errors="ignore")) if offset < len(encoded) else None
        current = current.__cause__ or current.__context__
    return None


def pointer(sql: str, error: BaseException) -> list[str]:
    """The statement on one line and a caret under where SQLite found ``error``, as sqlite3 shows them
    (at most 78 characters of the statement, from no more than 50 before that place); [] if unknown."""
    offset = error_offset(sql, error)
    if offset is None:
        return []
    shift = max(0, offset - 50)
    text = "".join(" " if c.isspace() else c for c in sql[shift : shift + 78])
    offset -= shift
    mark = " " * offset + "^--- error here" if offset < 25 else " " * (offset - 14) + "error here ---^"
    return [f"  {text}", f"  {mark}"]


class Group(click.Group):
    """A click group that turns DB-API errors into :class:`Failure` unless ``--debug`` was given,
    and Ctrl-C into exit status 130."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            if debugging(ctx):
                traceback.print_exc()
            click.echo(f"{PROG}: interrupted", err=True)
            ctx.exit(INTERRUPTED)
        except Error as error:
            if debugging(ctx):
                raise
            raise Failure(describe_error(error)) from error
        except OSError as error:
            if debugging(ctx) or not writing_failed(error):
                raise
            silence_stdout()
            if error.errno == errno.EPIPE:  # the reader left (| head): nothing to say
                ctx.exit(1)
            raise Failure(f"cannot write the output: {error.strerror or error}") from error


def debugging(ctx: click.Context | None) -> bool:
    """Whether the group's ``--debug`` option is on."""
    root = ctx.find_root() if ctx is not None else None
    return bool(root is not None and isinstance(root.obj, dict) and root.obj.get("debug"))


def writing_failed(error: OSError) -> bool:
    """Whether ``error`` is a failure to write stdout (a full disk, a closed pipe, ``> /dev/full``)."""
    return error.errno in (errno.ENOSPC, errno.EPIPE, errno.EIO, errno.EFBIG, errno.EDQUOT) or isinstance(error, BrokenPipeError)


def silence_stdout() -> None:
    """Point stdout at /dev/null, so that the exit's flush of what is left cannot fail again (a traceback)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
