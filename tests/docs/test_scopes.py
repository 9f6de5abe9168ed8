"""The scopes docs/tables.md lists (generated from the tables' endpoint specs and the profile's
``procedure_scopes``) are the ones the API asks for: each statement works with a key that has exactly
the scopes listed, and fails with PermissionDeniedError naming the scope when any one is missing."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import apidriver
from apidriver.emulator import Emulator
from apidriver.profiles.cloudconvert import profile
from apidriver.reference import read_scope

from ..conftest import CONVERSION_TASKS

SCOPES = ("user.read", "task.read", "task.write", "webhook.read", "webhook.write")


def key(scopes: set[str] | frozenset[str]) -> str:
    return "scopes:" + "+".join(sorted(scopes))


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    keys = {key(set(c)): c for n in range(len(SCOPES) + 1) for c in itertools.combinations(SCOPES, n)}
    emulator = Emulator(scoped_keys=keys, jobs=6, seed=4, task_seconds=0.05).start()
    yield emulator
    emulator.stop()


def documented() -> dict[str, tuple[str, ...]]:
    """What the reference says each statement kind needs: "Jobs SELECT", "Jobs INSERT", "CreateJob()", ..."""
    tables = {t.name.lower(): t for t in profile.tables}
    out: dict[str, tuple[str, ...]] = {}
    for t in profile.tables:
        scope = read_scope(t, tables)
        out[f"{t.name} SELECT"] = (scope,) if scope else ()
        if t.write is not None and t.write.insert is not None:
            out[f"{t.name} INSERT"] = (t.write.insert.scope,) if t.write.insert.scope else ()
        if t.write is not None and t.write.delete is not None:
            out[f"{t.name} DELETE"] = (t.write.delete.scope,) if t.write.delete.scope else ()
    for name, scopes in profile.extras["procedure_scopes"].items():
        out[f"{name}()"] = tuple(s.split()[0] for s in scopes)
    return out


def statements(emulator: Emulator, tmp_path: Path) -> dict[str, Callable[[], tuple[str, tuple[Any, ...]]]]:
    """A statement of each kind, made ready with a key that has every scope (called once per attempt)."""
    admin = apidriver.connect(APIKey=emulator.api_key, BaseURL=emulator.base_url)
    cur = admin.cursor()

    def job() -> str:
        return str(cur.execute("INSERT INTO Jobs (tag, tasks) VALUES ('scopes', ?) RETURNING id", (CONVERSION_TASKS,)).fetchone()[0])

    def waiting_task() -> str:
        return str(cur.execute("INSERT INTO Tasks (operation) VALUES ('import/upload') RETURNING id").fetchone()[0])

    def ended_task() -> str:
        task = waiting_task()
        cur.execute("SELECT * FROM CancelTask(?)", (task,)).fetchall()
        return task

    def webhook() -> str:
        return str(cur.execute("INSERT INTO Webhooks (url, events) VALUES ('https://example.com/h', ?) RETURNING id", (["job.failed"],)).fetchone()[0])

    (tmp_path / "a.docx").write_bytes(b"PK a document")
    out: dict[str, Callable[[], tuple[str, tuple[Any, ...]]]] = {
        f"{t.name} SELECT": (lambda name=t.name: (f"SELECT * FROM {name} LIMIT 1", ())) for t in profile.tables
    }
    out |= {
        "Jobs INSERT": lambda: ("INSERT INTO Jobs (tag, tasks) VALUES ('scopes', ?)", (CONVERSION_TASKS,)),
        "Jobs DELETE": lambda: ("DELETE FROM Jobs WHERE id = ?", (job(),)),
        "Tasks INSERT": lambda: ("INSERT INTO Tasks (operation) VALUES ('import/upload')", ()),
        "Tasks DELETE": lambda: ("DELETE FROM Tasks WHERE id = ?", (waiting_task(),)),
        "Webhooks INSERT": lambda: ("INSERT INTO Webhooks (url, events) VALUES ('https://example.com/h', ?)", (["job.failed"],)),
        "Webhooks DELETE": lambda: ("DELETE FROM Webhooks WHERE id = ?", (webhook(),)),
        "CreateJob()": lambda: ("SELECT * FROM CreateJob(?, 'scopes', 1)", (CONVERSION_TASKS,)),  # with wait: both scopes
        "WaitJob()": lambda: ("SELECT * FROM WaitJob(?)", (job(),)),
        "WaitTask()": lambda: ("SELECT * FROM WaitTask(?)", (ended_task(),)),
        "CancelTask()": lambda: ("SELECT * FROM CancelTask(?)", (waiting_task(),)),
        "RetryTask()": lambda: ("SELECT * FROM RetryTask(?)", (ended_task(),)),
        "DeleteJob()": lambda: ("SELECT * FROM DeleteJob(?)", (job(),)),
        "ConvertFile()": lambda: ("SELECT * FROM ConvertFile(?, 'pdf')", (str(tmp_path / "a.docx"),)),
        "VerifyWebhookSignature()": lambda: ("SELECT * FROM VerifyWebhookSignature('{}', 'x', 's')", ()),
    }
    return out


def test_each_statement_needs_exactly_the_documented_scopes(emulator: Emulator, tmp_path: Path) -> None:
    needs = documented()
    ready = statements(emulator, tmp_path)
    assert sorted(ready) == sorted(needs)  # a table or procedure the reference lists, tried here
    for kind, scopes in needs.items():
        for missing in scopes:
            sql, params = ready[kind]()
            conn = apidriver.connect(APIKey=key(set(scopes) - {missing}), BaseURL=emulator.base_url)
            try:
                with pytest.raises(apidriver.PermissionDeniedError, match=missing.replace(".", r"\.")):
                    run(conn, sql, params)
            finally:
                conn.close()
        sql, params = ready[kind]()
        conn = apidriver.connect(APIKey=key(set(scopes)), BaseURL=emulator.base_url)
        try:
            run(conn, sql, params)
        finally:
            conn.close()


def run(conn: Any, sql: str, params: tuple[Any, ...]) -> None:
    cursor = conn.cursor().execute(sql, params)
    if cursor.description:
        cursor.fetchall()


def test_create_job_without_wait_needs_task_write_only_a_delete_by_tag_reads_too(emulator: Emulator) -> None:
    conn = apidriver.connect(APIKey=key({"task.write"}), BaseURL=emulator.base_url)
    try:
        assert conn.cursor().execute("SELECT status FROM CreateJob(?)", (CONVERSION_TASKS,)).fetchall()
        with pytest.raises(apidriver.PermissionDeniedError, match=r"task\.read"):
            conn.cursor().execute("DELETE FROM Jobs WHERE tag = 'scopes'")
    finally:
        conn.close()
