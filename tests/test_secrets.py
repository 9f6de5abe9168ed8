"""The API key appears nowhere: every error path (bad key, refused port,
timeouts, parse errors, 4xx/5xx, SQL errors, refused parameters, cancels)
driven through the DB-API, SQLAlchemy with ``echo=True`` and DEBUG logging,
pandas and the command line with ``--debug``; searched in messages, reprs,
``args``, cause and context chains, formatted tracebacks, every log record
and the request records."""

from __future__ import annotations

import logging
import traceback
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import apidriver
from apidriver.emulator import Emulator

from .cli.conftest import apidriver as run_cli
from .conftest import CONVERSION_TASKS
from .emulator.support import closed_port

KEY = "sk-LEAK-CANARY-7e3d1f0b9a"
PIECES = (KEY, "LEAK-CANARY", "7e3d1f0b9a")


def clean(text: str, where: str) -> None:
    for piece in PIECES:
        assert piece not in text, f"the API key leaks through {where}: {text[:400]}"


def check_exception(error: BaseException, where: str) -> None:
    """The error, everything it chains to, and its formatted traceback."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        clean(str(current), f"{where}: str()")
        clean(repr(current), f"{where}: repr()")
        clean(repr(current.args), f"{where}: args")
        for name, value in vars(current).items():
            clean(repr(value), f"{where}: .{name}")
        chained = current.__cause__ or current.__context__
        current = chained
    clean("".join(traceback.format_exception(error)), f"{where}: traceback")


@pytest.fixture
def emu(make_emulator: Callable[..., Emulator]) -> Emulator:
    return make_emulator(jobs=4, seed=1, api_key=KEY, scoped_keys={"tasks-only": ["task.read"]}, rate_limit=0)


class Records(logging.Handler):
    """Keeps every record it sees, formatted the usual way too."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def logs() -> Iterator[Records]:
    """Every record of every logger (apidriver, httpx, httpcore, sqlalchemy) at DEBUG."""
    handler = Records()
    root = logging.getLogger()
    names = ("", "apidriver", "httpx", "httpcore", "sqlalchemy")
    levels = {name: logging.getLogger(name).level for name in names}
    root.addHandler(handler)
    for name in names:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
    assert len(handler.records) > 20, "hardly anything was logged: the check would prove little"
    for record in handler.records:
        clean(handler.format(record), f"the log record {record.name}")
        clean(repr(record.args), f"the log record {record.name} args")
        if record.exc_info and record.exc_info[1] is not None:
            check_exception(record.exc_info[1], f"the log record {record.name} exception")


def failing_statements(emu: Emulator) -> list[tuple[str, dict[str, Any], str, tuple[Any, ...]]]:
    """(what, connection properties, SQL, parameters) that each end in an error."""
    base = {"APIKey": KEY, "BaseURL": emu.base_url, "MaxRetries": 1, "Timeout": 0.3}
    return [
        ("bad key", {**base, "APIKey": KEY + "-wrong"}, "SELECT * FROM Jobs", ()),
        ("refused port", {**base, "BaseURL": f"http://127.0.0.1:{closed_port()}"}, "SELECT * FROM Users", ()),
        ("timeout", base, "SELECT * FROM Tasks WHERE status = 'error'", ()),
        ("500 on a read", base, "SELECT * FROM Webhooks", ()),
        ("503 on a write", base, "INSERT INTO Jobs (tasks) VALUES (?)", (CONVERSION_TASKS,)),
        ("404", base, "DELETE FROM Jobs WHERE id = 'missing'", ()),
        ("422", base, "INSERT INTO Tasks (operation, payload) VALUES ('convert', '{}')", ()),
        ("403", {**base, "APIKey": "tasks-only"}, "SELECT * FROM Users", ()),
        ("SQL syntax", base, "SELEC * FROM Jobs", ()),
        ("no such table", base, "SELECT * FROM Jobz", ()),
        ("refused parameter", base, "SELECT * FROM Jobs WHERE tag = ?", ({KEY},)),
        ("too long a value", base, "SELECT * FROM Jobs WHERE tag = ?", (KEY * 1000,)),
        ("bad property value", {**base, "Timeout": KEY}, "SELECT 1", ()),
        ("unknown property", {**base, KEY.replace("-", "_"): "1"}, "SELECT 1", ()),
    ]


def add_faults(emu: Emulator) -> None:
    emu.add_fault("stall", path="/v2/tasks", method="GET", rate=1.0, stall_seconds=1)
    emu.add_fault("500", path="/v2/users/me/webhooks", method="GET", rate=1.0)
    emu.add_fault("503", path="/v2/jobs", method="POST", rate=1.0)


def test_dbapi_errors_and_debug_logs(emu: Emulator, logs: Records) -> None:
    add_faults(emu)
    failures = 0
    for what, properties, sql, params in failing_statements(emu):
        conn = None
        try:
            conn = apidriver.connect(**properties)
            clean(repr(conn), f"{what}: repr(connection)")
            clean(repr(conn.settings), f"{what}: repr(settings)")
            cur = conn.cursor()
            try:
                cur.execute(sql, params).fetchall()
            finally:
                for record in cur.requests:
                    clean(str(record), f"{what}: request record")
                    clean(repr(record), f"{what}: request record repr")
        except apidriver.Error as error:
            failures += 1
            check_exception(error, what)
        finally:
            if conn is not None:
                conn.close()
    assert failures == len(failing_statements(emu))


@pytest.mark.parametrize(
    "text",
    [KEY, f"{KEY};BaseURL=http://127.0.0.1:9", f"BaseURL=http://127.0.0.1:9;{KEY}", f"APIKey='{KEY}", f"{KEY}=x", f"Profile={KEY}", f"AuthScheme={KEY};APIKey=k"],
)
def test_parse_errors(text: str) -> None:
    with pytest.raises(apidriver.ProgrammingError) as info:
        apidriver.connect(text)
    check_exception(info.value, f"connect({text[:30]}...)")


def test_cancelled_statement(emu: Emulator) -> None:
    with apidriver.connect(APIKey=KEY, BaseURL=emu.base_url) as conn:
        cur = conn.cursor().execute("SELECT id FROM Jobs")
        conn.interrupt()
        with pytest.raises(apidriver.QueryCancelledError) as info:
            cur.fetchall()
    check_exception(info.value, "a cancelled statement")


def test_sqlalchemy_with_echo_and_pandas(emu: Emulator, logs: Records) -> None:
    sqlalchemy = pytest.importorskip("sqlalchemy")
    pd = pytest.importorskip("pandas")
    add_faults(emu)
    urls = [
        f"cloudconvert://:{KEY}@?BaseURL={emu.base_url}&MaxRetries=1&Timeout=0.3",
        f"cloudconvert://?APIKey={KEY}&BaseURL={emu.base_url}&MaxRetries=1&Timeout=0.3",
        f"api:///?Profile=CloudConvert&ProfileSettings=APIKey%3D{KEY}&BaseURL={emu.base_url}&MaxRetries=1&Timeout=0.3",
    ]
    for url in urls:
        engine = sqlalchemy.create_engine(url, echo=True)
        clean(repr(engine), "repr(engine)")
        clean(str(engine.url), "str(engine.url)")
        clean(engine.url.render_as_string(), "engine.url.render_as_string()")
        for sql in ("SELECT * FROM Webhooks", "SELEC 1", "SELECT * FROM Tasks WHERE status = 'error'"):
            with pytest.raises(sqlalchemy.exc.DBAPIError) as info:
                with engine.connect() as connection:
                    connection.execute(sqlalchemy.text(sql)).fetchall()
            check_exception(info.value, f"SQLAlchemy {sql}")
            with pytest.raises(Exception) as frame_error:  # noqa: PT011 - pandas wraps what SQLAlchemy raises
                pd.read_sql(sqlalchemy.text(sql), engine)
            check_exception(frame_error.value, f"pandas over SQLAlchemy {sql}")
        engine.dispose()
    for bad in (f"cloudconvert://{KEY}@?BaseURL={emu.base_url}", f"cloudconvert://:{KEY}@?Timeout=nope", f"cloudconvert://:{KEY}@host"):
        with pytest.raises(sqlalchemy.exc.ArgumentError) as info:
            sqlalchemy.create_engine(bad).connect()
        check_exception(info.value, f"create_engine({bad[:20]}...)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pandas prefers SQLAlchemy connectables
        with apidriver.connect(APIKey=KEY, BaseURL=emu.base_url, MaxRetries=1) as conn:
            with pytest.raises(Exception) as info:  # noqa: PT011 - pandas' own DatabaseError
                pd.read_sql("SELECT * FROM Webhooks", conn)
    check_exception(info.value, "pandas over the DB-API")


def test_command_line_with_debug(emu: Emulator) -> None:
    add_faults(emu)
    connect = f"APIKey={KEY};BaseURL={emu.base_url};MaxRetries=1;Timeout=0.3"
    runs = [
        run_cli("--debug", "query", "SELECT * FROM Jobs", "--connect", f"APIKey={KEY}-wrong;BaseURL={emu.base_url}"),
        run_cli("--debug", "query", "SELECT * FROM Webhooks", "--connect", connect, "--requests"),
        run_cli("--debug", "query", "SELECT * FROM Tasks WHERE status = 'error'", "--connect", connect, "--requests"),
        run_cli("--debug", "query", "SELEC 1", "--connect", connect),
        run_cli("--debug", "query", "SELECT 1", "--connect", KEY),
        run_cli("--debug", "query", "SELECT 1", env={"APIDRIVER_CONNECTION": KEY}),
        run_cli("--debug", "query", "SELECT 1", "--connect", f"{KEY};BaseURL={emu.base_url}"),
        run_cli("--debug", "shell", "--connect", connect, stdin="SELECT * FROM Webhooks;\nSELEC 1;\n"),
        run_cli("query", "SELECT * FROM Webhooks", "--connect", connect),
    ]
    for run in runs:
        assert run.returncode != 0 or "error" in run.stderr.lower() or "apidriver:" in run.stderr, run.args
        clean(run.stdout, f"stdout of {run.args[3:5]}")
        clean(run.stderr, f"stderr of {run.args[3:5]}")
