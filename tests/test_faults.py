"""The fault matrix: every injected fault × every kind of operation × once or
persistent, each cell asserting the outcome (the right rows, or the documented
DB-API error), the number of attempts that reached the API, that no write was
carried out twice, that no partial result came back, and a time bound.

What the cells expect is the client's policy (``apidriver/client.py``):

- reads (GET) are retried: a fault once is survived with one more attempt; a
  persistent one fails after 1 + MaxRetries attempts (429: after 4 answers)
  with ``APIUnavailableError`` (``RateLimitError``), never a partial result;
- a POST is retried only after a 429 (certainly not carried out); any other
  failure raises ``AmbiguousWriteError`` after one attempt, and the emulator
  says whether it took effect (status faults: no; drop, stall, malformed: yes);
- a DELETE is idempotent: retried like a read, and a 404 after an attempt
  without an answer (or with an empty 200 instead of its 204) means that
  attempt took effect;
- a stall shorter than ``Timeout`` is only slow; the sync host's waits run
  under ``WaitTimeout``, not ``Timeout``, so a stall there is only slow too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

import apidriver
from apidriver.emulator import Emulator

from .conftest import CONVERSION_TASKS, connect_to
from .emulator.support import wait_until

TIMEOUT = 0.5
MAX_RETRIES = 2
PAGE_SIZE = 4
JOBS = 10  # 3 pages of 4
STALLS = {"stall_short": 0.1, "stall_long": 1.0}

FAULTS = ["500", "502", "503", "429", "drop", "stall_short", "stall_long", "malformed"]
OPERATIONS = [
    "scan_fault_on_page_1",
    "scan_fault_on_page_2",
    "get_by_id",
    "insert",
    "delete_by_id",
    "delete_by_filter",
    "procedure_post",
    "procedure_wait",
]
STATUS_FAULTS = ("500", "502", "503")
UNANSWERED = ("drop", "stall_long")  # sent, carried out, no answer


@dataclass
class Cell:
    fault: str
    operation: str
    persistent: bool

    @property
    def kind(self) -> str:
        return "stall" if self.fault.startswith("stall") else self.fault


@dataclass
class Expected:
    error: type[apidriver.Error] | None
    attempts: int
    took_effect: bool | None = None  # writes: whether the API carried the request out


def expected(cell: Cell) -> Expected:
    """What the policy promises for one cell (see the module docstring)."""
    fault, op, persistent = cell.fault, cell.operation, cell.persistent
    give_up = 1 + MAX_RETRIES
    if op in ("insert", "procedure_post"):  # POST
        if fault == "429":
            return Expected(apidriver.RateLimitError, 4, False) if persistent else Expected(None, 2, True)
        if fault == "stall_short":
            return Expected(None, 1, True)
        return Expected(apidriver.AmbiguousWriteError, 1, fault not in STATUS_FAULTS)
    if fault == "stall_short" or (op == "procedure_wait" and fault == "stall_long"):
        return Expected(None, 1, True)
    if fault == "malformed" and op.startswith("delete"):
        # The emulator cuts the 204 into an empty 200, which is not the API's answer: retried, and
        # the retry's 404 says the first attempt took effect (persistent: the 404 is cut too).
        return Expected(apidriver.APIUnavailableError, give_up, True) if persistent else Expected(None, 2, True)
    if not persistent:
        return Expected(None, 2, True)
    if fault == "429":
        return Expected(apidriver.RateLimitError, 4, False)
    return Expected(apidriver.APIUnavailableError, give_up, fault in UNANSWERED)


CELLS = [Cell(f, o, p) for o in OPERATIONS for f in FAULTS for p in (False, True)]


@pytest.fixture
def emu(make_emulator: Callable[..., Emulator]) -> Iterator[Emulator]:
    # Tasks of new jobs stay waiting for a minute (CancelTask needs one); no rate limit but the faults.
    emulator = make_emulator(jobs=JOBS, seed=21, task_seconds=60, rate_limit=0)
    yield emulator
    emulator.clear_faults()
    wait_until(lambda: not emulator.pending_requests(), timeout=5, what="stalled requests to end")


class Api:
    """The emulator's state through plain HTTP: the ground truth of each cell."""

    def __init__(self, emu: Emulator) -> None:
        self.http = httpx.Client(base_url=emu.api_url, headers={"Authorization": f"Bearer {emu.api_key}"})

    def all(self, path: str, **params: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        page = 1
        while True:
            body = self.http.get(path, params={**params, "page": page}).json()
            out += body["data"]
            if not body["links"]["next"]:
                return out
            page += 1

    def job(self, tag: str) -> str:
        return str(self.http.post("/jobs", json={"tag": tag, "tasks": CONVERSION_TASKS}).json()["data"]["id"])

    def exists(self, path: str) -> bool:
        return self.http.get(path).status_code == 200


def attempts(emu: Emulator, method: str, path: str, query: str | None = None) -> int:
    wait_until(lambda: not emu.pending_requests(), timeout=5, what="stalled requests to end")
    return sum(
        1
        for r in emu.requests()
        if r["method"] == method and r["path"].startswith(path) and (query is None or query in r["query"])
    )


@pytest.mark.parametrize("cell", CELLS, ids=lambda c: f"{c.operation}-{c.fault}-{'persistent' if c.persistent else 'once'}")
def test_fault_matrix(emu: Emulator, cell: Cell) -> None:
    api = Api(emu)
    want = expected(cell)
    op = cell.operation
    seeded = api.all("/jobs")
    # The request the fault hits, and what to set up first.
    if op.startswith("scan"):
        target = ("GET", "/v2/jobs", f"page={op[-1]}&")
    elif op == "get_by_id":
        subject = seeded[3]["id"]
        target = ("GET", f"/v2/jobs/{subject}", None)
    elif op == "insert":
        target = ("POST", "/v2/jobs", None)
    elif op == "delete_by_id":
        subject = api.job("matrix-one")
        target = ("DELETE", f"/v2/jobs/{subject}", None)
    elif op == "delete_by_filter":
        pair = [api.job("matrix-pair"), api.job("matrix-pair")]
        target = ("DELETE", "/v2/jobs/", None)
    elif op == "procedure_post":
        subject = api.all("/tasks", **{"filter[job_id]": api.job("matrix-cancel")})[0]["id"]
        target = ("POST", f"/v2/tasks/{subject}/cancel", None)
    else:  # procedure_wait
        subject = next(j["id"] for j in seeded if j["status"] in ("finished", "error"))
        target = ("GET", f"/sync/v2/jobs/{subject}", None)
    method, path, query = target
    emu.add_fault(
        cell.kind,
        path=path,
        method=method,
        query=query,
        count=None if cell.persistent else 1,
        rate=1.0 if cell.persistent else None,
        stall_seconds=STALLS.get(cell.fault, 0),
        retry_after=0.05,
    )
    emu.clear_requests()

    rows: list[tuple[Any, ...]] | None = None
    error: apidriver.Error | None = None
    started = time.monotonic()
    with connect_to(emu, Timeout=TIMEOUT, MaxRetries=MAX_RETRIES, PageSize=PAGE_SIZE) as conn:
        cur = conn.cursor()
        try:
            if op.startswith("scan"):
                rows = cur.execute("SELECT id, status FROM Jobs").fetchall()
            elif op == "get_by_id":
                rows = cur.execute("SELECT id, status FROM Jobs WHERE id = ?", (subject,)).fetchall()
            elif op == "insert":
                rows = cur.execute("INSERT INTO Jobs (tag, tasks) VALUES ('matrix-insert', ?) RETURNING id", (CONVERSION_TASKS,)).fetchall()
            elif op == "delete_by_id":
                cur.execute("DELETE FROM Jobs WHERE id = ?", (subject,))
            elif op == "delete_by_filter":
                cur.execute("DELETE FROM Jobs WHERE tag = 'matrix-pair'")
            elif op == "procedure_post":
                rows = cur.execute("SELECT id, status, code FROM CancelTask(?)", (subject,)).fetchall()
            else:
                rows = cur.execute("SELECT id, status FROM WaitJob(?)", (subject,)).fetchall()
        except apidriver.Error as caught:
            error = caught
        elapsed = time.monotonic() - started
        rowcount = cur.rowcount

    # the outcome: the documented error, or success
    if want.error is None:
        assert error is None, f"unexpected {error!r}"
    else:
        assert isinstance(error, want.error), f"expected {want.error.__name__}, got {error!r}"
        assert "Please report" not in str(error) and error.status in (None, 200, 429, 500, 502, 503)  # type: ignore[attr-defined]
        assert rowcount == -1

    # attempts that reached the API
    assert attempts(emu, method, path, query) == (
        want.attempts + (1 if op == "delete_by_filter" and want.error is None else 0)  # the second job's DELETE
    ), [(r["method"], r["path"], r["status"], r["fault"]) for r in emu.requests()]

    # the right rows, never a partial result; writes carried out at most once
    if op.startswith("scan"):
        assert (sorted(rows) if error is None else rows) == (sorted((j["id"], j["status"]) for j in seeded) if error is None else None)
    elif op == "get_by_id":
        assert rows == ([(subject, seeded[3]["status"])] if error is None else None)
    elif op == "insert":
        created = [j["id"] for j in api.all("/jobs") if j["tag"] == "matrix-insert"]
        assert len(created) == (1 if want.took_effect else 0)  # never two
        assert rows == ([(created[0],)] if error is None else None)
    elif op == "delete_by_id":
        assert api.exists(f"/jobs/{subject}") == (not want.took_effect)
        if error is None:
            assert rowcount == 1
    elif op == "delete_by_filter":
        first_gone = want.took_effect
        if error is None:
            assert rowcount == 2 and not any(api.exists(f"/jobs/{j}") for j in pair)
        else:
            assert error.deleted == [] and error.failed in pair  # type: ignore[attr-defined]
            assert error.not_attempted == [j for j in pair if j != error.failed]  # type: ignore[attr-defined]
            assert api.exists(f"/jobs/{error.failed}") == (not first_gone)  # type: ignore[attr-defined]
            assert api.exists(f"/jobs/{error.not_attempted[0]}")  # type: ignore[attr-defined]
    elif op == "procedure_post":
        task = api.http.get(f"/tasks/{subject}").json()["data"]
        assert (task["code"] == "CANCELLED") == bool(want.took_effect)
        assert rows == ([(subject, "error", "CANCELLED")] if error is None else None)
    else:
        assert rows == ([(subject, next(j["status"] for j in seeded if j["id"] == subject))] if error is None else None)

    # the time bound: attempts × (the stall or Timeout) + backoffs, with room for a loaded machine
    per_attempt = TIMEOUT if cell.fault == "stall_long" and op != "procedure_wait" else STALLS.get(cell.fault, 0.05)
    if cell.fault == "stall_long" and op == "procedure_wait":
        per_attempt = STALLS["stall_long"]
    assert elapsed < 1.5 + want.attempts * (per_attempt + 0.45), elapsed
