"""Engine URLs: both dialect names, every connection property, the API key never shown,
and bad URLs failing early with clear messages."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, exc, select, text
from sqlalchemy.engine import URL
from sqlalchemy.pool import QueuePool

from apidriver.emulator import Emulator
from apidriver.properties import CORE_PROPERTIES
from apidriver.sqlalchemy import APIDialect, CloudConvertDialect

from .conftest import url_for

KEY = "sk-live-7Hq2ZpX9wQ4e"
WRONG_KEY = "sk-wrong-3Fv8LmN1bR6t"


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    """An emulator with a distinctive key, to search for it in every output."""
    emulator = Emulator(jobs=12, seed=3, task_seconds=0.05, api_key=KEY).start()
    yield emulator
    emulator.stop()


def base(emu: Emulator) -> str:
    return quote(emu.base_url, safe="")


def count_jobs(url: str | URL, **kwargs: Any) -> int:
    engine = create_engine(url, **kwargs)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM Jobs")).scalar_one())
    finally:
        engine.dispose()


def key_forms(emu: Emulator) -> dict[str, str]:
    """The same account as every URL form that can carry the key."""
    b = base(emu)
    return {
        "password": f"cloudconvert://:{KEY}@?BaseURL={b}",
        "article": (
            "api:///?Profile=C:\\profiles\\CloudConvert.apip&AuthScheme=APIKey"
            f"&ProfileSettings='APIKey={KEY}'&BaseURL={b}"
        ),
        "profilesettings-encoded": f"api:///?Profile=CloudConvert&ProfileSettings=APIKey%3D{KEY}%3BSandbox%3Dfalse&BaseURL={b}",
        "apikey-parameter": f"cloudconvert://?apikey={KEY}&BaseURL={b}",
        "api-password": f"api://:{KEY}@/?Profile=CloudConvert&BaseURL={b}",
    }


@pytest.mark.parametrize("form", ["password", "article", "profilesettings-encoded", "apikey-parameter", "api-password"])
def test_every_url_form_connects(emu: Emulator, form: str) -> None:
    assert count_jobs(key_forms(emu)[form]) == 12


@pytest.mark.parametrize("form", ["password", "article", "profilesettings-encoded", "apikey-parameter", "api-password"])
def test_the_key_never_shows(emu: Emulator, form: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    engine = create_engine(key_forms(emu)[form], echo="debug", echo_pool="debug")
    with engine.connect() as conn:
        conn.execute(text("SELECT id, status FROM Jobs WHERE status = :status"), {"status": "error"}).all()
        with pytest.raises(exc.ProgrammingError) as bad_sql:
            conn.execute(text("SELECT nope FROM Jobs"))
    shown = [repr(engine), str(engine.url), engine.url.render_as_string(), repr(engine.url), str(bad_sql.value), caplog.text]
    for text_ in shown:
        assert KEY not in text_
    assert "***" in str(engine.url)
    # The real key stays reachable on purpose, exactly as SQLAlchemy does for passwords.
    assert engine.url.password == KEY
    assert count_jobs(engine.url.render_as_string(hide_password=False)) == 12
    assert count_jobs(engine.url) == 12
    engine.dispose()


def test_a_wrong_key_fails_at_the_first_query_without_showing_it(emu: Emulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    engine = create_engine(f"api:///?ProfileSettings=APIKey%3D{WRONG_KEY}&BaseURL={base(emu)}", echo=True)
    with pytest.raises(exc.OperationalError) as failed:
        with engine.connect() as conn:
            conn.execute(text("SELECT * FROM Jobs")).all()
    message = str(failed.value)
    assert "401" in message and "APIKey" in message
    assert WRONG_KEY not in message + repr(engine) + str(engine.url) + caplog.text
    engine.dispose()


def test_url_create_takes_the_key_as_password(emu: Emulator) -> None:
    url = URL.create("cloudconvert", password=KEY, query={"BaseURL": emu.base_url})
    assert count_jobs(url) == 12


def test_the_key_from_the_environment(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDCONVERT_API_KEY", KEY)
    assert count_jobs(f"cloudconvert://?BaseURL={base(emu)}") == 12


def test_the_key_in_connect_args(emu: Emulator) -> None:
    assert count_jobs(f"cloudconvert://?BaseURL={base(emu)}", connect_args={"APIKey": KEY}) == 12


@pytest.mark.parametrize("scheme", ["cloudconvert", "api"])
def test_every_connection_property_is_accepted_in_the_query_string(emu: Emulator, scheme: str) -> None:
    """Names in any case; each value reaches the DB-API connection's settings."""
    values: dict[str, Any] = {"Timeout": 7.5, "PageSize": 5, "MaxConcurrency": 3, "MaxRetries": 1, "Sandbox": False, "AuthScheme": "APIKey"}
    skip = {"APIKey", "BaseURL", "Profile", "ProfileSettings"}
    for prop in CORE_PROPERTIES:
        if prop.name not in values and prop.name not in skip and prop.default is not None:
            values[prop.name] = prop.default  # properties added later are still passed through
    engine = create_engine(url_for(emu, scheme, **{name.lower(): value for name, value in values.items()}))
    emu.clear_requests()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM Jobs")).scalar_one() == 12
        settings = conn.connection.dbapi_connection.settings  # type: ignore[union-attr]
    for name, value in values.items():
        assert settings[name] == value, name
    assert {dict(r["params"]).get("per_page") for r in emu.requests()} == {"5"}
    engine.dispose()


def test_dialect_classes_and_pool(emu: Emulator) -> None:
    cc = create_engine(f"cloudconvert://:{KEY}@?BaseURL={base(emu)}")
    api = create_engine(f"api:///?APIKey={KEY}&BaseURL={base(emu)}")
    assert type(cc.dialect) is CloudConvertDialect and type(api.dialect) is APIDialect
    assert isinstance(cc.pool, QueuePool) and isinstance(api.pool, QueuePool)
    # SQLite's SQL, so everything SQLAlchemy and its extensions compile for SQLite applies.
    assert cc.dialect.name == "sqlite" and cc.dialect.driver == "apidriver"
    cc.dispose()
    api.dispose()


BAD_URLS = [
    (f"cloudconvert://{KEY}@", "note the colon"),
    ("cloudconvert://:k@api.cloudconvert.com", "no host"),
    ("cloudconvert://:k@/jobs", "no database name"),
    ("cloudconvert://:k@?Timeout=abc", "Bad value for the connection property Timeout"),
    ("cloudconvert://:k@?PageSize=0", "PageSize"),
    ("cloudconvert://:k@?Colour=red", "Unknown connection property Colour. Known properties: APIKey"),
    ("api:///?ProfileSettings=Colour%3Dred", "Unknown connection property Colour"),
    ("cloudconvert://:k@?Profile=Stripe", "always uses the CloudConvert profile"),
    ("api:///?Profile=Stripe", "Unknown profile 'Stripe'"),
    ("cloudconvert://:k@?AuthScheme=OAuth", "AuthScheme 'OAuth' is not supported"),
    (f"cloudconvert://:{KEY}@?APIKey={WRONG_KEY}", "two different API keys"),
    ("cloudconvert://:k@?PageSize=1&PageSize=2", "PageSize appears more than once"),
    ("api:///?ProfileSettings='APIKey=x", "opens a quote it does not close"),
]


@pytest.mark.parametrize(("url", "expected"), BAD_URLS)
def test_bad_urls_fail_at_create_engine(url: str, expected: str) -> None:
    with pytest.raises(exc.ArgumentError) as failed:
        create_engine(url)
    assert expected in str(failed.value)
    assert KEY not in str(failed.value) and WRONG_KEY not in str(failed.value)


def test_no_key_fails_at_first_connect(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLOUDCONVERT_API_KEY", raising=False)
    engine = create_engine(f"cloudconvert://?BaseURL={base(emu)}")
    with pytest.raises(exc.ProgrammingError, match="No API key"):
        engine.connect()
    engine.dispose()


def test_scoped_key_error_names_the_scope(make_emulator: Any) -> None:
    emulator = make_emulator(jobs=2, seed=1, scoped_keys={"jobs-only": ["task.read"]})
    engine = create_engine(url_for(emulator, key="jobs-only"))
    with engine.connect() as conn:
        assert len(conn.execute(text("SELECT id FROM Jobs")).all()) == 2
        with pytest.raises(exc.OperationalError, match="user.read"):
            conn.execute(select(text("email")).select_from(text("Users"))).all()
    engine.dispose()


def test_the_engine_url_keeps_everything_but_the_key(emu: Emulator) -> None:
    """The key moves to the password; the other nested profile settings stay where they were."""
    engine = create_engine(key_forms(emu)["profilesettings-encoded"])
    url = engine.url
    assert url.password == KEY and url.username == ""
    assert dict(url.query) == {"Profile": "CloudConvert", "ProfileSettings": "Sandbox=false", "BaseURL": emu.base_url}
    assert str(url).startswith("api://:***@/?")
    engine.dispose()
