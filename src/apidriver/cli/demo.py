"""``apidriver demo``: the README's main command, a walk through the product on the built-in emulator.

It starts an in-process CloudConvert emulator with a seeded account and
shows, with short headings: failed jobs through the SQLAlchemy ORM, what each query sends
to the API (push-down), a join with an aggregate, and writes (INSERT ...
RETURNING, waiting for the job, its files, ConvertFile, DELETE). Everything
is local; nothing needs the network.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import re
import tempfile
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from rich.console import Console
from rich.rule import Rule
from rich.syntax import Syntax
from rich.text import Text

import apidriver

from ..emulator import Emulator
from .output import Result, plural, table
from .statement import run

SHOWN_ROWS = 6
WIDTH_OFF_TERMINAL = 120
DEMO_TASKS = {
    "import": {"operation": "import/url", "url": "https://example.com/report.docx"},
    "convert": {"operation": "convert", "input": "import", "output_format": "pdf"},
    "export": {"operation": "export/url", "input": "convert"},
}


def failed_jobs_with_the_orm(url: str) -> None:
    from sqlalchemy import Column, DateTime, String, create_engine
    from sqlalchemy.orm import declarative_base, sessionmaker

    engine = create_engine(url)
    Base = declarative_base()

    class Jobs(Base):  # type: ignore[valid-type, misc]
        __tablename__ = "Jobs"
        id = Column(String, primary_key=True)
        tag = Column(String)
        status = Column(String)
        created_at = Column(DateTime)

    session = sessionmaker(bind=engine)()
    for instance in session.query(Jobs).filter_by(status="error"):
        print(instance.id, instance.tag, instance.created_at)

    jobs = Jobs.metadata.tables["Jobs"]
    rows = session.execute(jobs.select().where(jobs.c.status == "error")).all()
    print(f"the same through Core: {len(rows)} rows")
    session.close()
    engine.dispose()


class Walkthrough:
    """Prints the demo's steps on ``console``, against a running emulator."""

    def __init__(self, console: Console, emulator: Emulator) -> None:
        self.console = console
        self.emulator = emulator
        self.conn = apidriver.connect(APIKey=emulator.api_key, BaseURL=emulator.base_url)
        self.cursor = self.conn.cursor()

    # -- printing ----------------------------------------------------------------------------------

    def heading(self, text: str) -> None:
        self.console.print()
        self.console.print(Rule(Text(text, style="bold"), align="left", style="cyan"))

    def say(self, text: str) -> None:
        self.console.print(text, style="dim", highlight=False, markup=False)

    def code(self, source: str, language: str = "sql") -> None:
        self.console.print(Syntax(source.strip("\n"), language, theme="ansi_dark", background_color="default", word_wrap=True))

    def requests(self, result: Result) -> None:
        root = self.emulator.base_url
        for record in result.requests:
            shown = unquote(str(record).replace(root, ""))
            self.console.print(f"  → {shown}", style="green", highlight=False, markup=False, soft_wrap=True)

    def query(self, sql: str, parameters: Sequence[Any] = (), requests: bool = True, rows: int = SHOWN_ROWS) -> Result:
        """Show ``sql``, run it, show its first rows and the HTTP requests it made."""
        self.console.print()
        self.code(sql)
        result = run(self.cursor, sql, parameters or None, progress=False)
        more = ""
        if result.is_query:
            shown = Result(result.columns, result.types, result.rows[:rows], result.rowcount, result.requests, result.seconds)
            more = f" (first {rows} shown)" if len(result.rows) > rows else ""
            self.console.print(table(shown))
        self.say(result.summary() + more)
        if requests:
            self.requests(result)
        return result

    # -- the steps ---------------------------------------------------------------------------------

    def intro(self, jobs: int) -> None:
        self.console.print(
            Text.assemble(
                ("apidriver demo", "bold"),
                f": SQL over the CloudConvert API v2. A local emulator serves a sample account with {jobs} jobs at ",
                (self.emulator.base_url, "cyan"),
                f" (API key {self.emulator.api_key!r}); every query below goes to it over HTTP.",
            )
        )

    def orm(self) -> None:
        self.heading("1. Failed jobs through the SQLAlchemy ORM")
        url = f"cloudconvert://:{self.emulator.api_key}@?BaseURL={quote(self.emulator.base_url, safe='')}"
        source = re.sub(r"  # type: ignore\[.*\]", "", textwrap.dedent(inspect.getsource(failed_jobs_with_the_orm)))
        self.code(f'url = "{url}"\n\n{source}', "python")
        self.console.print()
        served = len(self.emulator.requests())
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            failed_jobs_with_the_orm(url)
        requests = self.emulator.requests()[served:]
        lines = printed.getvalue().splitlines()
        hidden = len(lines) - 1 - SHOWN_ROWS
        self.say(f"Output ({plural(len(requests), 'request')}):")
        for line in lines[:SHOWN_ROWS] + ([f"… {hidden} more"] if hidden > 0 else []) + lines[-1:]:
            self.console.print(f"  {line}", highlight=False, markup=False)
        for request in requests:
            query = f"?{unquote(request['query'])}" if request.get("query") else ""
            self.console.print(f"  → {request['method']} {request['path']}{query} -> {request['status']}", style="green", highlight=False, markup=False)

    def pushdown(self) -> None:
        self.heading("2. Push-down: what each query sends to the API")
        self.say("Filters the API supports become request parameters; the rest is done by SQLite on the rows fetched.")
        (job_id,) = self.cursor.execute("SELECT id FROM Jobs WHERE status = 'finished' LIMIT 1").fetchall()[0]
        self.query("SELECT id, tag, created_at FROM Jobs WHERE status = 'error'")
        self.query("SELECT id, status, ended_at FROM Jobs WHERE id = ?", [job_id])
        self.query("SELECT id, status FROM Jobs WHERE status IN ('waiting', 'processing')")
        self.query("SELECT id, tag FROM Jobs LIMIT 3")
        self.say("LIKE is not sent: every page of jobs is read, and SQLite filters them.")
        self.query("SELECT tag, count(*) AS jobs FROM Jobs WHERE tag LIKE 'in%' GROUP BY tag")

    def join(self) -> None:
        self.heading("3. A join with an aggregate")
        self.say(
            "Jobs ⋈ Tasks: the tasks arrive inside the jobs (include=tasks), so no request is made per job. "
            "The first read of a list fetches pages ahead concurrently; later reads know how many pages there are."
        )
        self.query(
            "SELECT j.tag, count(*) AS tasks, sum(t.credits) AS credits,\n"
            "       sum(t.status = 'error') AS failed\n"
            "FROM Jobs j JOIN Tasks t ON t.job_id = j.id\n"
            "WHERE j.tag IS NOT NULL\n"
            "GROUP BY j.tag ORDER BY credits DESC",
            rows=10,
        )

    def writes(self, folder: Path) -> None:
        self.heading("4. Writes and actions")
        self.say("INSERT becomes POST /v2/jobs; RETURNING gives what the API created.")
        created = self.query(
            "INSERT INTO Jobs (tag, tasks) VALUES ('demo', ?) RETURNING id, status, created_at", [json.dumps(DEMO_TASKS)]
        )
        job_id = created.rows[0][0]
        self.say("Wait for it through the sync API, then list the files it produced:")
        self.query("SELECT id, status, ended_at FROM WaitJob(?)", [job_id])
        self.query("SELECT operation, filename, size, url FROM TaskFiles WHERE job_id = ? AND url IS NOT NULL", [job_id])
        source = folder / "minutes.md"
        source.write_text("# Minutes\n\nThe demo converted this file.\n")
        self.say(f"ConvertFile uploads a local file, converts it and downloads the result next to it ({source.name} here):")
        self.query("SELECT filename, size, credits FROM ConvertFile(?, 'pdf')", [str(source)])
        pdf = folder / "minutes.pdf"
        if pdf.is_file():
            self.say(f"{pdf.name}: {pdf.stat().st_size} bytes starting {pdf.read_bytes()[:5]!r}")
        self.say("DELETE sends one DELETE per matching row:")
        self.query("DELETE FROM Jobs WHERE tag = 'demo' OR tag = 'apidriver:ConvertFile'")

    def outro(self, started: float) -> None:
        self.heading("Your turn")
        self.code(
            "apidriver emulator --port 8000 --jobs 100 &          # or use your own key: export CLOUDCONVERT_API_KEY=...\n"
            'export APIDRIVER_CONNECTION="APIKey=emulator-key;BaseURL=http://127.0.0.1:8000"\n'
            "apidriver tables                                      # the tables, and what pushes down\n"
            "apidriver describe Tasks\n"
            "apidriver query \"SELECT status, count(*) FROM Jobs GROUP BY status\" --format json --requests\n"
            "apidriver shell",
            "bash",
        )
        served = len(self.emulator.requests())
        self.say(f"The demo took {time.monotonic() - started:.1f} s; the emulator served {plural(served, 'API request')}.")

    def close(self) -> None:
        self.conn.close()


def run_demo(console: Console | None = None, jobs: int = 120, seed: int = 42) -> None:
    """Start the emulator and walk through the demo (about five seconds)."""
    console = console or Console(highlight=False)
    if not console.is_terminal:
        console = Console(file=console.file, width=WIDTH_OFF_TERMINAL, highlight=False)
    started = time.monotonic()
    with Emulator(jobs=jobs, seed=seed, latency_ms=3, task_seconds=0.15) as emulator:
        walk = Walkthrough(console, emulator)
        try:
            walk.intro(jobs)
            walk.orm()
            walk.pushdown()
            walk.join()
            with tempfile.TemporaryDirectory(prefix="apidriver-demo-") as folder:
                walk.writes(Path(folder))
            walk.outro(started)
        finally:
            walk.close()
