"""The official ``cloudconvert`` Python SDK (PyPI) against the emulator.

The SDK keeps one global default client (``cloudconvert.configure``); each
test points it at its own emulator and the fixture puts the old one back.
Webhooks have no SDK calls, so they are registered, listed and deleted over
raw HTTP; the SDK's own ``Webhook.verify`` checks the delivered signature.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cloudconvert  # type: ignore[import-untyped]
import cloudconvert.cloudconvertrestclient as rest  # type: ignore[import-untyped]
import pytest
from cloudconvert.exceptions.exceptions import ResourceInvalid  # type: ignore[import-untyped]

from apidriver.emulator import Emulator

from .support import Receiver, client, conversion_tasks

MakeEmulator = Callable[..., Emulator]


@pytest.fixture
def sdk_emulator(make_emulator: MakeEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    """An emulator the SDK's default client points at (restored after the test)."""
    monkeypatch.setattr(rest, "__client__", None)
    emu = make_emulator(jobs=10, seed=5)
    cloudconvert.configure(api_key=emu.api_key, sandbox=False, endpoint=emu.base_url, sync_endpoint=emu.base_url + "/sync")
    yield emu


def export_file(job: dict[str, Any]) -> dict[str, Any]:
    [task] = [t for t in job["tasks"] if t["operation"] == "export/url"]
    [file] = task["result"]["files"]
    return dict(file)


def test_sdk_job_round_trip(sdk_emulator: Emulator, tmp_path: Path) -> None:
    job = cloudconvert.Job.create(payload={"tag": "sdk", "tasks": conversion_tasks("https://files.example.com/slides.pptx")})
    assert job["status"] == "waiting"
    assert [t["name"] for t in job["tasks"]] == ["import-it", "convert-it", "export-it"]

    waited = cloudconvert.Job.wait(id=job["id"])
    assert waited["status"] == "finished"
    shown = cloudconvert.Job.show(id=job["id"])
    assert shown == waited

    file = export_file(shown)
    assert file["filename"] == "slides.pdf"
    target = cloudconvert.download(filename=str(tmp_path / file["filename"]), url=file["url"])
    assert Path(target).read_bytes().startswith(b"%PDF")

    mine = cloudconvert.Job.all(params={"filter[status]": "finished", "filter[tag]": "sdk"})
    assert [j["id"] for j in mine] == [job["id"]]
    finished = cloudconvert.Job.all(params={"filter[status]": "finished"})
    assert job["id"] in {j["id"] for j in finished}
    assert {j["status"] for j in finished} == {"finished"}
    assert len(finished) > 1  # the seeded ones too

    assert cloudconvert.Job.delete(id=job["id"]) is True
    assert cloudconvert.Job.show(id=job["id"]) == {"message": "Job not found.", "code": "NOT_FOUND"}


def test_sdk_upload(sdk_emulator: Emulator, tmp_path: Path) -> None:
    source = tmp_path / "input.txt"
    source.write_bytes(b"uploaded through the official SDK\n")
    task = cloudconvert.Task.create(operation="import/upload")
    assert (task["status"], task["message"]) == ("waiting", "Waiting for file upload")
    assert cloudconvert.Task.upload(file_name=str(source), task=task) is True

    done = cloudconvert.Task.wait(id=task["id"])
    assert done["status"] == "finished"
    [file] = done["result"]["files"]
    assert (file["filename"], file["md5"]) == ("input.txt", hashlib.md5(source.read_bytes()).hexdigest())

    converted = cloudconvert.Task.create(operation="convert", payload={"input": task["id"], "output_format": "pdf"})
    exported = cloudconvert.Task.create(operation="export/url", payload={"input": [converted["id"]]})
    exported = cloudconvert.Task.wait(id=exported["id"])
    assert exported["status"] == "finished"
    assert exported["result"]["files"][0]["filename"] == "input.pdf"

    listed = cloudconvert.Task.all(params={"filter[operation]": "import/upload", "filter[status]": "finished"})
    assert task["id"] in {t["id"] for t in listed}


def test_sdk_cancel_retry_delete(sdk_emulator: Emulator) -> None:
    task = cloudconvert.Task.create(operation="import/upload")
    assert cloudconvert.Task.cancel(id=task["id"]) is True
    cancelled = cloudconvert.Task.show(id=task["id"])
    assert (cancelled["status"], cancelled["code"]) == ("error", "CANCELLED")

    retried = cloudconvert.Task.retry(id=task["id"])
    assert retried["id"] != task["id"]
    assert (retried["retry_of_task_id"], retried["status"]) == (task["id"], "waiting")
    assert retried["result"]["form"]["url"].startswith(sdk_emulator.base_url)

    # cancelling again is a validation error, which the SDK raises
    with pytest.raises(ResourceInvalid):
        cloudconvert.Task.cancel(id=task["id"])

    assert cloudconvert.Task.delete(id=retried["id"]) is True
    assert cloudconvert.Task.show(id=retried["id"]) == {"message": "Task not found.", "code": "NOT_FOUND"}


def test_sdk_verifies_a_delivered_webhook(sdk_emulator: Emulator, receiver: Receiver) -> None:
    emu = sdk_emulator
    with client(emu) as api:
        created = api.post("/webhooks", json={"url": receiver.url + "/cloudconvert", "events": ["job.finished"]})
        assert created.status_code == 201
        hook = created.json()["data"]
        listed = api.get("/users/me/webhooks", params={"filter[url]": hook["url"]}).json()["data"]
        assert [h["id"] for h in listed] == [hook["id"]]

        job = cloudconvert.Job.create(payload={"tasks": conversion_tasks()})
        [delivery] = receiver.wait_posts(1)
        payload = delivery.body.decode()
        signature = delivery.headers["cloudconvert-signature"]
        assert cloudconvert.Webhook.verify(payload, signature, hook["signing_secret"]) is True
        assert cloudconvert.Webhook.verify(payload.replace("finished", "failed"), signature, hook["signing_secret"]) is False
        assert cloudconvert.Webhook.verify(payload, signature, "another secret") is False
        assert delivery.json()["job"]["id"] == job["id"]

        assert api.delete(f"/webhooks/{hook['id']}").status_code == 204
        assert api.get("/users/me/webhooks", params={"filter[url]": hook["url"]}).json()["data"] == []


def test_sdk_verifies_the_recorded_vector() -> None:
    """The SDK and our emulator agree on the signature of the recorded fixture body."""
    from apidriver.emulator.webhooks import sign

    from .support import FIXTURES

    body = (FIXTURES / "cloudconvert-node/tests/unit/requests/webhook_job_finished_payload.json").read_bytes()
    signature = "576b653f726c85265a389532988f483b5c7d7d5f40cede5f5ddf9c3f02934f35"
    assert cloudconvert.Webhook.verify(body.decode(), signature, "secret") is True
    assert sign(body, "secret") == signature
