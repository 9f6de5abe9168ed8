"""The asyncio dialects: AsyncEngine and AsyncSession, streaming, writes, and many tasks at
once without blocking the event loop (on SQLAlchemy 1.4 and 2.x)."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest
from sqlalchemy import Column, DateTime, String, delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import declarative_base

import apidriver
from apidriver.emulator import Emulator

from ..conftest import raw_list
from .conftest import url_for
from .models import Job, Task, Webhook

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def async_url(emulator: Emulator, scheme: str = "cloudconvert", **properties: Any) -> str:
    return url_for(emulator, scheme, **properties).replace(f"{scheme}:", f"{scheme}+async:", 1)


def test_session_scalars_where_gives_the_apis_rows(shared_emulator: Emulator) -> None:
    async def main() -> tuple[set[str], Any]:
        engine = create_async_engine(async_url(shared_emulator))
        try:
            async with AsyncSession(engine) as session:
                jobs = (await session.scalars(select(Job).where(Job.status == "error"))).all()
                newest = await session.scalar(select(func.max(Job.created_at)))
                return {j.id for j in jobs}, (jobs[0].created_at.tzinfo, newest.tzinfo)
        finally:
            await engine.dispose()

    ids, zones = run(main())
    expected = {j["id"] for j in raw_list(shared_emulator, "/jobs") if j["status"] == "error"}
    assert expected and ids == expected
    assert all(str(z) == "UTC" for z in zones)


def test_both_url_forms_and_the_key_stays_hidden(shared_emulator: Emulator) -> None:
    async def count(url: str) -> tuple[int, str]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                return (await conn.execute(text("SELECT count(*) FROM Jobs"))).scalar_one(), repr(engine.sync_engine) + str(engine.url)
        finally:
            await engine.dispose()

    for url in (async_url(shared_emulator), async_url(shared_emulator, "api")):
        n, shown = run(count(url))
        assert n == 60
        assert shared_emulator.api_key not in shown and "***" in shown


def test_stream_fetches_batches_on_demand(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(jobs=250, seed=2)

    async def main() -> tuple[int, int, list[str]]:
        engine = create_async_engine(async_url(emu, PageSize=50, MaxConcurrency=1))
        try:
            async with engine.connect() as conn:
                result = await conn.stream(text("SELECT id FROM Jobs"))
                first = await result.fetchmany(10)
                emu_requests = len(emu.requests())
                rest = [row.id async for row in result]
                async with AsyncSession(engine) as session:
                    streamed = [t.id async for t in await session.stream_scalars(select(Task).where(Task.operation == "convert"))]
            return len(first) + len(rest), emu_requests, streamed
        finally:
            await engine.dispose()

    emu.clear_requests()
    total, requests_after_first_batch, streamed = run(main())
    assert total == 250
    assert requests_after_first_batch < 5  # 5 pages of 50: the rest were fetched as rows were read
    assert sorted(streamed) == sorted(t["id"] for t in raw_list(emu, "/tasks") if t["operation"] == "convert")


Base = declarative_base()


class Hook(Base):  # type: ignore[valid-type,misc]
    __tablename__ = "Webhooks"
    __mapper_args__ = {"eager_defaults": True}
    id = Column(String, primary_key=True, server_default=text("NULL"))
    url = Column(String, nullable=False)
    events = Column(Webhook.__table__.c.events.type)
    signing_secret = Column(String, server_default=text("NULL"))
    created_at = Column(DateTime, server_default=text("NULL"))


def test_writes_through_an_async_session(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(jobs=3, seed=5)

    async def main() -> tuple[str, str | None, int]:
        engine = create_async_engine(async_url(emu))
        try:
            async with AsyncSession(engine, expire_on_commit=False) as session:
                hook = Hook(url="https://example.com/async-hook", events=["job.failed"])
                session.add(hook)
                await session.commit()
                job_id = (await session.scalars(select(Job.id).limit(1))).one()
                result = await session.execute(delete(Job).where(Job.id == job_id))
                await session.commit()
            return hook.id, hook.signing_secret, result.rowcount
        finally:
            await engine.dispose()

    hook_id, secret, deleted = run(main())
    (made,) = [w for w in raw_list(emu, "/users/me/webhooks") if w["url"] == "https://example.com/async-hook"]
    assert hook_id == str(made["id"]) and secret == made["signing_secret"]
    assert deleted == 1 and len(raw_list(emu, "/jobs")) == 2


def test_concurrent_statements_overlap_and_never_block_the_loop(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(jobs=20, seed=4, latency_ms=400)
    statuses = ["error", "finished", "waiting", "processing"] * 2

    async def main() -> tuple[float, float, list[int]]:
        engine = create_async_engine(async_url(emu), pool_size=len(statuses))
        gaps: list[float] = []
        running = True

        async def heartbeat() -> None:
            last = time.perf_counter()
            while running:
                await asyncio.sleep(0.01)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        async def count(status: str) -> int:
            async with AsyncSession(engine) as session:
                return len((await session.scalars(select(Job).where(Job.status == status))).all())

        try:
            async with engine.connect() as conn:  # the first connection, outside the timing
                await conn.execute(text("SELECT 1"))
            beat = asyncio.create_task(heartbeat())
            started = time.perf_counter()
            counts = await asyncio.gather(*(count(s) for s in statuses))
            elapsed = time.perf_counter() - started
            running = False
            await beat
            return elapsed, max(gaps), counts
        finally:
            await engine.dispose()

    elapsed, worst_gap, counts = run(main())
    jobs = raw_list(emu, "/jobs")
    assert counts == [sum(1 for j in jobs if j["status"] == s) for s in statuses]
    assert elapsed < 0.4 * len(statuses) * 0.75  # one at a time takes 8 x 400 ms; overlapped ~0.4 s (slack for a loaded machine)
    assert worst_gap < 0.3  # the loop kept running: a blocked loop would stall for a whole 400 ms request


def test_a_wrong_key_is_a_dbapi_error_with_the_key_hidden(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator()
    from sqlalchemy.exc import DBAPIError

    async def main() -> None:
        engine = create_async_engine(async_url(emu, key="sk-async-wrong-77"))
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT id FROM Jobs"))
        finally:
            await engine.dispose()

    with pytest.raises(DBAPIError) as failed:
        run(main())
    assert isinstance(failed.value.orig, apidriver.AuthenticationError)
    assert "sk-async-wrong-77" not in str(failed.value)


def test_ping_and_raw_connection(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator()

    async def main() -> tuple[bool, Any]:
        engine = create_async_engine(async_url(emu), pool_pre_ping=True)
        try:
            async with engine.connect() as conn:
                raw = await conn.get_raw_connection()
                alive = await conn.run_sync(lambda sync: sync.dialect.do_ping(raw.dbapi_connection))
                return alive, raw.driver_connection
        finally:
            await engine.dispose()

    alive, driver = run(main())
    assert alive is True and isinstance(driver, apidriver.Connection) and driver.closed


def test_opening_connections_never_runs_on_the_event_loops_thread(
    shared_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """apidriver.connect() and the start of each connection's thread happen on the opener thread, for
    a cold pool and for the default pool's overflow in bursts: the loop only waits (issue #19: a
    cold pool of 50 lagged the loop ~230 ms when it started 50 threads itself)."""
    starts: list[tuple[int, str]] = []  # (thread that called start(), name of the thread started)
    connects: list[int] = []
    start, connect = threading.Thread.start, apidriver.connect

    def recording_start(self: threading.Thread) -> None:
        starts.append((threading.get_ident(), self.name))
        start(self)

    def recording_connect(*args: Any, **kwargs: Any) -> Any:
        connects.append(threading.get_ident())
        return connect(*args, **kwargs)

    monkeypatch.setattr(threading.Thread, "start", recording_start)
    monkeypatch.setattr(apidriver, "connect", recording_connect)

    async def one(engine: Any) -> None:
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1

    async def main() -> int:
        cold = create_async_engine(async_url(shared_emulator), pool_size=12, max_overflow=0)
        default = create_async_engine(async_url(shared_emulator))  # 5 kept + 10 overflow
        starts.clear()  # creating an engine may start the process's one opener thread
        try:
            await asyncio.gather(*(one(cold) for _ in range(12)))
            for _ in range(2):
                await asyncio.gather(*(one(default) for _ in range(15)))
        finally:
            await cold.dispose()
            await default.dispose()
        return threading.get_ident()

    loop_thread = run(main())
    workers = [name for _, name in starts if name.startswith("apidriver-async_")]
    assert len(connects) >= 12 + 15 and len(workers) == len(connects)  # each connection started its thread
    assert loop_thread not in connects
    assert [name for caller, name in starts if caller == loop_thread] == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_opens_connections_too(shared_emulator: Emulator) -> None:
    """The opener thread is the process's: a child forked after the parent opened connections
    (prefork servers, Celery) gets its own instead of waiting for ever on the parent's."""

    async def count() -> int:
        engine = create_async_engine(async_url(shared_emulator))
        try:
            async with engine.connect() as conn:
                return int((await conn.execute(text("SELECT count(*) FROM Jobs"))).scalar_one())
        finally:
            await engine.dispose()

    assert run(count()) == 60
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only if it could count the jobs within 20 s
        try:
            os._exit(0 if run(asyncio.wait_for(count(), 20)) == 60 else 1)
        finally:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_connect_cancelled_meanwhile_is_closed_or_never_made(shared_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """A task cancelled while its connection is being opened leaves nothing open: a connect still queued
    for the opener never runs, and one already running is closed once made."""
    from apidriver.sqlalchemy.async_dbapi import Opener

    opened: list[Any] = []
    running, release = threading.Event(), threading.Event()
    connect = apidriver.connect

    def slow_connect(*args: Any, **kwargs: Any) -> Any:
        running.set()
        release.wait(20)
        opened.append(connect(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(apidriver, "connect", slow_connect)

    async def main() -> None:
        engine = create_async_engine(async_url(shared_emulator))
        first = asyncio.create_task(engine.connect().__aenter__())  # runs on the opener, then waits
        while not running.is_set():
            await asyncio.sleep(0.01)
        second = asyncio.create_task(engine.connect().__aenter__())  # queued behind it
        await asyncio.sleep(0.05)
        for task in (first, second):
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        release.set()
        await asyncio.wrap_future(Opener.shared().submit(lambda: None))  # the opener is done with both
        await engine.dispose()

    run(main())
    assert len(opened) == 1 and opened[0].closed
