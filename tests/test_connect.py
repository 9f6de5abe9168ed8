"""Connecting: connection strings, properties, profiles, and the PEP 249 module surface."""

from __future__ import annotations

import datetime as dt

import pytest

import apidriver
from apidriver.emulator import Emulator
from apidriver.properties import parse_connection_string

from .conftest import connect_to


def test_connect_with_connection_string(shared_emulator: Emulator) -> None:
    conn = apidriver.connect(
        f"Profile=CloudConvert;AuthScheme=APIKey;APIKey={shared_emulator.api_key};BaseURL={shared_emulator.base_url}"
    )
    with conn:
        assert conn.cursor().execute("SELECT count(*) FROM Users").fetchone() == (1,)
    assert conn.closed


def test_connect_with_keyword_arguments_any_case(shared_emulator: Emulator) -> None:
    with apidriver.connect(apikey=shared_emulator.api_key, baseurl=shared_emulator.base_url + "/v2/", PROFILE="cloudconvert") as conn:
        assert conn.base_url == shared_emulator.base_url + "/v2"
        assert conn.cursor().execute("SELECT username FROM Users").fetchone() == ("emulator",)


def test_profile_settings_nest_profile_properties(shared_emulator: Emulator) -> None:
    text = (
        f'Profile=CloudConvert;AuthScheme=APIKey;ProfileSettings="APIKey={shared_emulator.api_key};'
        f'BaseURL={shared_emulator.base_url};Sandbox=true"'
    )
    with apidriver.connect(text) as conn:
        assert conn.settings["Sandbox"] is True
        assert conn.cursor().execute("SELECT count(*) FROM Users").fetchone() == (1,)


def test_top_level_properties_win_over_profile_settings(shared_emulator: Emulator) -> None:
    text = f'APIKey={shared_emulator.api_key};PageSize=7;ProfileSettings="PageSize=9;BaseURL={shared_emulator.base_url}"'
    with apidriver.connect(text) as conn:
        assert conn.settings["PageSize"] == 7


@pytest.mark.parametrize(
    "path",
    ["C:\\Program Files\\API Driver\\Profiles\\CloudConvert.apip", "/opt/profiles/cloudconvert.APIP", "CloudConvert.apip"],
)
def test_apip_file_paths_select_the_builtin_profile(shared_emulator: Emulator, path: str) -> None:
    with apidriver.connect(f"Profile='{path}';APIKey={shared_emulator.api_key};BaseURL={shared_emulator.base_url}") as conn:
        assert conn.profile.name == "CloudConvert"


def test_quoted_values() -> None:
    parsed = parse_connection_string("A='x;y';B=\"he said \"\"hi\"\"\";C={a;b};D= plain ;E=")
    assert parsed == {"A": "x;y", "B": 'he said "hi"', "C": "a;b", "D": "plain", "E": ""}


def test_unknown_property_lists_known_ones() -> None:
    with pytest.raises(apidriver.ProgrammingError) as info:
        apidriver.connect("APIKey=k;PageSise=10")
    message = str(info.value)
    assert "PageSise" in message and "PageSize" in message and "MaxConcurrency" in message


@pytest.mark.parametrize(
    ("text", "named"),
    [("PageSize=abc", "PageSize"), ("PageSize=0", "PageSize"), ("Sandbox=maybe", "Sandbox"), ("Timeout=-1", "Timeout"), ("Region=Bad Region!", "Region")],
)
def test_bad_values_name_the_property(text: str, named: str) -> None:
    with pytest.raises(apidriver.ProgrammingError, match=named):
        apidriver.connect(f"APIKey=k;{text}")


def test_bad_connection_string_syntax() -> None:
    with pytest.raises(apidriver.ProgrammingError, match="closing"):
        apidriver.connect("APIKey='unterminated")
    with pytest.raises(apidriver.ProgrammingError, match="Name=Value"):
        apidriver.connect("just words")


def test_unsupported_auth_scheme() -> None:
    with pytest.raises(apidriver.ProgrammingError, match="AuthScheme 'OAuth'.*APIKey"):
        apidriver.connect("APIKey=k;AuthScheme=OAuth")


def test_unknown_profile_lists_available() -> None:
    with pytest.raises(apidriver.ProgrammingError, match="Unknown profile 'Nope'.*cloudconvert"):
        apidriver.connect("Profile=Nope;APIKey=k")


def test_api_key_falls_back_to_environment(shared_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDCONVERT_API_KEY", shared_emulator.api_key)
    with apidriver.connect(BaseURL=shared_emulator.base_url) as conn:
        assert conn.cursor().execute("SELECT count(*) FROM Users").fetchone() == (1,)


def test_missing_api_key_says_how_to_set_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLOUDCONVERT_API_KEY", raising=False)
    with pytest.raises(apidriver.ProgrammingError, match="APIKey.*CLOUDCONVERT_API_KEY"):
        apidriver.connect("Profile=CloudConvert")


@pytest.mark.parametrize(
    ("props", "url"),
    [
        ({}, "https://api.cloudconvert.com/v2"),
        ({"Sandbox": "true"}, "https://api.sandbox.cloudconvert.com/v2"),
        ({"Region": "us-east"}, "https://us-east.api.cloudconvert.com/v2"),
        ({"BaseURL": "http://localhost:9/v2"}, "http://localhost:9/v2"),
    ],
)
def test_hosts_follow_sandbox_and_region(props: dict[str, str], url: str) -> None:
    with apidriver.connect(APIKey="k", **props) as conn:
        assert conn.base_url == url


def test_secrets_stay_out_of_reprs() -> None:
    with apidriver.connect(APIKey="sekrit-key-123") as conn:
        assert "sekrit" not in repr(conn)
        assert "sekrit" not in repr(conn.settings)
        assert "***" in repr(conn.settings)


def test_module_globals() -> None:
    assert apidriver.apilevel == "2.0"
    assert apidriver.threadsafety == 1
    assert apidriver.paramstyle == "qmark"


def test_exception_hierarchy() -> None:
    assert issubclass(apidriver.Error, Exception)
    assert issubclass(apidriver.Warning, Exception)
    for cls in (apidriver.InterfaceError, apidriver.DatabaseError):
        assert issubclass(cls, apidriver.Error)
    for cls in (
        apidriver.DataError,
        apidriver.OperationalError,
        apidriver.IntegrityError,
        apidriver.InternalError,
        apidriver.ProgrammingError,
        apidriver.NotSupportedError,
    ):
        assert issubclass(cls, apidriver.DatabaseError)
    assert issubclass(apidriver.AuthenticationError, apidriver.OperationalError)
    assert issubclass(apidriver.InvalidDataError, apidriver.DataError)


def test_type_objects_and_constructors() -> None:
    assert apidriver.STRING == "TEXT" and apidriver.STRING == "JSON"
    assert apidriver.NUMBER == "INTEGER" and apidriver.NUMBER != "TEXT"
    assert apidriver.DATETIME == "TIMESTAMP"
    assert apidriver.BINARY == "BLOB"
    assert apidriver.Date(2020, 1, 2) == dt.date(2020, 1, 2)
    assert apidriver.TimestampFromTicks(0) == dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    assert apidriver.DateFromTicks(86400) == dt.date(1970, 1, 2)
    assert apidriver.TimeFromTicks(3661) == dt.time(1, 1, 1)
    assert apidriver.Binary(bytearray(b"ab")) == b"ab"


def test_cursor_protocol(conn: apidriver.Connection) -> None:
    cur = conn.cursor()
    cur.execute("SELECT id, status, created_at, credits FROM Tasks WHERE status = ? ORDER BY id LIMIT 5", ("finished",))
    assert [d[0] for d in cur.description] == ["id", "status", "created_at", "credits"]
    assert cur.description[2][1] == apidriver.DATETIME
    assert cur.description[3][1] == apidriver.NUMBER
    assert cur.rowcount == -1
    first = cur.fetchone()
    assert first is not None and isinstance(first[2], dt.datetime) and first[2].tzinfo is not None
    cur.arraysize = 2
    assert len(cur.fetchmany()) == 2
    rest = list(cur)
    assert len(rest) == 2
    assert cur.fetchone() is None
    cur.close()
    with pytest.raises(apidriver.InterfaceError):
        cur.execute("SELECT 1")


def test_named_parameters(conn: apidriver.Connection) -> None:
    cur = conn.cursor().execute("SELECT count(*) FROM Jobs WHERE status = :status", {"status": "error"})
    named = cur.fetchone()
    positional = conn.cursor().execute("SELECT count(*) FROM Jobs WHERE status = ?", ["error"]).fetchone()
    assert named == positional


def test_description_of_empty_result(conn: apidriver.Connection) -> None:
    cur = conn.cursor().execute("SELECT id, tag FROM Jobs WHERE 0")
    assert [d[0] for d in cur.description] == ["id", "tag"]
    assert cur.fetchall() == []


def test_fetch_without_result_set_is_an_error(conn: apidriver.Connection) -> None:
    cur = conn.cursor().execute("CREATE TEMP TABLE scratch(x)")
    assert cur.description is None
    with pytest.raises(apidriver.ProgrammingError, match="no rows"):
        cur.fetchone()


def test_closed_connection(shared_emulator: Emulator) -> None:
    conn = connect_to(shared_emulator)
    conn.close()
    conn.close()  # closing twice is fine
    with pytest.raises(apidriver.InterfaceError):
        conn.cursor()


def test_a_cursor_of_a_closed_connection_refuses_everything(shared_emulator: Emulator) -> None:
    conn = connect_to(shared_emulator)
    finished, open_ = conn.cursor(), conn.cursor()
    finished.execute("SELECT 1").fetchall()  # read to the end: nothing left to step
    open_.execute("SELECT value FROM json_each('[1,2,3]')").fetchone()
    conn.close()
    for cursor in (finished, open_):
        with pytest.raises(apidriver.InterfaceError, match="connection is closed"):
            cursor.fetchall()
        with pytest.raises(apidriver.InterfaceError, match="connection is closed"):
            cursor.fetchone()
        with pytest.raises(apidriver.InterfaceError, match="connection is closed"):
            cursor.execute("SELECT 1")


def test_commit_and_rollback_are_harmless(conn: apidriver.Connection) -> None:
    conn.commit()
    conn.rollback()
    assert conn.cursor().execute("SELECT 1").fetchone() == (1,)


def test_one_statement_per_execute(conn: apidriver.Connection) -> None:
    cur = conn.cursor()
    with pytest.raises(apidriver.ProgrammingError, match="one statement at a time"):
        cur.execute("SELECT 1 AS a; SELECT 2 AS b")
    assert cur.execute("SELECT 1; -- a trailing comment").fetchall() == [(1,)]
    assert cur.execute("SELECT 2 /* inline */ ;  ").fetchall() == [(2,)]


@pytest.mark.parametrize(
    ("props", "sync"),
    [
        ({}, "https://sync.api.cloudconvert.com"),
        ({"Sandbox": "true"}, "https://sync.api.sandbox.cloudconvert.com"),
        ({"Region": "eu-central"}, "https://eu-central.sync.api.cloudconvert.com"),
        ({"BaseURL": "http://127.0.0.1:8000/v2"}, "http://127.0.0.1:8000/sync"),
    ],
)
def test_waits_use_the_sync_host(props: dict[str, str], sync: str) -> None:
    from apidriver.profiles.cloudconvert import sync_root_url

    with apidriver.connect(APIKey="k", **props) as conn:
        assert sync_root_url(conn.settings) == sync


def test_interleaved_cursors_keep_their_own_statements(shared_emulator: Emulator) -> None:
    with connect_to(shared_emulator, PageSize=10) as conn:
        jobs, tasks = conn.cursor(), conn.cursor()
        jobs.execute("SELECT id FROM Jobs")
        tasks.execute("SELECT id FROM Tasks WHERE status = 'finished'")
        job_ids, task_ids = [], []
        while True:
            a, b = jobs.fetchmany(7), tasks.fetchmany(7)
            job_ids += a
            task_ids += b
            if not a and not b:
                break
        assert len(job_ids) == len(set(job_ids)) == 60
        assert task_ids and len(task_ids) == len(set(task_ids))
        assert all("/v2/jobs" in r.url for r in jobs.requests)
        assert all("/v2/tasks" in r.url for r in tasks.requests)
