"""The emulator's reset (Emulator.reset, POST /_emulator/reset), on which the pytest plugin's one
server per session rests: after it the account, log, faults, rate limit and clock are a new
emulator's, and the URL, keys and job webhook secret are the same."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import httpx

from apidriver.emulator import Emulator

from ..conftest import CONVERSION_TASKS, raw_list


def ids(emulator: Emulator) -> list[str]:
    return [j["id"] for j in raw_list(emulator, "/jobs")]


def test_reset_gives_what_a_new_emulator_has(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(jobs=10, seed=4, credits=100, rate_limit=5, scoped_keys={"reader": ["task.read"]})
    key = {"Authorization": f"Bearer {emu.api_key}"}
    url, secret = emu.base_url, emu.job_webhook_secret
    with httpx.Client(base_url=emu.api_url, headers=key) as api:
        api.post("/jobs", json={"tasks": CONVERSION_TASKS})
        api.post("/webhooks", json={"url": "https://hooks.example.com/x", "events": ["job.finished"]})
        while api.get("/jobs").status_code != 429:  # the GET window of the rate limit is used up
            pass
    emu.add_fault("503", path="/v2/tasks", count=3)
    emu.advance_clock(3 * 86400)

    emu.reset(jobs=6, seed=2)

    with Emulator(jobs=6, seed=2) as fresh:
        assert ids(emu) == ids(fresh)  # the same seeded account
    assert emu.base_url == url and emu.job_webhook_secret == secret
    assert [r["path"] for r in emu.requests()] == ["/v2/jobs"]  # only what ids() just asked: the log was empty
    with httpx.Client(base_url=emu.api_url, headers=key) as api:
        assert api.get("/tasks").status_code == 200  # no fault left
        assert api.get("/users/me").json()["data"]["credits"] == 100
        webhooks = api.get("/users/me/webhooks").json()["data"]
        assert all(w["url"] != "https://hooks.example.com/x" for w in webhooks)
    reader = httpx.get(emu.api_url + "/jobs", headers={"Authorization": "Bearer reader"})
    assert reader.status_code == 200  # the scoped key is still there
    assert abs(emu.clock() - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(minutes=5)


def test_reset_over_http_and_its_refusals(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(jobs=3)
    answer = httpx.post(emu.base_url + "/_emulator/reset", json={"jobs": 4, "seed": 9})
    assert answer.status_code == 200 and answer.json()["jobs"] == 4
    assert len(ids(emu)) == 4
    assert httpx.post(emu.base_url + "/_emulator/reset").status_code == 200  # no body: an empty account
    assert ids(emu) == []
    assert httpx.post(emu.base_url + "/_emulator/reset", json={"jobs": -1}).status_code == 400
    assert httpx.post(emu.base_url + "/_emulator/reset", json=["x"]).status_code == 400


def test_reset_keeps_the_history_setting(make_emulator: Callable[..., Emulator]) -> None:
    """An emulator started with keep_history keeps history after a reset too (it answered 409 there)."""
    emu = make_emulator(jobs=2, keep_history=True)
    emu.reset(jobs=2, seed=1)
    job = ids(emu)[0]
    key = {"Authorization": f"Bearer {emu.api_key}"}
    assert httpx.delete(f"{emu.api_url}/jobs/{job}", headers=key).status_code == 204
    answer = httpx.get(emu.base_url + "/_emulator/history")
    assert answer.status_code == 200, answer.text
    assert job in answer.text
