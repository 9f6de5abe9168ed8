"""Webhook deliveries: events, HMAC signatures, per-job URLs, retries, disabling."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from apidriver.emulator import Emulator
from apidriver.emulator.models import encode
from apidriver.emulator.webhooks import sign

from .support import FIXTURES, Receiver, client, closed_port, conversion_tasks, create_job, wait_job, wait_until

MakeEmulator = Callable[..., Emulator]
MakeReceiver = Callable[..., Receiver]
EVENTS = ["job.created", "job.finished", "job.failed"]


def register(api: httpx.Client, url: str, events: list[str] = EVENTS) -> dict[str, Any]:
    response = api.post("/webhooks", json={"url": url, "events": events})
    assert response.status_code == 201, response.text
    hook: dict[str, Any] = response.json()["data"]
    return hook


def verified(delivery: Any, secret: str) -> bool:
    """Check a delivery's signature as a receiver must: HMAC-SHA256 of the raw body, hex."""
    expected = hmac.new(secret.encode(), delivery.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(delivery.headers["cloudconvert-signature"], expected)


def test_created_and_finished_are_delivered_signed(make_emulator: MakeEmulator, receiver: Receiver) -> None:
    emu = make_emulator()
    with client(emu) as api:
        hook = register(api, receiver.url + "/hook")
        assert (hook["disabled"], hook["failing"]) == (False, False)
        job = create_job(api, tag="hooked")
        wait_job(emu, job["id"])
        posts = receiver.wait_posts(2, "/hook")
    assert sorted(p.json()["event"] for p in posts) == ["job.created", "job.finished"]
    for post in posts:
        assert post.headers["content-type"] == "application/json"
        assert verified(post, hook["signing_secret"])
        assert not verified(post, hook["signing_secret"] + "x")
        body = post.json()
        assert set(body) == {"event", "job"}
        assert (body["job"]["id"], body["job"]["tag"]) == (job["id"], "hooked")
        assert [t["name"] for t in body["job"]["tasks"]] == ["import-it", "convert-it", "export-it"]
        assert post.body == encode(post.json())  # compact, slashes escaped: as the real (PHP) sender
        assert b'"operation":"import\\/url"' in post.body
    created = next(p.json()["job"] for p in posts if p.json()["event"] == "job.created")
    finished = next(p.json()["job"] for p in posts if p.json()["event"] == "job.finished")
    assert created["status"] == "waiting"
    assert finished["status"] == "finished"
    assert finished["tasks"][2]["result"]["files"][0]["url"].startswith(emu.base_url)


def test_failed_job_is_delivered_to_subscribers_only(make_emulator: MakeEmulator, make_receiver: MakeReceiver) -> None:
    emu = make_emulator()
    everything, failures = make_receiver(), make_receiver()
    with client(emu) as api:
        register(api, everything.url, EVENTS)
        only_failed = register(api, failures.url, ["job.failed"])
        good = create_job(api)
        bad = create_job(api, conversion_tasks("https://files.example.invalid/a.docx"))
        wait_job(emu, good["id"])
        wait_job(emu, bad["id"])
        everything.wait_posts(4)
        [failed] = failures.wait_posts(1)
    assert verified(failed, only_failed["signing_secret"])
    assert (failed.json()["event"], failed.json()["job"]["id"], failed.json()["job"]["status"]) == ("job.failed", bad["id"], "error")
    events = sorted((p.json()["event"], p.json()["job"]["id"]) for p in everything.posts())
    assert events == sorted(
        [("job.created", good["id"]), ("job.finished", good["id"]), ("job.created", bad["id"]), ("job.failed", bad["id"])]
    )
    assert len(failures.posts()) == 1  # no job.created / job.finished for a job.failed-only hook


def test_per_job_webhook_url_gets_only_the_end(make_emulator: MakeEmulator, receiver: Receiver) -> None:
    emu = make_emulator()
    secret = emu.backend.job_webhook_secret
    with client(emu) as api:
        good = create_job(api, webhook_url=receiver.url + "/good")
        bad = create_job(api, conversion_tasks("https://files.example.invalid/a.docx"), webhook_url=receiver.url + "/bad")
        [finished] = receiver.wait_posts(1, "/good")
        [failed] = receiver.wait_posts(1, "/bad")
        wait_job(emu, good["id"])
    assert (finished.json()["event"], finished.json()["job"]["id"]) == ("job.finished", good["id"])
    assert (failed.json()["event"], failed.json()["job"]["id"]) == ("job.failed", bad["id"])
    assert verified(finished, secret) and verified(failed, secret)
    assert len(receiver.posts()) == 2  # job.created never goes to a per-job URL


def test_invalid_webhook_bodies_are_422(make_emulator: MakeEmulator) -> None:
    emu = make_emulator()
    with client(emu) as api:
        for body, field in [
            ({"events": ["job.created"]}, "url"),
            ({"url": "ftp://x", "events": ["job.created"]}, "url"),
            ({"url": "https://example.com/h"}, "events"),
            ({"url": "https://example.com/h", "events": ["task.created"]}, "events"),
        ]:
            response = api.post("/webhooks", json=body)
            assert response.status_code == 422
            assert field in response.json()["errors"]
        assert api.post("/jobs", json={"tasks": conversion_tasks(), "webhook_url": "not a url"}).status_code == 422


def test_list_and_delete_webhooks(make_emulator: MakeEmulator, receiver: Receiver) -> None:
    emu = make_emulator()
    with client(emu) as api:
        first = register(api, receiver.url + "/1")
        second = register(api, receiver.url + "/2", ["job.failed"])
        listed = api.get("/users/me/webhooks").json()["data"]
        assert [h["id"] for h in listed] == [second["id"], first["id"]]
        assert listed[0] == second
        assert api.delete(f"/webhooks/{first['id']}").status_code == 204
        assert [h["id"] for h in api.get("/users/me/webhooks").json()["data"]] == [second["id"]]
        assert api.delete(f"/webhooks/{first['id']}").status_code == 404
        wait_job(emu, create_job(api)["id"])
    assert emu.deliveries() == []  # the deleted hook got nothing; the other wants job.failed only
    assert receiver.posts() == []


def test_5xx_is_retried_until_success(make_emulator: MakeEmulator, make_receiver: MakeReceiver) -> None:
    emu = make_emulator()
    flaky = make_receiver(statuses=[500, 500, 200])
    with client(emu) as api:
        hook = register(api, flaky.url, ["job.created"])
        create_job(api)
        posts = flaky.wait_posts(3)
        wait_until(emu.deliveries, what="the delivery to end")
        assert not api.get("/users/me/webhooks").json()["data"][0]["failing"]
    [delivery] = emu.deliveries()
    assert [a["status"] for a in delivery["attempts"]] == [500, 500, 200]
    assert delivery["webhook_id"] == hook["id"]
    assert len(posts) == 3
    assert len({(p.body, p.headers["cloudconvert-signature"]) for p in posts}) == 1  # the same signed body each time


def test_410_disables_the_webhook(make_emulator: MakeEmulator, make_receiver: MakeReceiver) -> None:
    emu = make_emulator()
    gone = make_receiver(statuses=[410])
    with client(emu) as api:
        register(api, gone.url, ["job.created"])
        create_job(api)
        gone.wait_posts(1)
        hook = wait_until(lambda: (h := api.get("/users/me/webhooks").json()["data"][0])["disabled"] and h, what="disabled")
        assert hook["failing"] is True
        wait_job(emu, create_job(api)["id"])
    assert len(emu.deliveries()) == 1
    assert len(gone.posts()) == 1  # one attempt, and nothing for the second job
    assert [a["status"] for a in emu.deliveries()[0]["attempts"]] == [410]


def test_other_4xx_is_final_but_does_not_disable(make_emulator: MakeEmulator, make_receiver: MakeReceiver) -> None:
    emu = make_emulator()
    refusing = make_receiver(statuses=[404])
    with client(emu) as api:
        register(api, refusing.url, ["job.created"])
        create_job(api)
        wait_until(emu.deliveries, what="the delivery to end")
        hook = api.get("/users/me/webhooks").json()["data"][0]
    assert [a["status"] for a in emu.deliveries()[0]["attempts"]] == [404]
    assert (hook["disabled"], hook["failing"]) == (False, True)


def test_unreachable_receiver_gets_four_attempts(make_emulator: MakeEmulator) -> None:
    emu = make_emulator()
    with client(emu) as api:
        register(api, f"http://127.0.0.1:{closed_port()}/hook", ["job.created"])
        create_job(api)
        [delivery] = wait_until(emu.deliveries, what="the delivery to end")
        hook = api.get("/users/me/webhooks").json()["data"][0]
    assert len(delivery["attempts"]) == 4
    assert all(a["status"] is None and a["error"] for a in delivery["attempts"])
    assert (hook["failing"], hook["disabled"]) == (True, False)
    assert httpx.get(f"{emu.base_url}/_emulator/deliveries").json() == [delivery]


# -- the signature vectors recorded in tests/fixtures/cloudconvert/SOURCES.txt ----------------------------


@pytest.mark.parametrize(
    ("fixture", "secret", "signature"),
    [
        (
            "cloudconvert-node/tests/unit/requests/webhook_job_finished_payload.json",
            "secret",
            "576b653f726c85265a389532988f483b5c7d7d5f40cede5f5ddf9c3f02934f35",
        ),
        (
            "cloudconvert-dotnet/CloudConvert.Test/Responses/webhook_job_created_payload.json",
            "9E1I8fQSLM7WsH1Y2Zp0uurYfhLqdERu",
            "88c3103f1d64282bf963af5dd8405ef26348af25b8903e10f0c288c11f0f907b",
        ),
    ],
)
def test_signature_vectors(fixture: str, secret: str, signature: str) -> None:
    body = (FIXTURES / fixture).read_bytes()
    assert sign(body, secret) == signature
    assert sign(body + b" ", secret) != signature


def test_recorded_webhook_bytes_are_reproduced_by_our_encoder() -> None:
    """The real 2021 body (.NET fixture) is exactly what our encoder makes of its JSON, so signatures agree."""
    raw = (FIXTURES / "cloudconvert-dotnet/CloudConvert.Test/Responses/webhook_job_created_payload.json").read_bytes()
    assert encode(json.loads(raw)) == raw.rstrip(b"\n")
