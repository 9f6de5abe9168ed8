"""The emulator's control API for history tests: actions between two requests, the whole truth of every
job it ever had, and a ``Date`` header on its own clock."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime

import httpx

from apidriver.emulator import Emulator

from .support import client, create_job

MakeEmulator = Callable[..., Emulator]


def test_an_action_runs_right_after_the_request_it_waits_for(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(jobs=10, seed=1, rate_limit=0)
    newest = [j.id for j in reversed(emu.backend.job_order)][:3]
    spec = {"do": "delete_jobs", "path": "/v2/jobs", "method": "GET", "query": "page=2", "after": 1, "count": 3}
    assert httpx.post(emu.base_url + "/_emulator/actions", json=spec).status_code == 201
    assert httpx.post(emu.base_url + "/_emulator/actions", json={"do": "explode"}).status_code == 400
    with client(emu) as api:
        first = api.get("/jobs", params={"page": 1, "per_page": 5}).json()["data"]
        assert emu.actions()[0]["done"] is False  # page 1 does not match
        second = api.get("/jobs", params={"page": 2, "per_page": 5}).json()["data"]
        assert [j["id"] for j in first[:3]] == newest and len(second) == 5  # answered before the action ran
        # The action runs once the answer has gone out: the client may read it a moment before.
        deadline = time.monotonic() + 5
        while not emu.actions()[0]["done"] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert emu.actions()[0]["done"] is True and emu.actions()[0]["jobs"] == newest
        assert [j["id"] for j in api.get("/jobs").json()["data"]][:1] == [first[3]["id"]]
    httpx.delete(emu.base_url + "/_emulator/actions")
    assert emu.actions() == []


def test_answers_are_dated_on_the_emulators_clock(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(rate_limit=0)
    emu.advance_clock(86400 * 3)
    with client(emu) as api:
        date = parsedate_to_datetime(api.get("/users/me").headers["date"])
    assert abs((date - emu.clock()).total_seconds()) < 2
    assert date > dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)


def test_the_history_holds_every_job_and_the_last_state_shown(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(rate_limit=0)
    assert httpx.get(emu.base_url + "/_emulator/history").status_code == 409  # kept only when asked
    emu = make_emulator(rate_limit=0, task_seconds=600, keep_history=True)
    with client(emu) as api:
        created = create_job(api, tag="truth")
        emu.advance_clock(1800)
        truth = emu.history()  # shows nothing itself: the last state shown is still the created one
        assert [j["shown"]["status"] for j in truth["jobs"]] == ["waiting"]
        assert [j["job"]["status"] for j in truth["jobs"]] == ["finished"]
        api.get("/jobs", params={"include": "tasks"})
        assert emu.history()["jobs"][0]["shown"]["status"] == "finished"
        assert api.delete(f"/jobs/{created['id']}").status_code == 204
    truth = emu.history()
    assert truth["jobs"] == [] and [(r["reason"], r["job"]["id"], r["shown"]["status"]) for r in truth["removed"]] == [
        ("deleted", created["id"], "finished")
    ]
    assert dt.datetime.fromisoformat(truth["removed"][0]["at"]) > dt.datetime.now(dt.timezone.utc)  # the moved clock
