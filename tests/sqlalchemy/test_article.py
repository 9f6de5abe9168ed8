"""The article our users come from, verbatim apart from real column names and values
(SQLAlchemy 1.4-era code), and the same reads in the select() style 1.4 and 2.x share."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from apidriver.emulator import Emulator

from ..conftest import raw_list
from .models import Job


@pytest.fixture(scope="module")
def api_jobs(shared_emulator: Emulator) -> list[dict[str, Any]]:
    return raw_list(shared_emulator, "/jobs")


@pytest.mark.filterwarnings("ignore::sqlalchemy.exc.MovedIn20Warning")
def test_the_articles_code(shared_emulator: Emulator, api_jobs: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]) -> None:
    api_key, base_url = shared_emulator.api_key, quote(shared_emulator.base_url, safe="")

    # --- the article, with CloudConvert's real columns and an emulator's BaseURL ---
    from sqlalchemy import Column, String, create_engine
    from sqlalchemy.ext.declarative import declarative_base
    from sqlalchemy.orm import sessionmaker

    base = declarative_base()

    class Jobs(base):  # type: ignore[valid-type, misc]
        __tablename__ = "Jobs"
        id = Column(String, primary_key=True)
        tag = Column(String)
        status = Column(String)

    engine = create_engine(
        f"api:///?Profile=C:\\profiles\\CloudConvert.apip&AuthScheme=APIKey&ProfileSettings='APIKey={api_key}'&BaseURL={base_url}"
    )
    factory = sessionmaker(bind=engine)
    session = factory()
    for instance in session.query(Jobs).filter_by(status="error"):
        print("id: ", instance.id)
        print("tag: ", instance.tag)
        print("status: ", instance.status)
        print("---------")

    Jobs_table = Jobs.metadata.tables["Jobs"]  # noqa: N806  (the article's name)
    for instance in session.execute(Jobs_table.select().where(Jobs_table.c.status == "error")):  # type: ignore[assignment]
        print("id: ", instance.id)
        print("tag: ", instance.tag)
        print("status: ", instance.status)
        print("---------")
    # --- end of the article ---

    session.close()
    engine.dispose()
    failed = [j for j in api_jobs if j["status"] == "error"]
    assert failed
    printed = capsys.readouterr().out
    for job in failed:
        assert printed.count(f"id:  {job['id']}\n") == 2
    assert printed.count("status:  error\n") == 2 * len(failed)
    assert printed.count("---------") == 2 * len(failed)


def test_select_where_with_scalars(engine: Engine, api_jobs: list[dict[str, Any]]) -> None:
    with Session(engine) as session:
        jobs = session.scalars(select(Job).where(Job.status == "finished", Job.tag == "ebooks")).all()
    expected = {j["id"] for j in api_jobs if j["status"] == "finished" and j["tag"] == "ebooks"}
    assert expected and {j.id for j in jobs} == expected
    assert all(j.created_at.tzinfo is dt.timezone.utc and j.ended_at is not None for j in jobs)


def test_session_get_is_one_request_and_uses_the_identity_map(engine: Engine, shared_emulator: Emulator, api_jobs: list[dict[str, Any]]) -> None:
    wanted = api_jobs[7]
    with Session(engine) as session:
        shared_emulator.clear_requests()
        job = session.get(Job, wanted["id"])
        assert job is not None and job.status == wanted["status"] and job.tag == wanted["tag"]
        assert [(r["method"], r["path"]) for r in shared_emulator.requests()] == [("GET", f"/v2/jobs/{wanted['id']}")]
        assert session.get(Job, wanted["id"]) is job
        assert len(shared_emulator.requests()) == 1
        assert session.get(Job, "no-such-job") is None


def test_filter_by_is_pushed_to_the_api(engine: Engine, shared_emulator: Emulator, api_jobs: list[dict[str, Any]]) -> None:
    with Session(engine) as session:
        shared_emulator.clear_requests()
        ids = {j.id for j in session.scalars(select(Job).filter_by(status="waiting"))}
    assert ids == {j["id"] for j in api_jobs if j["status"] == "waiting"}
    [request] = shared_emulator.requests()
    assert dict(request["params"])["filter[status]"] == "waiting"
