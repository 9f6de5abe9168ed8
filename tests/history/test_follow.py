"""Following an account: webhook deliveries written as they arrive (signed, no extra request), or polling."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import apidriver
from apidriver.emulator import Emulator
from apidriver.replica import open_target
from apidriver.replica.follow import Delivery, Follower
from apidriver.replica.replicator import Replicator

from ..conftest import connect_to
from ..emulator.support import client, create_job, wait_job, wait_until
from .conftest import scalar
from .postgres import free_port

MakeEmulator = Callable[..., Emulator]


class Running:
    """A follower on its own thread, and what it reported."""

    def __init__(self, emulator: Emulator, url: str, webhooks: bool, interval: float, port: int | None, **options: Any) -> None:
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
            **options,
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

    def start(emulator: Emulator, webhooks: bool = True, interval: float = 60.0, port: int | None = None, **options: Any) -> Running:
        follower = Running(emulator, f"sqlite:///{tmp_path / 'replica.sqlite'}", webhooks, interval, port, **options).start()
        running.append(follower)
        return follower

    yield start
    for follower in running:
        if follower.thread.is_alive():
            follower.stop()


def test_each_delivery_is_written_within_a_second_with_one_request(make_emulator: MakeEmulator, follow: Callable[..., Running], tmp_path: Path) -> None:
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
    # Each delivery is a signal: the job is read again (one request), never taken from the payload.
    requests = sorted(r["method"] + " " + r["path"] for r in emu.requests())
    assert requests == sorted(["POST /v2/jobs"] * 3 + [f"GET /v2/jobs/{job}" for job in jobs for _ in range(2)])


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


def signed(running: Running, event: str, job: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """A delivery's body as the API writes it, signed with the follower's webhook secret (a capture, or a replay)."""
    from apidriver.emulator.models import encode
    from apidriver.emulator.webhooks import sign

    body = encode({"event": event, "job": job})
    assert running.follower.secret is not None
    return body, {"CloudConvert-Signature": sign(body, running.follower.secret), "Content-Type": "application/json"}


def job_row(url: str, job: str) -> tuple[Any, ...]:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            row = conn.execute(sa.text('SELECT status, ended_at, tasks, _removed_at, _removed_reason FROM "Jobs" WHERE id = :id'), {"id": job}).one()
            tasks = conn.execute(sa.text('SELECT status FROM "Tasks" WHERE job_id = :id'), {"id": job}).scalars().all()
    finally:
        engine.dispose()
    return (row[0], row[1] is not None, sorted(t["status"] for t in json.loads(row[2])), sorted(tasks), row[3] is not None, row[4])


def test_a_late_or_replayed_delivery_never_rolls_a_row_back(make_emulator: MakeEmulator, follow: Callable[..., Running], tmp_path: Path) -> None:
    """Issue #16: a correctly signed job.created re-sent after the job finished used to put the row back to
    ('processing', NULL), tasks included. A delivery is now a signal: the job is read from the API."""
    emu = make_emulator(jobs=2, seed=1, rate_limit=0, task_seconds=600)  # tasks end when the clock says
    running = follow(emu)
    emu.backend.webhooks[int(running.follower.webhook_id)].disabled = True  # this test delivers by hand, in its own order
    url = f"sqlite:///{tmp_path / 'replica.sqlite'}"
    with client(emu) as api:
        created = create_job(api, tag="replayed")
        job = created["id"]
        body, headers = signed(running, "job.created", created)
        assert httpx.post(running.hook_url, content=body, headers=headers).status_code == 200
        assert job_row(url, job)[0] in ("waiting", "processing")
        emu.advance_clock(1800)
        finished = api.get(f"/jobs/{job}", params={"include": "tasks"}).json()["data"]
    assert finished["status"] == "finished"
    body, headers = signed(running, "job.finished", finished)
    assert httpx.post(running.hook_url, content=body, headers=headers).status_code == 200
    done = ("finished", True, ["finished"] * 3, ["finished"] * 3, False, None)
    assert job_row(url, job) == done
    # The job.created delivery again (late, or replayed by anyone who captured it): answered, and harmless.
    body, headers = signed(running, "job.created", created)
    assert httpx.post(running.hook_url, content=body, headers=headers).status_code == 200
    assert job_row(url, job) == done
    # Once the job is gone from the API, a replay cannot roll it back either: the row is marked gone.
    with client(emu) as api:
        assert api.delete(f"/jobs/{job}").status_code == 204
    assert httpx.post(running.hook_url, content=body, headers=headers).status_code == 200
    assert job_row(url, job) == ("finished", True, ["finished"] * 3, ["finished"] * 3, True, "deleted")


def test_the_last_delivery_of_a_job_deleted_at_once_is_kept(make_emulator: MakeEmulator, follow: Callable[..., Running], tmp_path: Path) -> None:
    """Many apps delete a job as soon as it finished: its job.finished delivery then finds it gone (404),
    and its payload, which shows more progress than the row (it ended), is the job's last state."""
    emu = make_emulator(jobs=2, seed=1, rate_limit=0, task_seconds=600)
    running = follow(emu)
    emu.backend.webhooks[int(running.follower.webhook_id)].disabled = True
    url = f"sqlite:///{tmp_path / 'replica.sqlite'}"
    with client(emu) as api:
        created = create_job(api, tag="short-lived")
        job = created["id"]
        body, headers = signed(running, "job.created", created)
        assert httpx.post(running.hook_url, content=body, headers=headers).status_code == 200
        emu.advance_clock(1800)
        finished = api.get(f"/jobs/{job}", params={"include": "tasks"}).json()["data"]
        assert api.delete(f"/jobs/{job}").status_code == 204
    body, headers = signed(running, "job.finished", finished)
    assert httpx.post(running.hook_url, content=body, headers=headers).status_code == 200
    assert job_row(url, job) == ("finished", True, ["finished"] * 3, ["finished"] * 3, True, "deleted")
    body, headers = signed(running, "job.created", created)  # and a late job.created changes nothing
    assert httpx.post(running.hook_url, content=body, headers=headers).status_code == 200
    assert job_row(url, job) == ("finished", True, ["finished"] * 3, ["finished"] * 3, True, "deleted")


def test_stalled_clients_hold_no_thread_for_long(make_emulator: MakeEmulator, follow: Callable[..., Running], tmp_path: Path) -> None:
    """Issue #16: 150 half-sent requests left 150 threads. Reads time out, and at most a bounded number of
    connections are served at once (the others are answered 503 at once: the API retries)."""
    import socket

    emu = make_emulator(jobs=2, seed=1, rate_limit=0)
    running = follow(emu, read_timeout=1.0, request_deadline=3.0, max_connections=8)
    host, port = running.follower.address  # type: ignore[misc]
    before = threading.active_count()
    stalled = []
    for _ in range(150):
        sock = socket.create_connection((host, port))
        sock.sendall(b"POST /cloudconvert HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")  # and nothing more
        stalled.append(sock)
    try:
        time.sleep(0.3)
        assert threading.active_count() - before <= 8 + 8  # the served ones (and their deadline timers)
        wait_until(lambda: threading.active_count() <= before, timeout=10, interval=0.1, what="the stalled connections' threads to end")
        # Each stalled client was answered (503, busy) or cut off (its read timed out): none is left open.
        for sock in stalled:
            sock.settimeout(5)
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
            assert data == b"" or data.startswith(b"HTTP/1.0 503") or b" 408 " in data.split(b"\r\n")[0], data[:80]
        # And a real delivery goes through afterwards.
        with client(emu) as api:
            job = create_job(api, tag="after-the-stall")["id"]
        url = f"sqlite:///{tmp_path / 'replica.sqlite'}"
        wait_until(lambda: scalar(url, f"""SELECT status FROM "Jobs" WHERE id = '{job}'""") == "finished", timeout=10, what="the delivery")
    finally:
        for sock in stalled:
            sock.close()
