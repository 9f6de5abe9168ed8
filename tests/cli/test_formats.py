"""``apidriver query`` formats (tsv, markdown, vertical, no header), wide results on an
80-column terminal, positional parameters, and output that cannot be written."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import subprocess
import sys
from typing import Any

import pexpect
import pytest

from apidriver.emulator import Emulator

from ..conftest import raw_list
from .conftest import COMMAND, apidriver, connection, environment

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>]|\r")
JOB_COLUMNS = ["id", "tag", "status", "created_at", "started_at", "ended_at", "links_self", "tasks", "webhook_url"]


@pytest.fixture(scope="module")
def jobs(shared_emulator: Emulator) -> dict[str, dict[str, Any]]:
    return {j["id"]: j for j in raw_list(shared_emulator, "/jobs")}


def on_terminal(emulator: Emulator, *args: str, columns: int = 80) -> str:
    """``apidriver ARGS`` in a pseudo-terminal ``columns`` wide; what it printed, without escapes."""
    child = pexpect.spawn(
        sys.executable,
        [*COMMAND[1:], *args, "--connect", connection(emulator)],
        env={k: v for k, v in environment({"TERM": "xterm", "NO_COLOR": "1"}).items() if k not in ("COLUMNS", "LINES")},
        encoding="utf-8",
        timeout=30,
        dimensions=(40, columns),
    )
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    return ANSI.sub("", child.before)


def test_select_star_on_80_columns_shows_every_column(shared_emulator: Emulator, jobs: dict[str, dict[str, Any]]) -> None:
    shown = on_terminal(shared_emulator, "query", "SELECT * FROM Jobs ORDER BY id LIMIT 2")
    assert all(len(line) <= 80 for line in shown.splitlines()), shown
    # Too wide for a table: one block per row, every column named.
    assert shown.count("1. row") == 1 and shown.count("2. row") == 1
    for name in JOB_COLUMNS:
        assert len(re.findall(rf"^\s*{name}: ", shown, re.MULTILINE)) == 2, name
    first = sorted(jobs)[0]
    assert re.search(rf"^\s*id: {first}$", shown, re.MULTILINE)
    assert "2 rows · 1 request" in shown


def test_ids_stay_whole_at_80_columns_and_other_cells_fold(shared_emulator: Emulator, jobs: dict[str, dict[str, Any]]) -> None:
    # 36 + 25 + 25 characters do not fit in 80 columns: the timestamps fold at their space, the ids never.
    shown = on_terminal(shared_emulator, "query", "SELECT id, created_at, ended_at FROM Jobs ORDER BY id LIMIT 3")
    lines = shown.splitlines()
    assert all(len(line) <= 80 for line in lines), shown
    assert "1. row" not in shown  # still a table
    for job_id in sorted(jobs)[:3]:
        created = dt.datetime.fromisoformat(jobs[job_id]["created_at"]).astimezone(dt.UTC)
        date, time = created.isoformat(sep=" ").split(" ")
        row = next(i for i, line in enumerate(lines) if job_id in line)  # whole, on one line
        assert re.match(rf"^\s*{job_id}\s+{date}\s", lines[row]), shown
        assert time in lines[row + 1], shown  # the time part on the row's second line


def test_a_table_whose_ids_cannot_stay_whole_is_shown_vertically(shared_emulator: Emulator) -> None:
    shown = on_terminal(shared_emulator, "query", "SELECT id, job_id, operation, status FROM Tasks ORDER BY id LIMIT 2")
    assert all(len(line) <= 80 for line in shown.splitlines()), shown
    tasks = sorted(raw_list(shared_emulator, "/tasks"), key=lambda t: t["id"])[:2]
    for task in tasks:
        assert re.search(rf"^\s*id: {task['id']}$", shown, re.MULTILINE), shown
        assert re.search(rf"^\s*job_id: {task['job_id']}$", shown, re.MULTILINE), shown


@pytest.mark.parametrize("columns", [80, 200])
def test_json_gets_the_width_that_is_left(shared_emulator: Emulator, columns: int) -> None:
    # One line per row, cut with an ellipsis where the terminal ends (not at 60 characters).
    jobs = sorted(raw_list(shared_emulator, "/jobs", include="tasks"), key=lambda j: j["id"])[:2]
    shown = on_terminal(shared_emulator, "query", "SELECT id, tasks FROM Jobs ORDER BY id LIMIT 2", columns=columns)
    for job in jobs:
        line = next(line for line in shown.splitlines() if job["id"] in line)
        assert len(line.rstrip()) == columns - 2, shown  # all but the table's right padding
        cut = line.split(job["id"], 1)[1].strip()
        assert cut.endswith("…") and len(cut) == columns - 2 - 36 - 5, shown  # 5: padding and separator
        assert json.dumps(job["tasks"], separators=(",", ":")).startswith(cut[:-1]), cut


def test_vertical_format(shared_emulator: Emulator, jobs: dict[str, dict[str, Any]]) -> None:
    result = apidriver("query", "SELECT id, tag, status FROM Jobs ORDER BY id LIMIT 2", "-f", "vertical", "--connect", connection(shared_emulator))
    assert result.returncode == 0, result.stderr
    first, second = sorted(jobs)[:2]
    blocks = result.stdout.split("*************************** 2. row ***************************\n")
    assert blocks[0].startswith("*************************** 1. row ***************************\n")
    assert f"    id: {first}\n" in blocks[0] and f"    id: {second}\n" in blocks[1]
    assert f"   tag: {jobs[first]['tag'] or 'NULL'}\n" in blocks[0]
    assert "2 rows · 1 request" in blocks[1]


def test_tsv_and_no_header(shared_emulator: Emulator, jobs: dict[str, dict[str, Any]]) -> None:
    sql = "SELECT id, tag, status FROM Jobs"
    tsv = apidriver("query", sql, "-f", "tsv", "--connect", connection(shared_emulator))
    rows = list(csv.reader(io.StringIO(tsv.stdout), delimiter="\t"))
    assert rows[0] == ["id", "tag", "status"]
    assert {(r[0], r[1], r[2]) for r in rows[1:]} == {(i, j["tag"] or "", j["status"]) for i, j in jobs.items()}
    bare = apidriver("query", sql, "-f", "csv", "--no-header", "--connect", connection(shared_emulator))
    assert len(list(csv.reader(io.StringIO(bare.stdout)))) == len(jobs)
    assert "id,tag,status" not in bare.stdout
    table = apidriver("query", sql, "--no-header", "--connect", connection(shared_emulator))
    assert not re.search(r"^\s*id\s+tag\s+status\s*$", table.stdout, re.MULTILINE)
    assert all(i in table.stdout for i in jobs)


def test_markdown(shared_emulator: Emulator, jobs: dict[str, dict[str, Any]]) -> None:
    result = apidriver("query", "SELECT id, tag, length(id) AS n FROM Jobs ORDER BY id", "-f", "markdown", "--connect", connection(shared_emulator))
    lines = result.stdout.splitlines()
    assert lines[0] == "| id | tag | n |"
    assert lines[1] == "|---|---|---:|"
    assert lines[2:] == [f"| {i} | {jobs[i]['tag'] or ''} | 36 |" for i in sorted(jobs)]


def test_positional_and_named_parameters(shared_emulator: Emulator, jobs: dict[str, dict[str, Any]]) -> None:
    errors = {i for i, j in jobs.items() if j["status"] == "error"}
    by_position = apidriver("query", "SELECT id FROM Jobs WHERE status = ? AND tag IS NOT ?", "error", "x", "-f", "csv", "--connect", connection(shared_emulator))
    assert by_position.returncode == 0, by_position.stderr
    assert set(by_position.stdout.split()[1:]) == errors
    by_name = apidriver("query", "SELECT id FROM Jobs WHERE status = :s", "-p", "s", "error", "-f", "csv", "--connect", connection(shared_emulator))
    assert set(by_name.stdout.split()[1:]) == errors


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["SELECT id FROM Jobs WHERE status = ?"], "the statement has 1 parameter (?) and no value was given; pass values after the SQL"),
        (["SELECT id FROM Jobs WHERE status = :s"], "no value for the parameter s; pass values after the SQL for ? (apidriver query"),
        (["SELECT ?, ?", "1"], "the statement has 2 parameters (?) and 1 was given"),
        (["SELECT 1", "extra"], "1 value given but the statement has no ? parameter"),
    ],
)
def test_missing_parameters_say_how_to_pass_them(shared_emulator: Emulator, args: list[str], message: str) -> None:
    result = apidriver("query", *args, "--connect", connection(shared_emulator))
    assert result.returncode == 2
    assert message in result.stderr
    assert "bindings" not in result.stderr


def test_output_that_cannot_be_written_is_one_line(shared_emulator: Emulator) -> None:
    command = " ".join([*COMMAND, "query", "'SELECT * FROM Jobs'", "--connect", f"'{connection(shared_emulator)}'"])
    result = subprocess.run(f"{command} > /dev/full", shell=True, capture_output=True, text=True, timeout=60, env=environment(), check=False)
    assert result.returncode == 1
    assert result.stderr == "apidriver: cannot write the output: No space left on device\n"
