"""ORM and Core writes: objects get what the API assigned; deletes send one DELETE."""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Callable, Iterator

import httpx
import pytest
from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    FetchedValue,
    MetaData,
    String,
    Table,
    create_engine,
    delete,
    insert,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.automap import automap_base
from sqlalchemy.orm import Session, declarative_base

from apidriver.emulator import Emulator

from ..conftest import raw_list
from .conftest import url_for

TASKS = {
    "import": {"operation": "import/url", "url": "https://example.com/report.docx"},
    "convert": {"operation": "convert", "input": "import", "output_format": "pdf"},
    "export": {"operation": "export/url", "input": "convert"},
}


Base = declarative_base()  # the style SQLAlchemy 1.4 and 2.x share: these tests run on both


class Jobs(Base):  # type: ignore[valid-type,misc]
    """As a user would write it: nothing says the API assigns the id."""

    __tablename__ = "Jobs"
    id = Column(String, primary_key=True)
    tag = Column(String)
    status = Column(String)
    created_at = Column(DateTime)
    tasks = Column(JSON)


class Webhooks(Base):  # type: ignore[valid-type,misc]
    """With the API-assigned columns marked, as docs/sqlalchemy.md recommends."""

    __tablename__ = "Webhooks"
    __mapper_args__ = {"eager_defaults": True}  # 2.x's default ("auto"); 1.4 needs it said
    id = Column(String, primary_key=True, server_default=FetchedValue())
    url = Column(String, nullable=False)
    events = Column(JSON)
    signing_secret = Column(String, server_default=FetchedValue())
    created_at = Column(DateTime, server_default=FetchedValue())


class EagerDefaults:
    """Server-made values come back with RETURNING (the default on 2.x; 1.4 needs it said)."""

    __mapper_args__ = {"eager_defaults": True}


@pytest.fixture
def emu(make_emulator: Callable[..., Emulator]) -> Emulator:
    return make_emulator(jobs=5, seed=6)


@pytest.fixture
def engine(emu: Emulator) -> Iterator[Engine]:
    eng = create_engine(url_for(emu))
    yield eng
    eng.dispose()


def calls(emu: Emulator) -> list[tuple[str, str]]:
    return [(r["method"], r["path"]) for r in emu.requests()]


def test_add_a_webhook(emu: Emulator, engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as session:
        hook = Webhooks(url="https://example.com/orm-hook", events=["job.failed"])
        session.add(hook)
        emu.clear_requests()
        session.commit()
        assert calls(emu) == [("POST", "/v2/webhooks")]  # RETURNING brought everything back
    (raw,) = [w for w in raw_list(emu, "/users/me/webhooks") if w["url"] == "https://example.com/orm-hook"]
    assert hook.id == str(raw["id"]) and hook.signing_secret == raw["signing_secret"]
    assert hook.created_at is not None and hook.created_at.isoformat() == raw["created_at"]


def test_add_a_job_without_marking_the_key(emu: Emulator, engine: Engine) -> None:
    with Session(engine) as session:
        job = Jobs(tag="orm-job", tasks=TASKS)
        session.add(job)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SQLAlchemy warns that nothing says the key is server-made
            session.commit()
        job_id = job.id  # expired by the commit: read back from the API
        assert job.status in ("waiting", "processing", "finished")
        assert job.created_at is not None and job.created_at.tzinfo is not None
        assert sorted(t["name"] for t in job.tasks) == ["convert", "export", "import"]
    assert httpx.get(f"{emu.api_url}/jobs/{job_id}", headers={"Authorization": f"Bearer {emu.api_key}"}).status_code == 200


def test_delete_sends_one_delete(emu: Emulator, engine: Engine) -> None:
    with Session(engine) as session:
        hook = session.scalars(select(Webhooks).where(Webhooks.url == "https://hooks.example.invalid/cloudconvert")).one()
        emu.clear_requests()
        session.delete(hook)
        session.commit()
        assert calls(emu) == [("DELETE", f"/v2/webhooks/{hook.id}")]
        job = session.scalars(select(Jobs).limit(1)).one()
        emu.clear_requests()
        session.delete(job)
        session.commit()
        assert calls(emu) == [("DELETE", f"/v2/jobs/{job.id}")]
    assert not [j for j in raw_list(emu, "/jobs") if j["id"] == job.id]


def test_reflected_tables_know_what_the_api_assigns(emu: Emulator, engine: Engine) -> None:
    auto = automap_base(cls=EagerDefaults)
    auto.prepare(autoload_with=engine, reflection_options={"only": ["Jobs", "Tasks", "Webhooks"]})
    Hook = auto.classes.Webhooks
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "primary key has no default" warning: the id is server-made
        with Session(engine, expire_on_commit=False) as session:
            hook = Hook(url="https://example.com/automap", events=["job.created"])
            session.add(hook)
            emu.clear_requests()
            session.commit()
    assert calls(emu) == [("POST", "/v2/webhooks")]
    assert hook.id and hook.signing_secret and isinstance(hook.created_at, dt.datetime)


def test_core_insert_returning_and_delete(emu: Emulator, engine: Engine) -> None:
    jobs = Table("Jobs", MetaData(), autoload_with=engine)
    with engine.begin() as conn:
        row = conn.execute(insert(jobs).values(tag="core", tasks=TASKS).returning(jobs.c.id, jobs.c.status)).one()
        assert row.status == "waiting"
        result = conn.execute(delete(jobs).where(jobs.c.id == row.id))
        assert result.rowcount == 1
    assert not [j for j in raw_list(emu, "/jobs") if j["id"] == row.id]


def test_what_the_api_cannot_do_fails_cleanly(engine: Engine) -> None:
    with Session(engine) as session:
        job = session.scalars(select(Jobs).limit(1)).one()
        job.tag = "renamed"
        with pytest.raises(DBAPIError, match="cannot change existing Jobs"):
            session.commit()
