"""The emulator where issue #11 made it more faithful: the recorded rate-limit
labels by default, the sync host's weak ETags, compact error bodies, and the
per-job webhook secret available to receivers in other processes."""

from __future__ import annotations

import hashlib
import hmac
import subprocess
import sys
import threading
from collections.abc import Callable

import httpx

from apidriver.emulator import Emulator
from apidriver.emulator.api import weak_etag

from .support import FIXTURES, Receiver, client, conversion_tasks, wait_until
from .vcr import read_cassette

MakeEmulator = Callable[..., Emulator]


def test_rate_limit_is_500_a_minute_by_default_counted_per_method(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(jobs=2)
    with client(emu) as api, client(emu, sync=True) as sync:
        listed = [api.get("/jobs") for _ in range(3)]
        assert [r.headers["x-ratelimit-limit"] for r in listed] == ["500"] * 3
        assert [r.headers["x-ratelimit-remaining"] for r in listed] == ["499", "498", "497"]
        created = api.post("/jobs", json={"tasks": conversion_tasks()})
        assert created.headers["x-ratelimit-remaining"] == "499"  # POSTs count on their own, as recorded
        deleted = api.delete(f"/jobs/{created.json()['data']['id']}")
        assert deleted.status_code == 204 and deleted.headers["x-ratelimit-remaining"] == "499"
        missing = api.get("/jobs/nope")
        assert missing.status_code == 404 and missing.headers["x-ratelimit-remaining"] == "496"
        assert "x-ratelimit-limit" not in api.get("/users/me").headers
        assert "x-ratelimit-limit" not in sync.get(f"/jobs/{listed[0].json()['data'][0]['id']}").headers


def test_rate_limit_zero_turns_it_off(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(rate_limit=0)
    with client(emu) as api:
        for _ in range(3):
            response = api.get("/jobs")
            assert response.status_code == 200 and "x-ratelimit-limit" not in response.headers


def test_rate_limit_window_is_per_method(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(rate_limit=2, rate_window=60)
    with client(emu) as api:
        assert [api.get("/jobs").status_code for _ in range(3)] == [200, 200, 429]
        limited = api.get("/jobs")
        assert limited.content == b'{"message":"Too Many Attempts.","code":"TOO_MANY_REQUESTS"}'
        assert 55 <= int(limited.headers["retry-after"]) <= 60
        assert api.post("/jobs", json={"tasks": conversion_tasks()}).status_code == 201  # another method, another count


def test_sync_host_sends_the_recorded_weak_etag(make_emulator: MakeEmulator) -> None:
    emu = make_emulator(jobs=3)
    with client(emu) as api, client(emu, sync=True) as sync:
        job_id = api.get("/jobs").json()["data"][0]["id"]
        answer = sync.get(f"/jobs/{job_id}")
        assert answer.headers["etag"] == weak_etag(answer.content)
        assert answer.headers["etag"].startswith('W/"')
        assert "etag" not in api.get(f"/jobs/{job_id}").headers  # the main host sends none


def test_weak_etag_reproduces_every_recorded_one() -> None:
    checked = 0
    for path in sorted(FIXTURES.rglob("*.yml")):
        for it in read_cassette(path):
            tags = [v[0] for k, v in it.response.headers.items() if k.lower() == "etag"]
            if tags and "sync." in it.uri:
                assert weak_etag(it.response.body) == tags[0], it.uri
                checked += 1
    assert checked >= 5


def test_error_bodies_are_compact_json_like_every_other_body(make_emulator: MakeEmulator) -> None:
    emu = make_emulator()
    emu.add_fault("500", path="/v2/jobs", count=1)
    emu.add_fault("429", path="/v2/jobs", count=1, retry_after=3)
    emu.add_fault("500", path="/sync/v2/jobs", count=1)
    with client(emu) as api, client(emu, sync=True) as sync:
        server_error = api.get("/jobs")
        assert server_error.content == b'{"message":"Server Error","code":"INTERNAL_SERVER_ERROR"}'
        assert server_error.headers["content-type"] == "application/json"
        limited = api.get("/jobs")
        assert limited.content == b'{"message":"Too Many Attempts.","code":"TOO_MANY_REQUESTS"}'
        assert limited.headers["retry-after"] == "3"
        sync_error = sync.get("/jobs/x")
        assert sync_error.status_code == 500 and sync_error.headers["content-type"] == "application/json; charset=utf-8"


def verified(body: bytes, signature: str, secret: str) -> bool:
    return hmac.compare_digest(hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(), signature)


def test_job_webhook_secret_is_served_and_signs_deliveries(make_emulator: MakeEmulator, receiver: Receiver) -> None:
    emu = make_emulator(job_webhook_secret="given-secret")
    secret = httpx.get(f"{emu.base_url}/_emulator/secrets").json()["job_webhook_secret"]
    assert secret == emu.job_webhook_secret == "given-secret"
    with client(emu) as api:
        api.post("/jobs", json={"tasks": conversion_tasks(), "webhook_url": receiver.url + "/done"})
    [delivery] = receiver.wait_posts(1, "/done")
    assert verified(delivery.body, delivery.headers["cloudconvert-signature"], secret)


def test_command_prints_the_webhook_secret_and_labels_by_default() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "apidriver.emulator", "--port", "0", "--jobs", "1"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        name, _, secret = process.stdout.readline().strip().partition("=")
        assert name == "job_webhook_secret" and len(secret) >= 16
        assert httpx.get(f"{url}/_emulator/secrets").json() == {"job_webhook_secret": secret}
        jobs = httpx.get(f"{url}/v2/jobs", headers={"Authorization": "Bearer emulator-key"})
        assert jobs.headers["x-ratelimit-limit"] == "500"
    finally:
        process.kill()
        process.wait()


def test_stalled_requests_are_visible_while_they_wait(make_emulator: MakeEmulator) -> None:
    emu = make_emulator()
    emu.add_fault("stall", path="/v2/jobs", count=1, stall_seconds=0.5)
    answers: list[int] = []
    with client(emu) as api:
        waiting = threading.Thread(target=lambda: answers.append(api.get("/jobs").status_code))
        waiting.start()
        [pending] = wait_until(emu.pending_requests, timeout=3, what="the stalled request")
        assert (pending["path"], pending["fault"], pending["status"]) == ("/v2/jobs", "stall", None)
        assert emu.requests() == []  # logged once answered
        waiting.join(5)
    assert answers == [200] and emu.pending_requests() == []
    assert [r["path"] for r in emu.requests()] == ["/v2/jobs"]


def test_the_log_keeps_the_path_as_sent(make_emulator: MakeEmulator) -> None:
    emu = make_emulator()
    with client(emu) as api:
        assert api.get("/jobs/..%2Fusers%2Fme").status_code == 404
    [entry] = emu.requests()
    assert (entry["raw_path"], entry["path"]) == ("/v2/jobs/..%2Fusers%2Fme", "/v2/jobs/../users/me")
