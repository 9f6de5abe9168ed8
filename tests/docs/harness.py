"""The documents' code blocks, run as a reader would run them, against an emulator.

One mechanism for README.md and every docs/*.md (each has a test module in this
directory that runs its document and checks what the document says it prints):

- :func:`blocks` finds the fenced blocks of a document (```python, ```sh, ```sql,
  ```json, ...) with their line numbers.
- A :class:`DocRun` runs them in order, in a working directory of their own:
  Python blocks in one namespace (as one script would), SQL blocks on a DB-API
  connection the test chooses, shell blocks line by line (``export`` sets the
  environment; ``apidriver ...`` runs in-process through click's CliRunner;
  ``... &`` and servers that run until stopped — ``apidriver emulator``,
  ``apidriver sync --follow`` — start for real and are stopped with Ctrl-C's
  SIGINT; anything else runs in ``bash``), JSON blocks are parsed, and Python
  blocks that define ``test_*`` functions are a test file that pytest runs with
  the plugin, in a process of its own. ``cd DIR`` moves the rest of the
  document there.
- The blocks run as written. What points them at the emulator: every key the
  documents use as a placeholder (``YOUR_KEY``, ``YOUR_API_KEY``, ``KEY``, ...)
  is a key of the emulator, and ``CLOUDCONVERT_API_KEY`` is one (the reader has
  set theirs); the API's default host is the emulator while the document runs
  (:func:`api_at`: connections that name no ``BaseURL`` reach it, in this
  process and, through ``site/sitecustomize.py``, in the commands' processes);
  the test's ``substitutions`` replace what only the reader's machine has (a
  fixed port → a free one, ``postgresql+psycopg://me@db/history`` → a
  throw-away database), and the files a block reads that the reader would have
  (a document to convert, a script of statements) are written by the test. An HTTP(S) proxy that refuses every connection is set
  for anything but loopback, so a block that would reach the internet fails
  instead of reaching it.
- A block that is not run is named in the test's ``not_run`` (by a piece of
  its text), a command of a shell block in ``not_run_commands`` (the whole
  command), each with the reason (an interactive program, a command another
  test runs); every name must match, and every other block must run and
  succeed. ``pip install ...`` is never run (the environment has every extra).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import textwrap
import time
import types
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import apsw

import apidriver
from apidriver.emulator import Emulator

from .site.sitecustomize import point_at

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent
SITE = Path(__file__).resolve().parent / "site"  # sitecustomize.py: the default host in the commands' processes

# The keys the documents write where a reader puts theirs; the emulator takes them all.
PLACEHOLDER_KEYS = ("YOUR_KEY", "YOUR_API_KEY", "KEY", "...", "your-key", "emulator-key")
FENCE = re.compile(r"^(?P<indent>[ ]*)```(?P<lang>[\w+-]*)[^\n]*\n(?P<code>.*?)^(?P=indent)```[ ]*$", re.MULTILINE | re.DOTALL)
READY = {  # servers: what their output says once they are ready
    "emulator": re.compile(r"^job_webhook_secret=\S+$", re.MULTILINE),  # its second line
    "follow": re.compile(r"^\d\d:\d\d:\d\d sync: ", re.MULTILINE),  # its first sync is done
}
INSTALL = "installs packages (the test environment has apidriver and every extra; test_documents checks the extras named exist)"
NO_INTERNET = "http://127.0.0.1:9"  # the discard port: nothing listens, every connection is refused


@dataclass
class Block:
    """A fenced block of a document: its language, its text and the line of its opening fence."""

    document: str
    line: int
    lang: str
    code: str

    @property
    def where(self) -> str:
        return f"{self.document}:{self.line}"

    @property
    def defines_tests(self) -> bool:
        return self.lang == "python" and re.search(r"^(?:async )?def test_", self.code, re.MULTILINE) is not None


def blocks(document: str) -> list[Block]:
    """Every fenced block of ``document`` (a path relative to the repository), in order."""
    text = (ROOT / document).read_text()
    found = []
    for match in FENCE.finditer(text):
        indent = match.group("indent")
        code = "".join(line.removeprefix(indent) for line in match.group("code").splitlines(keepends=True))
        found.append(Block(document, text.count("\n", 0, match.start()) + 1, match.group("lang") or "text", code))
    return found


def statements(sql: str) -> list[str]:
    """The statements of a SQL block, split where SQLite says a statement is complete."""
    out: list[str] = []
    current = ""
    for line in sql.splitlines(keepends=True):
        current += line
        if apsw.complete(current):
            if re.sub(r"--[^\n]*", "", current).strip():
                out.append(current.strip())
            current = ""
    if re.sub(r"--[^\n]*", "", current).strip():
        out.append(current.strip())  # a last statement without its semicolon
    return out


def shell_lines(code: str) -> list[tuple[str, str]]:
    """The commands of a shell block: (command, its trailing comment), continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", code)
    out = []
    for raw in joined.splitlines():
        command, comment = split_comment(raw)
        if command.strip():
            out.append((command.strip(), comment))
    return out


def split_comment(line: str) -> tuple[str, str]:
    """``line`` without its ``# comment`` (a ``#`` outside quotes, at the start or after a blank)."""
    quote = ""
    for i, char in enumerate(line):
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i], line[i + 1 :].strip()
    return line, ""


@contextlib.contextmanager
def api_at(emulator: Emulator) -> Iterator[None]:
    """While it lasts, a connection of this process that names no ``BaseURL`` reaches ``emulator``
    (the commands' processes get the same from ``site/sitecustomize.py``)."""
    restore = point_at(emulator.base_url)
    try:
        yield
    finally:
        restore()


def start_emulator(**options: Any) -> Emulator:
    """An emulator that takes every placeholder key the documents use, with every scope."""
    from apidriver.emulator.keys import SCOPES

    options.setdefault("task_seconds", 0.05)
    options.setdefault("webhook_retry_delay", 0.02)
    return Emulator(scoped_keys={key: SCOPES for key in PLACEHOLDER_KEYS}, **options).start()


@dataclass
class Ran:
    """What one command of a shell block did."""

    command: str
    comment: str
    returncode: int
    stdout: str
    stderr: str


@dataclass
class Outcome:
    """What one block did: its printed output (Python), results (SQL), commands (shell), value (JSON)."""

    block: Block
    stdout: str = ""
    results: list[tuple[str, list[tuple[Any, ...]], int]] = field(default_factory=list)  # SQL: statement, rows, requests
    commands: list[Ran] = field(default_factory=list)
    value: Any = None
    not_run: str | None = None

    def command(self, start: str) -> Ran:
        """The command of this block that is ``start``, else the one that starts with it."""
        found = [c for c in self.commands if c.command == start] or [c for c in self.commands if c.command.startswith(start)]
        assert len(found) == 1, (start, [c.command for c in self.commands])
        return found[0]


class DocRun:
    """Runs the blocks of one document, in order, against ``emulator`` in the directory ``cwd``
    (``emulator`` None: a document whose blocks start their own)."""

    def __init__(
        self,
        document: str,
        emulator: Emulator | None,
        cwd: Path,
        *,
        substitutions: Mapping[str, str] | None = None,
        not_run: Mapping[str, str] | None = None,
        not_run_commands: Mapping[str, str] | None = None,
        sql: Callable[[Block, str], Any] | None = None,
        handlers: Mapping[str, Callable[[Block, DocRun], Outcome]] | None = None,
    ) -> None:
        self.document = document
        self.emulator = emulator
        self.cwd = cwd
        self.substitutions = dict(substitutions or {})
        self.not_run = dict(not_run or {})
        self.not_run_commands = dict(not_run_commands or {})
        self.sql_connection = sql
        self.handlers = dict(handlers or {})
        self.namespace: dict[str, Any] = {}
        self.outcomes: list[Outcome] = []
        self.used: set[str] = set()
        self.servers: list[subprocess.Popen[str]] = []
        self.connections: list[Any] = []  # what ``sql`` gave: closed at the end
        self.env = {
            **os.environ,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "HTTP_PROXY": NO_INTERNET,
            "HTTPS_PROXY": NO_INTERNET,
            "NO_PROXY": "127.0.0.1,localhost,::1",
            "PYTHONUNBUFFERED": "1",
            "HOME": str(cwd),  # the shell's history file, and nothing else of the real home
        }
        for name in ("CLOUDCONVERT_API_KEY", "APIDRIVER_CONNECTION", "http_proxy", "https_proxy", "no_proxy", "ALL_PROXY", "all_proxy"):
            self.env.pop(name, None)
        if emulator is not None:  # a reader who has set their key (a placeholder the emulator takes)
            self.env["CLOUDCONVERT_API_KEY"] = "YOUR_KEY"
            self.env["APIDRIVER_DOCS_API_URL"] = emulator.base_url
            self.env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SITE), os.environ.get("PYTHONPATH")) if p)

    # -- running ------------------------------------------------------------------------------------

    def run(self) -> list[Outcome]:
        """Run every block (but those in ``not_run``), in order; fails at the first that fails."""
        module = types.ModuleType("doc_" + re.sub(r"\W", "_", self.document))
        sys.modules[module.__name__] = module
        self.namespace = module.__dict__
        saved = {name: os.environ.get(name) for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "CLOUDCONVERT_API_KEY", "HOME")}
        for name in saved:
            if name in self.env:
                os.environ[name] = self.env[name]
            else:
                os.environ.pop(name, None)
        previous = Path.cwd()
        os.chdir(self.cwd)
        try:
            with api_at(self.emulator) if self.emulator is not None else contextlib.nullcontext():
                everything = blocks(self.document)
                tests = [b for b in everything if b.defines_tests and self.reason(b.code) is None]
                for block in everything:
                    reason = self.reason(block.code)
                    if reason is not None:
                        self.outcomes.append(Outcome(block, not_run=reason))
                    elif block.defines_tests:
                        if block is tests[0]:
                            self.outcomes.append(self.run_tests(tests))
                        else:
                            self.outcomes.append(Outcome(block, not_run=f"run with {tests[0].where} as one test file"))
                    else:
                        self.outcomes.append(self.run_block(block))
        finally:
            os.chdir(previous)
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        unused = [name for name in [*self.not_run, *self.not_run_commands] if name not in self.used]
        assert not unused, f"not_run names no block or line of {self.document}: {unused}"
        return self.outcomes

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the servers the blocks left running; dispose of the engines and close the connections
        they left open; forget their module."""
        import sqlalchemy

        self.stop_servers()
        for conn in self.connections:
            conn.close()
        for value in list(self.namespace.values()):
            if isinstance(value, sqlalchemy.engine.Engine):
                value.dispose()
            elif isinstance(value, apidriver.Connection):
                value.close()
        sys.modules.pop("doc_" + re.sub(r"\W", "_", self.document), None)

    def reason(self, text: str, command: bool = False) -> str | None:
        """Why ``text`` is not run, if the test says so: a block whose text contains a name of
        ``not_run``, or a command of a shell block that is a name of ``not_run_commands``."""
        for name, reason in (self.not_run_commands if command else self.not_run).items():
            if (text == name) if command else (name in text):
                self.used.add(name)
                return reason
        return None

    def substitute(self, code: str) -> str:
        for old, new in self.substitutions.items():
            code = code.replace(old, new)
        return code

    def run_block(self, block: Block) -> Outcome:
        code = self.substitute(block.code)
        if block.lang in self.handlers:
            return self.handlers[block.lang](Block(block.document, block.line, block.lang, code), self)
        if block.lang == "python":
            return self.run_python(block, code)
        if block.lang == "sql":
            return self.run_sql(block, code)
        if block.lang in ("sh", "console", "bash"):
            return self.run_shell(block, code)
        if block.lang == "json":
            return Outcome(block, value=json.loads(code))
        raise AssertionError(f"{block.where}: a ```{block.lang} block that is neither run nor named in not_run")

    def run_python(self, block: Block, code: str) -> Outcome:
        printed = io.StringIO()
        # dont_inherit: run as a reader's file would, without this module's __future__ imports.
        compiled = compile(code, block.where, "exec", dont_inherit=True)
        with contextlib.redirect_stdout(printed):
            exec(compiled, self.namespace)  # noqa: S102
        return Outcome(block, stdout=printed.getvalue())

    def run_sql(self, block: Block, code: str) -> Outcome:
        if self.sql_connection is None:
            raise AssertionError(f"{block.where}: a SQL block, and the test gives no connection for it")
        outcome = Outcome(block)
        for statement in statements(code):
            conn = self.sql_connection(block, statement)
            if all(conn is not c for c in self.connections):
                self.connections.append(conn)
            cursor = conn.cursor()
            try:
                cursor.execute(statement)
                rows = [tuple(r) for r in cursor.fetchall()] if cursor.description else []
                outcome.results.append((statement, rows, len(getattr(cursor, "requests", []))))
            finally:
                cursor.close()
        return outcome

    def run_shell(self, block: Block, code: str) -> Outcome:
        outcome = Outcome(block)
        reasons = []
        for command, comment in shell_lines(code):
            reason = INSTALL if command.startswith("pip install ") else self.reason(command, command=True)
            if reason is not None:
                reasons.append(reason)
                continue
            ran = self.run_command(command, comment)
            outcome.commands.append(ran)
            assert ran.returncode == 0, f"{block.where}: `{command}` exited with {ran.returncode}:\n{ran.stdout}\n{ran.stderr}"
        if not outcome.commands:
            outcome.not_run = "; ".join(reasons)
        return outcome

    def run_command(self, command: str, comment: str = "") -> Ran:
        words = shlex.split(command)
        if words[0] == "cd":  # the next commands run there (this process too: CliRunner runs in its directory)
            self.cwd = (self.cwd / words[1]).resolve()
            os.chdir(self.cwd)
            return Ran(command, comment, 0, "", "")
        if words[0] == "export":
            for word in words[1:]:
                name, _, value = word.partition("=")
                self.env[name] = value
            return Ran(command, comment, 0, "", "")
        if command.endswith("&"):
            return self.start_server(command[:-1].strip(), comment, stop=False)
        if "--follow" in words or words[:2] == ["apidriver", "emulator"] or words[:3] == ["python", "-m", "apidriver.emulator"]:
            return self.start_server(command, comment, stop=True)
        variables = re.search(r"\$\{?\w", command) is not None
        if words[0] in ("apidriver", str(BIN / "apidriver")) and not set(words) & {"|", ">", "&&", ";"} and not (variables and "'" in command):
            if variables:  # $NAME and ${NAME}, as the shell expands them outside single quotes
                words = [re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: self.env.get(m[1] or m[2], ""), w) for w in words]
            return self.run_cli(words[1:], command, comment)
        result = subprocess.run(["bash", "-c", command], cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=120, check=False)
        return Ran(command, comment, result.returncode, result.stdout, result.stderr)

    def run_cli(self, args: list[str], command: str, comment: str) -> Ran:
        """``apidriver ARGS [< FILE]`` in this process (as a subprocess would, ~1 s faster each)."""
        from click.testing import CliRunner

        from apidriver.cli import cli

        stdin = None
        if "<" in args:
            at = args.index("<")
            stdin = (self.cwd / args[at + 1]).read_bytes()
            args = args[:at] + args[at + 2 :]
        env = {name: self.env.get(name) for name in ("APIDRIVER_CONNECTION", "CLOUDCONVERT_API_KEY", "APIDRIVER_MCP_TOKEN", "HOME")}
        result = CliRunner().invoke(cli, args, env=env, input=stdin, prog_name="apidriver")
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Ran(command, comment, result.exit_code, result.stdout, result.stderr)

    def start_server(self, command: str, comment: str, stop: bool, stop_with: int = signal.SIGINT) -> Ran:
        """Start a command that runs until stopped; once it says it is ready, stop it with
        ``stop_with`` (Ctrl-C's SIGINT; systemd sends SIGTERM) and say how it ended (``stop``), or
        leave it running until the document ends."""
        process = subprocess.Popen(
            ["bash", "-c", f"exec {command}"], cwd=self.cwd, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.servers.append(process)
        ready = READY["follow"] if "--follow" in command else READY["emulator"]
        printed = ""
        deadline = time.monotonic() + 60
        assert process.stdout is not None
        while not ready.search(printed):
            line = process.stdout.readline()
            if not line:
                raise AssertionError(f"`{command}` ended before it was ready ({process.wait()}):\n{printed}\n{process.stderr.read() if process.stderr else ''}")
            printed += line
            assert time.monotonic() < deadline, f"`{command}` not ready after 60 s:\n{printed}"
        if not stop:
            return Ran(command, comment, 0, printed, "")
        process.send_signal(stop_with)
        out, err = process.communicate(timeout=60)
        self.servers.remove(process)
        return Ran(command, comment, process.returncode, printed + out, err)

    def stop_servers(self) -> None:
        for process in self.servers:
            process.send_signal(signal.SIGINT)
            try:
                process.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
        self.servers.clear()

    def run_tests(self, tests: list[Block]) -> Outcome:
        """The blocks that define tests, put together in order: a test file that pytest runs with the
        plugin, in a process of its own, as a user would; every test must pass."""
        code = "\n\n".join(self.substitute(b.code) for b in tests)
        names = re.findall(r"^(?:async )?def (test_\w+)", code, flags=re.MULTILINE)
        assert len(set(names)) == len(names), f"{self.document}: two tests of one name"
        folder = self.cwd / "tests_of_the_document"
        folder.mkdir()
        (folder / ("test_" + re.sub(r"\W", "_", Path(self.document).stem) + ".py")).write_text(code)
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--rootdir", str(folder), "-q", str(folder)],
            cwd=folder, env=self.env, capture_output=True, text=True, timeout=300, check=False,
        )
        passed = re.search(r"(\d+) passed", result.stdout)
        assert result.returncode == 0 and passed and int(passed[1]) == len(names), f"{tests[0].where}: {result.stdout}\n{result.stderr}"
        return Outcome(tests[0], stdout=result.stdout, value=names)

    # -- reading the outcomes ---------------------------------------------------------------------

    def outcome(self, text: str) -> Outcome:
        """The outcome of the one block whose text contains ``text``."""
        found = [o for o in self.outcomes if text in o.block.code]
        assert len(found) == 1, f"{len(found)} blocks of {self.document} contain {text!r}"
        return found[0]

    @property
    def ran(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.not_run is None]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dedent(text: str) -> str:
    return textwrap.dedent(text).strip("\n")
