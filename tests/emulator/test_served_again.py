"""An object the emulator has served once is served with its new values once it changes.

The emulator keeps the JSON of what it served (``models.Rendered``) and steps its tasks only
when one can move (``lifecycle.TaskClock``); these tests change jobs and tasks in every way the
API can (the clock, an upload, a retry, a cancel, a delete) between two reads of the same
objects, through lists, includes and single GETs, over HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from apidriver.emulator import Emulator

from .support import client, conversion_tasks, create_job, task_named, upload, wait_job

MakeEmulator = Callable[..., Emulator]

CHAIN = {
    "upload-it": {"operation": "import/upload"},
    "convert-it": {"operation": "convert", "input": "upload-it", "output_format": "pdf"},
    "export-it": {"operation": "export/url", "input": "convert-it"},
}


def views(api: httpx.Client, job_id: str) -> dict[str, Any]:
    """``job_id`` as every read shows it: the job, the job in a list page (plain and with its
    tasks), and its tasks listed; each read twice, so that the second may come from what was kept."""
    shown: list[dict[str, Any]] = []
    for _ in range(2):
        one = api.get(f"/jobs/{job_id}").json()["data"]
        listed = {j["id"]: j for j in api.get("/jobs", params={"include": "tasks"}).json()["data"]}[job_id]
        plain = {j["id"]: j for j in api.get("/jobs").json()["data"]}[job_id]
        tasks = api.get("/tasks", params={"filter[job_id]": job_id}).json()["data"]
        assert listed == one
        assert plain == {k: v for k, v in one.items() if k != "tasks"}
        assert sorted(tasks, key=lambda t: t["id"]) == sorted(one["tasks"], key=lambda t: t["id"])
        for task in one["tasks"]:
            assert api.get(f"/tasks/{task['id']}").json()["data"] == task
        shown.append(one)
    assert shown[0] == shown[1]
    return shown[0]


def statuses(job: dict[str, Any]) -> tuple[str, dict[str, str]]:
    return job["status"], {t["name"]: t["status"] for t in job["tasks"]}


def test_a_job_is_served_with_each_state_it_goes_through(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(jobs=5, seed=2, task_seconds=600)
    with client(emu) as api:
        job = create_job(api, CHAIN)
        seen = views(api, job["id"])
        assert statuses(seen) == ("waiting", {"upload-it": "waiting", "convert-it": "waiting", "export-it": "waiting"})
        emu.advance_clock(3600)  # nothing moves while the upload is missing
        seen = views(api, job["id"])
        assert statuses(seen)[1] == {"upload-it": "waiting", "convert-it": "waiting", "export-it": "waiting"}

        assert upload(task_named(job, "upload-it")["result"]["form"], "notes.txt", b"hello").status_code == 201
        seen = views(api, job["id"])
        assert statuses(seen) == ("processing", {"upload-it": "finished", "convert-it": "processing", "export-it": "waiting"})
        emu.advance_clock(599)
        again = views(api, job["id"])
        assert again == seen
        emu.advance_clock(1)
        seen = views(api, job["id"])
        assert statuses(seen) == ("processing", {"upload-it": "finished", "convert-it": "finished", "export-it": "processing"})
        emu.advance_clock(600)
        seen = views(api, job["id"])
        assert statuses(seen) == ("finished", {"upload-it": "finished", "convert-it": "finished", "export-it": "finished"})
        assert seen["ended_at"] is not None and task_named(seen, "export-it")["result"]["files"][0]["filename"] == "notes.pdf"


def test_an_ended_job_changes_with_a_retry_and_a_deleted_task(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(jobs=5, seed=2)
    with client(emu) as api:
        job = wait_job(emu, create_job(api, conversion_tasks("https://files.example.invalid/a.docx"))["id"])
        seen = views(api, job["id"])
        assert statuses(seen)[0] == "error"

        failed = task_named(seen, "import-it")
        copy = api.post(f"/tasks/{failed['id']}/retry").json()["data"]
        seen = views(api, job["id"])
        assert seen["status"] in ("waiting", "processing") and seen["ended_at"] is None
        assert copy["id"] in {t["id"] for t in seen["tasks"]} and len(seen["tasks"]) == 4
        assert api.get(f"/tasks/{failed['id']}", params={"include": "retries"}).json()["data"]["retries"][0]["id"] == copy["id"]

        ended = wait_job(emu, job["id"])  # the copy fails as the first did
        seen = views(api, job["id"])
        assert seen == ended and seen["status"] == "error"

        export = task_named(seen, "export-it")
        assert api.delete(f"/tasks/{export['id']}").status_code == 204
        seen = views(api, job["id"])
        assert export["id"] not in {t["id"] for t in seen["tasks"]} and len(seen["tasks"]) == 3


def test_a_task_waiting_for_a_deleted_or_cancelled_task_fails(make_emulator: MakeEmulator) -> None:
    """Tasks held by an upload that never comes are not stepped on every request; taking their
    input away (a delete, a cancel) still fails them at the next request."""
    emu = make_emulator(jobs=5, seed=2, task_seconds=600)
    with client(emu) as api:
        for end in ("delete", "cancel"):
            held = api.post("/import/upload", json={}).json()["data"]
            waiting = api.post("/convert", json={"input": held["id"], "output_format": "pdf"}).json()["data"]
            emu.advance_clock(3600)
            assert api.get(f"/tasks/{waiting['id']}").json()["data"]["status"] == "waiting"
            if end == "delete":
                assert api.delete(f"/tasks/{held['id']}").status_code == 204
            else:
                assert api.post(f"/tasks/{held['id']}/cancel").status_code == 200
            failed = api.get(f"/tasks/{waiting['id']}").json()["data"]
            assert (failed["status"], failed["code"]) == ("error", "INPUT_TASK_FAILED")
            assert {t["id"]: t for t in api.get("/tasks").json()["data"]}[waiting["id"]] == failed


def test_pages_of_kept_objects_are_written_as_each_host_writes(emulator: Emulator, api: httpx.Client) -> None:
    """Kept JSON is spliced into pages byte for byte as the whole page would be written: PHP's
    escapes on the main host (also once a non-ASCII job joins a page of kept ones), none on the
    sync host."""
    def php(value: Any) -> bytes:
        return json.dumps(value, ensure_ascii=True, separators=(",", ":")).replace("/", "\\/").encode()

    for include in ({}, {"include": "tasks"}):
        for _ in range(2):
            page = api.get("/jobs", params=include)
            assert page.content == php(page.json())
    create_job(api, tag="café/été")
    for include in ({}, {"include": "tasks"}):
        for _ in range(2):
            page = api.get("/jobs", params=include)
            assert b"caf\\u00e9\\/\\u00e9t\\u00e9" in page.content and page.content == php(page.json())
    with client(emulator, sync=True) as sync:
        job = next(j for j in api.get("/jobs").json()["data"] if j["status"] in ("finished", "error"))
        for _ in range(2):
            answer = sync.get(f"/jobs/{job['id']}")
            assert answer.content == json.dumps(answer.json(), ensure_ascii=False, separators=(",", ":")).encode()
