"""``apidriver tables`` and ``apidriver describe``: the generated table reference, without an API key."""

from __future__ import annotations

from pathlib import Path

import pytest

from apidriver.engine.system import system_tables
from apidriver.profiles import load
from apidriver.reference import describe_table, markdown

from .conftest import apidriver

DOCS = Path(__file__).resolve().parents[2] / "docs" / "tables.md"


def test_tables_lists_every_table_and_what_pushes_down() -> None:
    result = apidriver("tables")
    assert result.returncode == 0, result.stderr
    profile = load("CloudConvert")
    for table in profile.tables:
        assert table.name in result.stdout
    for procedure in profile.procedures:
        assert procedure.name + "(" in result.stdout
    text = " ".join(result.stdout.split())  # table cells wrap
    assert "push-down: id, tag, status · writes: INSERT, DELETE" in text
    assert "push-down: id, job_id, operation, status" in text
    assert "CreateJob(tasks, [tag], [wait])" in text
    assert "What is sent to the API" in text


def test_tables_markdown_is_the_reference() -> None:
    result = apidriver("tables", "--markdown")
    assert result.returncode == 0, result.stderr
    assert result.stdout == markdown(load("CloudConvert"))
    assert result.stdout.splitlines()[:3] == DOCS.read_text().splitlines()[:3]


def test_describe_shows_columns_descriptions_and_pushdown() -> None:
    result = apidriver("describe", "jobs", env={"COLUMNS": "300"})  # any case; wide enough for no cell to wrap
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert text.startswith("Jobs Conversion jobs of the account")
    assert "Rows: GET /jobs, GET /jobs/{id} (scope task.read)." in text
    assert "INSERT: sets tag, tasks, webhook_url (required: tasks); one POST /jobs per row." in text
    assert "status TEXT waiting, processing, finished or error. =, IN: filter[status]=value on GET /jobs, one request per value" in text
    assert "created_at TIMESTAMP When the job was created (UTC)." in text


@pytest.mark.parametrize("name", ["Tasks", "TaskFiles", "sys_tablecolumns"])
def test_describe_markdown_is_the_reference_section(name: str) -> None:
    result = apidriver("describe", name, "--markdown")
    assert result.returncode == 0, result.stderr
    profile = load("CloudConvert")
    tables = list(profile.tables)
    tables += system_tables(lambda: tables, lambda: profile.procedures)
    by_name = {t.name.lower(): t for t in tables}
    assert result.stdout == describe_table(by_name[name.lower()], by_name)


def test_describe_a_procedure() -> None:
    result = apidriver("describe", "ConvertFile")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "ConvertFile(path, output_format, [options], [destination])" in text
    assert "Returns: output_path, filename, size, credits, job_id." in text


def test_describe_unknown_name() -> None:
    result = apidriver("describe", "Nope")
    assert result.returncode == 2
    assert "no table or procedure 'Nope'; known: Jobs, Tasks" in result.stderr
    assert "Traceback" not in result.stderr
