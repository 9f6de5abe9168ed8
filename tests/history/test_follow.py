"""Following an account: webhook deliveries written as they arrive (signed, no extra request), or polling."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

import apidriver
from apidriver.emulator import Emulator
from apidriver.replica import open_target
from apidriver.replica.sync import Replicator
from apidriver.replica.follow import Delivery, Follower

from ..conftest import connect_to
from ..emulator.support import client, create_job, wait_job, wait_until
from .conftest import scalar
from .postgres import free_port

MakeEmulator = Callable[..., Emulator]


class Running:
    """A follower on its own thread, and what it reported."""

    def __init__(self, emulator: Emulator, url: str, webhooks: bool, interval: float, port: int | None) -> None:
        self.connection = connect_to(emulator)
        self.target = open_target(self.connection, url)
        self.deliveries: list[Delivery] = []
        self.syncs = 0
        self.port = port = port or free_port()
        self.hook_url = f"http://127.0.0.1:{port}/cloudconvert"
        self.follower = Follower(
            self.connection,
            Replicator(self.connection, self.target),
            interval=interval,
            listen=f"127.0.0.1:{port}" if webhooks else None,
            public_url=self.hook_url if webhooks else None,
            on_sync=lambda report: self._synced(),
            on_delivery=self.deliveries.append,
        )
        self.thread = threading.Thread(target=self.follower.run, daemon=True)

    def _synced(self) -> None:
        self.syncs += 1

    def start(self) -> Running:
        self.thread.start()
        wait_until(lambda: self.syncs >= 1, timeout=20, what="the first sync")
        return self

    def stop(self) -> None:
        self.follower.stop()
        self.thread.join(20)
        assert not self.thread.is_alive()
        self.target.close()
        self.connection.close()


@pytest.fixture
def follow(tmp_path: Path) -> Iterator[Callable[..., Running]]:
    running: list[Running] = []

    def start(emulator: Emulator, webhooks: bool = True, interval: float = 60.0, port: int | None = None) -> Running:
        follower = Running(emulator, f"sqlite:///{tmp_path / 'replica.sqlite'}", webhooks, interval, port).start()
        running.append(follower)
        return follower

    yield start
    for follower in running:
        if follower.thread.is_alive():
            follower.stop()


def test_each_delivery_is_written_within_a_second_without_a_request(make_emulator: MakeEmulator, follow: Callable[..., Running], tmp_path: Path) -> None:
    emu = make_emulator(jobs=6, seed=1, rate_limit=0)
    running = follow(emu)
    hooks = [h for h in emu.backend.webhooks.values() if h.url == running.hook_url]
    assert [h.events for h in hooks] == [["job.created", "job.finished", "job.failed"]]
    emu.clear_requests()
    with client(emu) as api:
        jobs = [create_job(api, tag=f"hooked-{i}")["id"] for i in range(3)]
    wait_until(lambda: sum(d.event == "job.finished" for d in running.deliveries) == 3, timeout=10, what="three job.finished deliveries")
    url = f"sqlite:///{tmp_path / 'replica.sqlite'}"
    for delivery in running.deliveries:
        assert delivery.status == 200 and delivery.written is not None
        assert delivery.written - delivery.received < 1.0
    for job in jobs:
        assert scalar(url, f"""SELECT status FROM "Jobs" WHERE id = '{job}'""") == "finished"
        assert scalar(url, f"""SELECT count(*) FROM "Tasks" WHERE job_id = '{job}' AND status = 'finished'""") == 3
    assert scalar(url, """SELECT count(*) FROM "TaskFiles" WHERE job_id IN (SELECT id FROM "Jobs" WHERE tag LIKE 'hooked-%')""") > 0
    assert [r["method"] + " " + r["path"] for r in emu.requests()] == ["POST /v2/jobs"] * 3  # the deliveries carried everything


def test_a_delivery_without_the_right_signature_is_refused(make_emulator: MakeEmulator, follow: Callable[..., Running], tmp_path: Path) -> None:
    emu = make_emulator(jobs=2, seed=1, rate_limit=0)
    running = follow(emu)
    forged = b'{"event":"job.finished","job":{"id":"forged","status":"finished","tasks":[]}}'
    response = httpx.post(running.hook_url, content=forged, headers={"CloudConvert-Signature": "0" * 64})
    assert response.status_code == 401
    assert scalar(f"sqlite:///{tmp_path / 'replica.sqlite'}", """SELECT count(*) FROM "Jobs" WHERE id = 'forged'""") == 0


def test_the_webhook_goes_when_the_follower_stops(make_emulator: MakeEmulator, follow: Callable[..., Running]) -> None:
    emu = make_emulator(jobs=2, seed=1, rate_limit=0)
    running = follow(emu)
    with client(emu) as api:  # a webhook a killed follower left at the same URL
        stale = api.post("/webhooks", json={"url": running.hook_url, "events": ["job.failed"]}).json()["data"]["id"]
    running.stop()
    second = follow(emu, port=running.port)
    mine = [h for h in emu.backend.webhooks.values() if h.url == second.hook_url]
    assert len(mine) == 1 and mine[0].id != stale
    second.stop()
    assert [h for h in emu.backend.webhooks.values() if "127.0.0.1" in h.url] == []


def test_polling_keeps_the_replica_within_an_interval(make_emulator: MakeEmulator, follow: Callable[..., Running], tmp_path: Path) -> None:
    emu = make_emulator(jobs=4, seed=1, rate_limit=0)
    running = follow(emu, webhooks=False, interval=0.3)
    with client(emu) as api:
        job = create_job(api, tag="polled")["id"]
    wait_job(emu, job)
    url = f"sqlite:///{tmp_path / 'replica.sqlite'}"
    started = time.monotonic()
    wait_until(lambda: scalar(url, f"""SELECT status FROM "Jobs" WHERE id = '{job}'""") == "finished", timeout=10, interval=0.05, what="the finished job in the replica")
    assert time.monotonic() - started < 0.3 + 2.0  # one interval, and one sync (a few requests: well under 2 s)
    wait_until(lambda: running.syncs >= 2, timeout=5, what="a second sync")
    assert emu.backend.webhooks and all("127.0.0.1" not in h.url for h in emu.backend.webhooks.values())  # no webhook: polling


def test_webhooks_need_both_addresses(history_emulator: Emulator, tmp_path: Path) -> None:
    conn = connect_to(history_emulator)
    target = open_target(conn, f"sqlite:///{tmp_path / 'r.sqlite'}")
    try:
        with pytest.raises(apidriver.ProgrammingError, match="--public-url"):
            Follower(conn, Replicator(conn, target), listen="127.0.0.1:0")
        with pytest.raises(apidriver.ProgrammingError, match="HOST:PORT"):
            Follower(conn, Replicator(conn, target), listen="here:there", public_url="http://x")
    finally:
        target.close()
        conn.close()
