"""How the command line fails: one line on stderr and an exit status, or a traceback with --debug."""

from __future__ import annotations

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


def debugging(ctx: click.Context | None) -> bool:
    """Whether the group's ``--debug`` option is on."""
    root = ctx.find_root() if ctx is not None else None
    return bool(root is not None and isinstance(root.obj, dict) and root.obj.get("debug"))
