"""Conformance with the recorded real API: the emulator answers like the fixtures.

For every real (not HAND-MADE) response in ``tests/fixtures/cloudconvert``,
the emulator is made to answer the same kind of request, and both JSON bodies
must have the same keys and JSON types, recursively (see :mod:`.shapes`).

Fixtures from an older API era differ on purpose. Each such difference is an
explicit entry in that fixture's allow-list, with the reason; an entry that
no longer matches a difference fails the test too, so the lists stay exact.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from apidriver.emulator import Emulator
from apidriver.emulator.models import encode

from .shapes import Difference, differences
from .support import FIXTURES, Receiver, client, conversion_tasks, create_job, task_named, upload, wait_job
from .vcr import Interaction, read_cassette

MakeEmulator = Callable[..., Emulator]
MakeReceiver = Callable[..., Receiver]


@dataclass
class World:
    """What a scenario may use: a seeded emulator, its clients, receivers."""

    emu: Emulator
    api: httpx.Client
    sync: httpx.Client
    make_emulator: MakeEmulator
    make_receiver: MakeReceiver


Scenario = Callable[[World], Any]


@dataclass
class Case:
    scenario: Scenario
    allow: dict[Difference, str] = field(default_factory=dict)


# -- differences that are on purpose, shared by several fixtures ----------------------------------------

ERA_2019 = "2019 responses (before credits/user_id/priority were added to tasks)"


def era_2019_task(prefix: str, *, ids: bool = True) -> dict[Difference, str]:
    """What every 2019 task at ``prefix`` shows differently from today's (and the emulator's) tasks."""
    allow: dict[Difference, str] = {
        ("extra", f"{prefix}.credits"): f"{ERA_2019} had no credits on tasks",
        ("extra", f"{prefix}.user_id"): f"{ERA_2019} had no user_id on tasks",
        ("extra", f"{prefix}.priority"): f"{ERA_2019} had no priority on tasks",
        ("missing", f"{prefix}.payload"): "2019 responses inlined payload; since 2020 only with include=payload",
    }
    if not ids:
        allow[("extra", f"{prefix}.depends_on_task_ids")] = "this 2019 response lists depends_on_tasks instead of the ids"
    return allow


def merged(*parts: dict[Difference, str]) -> dict[Difference, str]:
    out: dict[Difference, str] = {}
    for part in parts:
        out.update(part)
    return out


# -- scenarios: make the emulator answer the same kind of request ----------------------------------------------


def failed_job(w: World) -> dict[str, Any]:
    """A 2019-style failed job: import-1 (import/url) → task-1 (convert) → export-1 (export/url)."""
    tasks = {
        "import-1": {"operation": "import/url", "url": "https://some.example.invalid/file.mp4", "filename": "file.mp4"},
        "task-1": {"operation": "convert", "input": ["import-1"], "input_format": "mp4", "output_format": "webm"},
        "export-1": {"operation": "export/url", "input": ["task-1"]},
    }
    return wait_job(w.emu, create_job(w.api, tasks, tag="test-1234")["id"])


def get(w: World, path: str, **params: Any) -> Any:
    response = w.api.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def user(w: World) -> Any:
    return get(w, "/users/me")


def jobs_list(w: World) -> Any:
    return get(w, "/jobs")


def job_failed(w: World) -> Any:
    return get(w, f"/jobs/{failed_job(w)['id']}")


def task_with_includes(w: World) -> Any:
    export = task_named(failed_job(w), "export-1")
    return get(w, f"/tasks/{export['id']}", include="retries,depends_on_tasks")


def job_created_2019(w: World) -> Any:
    tasks = {
        "import-it": {"operation": "import/url", "url": "https://files.example.com/test.file", "filename": "test.file"},
        "convert-it": {"operation": "convert", "input": ["import-it"], "output_format": "pdf"},
    }
    response = w.api.post("/jobs", json={"tasks": tasks})
    assert response.status_code == 201
    return response.json()


def job_created_2020(w: World) -> Any:
    """The Python SDK's fixture is the unwrapped ``data`` of POST /v2/jobs."""
    tasks = {"sandbox-task-import-file": {"operation": "import/url", "url": "https://files.example.com/sample.docx"}}
    return create_job(w.api, tasks)


def job_finished_live(w: World) -> Any:
    tasks = {
        "import-1": {"operation": "import/url", "url": "https://files.example.com/original.jpg"},
        "task-1": {"operation": "convert", "input": ["import-1"], "output_format": "png"},
        "export-1": {"operation": "export/url", "input": ["task-1"]},
    }
    job = wait_job(w.emu, create_job(w.api, tasks, tag="jobbuilder")["id"])
    assert job["status"] == "finished"
    return get(w, f"/jobs/{job['id']}")


def job_finished_upload(w: World) -> Any:
    tasks = {"import_it": {"operation": "import/upload"}, "export_it": {"operation": "export/url", "input": "import_it"}}
    job = create_job(w.api, tasks, tag="integration-test-upload-download")
    assert upload(task_named(job, "import_it")["result"]["form"], "input.pdf", b"%PDF-1.4\n").status_code == 201
    assert wait_job(w.emu, job["id"])["status"] == "finished"
    return get(w, f"/jobs/{job['id']}")


def standalone_import(w: World) -> dict[str, Any]:
    response = w.api.post("/import/url", json={"url": "https://files.example.com/input.pdf"})
    assert response.status_code == 201
    task: dict[str, Any] = response.json()["data"]
    return task


def task_finished_standalone(w: World) -> Any:
    converted = w.api.post("/convert", json={"input": standalone_import(w)["id"], "output_format": "docx"}).json()["data"]
    assert w.sync.get(f"/tasks/{converted['id']}").json()["data"]["status"] == "finished"
    return get(w, f"/tasks/{converted['id']}")


def task_created_standalone(w: World) -> Any:
    response = w.api.post("/convert", json={"input": standalone_import(w)["id"], "output_format": "docx"})
    assert response.status_code == 201
    return response.json()


def task_created_2019(w: World) -> Any:
    body = {"name": "test", "url": "https://files.example.com/test.file", "filename": "test.file"}
    response = w.api.post("/import/url", json=body)
    assert response.status_code == 201
    return response.json()


def upload_task_created(w: World) -> Any:
    response = w.api.post("/import/upload", json={})
    assert response.status_code == 201
    return response.json()


def upload_task_in_job(w: World) -> Any:
    job = create_job(w.api, {"import-1": {"operation": "import/upload"}})
    return {"data": job["tasks"][0]}


def retried_task(w: World) -> Any:
    """The Python SDK's fixture is the unwrapped ``data`` of POST /v2/tasks/{id}/retry."""
    response = w.api.post("/import/url", json={"url": "https://files.example.invalid/input.pdf"})
    failed = response.json()["data"]
    assert w.sync.get(f"/tasks/{failed['id']}").json()["data"]["status"] == "error"
    retried = w.api.post(f"/tasks/{failed['id']}/retry")
    assert retried.status_code == 201
    return retried.json()["data"]


def tasks_list(w: World) -> Any:
    failed_job(w)
    return get(w, "/tasks", **{"filter[operation]": "export/url", "filter[status]": "error", "include": "retries"})


def error_422(w: World) -> Any:
    task = standalone_import(w)
    assert w.sync.get(f"/tasks/{task['id']}").json()["data"]["status"] == "finished"
    response = w.api.post(f"/tasks/{task['id']}/cancel")
    assert response.status_code == 422  # the SDK tests serve this body with 400; the real API says 422
    return response.json()


def error_402(w: World) -> Any:
    emu = w.make_emulator(credits=0)
    with client(emu) as api:
        response = api.post("/jobs", json={"tasks": conversion_tasks()})
    assert response.status_code == 402
    return response.json()


def delivered(w: World, event: str, tasks: dict[str, Any], tag: str | None = None) -> Any:
    receiver = w.make_receiver()
    assert w.api.post("/webhooks", json={"url": receiver.url, "events": [event]}).status_code == 201
    create_job(w.api, tasks, **({"tag": tag} if tag else {}))
    [post] = receiver.wait_posts(1)
    return post.json()


def webhook_job_created(w: World) -> Any:
    tasks = {
        "import_example_1": {"operation": "import/upload"},
        "convert": {"operation": "convert", "input": "import_example_1", "output_format": "pdf"},
        "export": {"operation": "export/url", "input": "convert"},
    }
    return delivered(w, "job.created", tasks, tag="Test")


def webhook_job_finished(w: World) -> Any:
    return delivered(w, "job.finished", conversion_tasks("https://files.example.com/file.docx"))


# -- the cases, one per distinct recorded file ----------------------------------------------------------------

NODE = "cloudconvert-node/tests/unit"
NET = "cloudconvert-dotnet/CloudConvert.Test/Responses"
PHP = "cloudconvert-php/tests/Unit/responses"
PY = "cloudconvert-python/tests/unit/responses"

CASES: dict[str, Case] = {
    f"{NODE}/responses/user.json": Case(
        user,
        {
            ("extra", "$.data.paying"): "the docs example predates paying; the 2020 VCR recording of /users/me has it",
            ("extra", "$.data.task_priority"): "the docs example predates task_priority; the 2020 VCR recording has it",
            ("extra", "$.data.tasks_per_minute"): "the docs example predates tasks_per_minute; the 2020 VCR recording has it",
        },
    ),
    f"{NODE}/responses/jobs.json": Case(jobs_list, {("extra", "$.data[].tag"): "2019 jobs had no tag key"}),
    f"{NODE}/responses/job.json": Case(
        job_failed,
        merged(*(era_2019_task(f"$.data.tasks[{op}]") for op in ("import/url", "convert", "export/url"))),
    ),
    f"{NODE}/responses/job_created.json": Case(
        job_created_2019,
        merged(
            {("extra", "$.data.tag"): "2019 jobs had no tag key (SOURCES.txt: 2019 shape, no tag key)"},
            *(era_2019_task(f"$.data.tasks[{op}]") for op in ("import/url", "convert")),
        ),
    ),
    f"{NODE}/responses/job_finished.json": Case(job_finished_live),
    f"{NODE}/responses/task.json": Case(
        task_with_includes,
        merged(
            era_2019_task("$.data", ids=False),
            era_2019_task("$.data.depends_on_tasks[convert]"),
        ),
    ),
    f"{NODE}/responses/task_created.json": Case(
        task_created_2019,
        merged(
            era_2019_task("$.data", ids=False),
            {
                ("missing", "$.data.retries"): "this 2019 create answer carried include-style retries; today's only with include=retries",
                ("missing", "$.data.depends_on_tasks"): "this 2019 create answer carried include-style depends_on_tasks",
                ("extra", "$.data.host_name"): "2019 standalone tasks had no host_name",
                ("extra", "$.data.storage"): "2019 standalone tasks had no storage",
            },
        ),
    ),
    f"{NODE}/responses/upload_task_created.json": Case(
        upload_task_created,
        merged(
            era_2019_task("$.data", ids=False),
            {
                ("missing", "$.data.retries"): "this 2019 create answer carried include-style retries",
                ("missing", "$.data.depends_on_tasks"): "this 2019 create answer carried include-style depends_on_tasks",
                ("extra", "$.data.host_name"): "2019 standalone tasks had no host_name",
                ("extra", "$.data.storage"): "2019 standalone tasks had no storage",
                **{
                    ("missing", f"$.data.result.form.parameters.{k}"): "the 2019 upload host (upload.sandbox) used another form"
                    for k in ("expires", "max_file_count", "max_file_size", "signature")
                },
                **{
                    ("extra", f"$.data.result.form.parameters.{k}"): "since 2020 the form is an S3 POST policy (VCR, .NET fixture)"
                    for k in ("acl", "key", "success_action_status", "X-Amz-Credential", "X-Amz-Algorithm", "X-Amz-Date", "Policy", "X-Amz-Signature")
                },
            },
        ),
    ),
    f"{NODE}/requests/webhook_job_finished_payload.json": Case(
        webhook_job_finished,
        merged(
            {("extra", "$.job.tag"): "2019 jobs had no tag key"},
            *(era_2019_task(f"$.job.tasks[{op}]") for op in ("import/url", "convert", "export/url")),
            {
                ("missing", "$.job.tasks[export/url].engine"): "2019 export tasks had engine: null; since 2020 the key is absent",
                ("missing", "$.job.tasks[export/url].engine_version"): "2019 export tasks had engine_version: null; absent since 2020",
                ("extra", "$.job.tasks[export/url].result.files[].size"): "2019 export/url files had no size; the 2020-2022 recordings have it",
            },
        ),
    ),
    f"{NET}/job_finished.json": Case(
        job_finished_upload,
        {
            ("extra", "$.data.tasks[import/upload].result.files[].size"): (
                "sandbox uploads report md5 only; the emulator reports size too (as live imports do, NODE job_finished 2022)"
            ),
        },
    ),
    f"{NET}/task.json": Case(task_finished_standalone),
    f"{NET}/task_created.json": Case(task_created_standalone),
    f"{NET}/upload_task_created.json": Case(upload_task_in_job),
    f"{NET}/webhook_job_created_payload.json": Case(webhook_job_created),
    f"{PHP}/error400.json": Case(error_422),
    f"{PHP}/error402.json": Case(error_402),
    f"{PHP}/tasks.json": Case(tasks_list, era_2019_task("$.data[export/url]")),
    f"{PY}/job_created.json": Case(job_created_2020),
    f"{PY}/retry.json": Case(retried_task),
}


def _sources() -> dict[str, str]:
    """local path → note, from SOURCES.txt."""
    out: dict[str, str] = {}
    for line in (FIXTURES / "SOURCES.txt").read_text().splitlines():
        if line.startswith("#") or "|" not in line:
            continue
        parts = [p.strip() for p in line.split("|")]
        out[parts[0]] = parts[-1]
    return out


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def world(make_emulator: MakeEmulator, make_receiver: MakeReceiver) -> Any:
    emu = make_emulator(jobs=5, seed=2)
    with client(emu) as api, client(emu, sync=True) as sync:
        yield World(emu, api, sync, make_emulator, make_receiver)


def check(name: str, recorded: Any, ours: Any, allow: dict[Difference, str]) -> None:
    found = differences(recorded, ours)
    unexpected = [d for d in found if d not in allow]
    stale = [d for d in allow if d not in found]
    assert not unexpected, f"{name}: the emulator differs from the recording: {unexpected}\nours: {json.dumps(ours)[:3000]}"
    assert not stale, f"{name}: allow-list entries that match no difference (remove them): {stale}"


def test_every_real_fixture_has_a_case() -> None:
    """New recordings must get a case; HAND-MADE ones are out, byte-identical copies share one."""
    notes = _sources()
    covered = {md5(FIXTURES / path) for path in CASES}
    assert len(covered) == len(CASES), "two cases test the same content"
    for path in sorted(FIXTURES.rglob("*.json")):
        local = str(path.relative_to(FIXTURES))
        if local.startswith("operations/"):
            continue  # the catalogue dump: test_convert_formats_fixture
        assert local in notes, f"{local} is not listed in SOURCES.txt"
        if "HAND-MADE" in notes[local]:
            assert md5(path) not in covered, f"{local} is HAND-MADE but tested"
            continue
        assert md5(path) in covered, f"no case for {local}"


@pytest.mark.parametrize("fixture", sorted(CASES))
def test_fixture_shape(world: World, fixture: str) -> None:
    case = CASES[fixture]
    assert "HAND-MADE" not in _sources()[fixture]
    recorded = json.loads((FIXTURES / fixture).read_text())
    check(fixture, recorded, case.scenario(world), case.allow)


def test_convert_formats_fixture(emulator: Emulator, api: httpx.Client) -> None:
    """The real catalogue dump: same envelope, and every recorded entry is served as recorded."""
    recorded = json.loads((FIXTURES / "operations/cloudconvert_formats.json").read_text())
    ours = api.get("/convert/formats").json()
    assert list(ours) == list(recorded) == ["data"]
    served = {json.dumps(e, sort_keys=True) for e in ours["data"]}
    missing = [e for e in recorded["data"] if json.dumps(e, sort_keys=True) not in served]
    assert not missing, missing[:5]
    assert len(ours["data"]) == len(recorded["data"])


# -- the Ruby VCR cassettes: real traffic with status codes and headers -------------------------------------

CASSETTES = FIXTURES / "cloudconvert-ruby/spec/integration/vcr"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

# Differences of the recorded sandbox traffic (Dec 2020) that are on purpose.
SANDBOX_IMPORTS = {
    ("missing", "$.data.result.files[].md5"): "sandbox import/url results carry md5 (whitelisting); live ones report size",
    ("extra", "$.data.result.files[].size"): "live import results report size (NODE job_finished 2022); the sandbox gave md5",
}
SANDBOX_UPLOADS = {
    ("extra", "$.data.result.files[].size"): "sandbox uploads report md5 only; the emulator reports size too",
}
CASSETTE_ALLOW: dict[str, dict[Difference, str]] = {
    "performs_user_query.yml": {},
    "performs_import_url_task.yml": SANDBOX_IMPORTS,
    "performs_import_upload_task.yml": SANDBOX_UPLOADS,
    "performs_upload_and_download_of_file.yml": {},
}


def recorded_upload(interaction: Interaction) -> tuple[str, bytes, str]:
    """The file part of a recorded multipart upload: (filename, bytes, content type header)."""
    content_type = interaction.request.headers["Content-Type"][0]
    boundary = content_type.split("boundary=")[1].encode()
    for part in interaction.request.body.split(b"--" + boundary):
        head, _, data = part.partition(b"\r\n\r\n")
        if b'name="file"' in head:
            filename = re.search(rb'filename="([^"]+)"', head)
            assert filename is not None
            return filename.group(1).decode(), data.removesuffix(b"\r\n"), content_type
    raise AssertionError("the recorded upload has no file part")


class Replay:
    """Play a cassette's requests against the emulator, one interaction at a time.

    The requests are the same kind as recorded (same method, host and path
    shape, the recorded JSON body where there is one); the state they need
    (a job to delete, an upload task to fill) is set up first. Ids of the
    recording are mapped to ours as they appear.
    """

    def __init__(self, emu: Emulator, cassette: list[Interaction]) -> None:
        self.emu = emu
        self.cassette = cassette
        self.api = client(emu)
        self.ids: dict[str, str] = {}
        self.uploads = [recorded_upload(i) for i in cassette if i.method == "POST" and "storage." in i.uri]

    def file(self) -> tuple[str, bytes]:
        """A real file from the cassette (the recorded upload, else the recorded download)."""
        if self.uploads:
            return self.uploads[0][0], self.uploads[0][1]
        downloads = [i for i in self.cassette if i.method == "GET" and "storage." in i.uri]
        return "input.pdf", downloads[0].response.body if downloads else b"%PDF-1.4\n"

    def url(self, uri: str) -> str:
        parts = urlsplit(uri)
        path = UUID.sub(lambda m: self.ids.get(m.group(0), m.group(0)), parts.path)
        host = "/sync" if parts.hostname and parts.hostname.startswith("sync.") else ""
        return f"{self.emu.base_url}{host}{path}" + (f"?{parts.query}" if parts.query else "")

    def learn(self, recorded: Any, ours: Any) -> None:
        """Map recorded ids to ours, walking both bodies in step."""
        if isinstance(recorded, dict) and isinstance(ours, dict):
            if isinstance(recorded.get("id"), str) and isinstance(ours.get("id"), str):
                self.ids.setdefault(recorded["id"], ours["id"])
            for key in recorded.keys() & ours.keys():
                self.learn(recorded[key], ours[key])
        elif isinstance(recorded, list) and isinstance(ours, list):
            for r, o in zip(recorded, ours, strict=False):
                self.learn(r, o)

    def job_like(self, recorded_job_id: str) -> dict[str, Any]:
        """Our job for a recorded one (the cassette's job body is the integration test's)."""
        if recorded_job_id not in self.ids:
            posted = next(i for i in self.cassette if i.method == "POST" and i.uri.endswith("/v2/jobs"))
            response = self.api.post("/jobs", content=posted.request.body, headers={"Content-Type": "application/json"})
            assert response.status_code == 201
            self.ids[recorded_job_id] = response.json()["data"]["id"]
        job: dict[str, Any] = self.api.get(f"/jobs/{self.ids[recorded_job_id]}").json()["data"]
        return job

    def prepare(self, it: Interaction) -> None:
        """Create what the recorded request refers to, in the recorded state."""
        recorded = json.loads(it.response.body) if it.response.body.startswith(b"{") else None
        path_ids = UUID.findall(urlsplit(it.uri).path)
        if not path_ids or path_ids[0] in self.ids:
            return
        old = path_ids[0]
        if "/v2/jobs/" in it.uri:
            self.job_like(old)
            return
        data = recorded["data"] if recorded else None
        if data is None:  # DELETE /v2/tasks/{id} whose creation was not recorded: any standalone task will do
            self.ids[old] = self.api.post("/import/url", json={"url": "https://files.example.com/input.pdf"}).json()["data"]["id"]
            return
        if data["job_id"] is not None:
            job = self.job_like(data["job_id"])
            ours = task_named(job, data["name"])
            self.ids[old] = ours["id"]
            if data["status"] == "finished" and data["operation"] == "export/url":
                source = task_named(job, "import-it")
                if source["status"] == "waiting":
                    name, content = self.file()
                    assert upload(source["result"]["form"], name, content, "application/pdf").status_code == 201
            return
        # a standalone task whose creation is in another (unrecorded) run
        if data["operation"] == "import/upload":
            task = self.api.post("/import/upload", json={}).json()["data"]
            if data["status"] == "finished":
                name, content = self.file()
                assert upload(task["result"]["form"], name, content, "application/pdf").status_code == 201
        else:
            task = self.api.post("/import/url", json={"url": "https://files.example.com/input.pdf"}).json()["data"]
        self.ids[old] = task["id"]

    def play(self, it: Interaction) -> httpx.Response:
        """Our answer to the recorded request."""
        if "storage." in it.uri and it.method == "POST":
            # the recorded multipart body, as the Ruby SDK sent it, to our form of the waiting upload task
            key = re.search(rb"name=\"key\"\r\n\r\n([0-9a-f-]{36})/", it.request.body)
            assert key is not None
            task = self.api.get(f"/tasks/{self.ids[key.group(1).decode()]}").json()["data"]
            return httpx.post(
                task["result"]["form"]["url"], content=it.request.body, headers={"Content-Type": it.request.headers["Content-Type"][0]}
            )
        if "storage." in it.uri:
            recorded_task = UUID.findall(it.uri)[0]
            ours = self.api.get(f"/tasks/{self.ids[recorded_task]}").json()["data"]
            return httpx.get(ours["result"]["files"][0]["url"])
        self.prepare(it)
        body = it.request.body or None
        headers = {"Content-Type": "application/json"} if body else {}
        return self.api.request(it.method, self.url(it.uri), content=body, headers=headers)


def header(headers: dict[str, list[str]], name: str) -> str | None:
    for key, values in headers.items():
        if key.lower() == name.lower():
            return values[0]
    return None


@pytest.mark.parametrize("cassette", sorted(CASSETTE_ALLOW))
def test_vcr_cassette(make_emulator: MakeEmulator, cassette: str) -> None:
    """Each recorded interaction, replayed: same status, content type, rate-limit headers, JSON encoding and shape."""
    [path] = CASSETTES.rglob(cassette)
    interactions = read_cassette(path)
    assert interactions
    emu = make_emulator(rate_limit=500)  # the recordings carry X-RateLimit-* on the main host
    replay = Replay(emu, interactions)
    found: set[Difference] = set()
    allow = CASSETTE_ALLOW[cassette]
    for number, it in enumerate(interactions):
        where = f"{cassette} #{number} {it.method} {it.uri}"
        ours = replay.play(it)
        assert ours.status_code == it.status, f"{where}: {ours.status_code} {ours.text[:500]}"
        recorded_type = header(it.response.headers, "Content-Type")
        if recorded_type is not None:
            assert ours.headers["content-type"] == recorded_type, where
        if "storage." not in it.uri:
            for name in ("X-Ratelimit-Limit", "X-Ratelimit-Remaining"):
                assert (header(it.response.headers, name) is not None) == (name.lower() in ours.headers), f"{where}: {name}"
        if recorded_type and "json" in recorded_type:
            recorded = json.loads(it.response.body)
            # byte level: the main host writes JSON as PHP does, the sync host plainly; so do we
            php = not urlsplit(it.uri).hostname.startswith("sync.")  # type: ignore[union-attr]
            assert encode(recorded, php=php) == it.response.body, f"{where}: our encoder cannot write the recorded bytes"
            assert ours.content == encode(ours.json(), php=php), f"{where}: not encoded as this host encodes"
            replay.learn(recorded, ours.json())
            diffs = differences(recorded, ours.json())
            unexpected = [d for d in diffs if d not in allow]
            assert not unexpected, f"{where}: {unexpected}\nours: {ours.text[:2000]}"
            found.update(diffs)
        elif recorded_type == "application/xml":
            assert re.findall(r"<(\w+)>", ours.text) == re.findall(r"<(\w+)>", it.response.body.decode()), where
        elif it.response.body and "storage." in it.uri:
            assert ours.content == replay.file()[1], f"{where}: the download differs from the upload"
        else:
            assert ours.content == it.response.body == b"", where
    stale = [d for d in allow if d not in found]
    assert not stale, f"{cassette}: allow-list entries that match no difference (remove them): {stale}"


def test_vcr_reader_reads_the_recorded_upload() -> None:
    """The cassette reader gives the exact recorded file: its md5 is the one the API answered."""
    [path] = CASSETTES.rglob("performs_import_upload_task.yml")
    uploads = [i for i in read_cassette(path) if i.method == "POST" and "storage." in i.uri]
    filename, data, _ = recorded_upload(uploads[0])
    assert filename == "input.pdf"
    assert hashlib.md5(data).hexdigest() == "53d6fe6b688c31c565907c81de625046"


def test_upload_md5_matches_the_recording(emulator: Emulator, api: httpx.Client) -> None:
    """Uploading the recorded file gives the md5 the real API reported for it."""
    [path] = CASSETTES.rglob("performs_import_upload_task.yml")
    it = next(i for i in read_cassette(path) if i.method == "POST" and "storage." in i.uri)
    filename, data, _ = recorded_upload(it)
    task = api.post("/import/upload", json={}).json()["data"]
    assert upload(task["result"]["form"], filename, data, "application/pdf").status_code == 201
    with client(emulator, sync=True) as sync:
        files = sync.get(f"/tasks/{task['id']}").json()["data"]["result"]["files"]
    assert files[0]["md5"] == "53d6fe6b688c31c565907c81de625046"
