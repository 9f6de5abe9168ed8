"""The emulated CloudConvert API v2, request by request, against a real emulator.

Each test starts its own emulator (``make_emulator`` / ``emulator``) and talks
to it over real sockets, as any client of the real API would.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from xml.etree import ElementTree
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from apidriver.emulator import Emulator

from .support import (
    Receiver,
    all_pages,
    client,
    conversion_tasks,
    create_job,
    task_named,
    upload,
    wait_job,
    wait_until,
)

MakeEmulator = Callable[..., Emulator]
UNAUTHENTICATED = {"message": "Unauthenticated.", "code": "UNAUTHENTICATED"}


# -- auth ---------------------------------------------------------------------------------------


def test_missing_key_is_401(emulator: Emulator) -> None:
    with client(emulator, None) as anonymous:
        response = anonymous.get("/jobs")
    assert response.status_code == 401
    assert response.json() == UNAUTHENTICATED


def test_wrong_key_is_401(emulator: Emulator) -> None:
    with client(emulator, "not-a-key") as wrong:
        assert wrong.get("/users/me").status_code == 401
        response = wrong.post("/jobs", json={"tasks": conversion_tasks()})
    assert response.status_code == 401
    assert response.json() == UNAUTHENTICATED


def test_key_without_scope_is_403(make_emulator: MakeEmulator) -> None:
    """A task.read key may list jobs, but neither create them nor read the user."""
    emu = make_emulator(scoped_keys={"ro": ["task.read"]})
    with client(emu, "ro") as ro, client(emu) as api:
        assert ro.get("/jobs").status_code == 200
        created = ro.post("/jobs", json={"tasks": conversion_tasks()})
        assert created.status_code == 403
        assert created.json()["code"] == "FORBIDDEN"
        me = ro.get("/users/me")
        assert me.status_code == 403
        assert me.json()["code"] == "FORBIDDEN"
        assert api.get("/jobs").json()["data"] == []  # the refused POST created nothing


def test_operations_need_no_key(emulator: Emulator) -> None:
    with client(emulator, None) as anonymous:
        response = anonymous.get("/operations", params={"filter[operation]": "convert", "filter[input_format]": "docx", "filter[output_format]": "pdf"})
    assert response.status_code == 200
    assert [e["engine"] for e in response.json()["data"]] == ["office"]


# -- pagination -----------------------------------------------------------------------------------


def test_list_envelope_is_the_simple_paginator(emulator: Emulator, api: httpx.Client) -> None:
    path = emulator.api_url + "/jobs"
    first = api.get("/jobs", params={"per_page": 5}).json()
    assert list(first) == ["data", "links", "meta"]
    assert first["links"] == {"first": f"{path}?page=1", "last": None, "prev": None, "next": f"{path}?page=2"}
    assert first["meta"] == {"current_page": 1, "from": 1, "path": path, "per_page": 5, "to": 5}
    second = api.get("/jobs", params={"per_page": 5, "page": 2}).json()
    assert second["links"] == {"first": f"{path}?page=1", "last": None, "prev": f"{path}?page=1", "next": f"{path}?page=3"}
    assert second["meta"] == {"current_page": 2, "from": 6, "path": path, "per_page": 5, "to": 10}


def test_last_and_empty_pages(emulator: Emulator, api: httpx.Client) -> None:
    """30 seeded jobs: page 3 of 12 holds 6 and has no next; page 4 is empty with null from/to."""
    last = api.get("/jobs", params={"per_page": 12, "page": 3}).json()
    assert len(last["data"]) == 6
    assert last["links"]["next"] is None
    assert (last["meta"]["from"], last["meta"]["to"]) == (25, 30)
    empty = api.get("/jobs", params={"per_page": 12, "page": 4}).json()
    assert empty["data"] == []
    assert empty["links"]["next"] is None
    assert (empty["meta"]["from"], empty["meta"]["to"]) == (None, None)


def test_per_page_defaults_to_100_and_newest_comes_first(api: httpx.Client) -> None:
    seeded = api.get("/jobs").json()
    assert seeded["meta"]["per_page"] == 100
    assert len(seeded["data"]) == 30
    created = [j["created_at"] for j in seeded["data"]]
    assert created == sorted(created, reverse=True)
    new = create_job(api)
    assert api.get("/jobs", params={"per_page": 1}).json()["data"][0]["id"] == new["id"]


def test_following_next_returns_every_job_once(api: httpx.Client) -> None:
    everything = [j["id"] for j in api.get("/jobs").json()["data"]]
    paged: list[str] = []
    url: str | None = "/jobs?per_page=7"
    while url is not None:
        body = api.get(url).json()
        paged += [j["id"] for j in body["data"]]
        # links.next carries only the page: re-send per_page, as clients must
        url = None if body["links"]["next"] is None else f"{body['links']['next']}&per_page=7"
    assert paged == everything
    assert len(set(paged)) == 30


def test_empty_filter_values_count_as_unset(api: httpx.Client) -> None:
    """The .NET SDK sends every filter key, empty or not."""
    plain = api.get("/jobs").json()
    empty = api.get("/jobs?filter[status]=&filter[tag]=&include=&per_page=&page=").json()
    assert empty == plain
    tasks = api.get("/tasks?filter[job_id]=&filter[status]=&filter[operation]=&include=").json()
    assert tasks == api.get("/tasks").json()


@pytest.mark.parametrize("value", ["ten", "1.5", "0"])
def test_bad_per_page_is_422(api: httpx.Client, value: str) -> None:
    response = api.get("/jobs", params={"per_page": value})
    assert response.status_code == 422
    assert response.json()["code"] == "INVALID_DATA"
    assert "per_page" in response.json()["errors"]


# -- filters and includes -----------------------------------------------------------------------------


def test_jobs_filter_by_status(api: httpx.Client) -> None:
    every = api.get("/jobs").json()["data"]
    for status in ("finished", "error"):
        expected = [j["id"] for j in every if j["status"] == status]
        assert expected, f"the seeded account has no {status} job"
        got = api.get("/jobs", params={"filter[status]": status}).json()["data"]
        assert [j["id"] for j in got] == expected


def test_jobs_filter_by_tag(api: httpx.Client) -> None:
    every = api.get("/jobs").json()["data"]
    tag = next(j["tag"] for j in every if j["tag"])
    got = api.get("/jobs", params={"filter[tag]": tag}).json()["data"]
    assert [j["id"] for j in got] == [j["id"] for j in every if j["tag"] == tag]
    assert api.get("/jobs", params={"filter[tag]": "no-such-tag"}).json()["data"] == []


def test_jobs_include_tasks(api: httpx.Client) -> None:
    plain = api.get("/jobs", params={"per_page": 3}).json()["data"]
    assert all("tasks" not in j for j in plain)
    included = api.get("/jobs", params={"per_page": 3, "include": "tasks"}).json()["data"]
    for job in included:
        assert job["tasks"], job["id"]
        assert {t["job_id"] for t in job["tasks"]} == {job["id"]}
        assert all(t["name"] for t in job["tasks"])


def test_tasks_filters(api: httpx.Client) -> None:
    job = api.get("/jobs", params={"per_page": 1, "include": "tasks", "filter[status]": "finished"}).json()["data"][0]
    by_job = api.get("/tasks", params={"filter[job_id]": job["id"]}).json()["data"]
    assert sorted(t["id"] for t in by_job) == sorted(t["id"] for t in job["tasks"])

    every = all_pages(api, "/tasks")
    for status in ("finished", "error"):
        got = all_pages(api, "/tasks", {"filter[status]": status})
        assert got and {t["status"] for t in got} == {status}
        assert len(got) == sum(t["status"] == status for t in every)
    for operation in ("import/url", "export/url"):
        got = all_pages(api, "/tasks", {"filter[operation]": operation})
        assert got and {t["operation"] for t in got} == {operation}
        assert len(got) == sum(t["operation"] == operation for t in every)
    combined = api.get("/tasks", params={"filter[job_id]": job["id"], "filter[operation]": "export/url"}).json()["data"]
    assert [t["id"] for t in combined] == [t["id"] for t in job["tasks"] if t["operation"] == "export/url"]


def test_task_includes(api: httpx.Client) -> None:
    job = api.get("/jobs", params={"include": "tasks", "filter[status]": "finished"}).json()["data"][0]
    task = next(t for t in job["tasks"] if t["depends_on_task_ids"])
    plain = api.get(f"/tasks/{task['id']}").json()["data"]
    for key in ("payload", "job", "retries", "depends_on_tasks"):
        assert key not in plain
    full = api.get(f"/tasks/{task['id']}", params={"include": "payload,job,retries,depends_on_tasks"}).json()["data"]
    assert full["payload"]["operation"] == task["operation"]
    assert full["job"]["id"] == job["id"]
    assert full["retries"] == []
    assert [t["id"] for t in full["depends_on_tasks"]] == task["depends_on_task_ids"]
    assert {k: v for k, v in full.items() if k not in ("payload", "job", "retries", "depends_on_tasks")} == plain


def test_webhooks_list_and_filter_by_url(api: httpx.Client) -> None:
    hooks = api.get("/users/me/webhooks").json()
    assert list(hooks) == ["data", "links", "meta"]
    assert len(hooks["data"]) == 3
    url = hooks["data"][1]["url"]
    only = api.get("/users/me/webhooks", params={"filter[url]": url}).json()["data"]
    assert [h["url"] for h in only] == [url]
    assert isinstance(only[0]["id"], int) and only[0]["signing_secret"]


# -- jobs and their lifecycle ---------------------------------------------------------------------------


def test_create_job_resolves_task_names(api: httpx.Client) -> None:
    job = create_job(api, tag="names")
    assert job["tag"] == "names"
    assert job["status"] == "waiting"
    assert {t["status"] for t in job["tasks"]} == {"waiting"}
    imported, converted, exported = (task_named(job, n) for n in ("import-it", "convert-it", "export-it"))
    assert imported["depends_on_task_ids"] == []
    assert converted["depends_on_task_ids"] == [imported["id"]]
    assert exported["depends_on_task_ids"] == [converted["id"]]
    assert {t["job_id"] for t in job["tasks"]} == {job["id"]}


def test_job_lifecycle_waiting_processing_finished(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(task_seconds=0.15)
    with client(emu) as api:
        job = create_job(api)
        seen = [job["status"]]
        deadline = time.monotonic() + 10
        while seen[-1] not in ("finished", "error") and time.monotonic() < deadline:
            status = api.get(f"/jobs/{job['id']}").json()["data"]["status"]
            if status != seen[-1]:
                seen.append(status)
            time.sleep(0.01)
    assert seen == ["waiting", "processing", "finished"]


def test_finished_job_downloads_and_costs_credits(emulator: Emulator, api: httpx.Client) -> None:
    credits_before = api.get("/users/me").json()["data"]["credits"]
    job = wait_job(emulator, create_job(api)["id"])
    assert job["status"] == "finished"
    converted = task_named(job, "convert-it")
    assert (converted["engine"], converted["credits"]) == ("office", 2)  # the catalogue's docx→pdf
    assert api.get("/users/me").json()["data"]["credits"] == credits_before - 2

    files = task_named(job, "export-it")["result"]["files"]
    assert [f["filename"] for f in files] == ["report.pdf"]
    download = httpx.get(files[0]["url"])  # storage takes no key
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/pdf"
    assert download.content.startswith(b"%PDF")
    assert len(download.content) == files[0]["size"]


def test_legacy_wait_endpoints_block(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(task_seconds=0.1)
    with client(emu) as api:
        job = create_job(api)
        assert api.get(f"/jobs/{job['id']}").json()["data"]["status"] in ("waiting", "processing")
        assert api.get(f"/jobs/{job['id']}/wait").json()["data"]["status"] == "finished"
        job = create_job(api)
        export = task_named(job, "export-it")
        assert api.get(f"/tasks/{export['id']}").json()["data"]["status"] == "waiting"
        assert api.get(f"/tasks/{export['id']}/wait").json()["data"]["status"] == "finished"


def test_sync_host_blocks_and_does_not_escape_slashes(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(task_seconds=0.1)
    with client(emu) as api, client(emu, sync=True) as sync:
        job = create_job(api)
        raw = api.get(f"/jobs/{job['id']}")
        assert raw.headers["content-type"] == "application/json"
        assert '"import\\/url"' in raw.text
        waited = sync.get(f"/jobs/{job['id']}")
        assert waited.json()["data"]["status"] == "finished"
        assert waited.headers["content-type"] == "application/json; charset=utf-8"
        assert '"import/url"' in waited.text
        # links point at the main API host, not at the sync one
        assert waited.json()["data"]["links"]["self"] == f"{emu.api_url}/jobs/{job['id']}"

        job = create_job(api)
        export = task_named(job, "export-it")
        assert sync.get(f"/tasks/{export['id']}").json()["data"]["status"] == "finished"


def test_main_host_encodes_like_php_and_sync_host_does_not(emulator: Emulator, api: httpx.Client) -> None:
    job = create_job(api, tag="café/été")
    main = api.get(f"/jobs/{job['id']}").content
    assert b'"tag":"caf\\u00e9\\/\\u00e9t\\u00e9"' in main
    assert b", " not in main and b'": ' not in main  # compact
    with client(emulator, sync=True) as sync:
        synced = sync.get(f"/jobs/{job['id']}").content
    assert '"tag":"café/été"'.encode() in synced
    assert json.loads(main)["data"]["tag"] == "café/été"


def test_sync_create_with_redirect_answers_the_file(emulator: Emulator) -> None:
    with client(emulator, sync=True) as sync:
        response = sync.post("/jobs", json={"tasks": conversion_tasks(), "redirect": True})
        assert response.status_code == 302
        download = httpx.get(response.headers["location"])
    assert download.content.startswith(b"%PDF")


# -- failures ---------------------------------------------------------------------------------------------


def test_failed_download_fails_the_dependants_and_the_job(emulator: Emulator, api: httpx.Client) -> None:
    job = wait_job(emulator, create_job(api, conversion_tasks("https://files.example.invalid/report.docx"))["id"])
    assert job["status"] == "error"
    imported = task_named(job, "import-it")
    assert (imported["status"], imported["code"]) == ("error", "DOWNLOAD_FAILED")
    for name in ("convert-it", "export-it"):
        task = task_named(job, name)
        assert (task["status"], task["code"], task["message"]) == ("error", "INPUT_TASK_FAILED", "Input task has failed")
        assert task["started_at"] is None and task["ended_at"] is not None


def test_unsupported_conversion_is_invalid_conversion_type(emulator: Emulator, api: httpx.Client) -> None:
    job = wait_job(emulator, create_job(api, conversion_tasks("https://files.example.com/song.mp3", "docx"))["id"])
    assert job["status"] == "error"
    converted = task_named(job, "convert-it")
    assert (converted["status"], converted["code"]) == ("error", "INVALID_CONVERSION_TYPE")
    assert converted["credits"] is None
    assert task_named(job, "import-it")["status"] == "finished"


# -- validation and errors -----------------------------------------------------------------------------------

IMPORT = {"operation": "import/url", "url": "https://files.example.com/a.docx"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "tasks"),
        ({"tasks": {}}, "tasks"),
        ({"tasks": {"c": {"operation": "convert", "input": "nope", "output_format": "pdf"}}}, "tasks.c.input"),
        ({"tasks": {"i": IMPORT, "c": {"operation": "convert", "input": "i"}}}, "tasks.c.output_format"),
        ({"tasks": {"i": {"operation": "import/url"}}}, "tasks.i.url"),
        ({"tasks": {"i": {"url": "https://files.example.com/a.docx"}}}, "tasks.i.operation"),
        ({"tasks": {"i": {"operation": "import/nowhere"}}}, "tasks.i.operation"),
        ({"tasks": {"bad name": IMPORT}}, "tasks.bad name"),
        ({"tasks": {"a": {"operation": "convert", "input": "b", "output_format": "pdf"}, "b": {"operation": "convert", "input": "a", "output_format": "pdf"}}}, "tasks"),
    ],
)
def test_invalid_job_bodies_are_422(api: httpx.Client, body: dict[str, Any], field: str) -> None:
    response = api.post("/jobs", json=body)
    assert response.status_code == 422
    error = response.json()
    assert (error["message"], error["code"]) == ("The given data was invalid.", "INVALID_DATA")
    assert field in error["errors"], error["errors"]
    assert all(isinstance(m, list) and m and all(isinstance(s, str) for s in m) for m in error["errors"].values())
    assert len(api.get("/jobs").json()["data"]) == 30  # nothing was created


@pytest.mark.parametrize(
    ("operation", "body", "fields"),
    [
        ("convert", {"input": "00000000-0000-4000-8000-000000000000"}, {"output_format", "input"}),
        ("import/url", {}, {"url"}),
        ("export/url", {}, {"input"}),
    ],
)
def test_invalid_task_bodies_are_422(api: httpx.Client, operation: str, body: dict[str, Any], fields: set[str]) -> None:
    response = api.post(f"/{operation}", json=body)
    assert response.status_code == 422
    assert response.json()["code"] == "INVALID_DATA"
    assert set(response.json()["errors"]) == fields


def test_unknown_ids_are_404(api: httpx.Client) -> None:
    unknown = str(uuid.uuid4())
    for method, path in [
        ("GET", f"/jobs/{unknown}"),
        ("DELETE", f"/jobs/{unknown}"),
        ("GET", f"/tasks/{unknown}"),
        ("DELETE", f"/tasks/{unknown}"),
        ("POST", f"/tasks/{unknown}/cancel"),
        ("POST", f"/tasks/{unknown}/retry"),
        ("DELETE", "/webhooks/999"),
        ("GET", "/no/such/route"),
    ]:
        response = api.request(method, path)
        assert response.status_code == 404, (method, path)
        assert response.json()["code"] == "NOT_FOUND"


def test_no_credits_is_402(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(credits=0)
    with client(emu) as api:
        for response in (api.post("/jobs", json={"tasks": conversion_tasks()}), api.post("/import/url", json=IMPORT)):
            assert response.status_code == 402
            assert response.json() == {"message": "Your account has run out of conversion minutes", "code": "CREDITS_EXCEEDED"}
        assert api.get("/jobs").json()["data"] == []
        assert api.get("/tasks").json()["data"] == []


def test_402_once_the_credits_are_spent(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(credits=2)
    with client(emu) as api:
        wait_job(emu, create_job(api)["id"])  # docx→pdf costs 2
        assert api.get("/users/me").json()["data"]["credits"] == 0
        assert api.post("/jobs", json={"tasks": conversion_tasks()}).status_code == 402


def test_invalid_json_is_400(api: httpx.Client) -> None:
    response = api.post("/jobs", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_JSON"


# -- cancel, retry, delete ---------------------------------------------------------------------------------------


def test_cancel_waiting_task(api: httpx.Client) -> None:
    waiting = api.post("/import/upload", json={}).json()["data"]
    cancelled = api.post(f"/tasks/{waiting['id']}/cancel")
    assert cancelled.status_code == 200
    data = cancelled.json()["data"]
    assert (data["id"], data["status"], data["code"]) == (waiting["id"], "error", "CANCELLED")
    assert data["result"] is None  # the upload form is gone

    again = api.post(f"/tasks/{waiting['id']}/cancel")
    assert again.status_code == 422
    assert again.json()["errors"] == {"status": ["Cannot change status: task already completed."]}


def test_cancel_processing_task_fails_its_job(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(task_seconds=30)
    with client(emu) as api:
        job = create_job(api)
        imported = task_named(job, "import-it")
        wait_until(lambda: api.get(f"/tasks/{imported['id']}").json()["data"]["status"] == "processing", what="processing")
        data = api.post(f"/tasks/{imported['id']}/cancel").json()["data"]
        assert (data["status"], data["code"]) == ("error", "CANCELLED")
        job = api.get(f"/jobs/{job['id']}").json()["data"]
    assert job["status"] == "error"
    assert task_named(job, "convert-it")["code"] == "INPUT_TASK_FAILED"


def test_cancel_of_finished_task_is_422(emulator: Emulator, api: httpx.Client) -> None:
    job = wait_job(emulator, create_job(api)["id"])
    response = api.post(f"/tasks/{task_named(job, 'export-it')['id']}/cancel")
    assert response.status_code == 422
    assert response.json() == {
        "message": "The given data was invalid.",
        "code": "INVALID_DATA",
        "errors": {"status": ["Cannot change status: task already completed."]},
    }


def test_retry_makes_a_copy_in_the_same_job(emulator: Emulator, api: httpx.Client) -> None:
    job = wait_job(emulator, create_job(api, conversion_tasks("https://files.example.invalid/a.docx"))["id"])
    failed = task_named(job, "import-it")
    response = api.post(f"/tasks/{failed['id']}/retry")
    assert response.status_code == 201
    copy = response.json()["data"]
    assert copy["id"] != failed["id"]
    assert (copy["retry_of_task_id"], copy["copy_of_task_id"]) == (failed["id"], failed["id"])
    assert (copy["job_id"], copy["name"], copy["operation"], copy["status"]) == (job["id"], "import-it", "import/url", "waiting")
    retries = api.get(f"/tasks/{failed['id']}", params={"include": "retries"}).json()["data"]["retries"]
    assert [t["id"] for t in retries] == [copy["id"]]
    in_job = api.get("/tasks", params={"filter[job_id]": job["id"]}).json()["data"]
    assert copy["id"] in {t["id"] for t in in_job}
    assert len(in_job) == 4


def test_retry_of_unfinished_task_is_422(api: httpx.Client) -> None:
    waiting = api.post("/import/upload", json={}).json()["data"]
    response = api.post(f"/tasks/{waiting['id']}/retry")
    assert response.status_code == 422
    assert "status" in response.json()["errors"]


def test_delete_task_and_job(api: httpx.Client) -> None:
    task = api.post("/import/url", json=IMPORT).json()["data"]
    deleted = api.delete(f"/tasks/{task['id']}")
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert api.get(f"/tasks/{task['id']}").status_code == 404

    job = create_job(api)
    deleted = api.delete(f"/jobs/{job['id']}")
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert api.get(f"/jobs/{job['id']}").status_code == 404
    for task in job["tasks"]:  # the job's tasks went with it
        assert api.get(f"/tasks/{task['id']}").status_code == 404
    assert job["id"] not in {j["id"] for j in api.get("/jobs").json()["data"]}


# -- standalone tasks ------------------------------------------------------------------------------------------------


def test_standalone_tasks_chain_by_id(emulator: Emulator, api: httpx.Client) -> None:
    imported = api.post("/import/url", json={"url": "https://files.example.com/photo.jpg"})
    assert imported.status_code == 201
    imported_data = imported.json()["data"]
    assert imported_data["job_id"] is None and "name" not in imported_data
    converted = api.post("/convert", json={"input": imported_data["id"], "output_format": "png"}).json()["data"]
    assert converted["depends_on_task_ids"] == [imported_data["id"]]
    exported = api.post("/export/url", json={"input": converted["id"]}).json()["data"]
    assert exported["job_id"] is None
    with client(emulator, sync=True) as sync:
        done = sync.get(f"/tasks/{exported['id']}").json()["data"]
    assert done["status"] == "finished"
    files = done["result"]["files"]
    assert [f["filename"] for f in files] == ["photo.png"]
    assert httpx.get(files[0]["url"]).content.startswith(b"\x89PNG\r\n\x1a\n")


def test_import_url_on_loopback_downloads_for_real(emulator: Emulator, api: httpx.Client, make_receiver: Callable[..., Receiver]) -> None:
    content = b"%PDF-1.4 not really, but these exact bytes\n"
    host = make_receiver(files={"/docs/input.pdf": content})
    tasks = {
        "in": {"operation": "import/url", "url": f"{host.url}/docs/input.pdf"},
        "out": {"operation": "export/url", "input": "in"},
    }
    job = wait_job(emulator, create_job(api, tasks)["id"])
    assert job["status"] == "finished"
    files = task_named(job, "out")["result"]["files"]
    assert [(f["filename"], f["size"]) for f in files] == [("input.pdf", len(content))]
    assert httpx.get(files[0]["url"]).content == content

    missing = wait_job(emulator, create_job(api, {"in": {"operation": "import/url", "url": f"{host.url}/nothing.pdf"}})["id"])
    assert task_named(missing, "in")["code"] == "DOWNLOAD_FAILED"


# -- import/upload -----------------------------------------------------------------------------------------------------------


def test_upload_then_convert_and_download(emulator: Emulator, api: httpx.Client) -> None:
    tasks = {
        "upload-it": {"operation": "import/upload"},
        "convert-it": {"operation": "convert", "input": "upload-it", "output_format": "pdf"},
        "export-it": {"operation": "export/url", "input": "convert-it"},
    }
    job = create_job(api, tasks)
    waiting = task_named(job, "upload-it")
    assert waiting["message"] == "Waiting for file upload"
    form = waiting["result"]["form"]
    assert form["url"] == f"{emulator.base_url}/_storage/upload/{waiting['id']}"
    assert form["parameters"]["key"] == f"{waiting['id']}/${{filename}}"

    data = b"hello, world\n"
    stored = upload(form, "notes.txt", data, "text/plain")
    assert stored.status_code == 201
    assert stored.headers["content-type"].startswith("application/xml")
    md5 = hashlib.md5(data).hexdigest()
    assert f"<Key>{waiting['id']}/notes.txt</Key>" in stored.text and md5 in stored.text

    job = wait_job(emulator, job["id"])
    assert job["status"] == "finished"
    uploaded = task_named(job, "upload-it")
    assert uploaded["message"] is None
    assert uploaded["result"]["files"] == [{"filename": "notes.txt", "size": len(data), "md5": md5}]
    exported = task_named(job, "export-it")["result"]["files"]
    assert [f["filename"] for f in exported] == ["notes.pdf"]
    assert httpx.get(exported[0]["url"]).content.startswith(b"%PDF")

    assert upload(form, "again.txt", b"x").status_code == 400  # the form is used up


@pytest.mark.parametrize("filename", ["plain.txt", "a%41.txt", "报告 1.txt", "R&D <draft> #2?.txt", "dir/inner.txt"])
def test_any_file_name_round_trips(emulator: Emulator, api: httpx.Client, filename: str) -> None:
    """Names with %-escapes, non-Latin letters or XML/URL specials upload, export and download intact."""
    job = create_job(api, {"up": {"operation": "import/upload"}, "out": {"operation": "export/url", "input": "up"}})
    form = task_named(job, "up")["result"]["form"]
    data = filename.encode() * 3
    stored = upload(form, filename, data, "text/plain")
    assert stored.status_code == 201
    answer = ElementTree.fromstring(stored.content)
    assert answer.findtext("Key") == f"{task_named(job, 'up')['id']}/{filename}"
    [file] = task_named(wait_job(emulator, job["id"]), "out")["result"]["files"]
    assert file["filename"] == filename
    download = httpx.get(file["url"])
    assert download.status_code == 200
    assert download.content == data
    assert download.headers["content-disposition"].startswith("attachment; filename=")


def test_upload_without_file_is_400(api: httpx.Client) -> None:
    form = api.post("/import/upload", json={}).json()["data"]["result"]["form"]
    response = httpx.post(form["url"], data=form["parameters"])
    assert response.status_code == 400


# -- operations catalogue ------------------------------------------------------------------------------------------------------------


def test_catalogue_is_large_and_unpaginated(api: httpx.Client) -> None:
    body = api.get("/operations").json()
    assert list(body) == ["data"]
    entries = body["data"]
    assert len(entries) > 500
    assert {"convert", "optimize", "thumbnail", "merge", "capture-website", "archive", "metadata"} <= {e["operation"] for e in entries}
    for entry in entries:
        assert {"operation", "input_format", "output_format", "engine", "credits"} <= set(entry)
        assert "options" not in entry and "engine_versions" not in entry


def test_catalogue_filters(api: httpx.Client) -> None:
    def query(**filters: str) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = api.get("/operations", params={f"filter[{k}]": v for k, v in filters.items()}).json()["data"]
        return data

    pair = query(operation="convert", input_format="docx", output_format="pdf")
    assert [(e["engine"], e["credits"]) for e in pair] == [("office", 2)]
    ffmpeg = query(engine="ffmpeg")
    assert ffmpeg and {e["engine"] for e in ffmpeg} == {"ffmpeg"}
    thumbs = query(operation="thumbnail", input_format="mp4")
    assert thumbs and {(e["operation"], e["input_format"]) for e in thumbs} == {("thumbnail", "mp4")}
    versioned = query(engine_version="7.1.1")
    assert versioned and {e["engine"] for e in versioned} == {"imagemagick"}
    assert query(engine="ffmpeg", engine_version="7.1.1") == []
    assert query(input_format="no-such-format") == []


def test_catalogue_include_and_alternatives(api: httpx.Client) -> None:
    params = {"filter[operation]": "convert", "filter[input_format]": "docx", "filter[output_format]": "pdf"}
    included = api.get("/operations", params={**params, "include": "options,engine_versions"}).json()["data"]
    assert len(included) == 1
    assert included[0]["options"] and {"name", "type", "default"} <= set(included[0]["options"][0])
    versions = included[0]["engine_versions"]
    assert versions and set(versions[0]) == {"version", "default", "latest", "deprecated", "experimental"}
    assert sum(v["default"] for v in versions) == 1

    alternatives = api.get("/operations", params={**params, "alternatives": "true"}).json()["data"]
    assert sorted(e["engine"] for e in alternatives) == ["libreoffice", "office"]
    assert len(api.get("/operations", params={"alternatives": "true"}).json()["data"]) > len(api.get("/operations").json()["data"])


def test_convert_formats(api: httpx.Client) -> None:
    formats = api.get("/convert/formats").json()["data"]
    assert len(formats) > 2000 and {e["operation"] for e in formats} == {"convert"}
    docx = api.get("/convert/formats", params={"filter[input_format]": "docx"}).json()["data"]
    assert docx and {e["input_format"] for e in docx} == {"docx"} and "pdf" in {e["output_format"] for e in docx}


# -- rate limit and latency -----------------------------------------------------------------------------------------------------------


def test_rate_limit(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(rate_limit=3, rate_window=2)
    with client(emu) as api:
        remaining = []
        for _ in range(3):
            response = api.get("/jobs")
            assert response.status_code == 200
            assert response.headers["x-ratelimit-limit"] == "3"
            remaining.append(response.headers["x-ratelimit-remaining"])
        assert remaining == ["2", "1", "0"]
        me = api.get("/users/me")  # neither counted nor labelled
        assert me.status_code == 200 and "x-ratelimit-limit" not in me.headers

        limited = api.get("/jobs")
        assert limited.status_code == 429
        assert limited.json()["code"] == "TOO_MANY_REQUESTS"
        retry_after = int(limited.headers["retry-after"])
        assert 1 <= retry_after <= 2
        assert limited.headers["x-ratelimit-remaining"] == "0"

        time.sleep(retry_after + 0.05)
        again = api.get("/jobs")
        assert again.status_code == 200
        assert again.headers["x-ratelimit-remaining"] == "2"


def test_rate_limit_ignores_requests_without_a_valid_key(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(rate_limit=1, rate_window=60)
    with client(emu, "wrong") as wrong, client(emu) as api:
        for _ in range(3):
            assert wrong.get("/jobs").status_code == 401
        assert api.get("/jobs").status_code == 200
        assert api.get("/jobs").status_code == 429


def test_latency(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(latency_ms=100)
    with client(emu) as api:
        started = time.monotonic()
        assert api.get("/users/me").status_code == 200
        assert time.monotonic() - started >= 0.1
    assert emu.requests()[-1]["duration_ms"] >= 100


def test_latency_overlaps_the_work_of_requests_under_way_together(make_emulator: MakeEmulator) -> None:
    """Each of 16 concurrent requests is answered its latency after it arrived: the work of all
    of them (pages of 400 tasks with their payloads, made afresh each time) is done within the
    latency, not queued after it on the emulator's one event loop (that made the last ~70 ms late)."""
    emu = make_emulator(jobs=2000, seed=1, rate_limit=0, latency_ms=300)
    limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)
    with httpx.Client(base_url=emu.api_url, headers={"Authorization": f"Bearer {emu.api_key}"}, limits=limits, timeout=30) as api:
        api.get("/users/me")
        emu.clear_requests()
        with ThreadPoolExecutor(16) as pool:
            pages = pool.map(lambda n: api.get("/tasks", params={"include": "payload", "per_page": 400, "page": n % 8 + 1}), range(16))
            assert all(page.status_code == 200 and len(page.json()["data"]) == 400 for page in pages)
    durations = [r["duration_ms"] for r in emu.requests()]
    assert len(durations) == 16 and min(durations) >= 300
    assert max(durations) < 330, sorted(durations)


def test_an_answer_that_fails_is_a_500_after_the_latency(make_emulator: MakeEmulator) -> None:
    """A handler that raises still answers (Starlette's 500) when the latency is over, and is logged."""
    emu = make_emulator(latency_ms=100)
    with client(emu) as api:
        body = b'{"file": "x", "filename": "a.txt", "size": 1000000000000000000000000000000}'
        task = api.post("/import/raw", content=body).json()["data"]
        started = time.monotonic()
        failed = api.get(f"/tasks/{task['id']}", params={"include": "payload"})  # orjson refuses the 100-bit integer
        assert failed.status_code == 500 and time.monotonic() - started >= 0.1
    assert (emu.requests()[-1]["status"], emu.requests()[-1]["duration_ms"] >= 100) == (500, True)


def test_kept_alive_connection_is_not_delayed(emulator: Emulator, api: httpx.Client) -> None:
    """Requests on one connection must not wait for delayed ACKs (TCP_NODELAY): ~1 ms each, not ~40."""
    api.get("/users/me")
    started = time.monotonic()
    for _ in range(50):
        assert api.get("/users/me").status_code == 200
    assert time.monotonic() - started < 1.0


def test_stop_does_not_wait_for_a_stalled_request(make_emulator: MakeEmulator) -> None:
    """A request held by a ``stall`` fault (or a sync wait that never ends) is cut at stop()."""
    emu = make_emulator()
    emu.add_fault("stall", stall_seconds=60)
    with client(emu, timeout=0.2) as api, pytest.raises(httpx.TimeoutException):
        api.get("/jobs")
    started = time.monotonic()
    emu.stop()
    assert time.monotonic() - started < 5
    with pytest.raises(httpx.ConnectError):
        httpx.get(emu.api_url + "/operations")


# -- faults ------------------------------------------------------------------------------------------------------------------------------


def add_fault(emu: Emulator, via: str, **spec: Any) -> None:
    """Install a fault through the HTTP control API or through the Python API."""
    if via == "http":
        response = httpx.post(f"{emu.base_url}/_emulator/faults", json=spec)
        assert response.status_code == 201, response.text
    else:
        emu.add_fault(**spec)


VIA = pytest.mark.parametrize("via", ["http", "python"])


@VIA
@pytest.mark.parametrize("kind", ["500", "502", "503", "429"])
def test_status_faults_answer_without_effect(make_emulator: MakeEmulator, via: str, kind: str) -> None:
    emu = make_emulator()
    add_fault(emu, via, kind=kind, path="/v2/jobs", method="POST")
    with client(emu) as api:
        response = api.post("/jobs", json={"tasks": conversion_tasks()})
        assert response.status_code == int(kind)
        if kind in ("500", "429"):
            assert response.json()["code"] in ("INTERNAL_SERVER_ERROR", "TOO_MANY_REQUESTS")
        else:
            assert response.headers["content-type"].startswith("text/html")
        if kind == "429":
            assert response.headers["retry-after"] == "1"
        assert api.get("/jobs").json()["data"] == []  # no job was created
        assert api.post("/jobs", json={"tasks": conversion_tasks()}).status_code == 201  # count 1: used up
    assert [r["fault"] for r in emu.requests()] == [kind, None, None]


@VIA
def test_drop_fault_is_an_ambiguous_failure(make_emulator: MakeEmulator, via: str) -> None:
    emu = make_emulator()
    add_fault(emu, via, kind="drop", path="/v2/jobs", method="POST")
    with client(emu) as api:
        with pytest.raises(httpx.TransportError):
            api.post("/jobs", json={"tasks": conversion_tasks()})
        assert len(api.get("/jobs").json()["data"]) == 1  # ... but the job exists


@VIA
def test_malformed_fault_cuts_the_body(make_emulator: MakeEmulator, via: str) -> None:
    emu = make_emulator()
    add_fault(emu, via, kind="malformed", path="/v2/jobs", method="POST")
    with client(emu) as api:
        response = api.post("/jobs", json={"tasks": conversion_tasks()})
        with pytest.raises(ValueError):
            response.json()
        assert len(api.get("/jobs").json()["data"]) == 1


@VIA
def test_stall_fault_times_the_client_out(make_emulator: MakeEmulator, via: str) -> None:
    emu = make_emulator()
    add_fault(emu, via, kind="stall", path="/v2/jobs", stall_seconds=0.6)
    with client(emu, timeout=0.2) as api:
        with pytest.raises(httpx.TimeoutException):
            api.get("/jobs")
    with client(emu) as api:
        assert api.get("/jobs").status_code == 200


@VIA
def test_fault_count_exhausts(make_emulator: MakeEmulator, via: str) -> None:
    emu = make_emulator()
    add_fault(emu, via, kind="503", count=2)
    with client(emu) as api:
        assert [api.get("/jobs").status_code for _ in range(3)] == [503, 503, 200]


@VIA
def test_fault_rate(make_emulator: MakeEmulator, via: str) -> None:
    emu = make_emulator(seed=3)
    add_fault(emu, via, kind="500", rate=0.5)
    with client(emu) as api:
        statuses = [api.get("/jobs").status_code for _ in range(40)]
    assert set(statuses) == {200, 500}
    assert 8 <= statuses.count(500) <= 32


@VIA
def test_fault_matches_path_prefix_and_method(make_emulator: MakeEmulator, via: str) -> None:
    emu = make_emulator()
    add_fault(emu, via, kind="500", path="/v2/tasks", method="GET", rate=1.0)
    with client(emu) as api:
        assert api.get("/jobs").status_code == 200
        assert api.get("/tasks").status_code == 500
        assert api.get(f"/tasks/{uuid.uuid4()}").status_code == 500
        assert api.post("/tasks/x/cancel").status_code == 404  # POST does not match
        assert api.get("/tasks").status_code == 500  # a rate fault does not wear out


@VIA
def test_fault_matches_query_substring(make_emulator: MakeEmulator, via: str) -> None:
    emu = make_emulator()
    add_fault(emu, via, kind="503", path="/v2/jobs", query="page=2", rate=1.0)
    with client(emu) as api:
        assert api.get("/jobs").status_code == 200
        assert api.get("/jobs", params={"page": 1}).status_code == 200
        assert api.get("/jobs", params={"per_page": 5, "page": 2}).status_code == 503


def test_faults_listed_and_cleared(make_emulator: MakeEmulator) -> None:
    emu = make_emulator()
    control = f"{emu.base_url}/_emulator/faults"
    assert httpx.post(control, json=[{"kind": "500", "count": 5}, {"kind": "drop", "path": "/v2/jobs"}]).status_code == 201
    listed = httpx.get(control).json()
    assert [(f["kind"], f["count"]) for f in listed] == [("500", 5), ("drop", 1)]
    assert httpx.delete(control).status_code == 204
    assert httpx.get(control).json() == []
    with client(emu) as api:
        assert api.get("/jobs").status_code == 200
    emu.add_fault("503", rate=1.0)
    emu.clear_faults()
    with client(emu) as api:
        assert api.get("/jobs").status_code == 200


def test_bad_fault_is_400(make_emulator: MakeEmulator) -> None:
    emu = make_emulator()
    response = httpx.post(f"{emu.base_url}/_emulator/faults", json={"kind": "explode"})
    assert response.status_code == 400
    assert "explode" in response.json()["message"]
    with pytest.raises(ValueError):
        emu.add_fault("explode")


# -- request log ------------------------------------------------------------------------------------------------------------------------------


def test_request_log(emulator: Emulator, api: httpx.Client) -> None:
    log_url = f"{emulator.base_url}/_emulator/requests"
    assert httpx.delete(log_url).status_code == 204
    api.get("/jobs", params={"filter[status]": "finished"})
    api.get("/tasks/nope")
    httpx.get(f"{emulator.base_url}/_emulator/faults")
    log = httpx.get(log_url).json()
    assert [(e["method"], e["path"], e["query"], e["status"]) for e in log] == [
        ("GET", "/v2/jobs", "filter%5Bstatus%5D=finished", 200),
        ("GET", "/v2/tasks/nope", "", 404),
    ]
    assert log[0]["params"] == [["filter[status]", "finished"]]
    assert [e["path"] for e in emulator.requests()] == ["/v2/jobs", "/v2/tasks/nope"]
    assert httpx.delete(log_url).status_code == 204
    assert httpx.get(log_url).json() == []
    api.get("/users/me")
    emulator.clear_requests()
    assert emulator.requests() == []


# -- seeding ------------------------------------------------------------------------------------------------------------------------------------


def snapshot(emu: Emulator) -> list[tuple[str, str | None, str, list[str]]]:
    """What a seed determines: job ids, tags, statuses and task operations."""
    with client(emu) as api:
        jobs = all_pages(api, "/jobs", {"include": "tasks"})
    return [(j["id"], j["tag"], j["status"], [t["operation"] for t in j["tasks"]]) for j in jobs]


def test_seeding_is_deterministic(make_emulator: MakeEmulator) -> None:
    first = snapshot(make_emulator(jobs=40, seed=11))
    again = snapshot(make_emulator(jobs=40, seed=11))
    other = snapshot(make_emulator(jobs=40, seed=12))
    assert len(first) == 40
    assert first == again
    assert {j[0] for j in first}.isdisjoint({j[0] for j in other})
    assert [j[1:] for j in first] != [j[1:] for j in other]


def test_seeded_mix_of_statuses(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(jobs=200, seed=1)
    jobs = snapshot(emu)
    assert len(jobs) == 200
    statuses = [j[2] for j in jobs]
    assert {"finished", "error", "waiting"} == set(statuses)
    assert statuses.count("finished") > statuses.count("error") > statuses.count("waiting") > 0
    with client(emu) as api:
        standalone = [t for t in all_pages(api, "/tasks") if t["job_id"] is None]
        assert len(standalone) == 2 * (200 // 20)  # an import and a convert each
        waiting = api.get("/jobs", params={"filter[status]": "waiting", "include": "tasks"}).json()["data"]
        assert all(t["result"]["form"] for j in waiting for t in j["tasks"] if t["operation"] == "import/upload")
