"""Errors chain sanely, a key in BaseURL is refused without being echoed, and fork() never hangs.

- ``__cause__`` of an error raised through a cursor is the underlying error
  (an httpx exception for a timeout) or None, never the error itself, so a
  ``while e.__cause__: e = e.__cause__`` loop ends.
- ``BaseURL=http://user:KEY@host`` is refused at connect; the key shows in no
  message, repr, argument, chained error, traceback or pickle.
- After ``os.fork()``, the child gets :class:`ProgrammingError` from every use
  of the parent's connection, whether it was idle, in the middle of a result,
  or busy in another thread at fork time; closing it or collecting it in the
  child releases nothing of the parent's, and the parent goes on.
"""

from __future__ import annotations

import gc
import os
import pickle
import select
import threading
import time
import traceback
import weakref
from collections.abc import Callable

import httpx
import pytest

import apidriver

from .conftest import connect
from .server import KEY, HostileServer, Request, Scripted, Wire, jobs_page

# -- __cause__ -------------------------------------------------------------------------------------


def causes(error: BaseException) -> list[BaseException]:
    """``error`` and its causes, as a user's loop walks them (at most 20: a cycle would never end)."""
    chain = [error]
    while chain[-1].__cause__ is not None and len(chain) < 20:
        chain.append(chain[-1].__cause__)
    return chain


def unauthorized(page: int) -> Scripted:
    def hostile(r: Request, w: Wire) -> bool:
        if r.path == "/v2/jobs" and r.page == page:
            w.reply(401, {"message": "Unauthenticated.", "code": "UNAUTHENTICATED"})
            return True
        return False

    return Scripted(10, hostile)


@pytest.mark.parametrize("where", ["execute", "fetch"])
def test_an_api_error_is_not_its_own_cause(serve: Callable[..., HostileServer], where: str) -> None:
    """A 401 on page 1 surfaces at execute(); on page 2, during the fetch."""
    server = serve(unauthorized(1 if where == "execute" else 2))
    with connect(server) as conn:
        cur = conn.cursor()
        with pytest.raises(apidriver.AuthenticationError) as caught:
            cur.execute("SELECT id FROM Jobs")
            assert len(cur.fetchmany(4)) == 4
            cur.fetchall()
    chain = causes(caught.value)
    assert len(chain) < 20 and caught.value.__cause__ is not caught.value
    assert all(link is not chain[0] for link in chain[1:])


def test_a_timeout_keeps_its_cause(serve: Callable[..., HostileServer]) -> None:
    def silent(r: Request, w: Wire) -> bool:
        server.stopping.wait(5)
        return True

    server = serve(silent)
    with connect(server, Timeout=0.2) as conn, pytest.raises(apidriver.APIUnavailableError) as caught:
        conn.cursor().execute("SELECT * FROM Jobs").fetchall()
    chain = causes(caught.value)
    assert len(chain) < 20
    assert isinstance(chain[1], httpx.TimeoutException)


# -- BaseURL user-info -----------------------------------------------------------------------------

SECRET = "sk-USERINFO-CANARY-93b1"
PIECES = (SECRET, "USERINFO-CANARY", "93b1")


@pytest.mark.parametrize(
    "how",
    [
        {"BaseURL": f"http://user:{SECRET}@127.0.0.1:9"},
        {"BaseURL": f"http://{SECRET}@127.0.0.1:9/v2"},
        {"BaseURL": f"https://:{SECRET}@api.cloudconvert.com"},
        {"BaseURL": f"http://127.0.0.1:9/?key={SECRET}"},
        {"BaseURL": f"http://127.0.0.1:9/#{SECRET}"},
        "string",
        "nested",
    ],
    ids=["user and key", "key as user", "empty user", "query", "fragment", "connection string", "ProfileSettings"],
)
def test_a_key_in_base_url_is_refused_unechoed(how: object) -> None:
    with pytest.raises(apidriver.ProgrammingError) as caught:
        if how == "string":
            apidriver.connect(f"APIKey={KEY};BaseURL=http://me:{SECRET}@127.0.0.1:9")
        elif how == "nested":
            apidriver.connect(f"ProfileSettings='APIKey={KEY};BaseURL=http://me:{SECRET}@127.0.0.1:9'")
        else:
            assert isinstance(how, dict)
            apidriver.connect(APIKey=KEY, **how)
    error = caught.value
    assert "BaseURL" in str(error)
    shown = [
        str(error), repr(error), repr(error.args), "".join(traceback.format_exception(error)),
        repr(pickle.loads(pickle.dumps(error))), str(pickle.dumps(error)),
    ]
    current: BaseException | None = error
    while current is not None:
        shown += [str(current), repr(current), repr(vars(current))]
        current = current.__cause__ or current.__context__
    for text in shown:
        for piece in PIECES:
            assert piece not in text, text


def test_user_info_is_explained() -> None:
    with pytest.raises(apidriver.ProgrammingError, match=r"user name or password before an '@'.*APIKey"):
        apidriver.connect(APIKey=KEY, BaseURL=f"http://user:{SECRET}@127.0.0.1:9")


# -- fork() ----------------------------------------------------------------------------------------

pytestmark_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def in_child(body: Callable[[], str], timeout: float = 10.0) -> str:
    """Run ``body`` in a forked child; its answer, or 'HUNG' if it did not end within ``timeout``."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never back into pytest
        try:
            os.close(read)
            try:
                answer = body()
            except BaseException as error:  # noqa: BLE001 - reported to the parent
                answer = f"raised {type(error).__name__}: {error}"
            os.write(write, answer.encode()[:4000])
        finally:
            os._exit(0)
    os.close(write)
    try:
        ready, _, _ = select.select([read], [], [], timeout)
        answer = os.read(read, 4096).decode() if ready else ""
        end = time.monotonic() + (timeout if ready else 0.5)
        while time.monotonic() < end:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                return answer
            time.sleep(0.02)
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        return "HUNG" + (f" after answering {answer!r}" if answer else "")
    finally:
        os.close(read)


def use(held: list[apidriver.Connection], cursor: apidriver.Cursor | None = None) -> str:
    """Everything a child might do with the parent's connection (the only reference, in ``held``); what each gave.

    At the end the child closes it and drops it: collected there, it must release nothing of the parent's.
    """
    conn = held.pop()
    out = []
    steps: list[tuple[str, Callable[[], object]]] = [
        ("execute", lambda: conn.cursor().execute("SELECT count(*) FROM Jobs").fetchall()),
        ("cursor", conn.cursor),
        ("ping", conn.ping),
        ("commit", conn.commit),
    ]
    if cursor is not None:
        steps.insert(0, ("fetch", cursor.fetchall))
    for name, step in steps:
        try:
            step()
            out.append(f"{name}: no error")
        except apidriver.ProgrammingError as error:
            out.append(f"{name}: ProgrammingError" + (" (fork)" if "fork()" in str(error) else f" {error}"))
        except BaseException as error:  # noqa: BLE001 - reported
            out.append(f"{name}: {type(error).__name__} {error}")
    conn.close()
    del conn, cursor
    gc.collect()
    out.append("closed")
    return "; ".join(out)


def all_refused(answer: str, fetch: bool = False) -> None:
    expected = [f"{name}: ProgrammingError (fork)" for name in (["fetch"] if fetch else []) + ["execute", "cursor", "ping", "commit"]]
    assert answer == "; ".join(expected + ["closed"]), answer


@pytestmark_fork
def test_an_idle_connection_is_refused_in_a_child(serve: Callable[..., HostileServer]) -> None:
    server = serve(Scripted(10))
    held = [connect(server)]
    assert held[0].cursor().execute("SELECT count(*) FROM Jobs").fetchall() == [(10,)]
    all_refused(in_child(lambda: use(held)))
    with held.pop() as conn:  # the parent's connection works on: the child closed and dropped only its copy
        assert conn.cursor().execute("SELECT count(*) FROM Jobs").fetchall() == [(10,)]


@pytestmark_fork
def test_a_connection_mid_result_is_refused_in_a_child(serve: Callable[..., HostileServer]) -> None:
    """Pages 2.. are in flight on the parent's worker threads at fork time; the child has none of them."""
    release = threading.Event()

    def slow(r: Request, w: Wire) -> bool:
        if r.path == "/v2/jobs" and r.page >= 2:
            release.wait(5)
        return False

    server = serve(Scripted(30, slow))
    with connect(server, Timeout=5) as conn:
        cur = conn.cursor()
        cur.execute("SELECT id FROM Jobs")
        assert cur.fetchone() == ("job-0030",)
        try:
            all_refused(in_child(lambda: use([conn], cur)), fetch=True)
        finally:
            release.set()
        assert len(cur.fetchall()) == 29


@pytestmark_fork
def test_a_connection_busy_in_another_thread_is_refused_in_a_child(serve: Callable[..., HostileServer]) -> None:
    """A thread of the parent is inside SQLite (waiting for page 1) at fork time: its locks are held in the child."""
    release, asked = threading.Event(), threading.Event()

    def slow(r: Request, w: Wire) -> bool:
        if r.path == "/v2/jobs":
            asked.set()
            release.wait(5)
            w.reply(200, jobs_page(r, 3))
            return True
        return False

    server = serve(Scripted(3, slow))
    held = [connect(server, Timeout=5)]
    results: list[object] = []

    def count(conn: apidriver.Connection) -> None:
        results.append(conn.cursor().execute("SELECT count(*) FROM Jobs").fetchall())

    busy = threading.Thread(target=count, args=(held[0],))
    busy.start()
    assert asked.wait(5)
    try:
        all_refused(in_child(lambda: use(held)))
    finally:
        release.set()
        busy.join(10)
    assert results == [[(3,)]]
    held.pop().close()


@pytestmark_fork
def test_a_statement_ended_in_a_child_lets_go_at_once_without_the_parents_workers(serve: Callable[..., HostileServer]) -> None:
    """A finished statement's objects are let go on a worker of the connection; in a child, whose
    workers and their lock belong to the parent, closing the parent's cursor lets them go at once."""
    server = serve(Scripted(250))
    with connect(server) as conn:
        cur = conn.cursor()
        cur.execute("SELECT id FROM Jobs")
        assert cur.fetchone() is not None
        conn.engine.wait_idle()

        def close_in_child() -> str:
            threads = threading.active_count()
            store = weakref.ref(cur.context.store)
            cur.close()
            return f"{'let go' if store() is None else 'kept'}, {threading.active_count() - threads} new threads"

        assert in_child(close_in_child) == "let go, 0 new threads"
        cur.close()  # in the parent: on a worker, as usual
        conn.engine.wait_idle()
        assert conn.cursor().execute("SELECT count(*) FROM Jobs").fetchall() == [(250,)]
