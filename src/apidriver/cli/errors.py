"""How the command line fails: one line on stderr and an exit status, or a traceback with --debug."""

from __future__ import annotations

import errno
import os
import sys
from typing import IO, Any

import click

from .. import Error

PROG = "apidriver"


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


class Group(click.Group):
    """A click group that turns DB-API errors into :class:`Failure` unless ``--debug`` was given."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
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
