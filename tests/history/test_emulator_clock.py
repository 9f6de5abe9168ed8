"""The emulator's clock and retention: time passes on request, and the API forgets what ended 24 hours ago."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import httpx
import pytest

from apidriver.emulator import Emulator
from apidriver.emulator.command import command

from ..emulator.support import client, conversion_tasks, create_job, wait_job

MakeEmulator = Callable[..., Emulator]
HOUR = 3600.0


def clock(emu: Emulator) -> dict[str, object]:
    response = httpx.get(emu.base_url + "/_emulator/clock")
    assert response.status_code == 200
    body: dict[str, object] = response.json()
    return body


def test_clock_moves_forward_on_request(make_emulator: MakeEmulator) -> None:
    emu = make_emulator()
    before = dt.datetime.fromisoformat(str(clock(emu)["now"]))
    assert abs((before - dt.datetime.now(dt.timezone.utc)).total_seconds()) < 5
    response = httpx.post(emu.base_url + "/_emulator/clock", json={"advance": 7200})
    assert response.status_code == 200
    after = dt.datetime.fromisoformat(response.json()["now"])
    assert 7200 <= (after - before).total_seconds() < 7205
    assert response.json()["advanced_seconds"] == 7200
    assert emu.advance_clock(1800) - after >= dt.timedelta(seconds=1800)
    assert (emu.clock() - before).total_seconds() >= 9000


@pytest.mark.parametrize("body", [{"advance": -1}, {"advance": "soon"}, {}, [1]])
def test_clock_never_goes_back(make_emulator: MakeEmulator, body: object) -> None:
    emu = make_emulator()
    response = httpx.post(emu.base_url + "/_emulator/clock", json=body)
    assert response.status_code == 400
    assert "advance" in response.json()["message"]
    assert clock(emu)["advanced_seconds"] == 0


def test_new_objects_and_task_processing_follow_the_clock(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(task_seconds=600)  # ten minutes per task: only the clock makes it pass
    emu.advance_clock(3 * HOUR)
    with client(emu) as api:
        job = create_job(api, tag="later")
        created = dt.datetime.fromisoformat(job["created_at"])
        assert (created - dt.datetime.now(dt.timezone.utc)).total_seconds() > 3 * HOUR - 5
        emu.advance_clock(3 * 600 + 1)
        ended = api.get(f"/jobs/{job['id']}").json()["data"]
    assert ended["status"] == "finished"
    assert dt.datetime.fromisoformat(ended["ended_at"]) - created == dt.timedelta(seconds=1800)


def test_jobs_and_tasks_go_24_hours_after_they_end(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(jobs=20, seed=4)
    with client(emu) as api:
        seeded = api.get("/jobs", params={"per_page": 100}).json()["data"]
        open_jobs = {j["id"] for j in seeded if j["ended_at"] is None}  # waiting for an upload that never came
        standalone = [t for t in api.get("/tasks", params={"per_page": 500}).json()["data"] if t["job_id"] is None]
        assert standalone and open_jobs and len(open_jobs) < len(seeded)
        emu.advance_clock(25 * HOUR)  # past the end of every seeded job
        fresh = create_job(api, tag="fresh")
        wait_job(emu, fresh["id"])
        jobs = {j["id"] for j in api.get("/jobs", params={"per_page": 100}).json()["data"]}
        assert jobs == open_jobs | {fresh["id"]}
        tasks = api.get("/tasks", params={"per_page": 500}).json()["data"]
        assert {t["job_id"] for t in tasks} == jobs
        assert api.get(f"/tasks/{standalone[0]['id']}").status_code == 404
        gone = next(j for j in seeded if j["ended_at"] is not None)
        assert api.get(f"/jobs/{gone['id']}").status_code == 404
        emu.advance_clock(24 * HOUR)
        assert {j["id"] for j in api.get("/jobs", params={"per_page": 100}).json()["data"]} == open_jobs
        assert api.get(f"/jobs/{fresh['id']}").status_code == 404


def test_retention_hours_is_an_option(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(retention_hours=1)
    assert clock(emu)["retention_hours"] == 1
    with client(emu) as api:
        job = create_job(api)
        wait_job(emu, job["id"])
        emu.advance_clock(HOUR - 60)
        assert api.get(f"/jobs/{job['id']}").status_code == 200
        emu.advance_clock(120)
        assert api.get(f"/jobs/{job['id']}").status_code == 404
    assert command.make_context("emulator", ["--retention-hours", "2.5"]).params["retention_hours"] == 2.5


def test_export_urls_expire_after_24_hours(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(retention_hours=48)
    with client(emu) as api:
        job = wait_job(emu, create_job(api, tasks=conversion_tasks())["id"])
    url = next(t for t in job["tasks"] if t["operation"] == "export/url")["result"]["files"][0]["url"]
    assert httpx.get(url).status_code == 200
    emu.advance_clock(23 * HOUR)
    assert httpx.get(url).status_code == 200
    emu.advance_clock(2 * HOUR)
    expired = httpx.get(url)
    assert expired.status_code == 403
    assert "<Code>AccessDenied</Code>" in expired.text
