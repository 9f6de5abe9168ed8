"""``apidriver shell``: an interactive SQL shell (prompt_toolkit), or a script runner for piped stdin.

A statement runs when the input so far is complete SQL (ends with ';', as
SQLite's ``sqlite3_complete`` decides), so statements may span lines. Lines
starting with '.' are shell commands. Tab completes keywords, tables,
procedures and columns (``alias.`` completes that table's columns).
"""

from __future__ import annotations

import re
import sys
import traceback
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

import apsw
from prompt_toolkit import PromptSession
from prompt_toolkit.application import get_app
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.filters import Condition
from prompt_toolkit.history import FileHistory
from prompt_toolkit.lexers import PygmentsLexer
from rich.console import Console

from .. import Connection, Error
from ..client import RequestRecord
from . import describe as reference
from . import output
from .errors import describe_error
from .statement import run, split_statements

PROMPT = "apidriver> "
CONTINUATION = "      ...> "
KEYWORDS = (
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "IS", "NULL", "LIKE", "GLOB", "BETWEEN", "AS", "JOIN",
    "LEFT", "INNER", "CROSS", "ON", "USING", "GROUP", "BY", "HAVING", "ORDER", "ASC", "DESC", "LIMIT", "OFFSET",
    "DISTINCT", "UNION", "ALL", "WITH", "CASE", "WHEN", "THEN", "ELSE", "END", "EXISTS", "INSERT", "INTO",
    "VALUES", "RETURNING", "DELETE", "COUNT", "SUM", "AVG", "MIN", "MAX", "JSON_EXTRACT",
)
HELP = """\
Statements end with ';' and may span lines. Tab completes names.
.tables            the tables and procedures
.schema TABLE      columns, types, descriptions and push-down of TABLE (or a procedure)
.requests          the HTTP requests of the last statement
.format [FORMAT]   show or set the output format: table, csv, json, jsonl
.help              this text
.quit, .exit       leave (or Ctrl-D)"""


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
            yield from self._matches(command, [".tables", ".schema", ".requests", ".format", ".help", ".quit", ".exit"])
        elif command == ".schema":
            yield from self._matches(argument.strip(), [*self.columns, *self.procedures])
        elif command == ".format":
            yield from self._matches(argument.strip(), list(output.FORMATS))

    @staticmethod
    def _matches(prefix: str, candidates: Iterable[str]) -> Iterator[Completion]:
        lowered = prefix.lower()
        seen: set[str] = set()
        for candidate in candidates:
            if candidate.lower().startswith(lowered) and candidate not in seen:
                seen.add(candidate)
                yield Completion(candidate, start_position=-len(prefix))


class Shell:
    """Runs statements and shell commands on one connection, printing results to stdout."""

    def __init__(self, connection: Connection, fmt: str = "table", debug: bool = False) -> None:
        self.connection = connection
        self.cursor = connection.cursor()
        self.fmt = fmt
        self.debug = debug
        self.out = Console(highlight=False)
        self.err = Console(stderr=True, highlight=False)
        self.last_requests: list[RequestRecord] = []
        self.failed = False

    # -- the two modes -------------------------------------------------------------------------

    def run(self, history: Path) -> int:
        """Interactive on a terminal, else statements from stdin; the exit status."""
        if sys.stdin.isatty():
            self.interactive(history)
            return 0
        self.script(sys.stdin)
        return 1 if self.failed else 0

    def interactive(self, history: Path) -> None:
        self.err.print(
            f"apidriver {self.connection.profile.name} shell on {self.connection.root_url}. "
            "End statements with ';'. .help for commands, Ctrl-D to leave.",
            style="dim",
        )
        session: PromptSession[str] = PromptSession(
            history=FileHistory(str(history)),
            completer=self.completer(),
            lexer=PygmentsLexer.from_filename("statement.sql"),
            multiline=Condition(lambda: not complete_sql(get_app().current_buffer.text)),
            prompt_continuation=lambda width, line, soft: CONTINUATION,
            complete_while_typing=False,
        )
        while True:
            try:
                text = session.prompt(PROMPT)
            except KeyboardInterrupt:
                continue
            except EOFError:
                return
            if not self.handle(text):
                return

    def script(self, stream: TextIO) -> None:
        """Run what ``stream`` holds: shell commands on their own lines, statements ending with ';'."""
        pending = ""
        for line in stream:
            if not pending.strip() and line.strip().startswith("."):
                if not self.handle(line):
                    return
                continue
            pending += line
            if complete_sql(pending):
                self.handle(pending)
                pending = ""
        if pending.strip():
            self.handle(pending)

    # -- one input -----------------------------------------------------------------------------

    def handle(self, text: str) -> bool:
        """Run one statement or shell command; False to leave the shell."""
        text = text.strip()
        if not text:
            return True
        if text.startswith("."):
            return self.command(text)
        for statement in split_statements(text):
            self.statement(statement)
        return True

    def statement(self, text: str) -> None:
        try:
            result = run(self.cursor, text)
        except KeyboardInterrupt:
            self.last_requests = self.cursor.requests
            self.err.print("Interrupted.", style="yellow")
            return
        except Error as error:
            self.last_requests = self.cursor.requests
            self.fail(error)
            return
        self.last_requests = result.requests
        output.write(result, self.fmt, sys.stdout, self.out)

    def command(self, text: str) -> bool:
        name, _, argument = text.partition(" ")
        argument = argument.strip().rstrip(";").strip()
        profile = self.connection.profile
        if name in (".quit", ".exit", ".q"):
            return False
        if name == ".help":
            self.out.print(HELP, markup=False)
        elif name == ".tables":
            self.out.print(reference.overview(profile))
        elif name == ".schema":
            item = reference.find(profile, argument) if argument else None
            if item is None:
                known = ", ".join(reference.names(profile))
                self.complain(f"no table or procedure {argument!r}; known: {known}" if argument else f"usage: .schema TABLE (one of {known})")
            else:
                self.out.print(reference.rendered(reference.markdown(profile, item)))
        elif name == ".requests":
            if not self.last_requests:
                self.out.print("No HTTP requests.", style="dim")
            for record in self.last_requests:
                self.out.print(str(record), markup=False, soft_wrap=True)
        elif name == ".format":
            if argument in output.FORMATS:
                self.fmt = argument
            elif argument:
                self.complain(f"unknown format {argument!r}; use one of {', '.join(output.FORMATS)}")
            else:
                self.out.print(self.fmt)
        else:
            self.complain(f"unknown command {name}; .help lists the commands")
        return True

    def fail(self, error: BaseException) -> None:
        if self.debug:
            traceback.print_exception(error, file=sys.stderr)
        self.complain(describe_error(error))

    def complain(self, message: str) -> None:
        self.failed = True
        self.err.print(f"apidriver: {message}", style="red", markup=False, highlight=False, soft_wrap=True)

    def completer(self) -> SqlCompleter:
        """Names from the system tables (no HTTP request)."""
        columns: dict[str, list[str]] = {}
        rows = self.connection.cursor().execute("SELECT table_name, column_name FROM sys_tablecolumns ORDER BY table_name, ordinal")
        for table, column in rows:
            columns.setdefault(table, []).append(column)
        procedures = [name for (name,) in self.connection.cursor().execute("SELECT name FROM sys_procedures")]
        return SqlCompleter(columns, procedures)
