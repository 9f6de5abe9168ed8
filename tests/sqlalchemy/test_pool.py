"""Connection pooling: reuse, pre-ping, invalidation of closed connections, and threads
each with their own session."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import create_engine, exc, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, selectinload, sessionmaker
from sqlalchemy.pool import QueuePool

from apidriver.emulator import Emulator

from ..conftest import raw_list
from .conftest import url_for
from .models import Job, Task


def dbapi_of(conn: Any) -> Any:
    return conn.connection.dbapi_connection


def test_connections_are_reused(shared_emulator: Emulator) -> None:
    engine = create_engine(url_for(shared_emulator))
    assert isinstance(engine.pool, QueuePool)
    with engine.connect() as conn:
        first = dbapi_of(conn)
        conn.execute(text("SELECT count(*) FROM Jobs")).scalar_one()
    with engine.connect() as conn:
        assert dbapi_of(conn) is first
        with engine.connect() as other:  # a second checkout at the same time gets its own
            assert dbapi_of(other) is not first
    engine.dispose()
    assert first.closed


def test_pre_ping_replaces_a_closed_connection(shared_emulator: Emulator) -> None:
    engine = create_engine(url_for(shared_emulator), pool_pre_ping=True)
    with engine.connect() as conn:
        stale = dbapi_of(conn)
    stale.close()
    with engine.connect() as conn:
        assert dbapi_of(conn) is not stale
        assert conn.execute(text("SELECT count(*) FROM Jobs")).scalar_one() == 60
    engine.dispose()


def test_a_closed_connection_is_invalidated_without_pre_ping(shared_emulator: Emulator) -> None:
    engine = create_engine(url_for(shared_emulator))
    with engine.connect() as conn:
        stale = dbapi_of(conn)
    stale.close()
    with pytest.raises(exc.InterfaceError) as failed:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    assert failed.value.connection_invalidated
    with engine.connect() as conn:  # the pool replaced it
        assert dbapi_of(conn) is not stale and conn.execute(text("SELECT 1")).scalar_one() == 1
    engine.dispose()


def test_isolation_levels(shared_emulator: Emulator) -> None:
    engine = create_engine(url_for(shared_emulator))
    with engine.connect() as conn:
        assert conn.get_isolation_level() == "SERIALIZABLE"
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    with autocommit.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM Jobs")).scalar_one() == 60
    engine.dispose()


STATUSES = ["error", "waiting", "error", "waiting", "finished"]


def test_threads_with_their_own_sessions(shared_emulator: Emulator) -> None:
    engine = create_engine(url_for(shared_emulator), pool_size=3, max_overflow=2)
    factory = sessionmaker(bind=engine)
    jobs = raw_list(shared_emulator, "/jobs")
    tasks = raw_list(shared_emulator, "/tasks")
    held: list[Any] = []
    lock = threading.Lock()
    together = threading.Barrier(5, timeout=10)  # the first five hold their connections at once

    def work(i: int) -> tuple[int, int]:
        status = STATUSES[i % len(STATUSES)]
        with factory() as session:
            if i < 5:
                with lock:
                    held.append(session.connection().connection.dbapi_connection)
                together.wait()
            found = session.scalars(select(Job).where(Job.status == status).options(selectinload(Job.tasks))).all()
            n_tasks = sum(len(job.tasks) for job in found)
            return len(found), n_tasks

    with ThreadPoolExecutor(max_workers=5) as pool:
        results = list(pool.map(work, range(10)))
    for i, (n_jobs, n_tasks) in enumerate(results):
        status = STATUSES[i % len(STATUSES)]
        ids = {j["id"] for j in jobs if j["status"] == status}
        assert n_jobs == len(ids)
        assert n_tasks == sum(1 for t in tasks if t["job_id"] in ids)
    assert len({id(c) for c in held}) == 5  # pool_size + max_overflow, all in use at once
    engine.dispose()


def test_session_rollback_and_close_cost_no_requests(engine: Engine, shared_emulator: Emulator) -> None:
    with Session(engine) as session:
        session.scalars(select(Task.id).limit(1)).all()
        shared_emulator.clear_requests()
        session.rollback()
        session.commit()
    assert shared_emulator.requests() == []
