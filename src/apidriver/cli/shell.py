"""``apidriver shell``: an interactive SQL shell (prompt_toolkit), or a script runner for piped stdin.

A statement runs when the input so far is complete SQL (ends with ';', as
SQLite's ``sqlite3_complete`` decides), so statements may span lines. Lines
starting with '.' are shell commands (sqlite3's names where they exist:
``.read``, ``.output``, ``.once``, ``.mode``, ``.headers``, ``.nullvalue``,
``.timer``, ``.bail``, ``.schema``). Tab completes keywords, tables,
procedures and columns (``alias.`` completes that table's columns). Errors in
a script name their line; a DELETE typed at the prompt asks first.
"""

from __future__ import annotations

import re
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, TextIO

import apsw
from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.filters import Condition
from prompt_toolkit.history import FileHistory
from prompt_toolkit.lexers import PygmentsLexer
from rich.console import Console

from .. import Connection, Error
from ..answers import RequestRecord
from . import describe as reference
from . import output
from .errors import describe_error, pointer
from .statement import ParameterError, blank, check_parameters, deletes, parameters_of, run, statements

PROMPT = "apidriver> "
CONTINUATION = "      ...> "
KEYWORDS = (
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "IS", "NULL", "LIKE", "GLOB", "BETWEEN", "AS", "JOIN",
    "LEFT", "INNER", "CROSS", "ON", "USING", "GROUP", "BY", "HAVING", "ORDER", "ASC", "DESC", "LIMIT", "OFFSET",
    "DISTINCT", "UNION", "ALL", "WITH", "CASE", "WHEN", "THEN", "ELSE", "END", "EXISTS", "INSERT", "INTO",
    "VALUES", "RETURNING", "DELETE", "COUNT", "SUM", "AVG", "MIN", "MAX", "JSON_EXTRACT",
)
HELP = """\
Statements end with ';' and may span lines. Tab completes names; Ctrl-R searches the history.
.tables [PATTERN]    names of the tables and procedures, in columns (those LIKE PATTERN)
.schema [TABLE]      columns, types, descriptions and push-down of TABLE (or a procedure); of every table without one
.read FILE           run the statements and commands of FILE
.output [FILE]       send results to FILE (no FILE: back to the terminal)
.once FILE           send the next result to FILE
.format [FORMAT]     show or set the output format: {formats} (.mode too)
.headers on|off      show the header row (table, csv, tsv)
.nullvalue [TEXT]    how NULL is shown (no TEXT: each format's own)
.timer on|off        print how long each statement took
.bail on|off         stop a script at its first error
.confirm on|off      ask before running a DELETE (on by default at the prompt)
.requests            the HTTP requests of the last statement
.help                this text
.quit, .exit         leave (or Ctrl-D)""".format(formats=", ".join(output.FORMATS))
COMMANDS = (
    ".tables", ".schema", ".read", ".output", ".once", ".format", ".mode", ".headers", ".nullvalue", ".timer", ".bail",
    ".confirm", ".requests", ".help", ".quit", ".exit",
)
SWITCHES = {"on": True, "off": False, "yes": True, "no": False, "1": True, "0": False, "true": True, "false": False}


def where(script: str | None, line: int) -> str:
    """How an error names its place in a script: ``FILE:LINE: ``, or ``line N: `` on stdin."""
    return f"{script}:{line}: " if script else f"line {line}: "


class Stop(Exception):
    """Leave the script being run (``.bail on`` and an error)."""


def complete_sql(text: str) -> bool:
    """Whether ``text`` is ready to run: a shell command, or SQL ending with a complete statement."""
    stripped = text.strip()
    return not stripped or stripped.startswith(".") or apsw.complete(stripped)


class SqlCompleter(Completer):
    """Keywords, table and procedure names, and column names (of the tables the statement names)."""

    def __init__(self, columns: dict[str, list[str]], procedures: list[str]) -> None:
        self.columns = columns
        self.tables = {name.lower(): name for name in columns}
        self.procedures = procedures

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterator[Completion]:
        text = document.text_before_cursor
        if text.lstrip().startswith("."):
            yield from self._command(text.lstrip())
            return
        word = document.get_word_before_cursor(pattern=re.compile(r"[\w.]+"))
        if "." in word:
            qualifier, _, prefix = word.rpartition(".")
            table = self.tables.get(self.aliases(document.text).get(qualifier.lower(), qualifier.lower()))
            # Before the FROM is typed the alias is unknown: offer every table's columns.
            columns = self.columns[table] if table else [c for cs in self.columns.values() for c in cs]
            yield from self._matches(prefix, columns)
            return
        if not word:
            return
        if re.search(r"\b(FROM|JOIN|INTO)\s+$", text[: len(text) - len(word)], re.IGNORECASE):
            yield from self._matches(word, [*self.columns, *self.procedures])
            return
        named = [self.tables[t] for t in self.aliases(document.text).values() if t in self.tables]
        columns = [c for t in named for c in self.columns[t]] if named else [c for cs in self.columns.values() for c in cs]
        candidates = [*self.columns, *self.procedures, *dict.fromkeys(columns), *KEYWORDS]
        yield from self._matches(word, candidates)

    def aliases(self, sql: str) -> dict[str, str]:
        """``{alias or table (lower case): table (lower case)}`` for the tables after FROM and JOIN."""
        found: dict[str, str] = {}
        pattern = r"\b(?:FROM|JOIN)\s+[\"`\[]?(\w+)[\"`\]]?(?:\s+(?:AS\s+)?(\w+))?"
        for table, alias in re.findall(pattern, sql, re.IGNORECASE):
            found[table.lower()] = table.lower()
            if alias and alias.upper() not in KEYWORDS and alias.upper() not in ("NATURAL", "OUTER", "INDEXED"):
                found[alias.lower()] = table.lower()
        return found

    def _command(self, text: str) -> Iterator[Completion]:
        command, space, argument = text.partition(" ")
        if not space:
            yield from self._matches(command, list(COMMANDS))
        elif command == ".schema":
            yield from self._matches(argument.strip(), [*self.columns, *self.procedures])
        elif command in (".format", ".mode"):
            yield from self._matches(argument.strip(), list(output.FORMATS))
        elif command in (".headers", ".timer", ".bail", ".confirm"):
            yield from self._matches(argument.strip(), ["on", "off"])

    @staticmethod
    def _matches(prefix: str, candidates: Iterable[str]) -> Iterator[Completion]:
        lowered = prefix.lower()
        seen: set[str] = set()
        for candidate in candidates:
            if candidate.lower().startswith(lowered) and candidate not in seen:
                seen.add(candidate)
                yield Completion(candidate, start_position=-len(prefix))


class Shell:
    """Runs statements and shell commands on one connection, printing results to stdout (or ``.output``)."""

    def __init__(self, connection: Connection, fmt: str = "table", debug: bool = False, confirm: bool = True, bail: bool = False) -> None:
        self.connection = connection
        self.cursor = connection.cursor()
        self.fmt = fmt
        self.debug = debug
        self.confirm = confirm
        self.bail = bail
        self.timer = False
        self.options = output.Options()
        self.out = Console(highlight=False, emoji=False)  # ":a:" in a message or a name stays text
        self.err = Console(stderr=True, highlight=False, emoji=False)
        self.last_requests: list[RequestRecord] = []
        self.failed = False
        self.interactive_session = False
        self.location = ""  # "FILE:LINE: " or "line N: " while a script runs
        self._output: IO[str] | None = None  # .output FILE
        self._once: IO[str] | None = None  # .once FILE
        self._ask: Callable[[str], str] = input  # the prompt's own, in an interactive session

    # -- the two modes -------------------------------------------------------------------------

    def run(self, history: Path) -> int:
        """Interactive on a terminal, else statements from stdin; the exit status."""
        try:
            if sys.stdin.isatty():
                self.interactive(history)
                return 0
            try:
                self.script(sys.stdin)
            except Stop:
                pass
            return 1 if self.failed else 0
        finally:
            self.redirect(None)

    def interactive(self, history: Path) -> None:
        self.interactive_session = True
        self.err.print(
            f"apidriver {self.connection.profile.name} shell on {self.connection.root_url}. "
            "End statements with ';'. .help for commands, Ctrl-D to leave.",
            style="dim",
        )
        if not history.exists():
            history.touch(mode=0o600)  # a new history file is its owner's only: statements hold data and names
        session: PromptSession[str] = PromptSession(
            history=FileHistory(str(history)),
            completer=self.completer(),
            lexer=PygmentsLexer.from_filename("statement.sql"),
            # The statement being typed is in the default buffer; while Ctrl-R searches,
            # the app's current buffer is the search field.
            multiline=Condition(lambda: not complete_sql(session.default_buffer.text)),
            prompt_continuation=lambda width, line, soft: CONTINUATION,
            complete_while_typing=False,
        )
        self._ask = lambda question: str(session.prompt(question, multiline=False, completer=None))
        while True:
            try:
                text = session.prompt(PROMPT)
            except KeyboardInterrupt:
                continue
            except EOFError:
                return
            try:
                if not self.handle(text):
                    return
            except Stop:
                continue
            except KeyboardInterrupt:  # in a .read script: back to the prompt
                self.err.print("Interrupted.", style="yellow")

    def script(self, stream: TextIO, name: str | None = None) -> bool:
        """Run what ``stream`` holds: shell commands on their own lines, statements ending with ';'.

        Errors name the line the failing statement starts on (``FILE:LINE:``
        when ``name`` is given), counted as sqlite3 counts it: lines of blanks
        and comments before a statement are skipped, and a command is
        recognised on any line where no statement has begun. False when
        ``.quit`` was read; :class:`Stop` when ``.bail`` is on and something failed.
        """
        outer = self.location
        pending, start = "", 0
        try:
            for number, line in enumerate(stream, 1):
                if blank(pending):
                    pending, start = "", number
                    if line.strip().startswith("."):
                        self.location = where(name, number)
                        if not self.handle(line):
                            return False
                        continue
                pending += line
                if complete_sql(pending):
                    self.handle(pending, (name, start))
                    pending = ""
            if not blank(pending):
                self.handle(pending, (name, start))
            return True
        finally:
            self.location = outer

    # -- one input -----------------------------------------------------------------------------

    def handle(self, text: str, origin: tuple[str | None, int] | None = None) -> bool:
        """Run the statements of ``text``, or one shell command; False to leave the shell.

        ``origin`` is the script (its name, or None for stdin) and the line
        ``text`` starts on: each statement's errors then name its own first line.
        """
        stripped = text.strip()
        if not stripped:
            return True
        if stripped.startswith("."):
            return self.command(stripped)
        for piece in statements(text):
            if origin is not None:
                self.location = where(origin[0], origin[1] + text.count("\n", 0, piece.start))
            self.statement(piece.text)
        return True

    def statement(self, text: str) -> None:
        try:
            how = "the shell takes no parameter values: write the values in the statement"
            check_parameters(parameters_of(self.connection, text), (), {}, how)
        except ParameterError as error:
            self.complain(str(error))
            return
        if self.confirm and self.interactive_session and deletes(text) and not self.ask_to_delete():
            self.err.print("Not run.", style="yellow")
            return
        try:
            result = run(self.cursor, text)
        except KeyboardInterrupt:
            self.last_requests = self.cursor.requests
            if self.location:  # Ctrl-C stops a script, as in sqlite3 (stdin: exit status 130)
                raise
            self.err.print("Interrupted.", style="yellow")
            return
        except Error as error:
            self.last_requests = self.cursor.requests
            self.fail(error, text)
            return
        self.last_requests = result.requests
        self.show(result)
        if self.timer:
            self.err.print(f"Run time: {result.seconds:.3f} s", style="dim", highlight=False)

    def show(self, result: output.Result) -> None:
        """Print a result to stdout, the ``.output`` file or the ``.once`` file.

        A file gets the data only: the ``N rows · N requests · time`` line of
        the table formats goes to the terminal, in an interactive session.
        """
        target = self._once or self._output
        try:
            if target is None:
                output.write(result, self.fmt, sys.stdout, self.out, self.options)
                sys.stdout.flush()
            else:
                console = Console(file=target, highlight=False, color_system=None, emoji=False)
                output.write(result, self.fmt, target, console, self.options, summary=False)
                target.flush()
                if self.interactive_session:
                    self.err.print(result.summary(), style="dim", highlight=False, markup=False, soft_wrap=True)
        except OSError as error:
            self.complain(f"cannot write the result: {error.strerror or error}")
        finally:
            if self._once is not None:
                self._once.close()
                self._once = None

    def ask_to_delete(self) -> bool:
        """Ask before a DELETE: it is sent to the API and cannot be undone."""
        try:
            answer = self._ask("This DELETE removes objects from the API for good. Run it? [y/N] ")
        except (EOFError, KeyboardInterrupt):
            return False
        return answer.strip().lower() in ("y", "yes")

    def command(self, text: str) -> bool:
        name, _, argument = text.partition(" ")
        argument = argument.strip().rstrip(";").strip()
        profile = self.connection.profile
        if name in (".quit", ".exit", ".q"):
            return False
        if name == ".help":
            self.out.print(HELP, markup=False, highlight=False)
        elif name == ".tables":
            self.tables(argument)
        elif name == ".schema":
            if not argument:
                for table in profile.tables:
                    self.out.print(reference.rendered(reference.markdown(profile, table)))
                return True
            item = reference.find(profile, argument)
            if item is None:
                self.complain(f"no table or procedure {argument!r}; known: {', '.join(reference.names(profile))}")
            else:
                self.out.print(reference.rendered(reference.markdown(profile, item)))
        elif name == ".requests":
            if not self.last_requests:
                self.out.print("No HTTP requests.", style="dim")
            for record in self.last_requests:
                self.out.print(str(record), markup=False, soft_wrap=True)
        elif name in (".format", ".mode"):
            if argument in output.FORMATS:
                self.fmt = argument
            elif argument:
                self.complain(f"unknown format {argument!r}; use one of {', '.join(output.FORMATS)}")
            else:
                self.out.print(self.fmt)
        elif name == ".read":
            self.read(argument)
        elif name in (".output", ".once"):
            self.redirect(argument or None, once=name == ".once")
        elif name == ".nullvalue":
            self.options.null = argument or None
        elif name in (".headers", ".timer", ".bail", ".confirm"):
            self.switch(name, argument)
        else:
            self.complain(f"unknown command {name}; .help lists the commands")
        return True

    def tables(self, pattern: str) -> None:
        """``.tables [PATTERN]``: names in columns across the terminal, as sqlite3 lays them out.

        The API and system tables, the connection's TEMP tables and views
        (``temp.name``), then the procedures (``Name()``), each group sorted
        as sqlite3 sorts; PATTERN filters them as LIKE does.
        """
        profile = self.connection.profile
        scratch = self.connection.cursor().execute("SELECT name FROM sqlite_temp_master WHERE type IN ('table', 'view')")
        tables = sorted(t.name for t in reference.all_tables(profile)) + sorted(f"temp.{name}" for (name,) in scratch)
        procedures = sorted(f"{p.name}()" for p in profile.procedures)
        if pattern:
            like = re.compile("".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern), re.IGNORECASE | re.DOTALL)
            tables = [t for t in tables if like.fullmatch(t.removeprefix("temp."))]
            procedures = [p for p in procedures if like.fullmatch(p.removesuffix("()"))]
        size = max(map(len, tables + procedures), default=0)
        for group in (tables, procedures):
            for line in output.in_columns(group, self.out.width, size):
                self.out.print(line, markup=False, highlight=False, soft_wrap=True)

    def switch(self, name: str, argument: str) -> None:
        """``.headers``, ``.timer``, ``.bail``, ``.confirm``: on or off (no argument: show it)."""
        attribute = {".headers": "headers", ".timer": "timer", ".bail": "bail", ".confirm": "confirm"}[name]
        owner: object = self.options if attribute == "headers" else self
        if not argument:
            self.out.print(f"{name[1:]}: {'on' if getattr(owner, attribute) else 'off'}")
        elif argument.lower() in SWITCHES:
            setattr(owner, attribute, SWITCHES[argument.lower()])
        else:
            self.complain(f"usage: {name} on|off")

    def read(self, argument: str) -> None:
        if not argument:
            self.complain("usage: .read FILE")
            return
        path = Path(argument.strip("'\"")).expanduser()
        try:
            stream = path.open(encoding="utf-8")
        except OSError as error:
            self.complain(f"cannot read {path}: {error.strerror or error}")
            return
        with stream:
            self.script(stream, str(path))

    def redirect(self, argument: str | None, once: bool = False) -> None:
        """``.output FILE``/``.once FILE``; ``.output`` alone goes back to stdout."""
        if self._output is not None and not once:
            self._output.close()
            self._output = None
        if argument is None:
            if once:
                self.complain("usage: .once FILE")
            return
        path = Path(argument.strip("'\"")).expanduser()
        try:
            stream = path.open("w", encoding="utf-8")
        except OSError as error:
            self.complain(f"cannot write {path}: {error.strerror or error}")
            return
        if once:
            if self._once is not None:
                self._once.close()
            self._once = stream
        else:
            self._output = stream

    def fail(self, error: BaseException, sql: str | None = None) -> None:
        """An error of ``sql``: its line, and under the statement a caret where SQLite found it."""
        if self.debug:
            traceback.print_exception(error, file=sys.stderr)
        self.complain(describe_error(error), pointer(sql, error) if sql is not None else [])

    def complain(self, message: str, detail: Iterable[str] = ()) -> None:
        self.failed = True
        self.err.print(f"apidriver: {self.location}{message}", style="red", markup=False, highlight=False, soft_wrap=True)
        for line in detail:
            self.err.print(line, markup=False, highlight=False, soft_wrap=True)
        if self.bail and self.location:  # in a script (stdin or .read)
            raise Stop(message)

    def completer(self) -> SqlCompleter:
        """Names from the system tables (no HTTP request)."""
        columns: dict[str, list[str]] = {}
        rows = self.connection.cursor().execute("SELECT table_name, column_name FROM sys_tablecolumns ORDER BY table_name, ordinal")
        for table, column in rows:
            columns.setdefault(table, []).append(column)
        procedures = [name for (name,) in self.connection.cursor().execute("SELECT name FROM sys_procedures")]
        return SqlCompleter(columns, procedures)
