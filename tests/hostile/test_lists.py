"""A list is whole or an error: every odd answer to a page, on page 1 and on page 2, fails the statement.

Each case answers one page of a 10-job list (pages of 4) with something that
is not a page of the list, and expects the statement to fail with a DB-API
error naming the method, the URL of that page and the status, never to return
the rows before it. Answers that may be a glitch on the way (an empty body, an
HTML page, a body cut short) are retried; the others (a redirect, a status the
API does not use, a wrong shape) are not. The healthy variants at the end
(compressed pages, an interim 100, lying ``meta`` and ``links``) must give
exactly the 10 rows.
"""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import apidriver
from apidriver.exceptions import APIErrorMixin

from .conftest import connect
from .server import HostileServer, Request, Scripted, Wire, head, jobs_page

Answer = Callable[[Request, Wire, HostileServer], None]


def body(data: bytes | str, content_type: str | None = "application/json", status: int = 200) -> Answer:
    return lambda r, w, other: w.reply(status, data, content_type=content_type)


def redirect(status: int, elsewhere: bool) -> Answer:
    def answer(r: Request, w: Wire, other: HostileServer) -> None:
        location = f"{other.url if elsewhere else ''}/v2/jobs?page={r.page}&per_page={r.per_page}"
        w.reply(status, b"", content_type=None, headers=[("Location", location)])

    return answer


def status(code: int) -> Answer:
    """A real page, but under a status the API does not use for a GET."""
    return lambda r, w, other: w.reply(code, jobs_page(r, 10), reason="Odd")


def short_body(r: Request, w: Wire, other: HostileServer) -> None:
    w.send(head(200, length=500) + b'{"data": [')
    w.close()


def chunked_cut(r: Request, w: Wire, other: HostileServer) -> None:
    w.send(head(200, headers=[("Transfer-Encoding", "chunked")]) + b'a\r\n{"data": [\r\n')
    w.close()


def interim_then_close(r: Request, w: Wire, other: HostileServer) -> None:
    w.send(b"HTTP/1.1 100 Continue\r\n\r\n")
    w.close()


def encoded(encoding: str, data: bytes) -> Answer:
    return lambda r, w, other: w.reply(200, data, headers=[("Content-Encoding", encoding)])


def page_gzip_twice(r: Request, w: Wire, other: HostileServer) -> None:
    raw = jobs_page(r, 10)
    import json

    data = gzip.compress(gzip.compress(json.dumps(raw).encode()))
    w.reply(200, data, headers=[("Content-Encoding", "gzip, gzip")])


def first_job(r: Request) -> Any:
    return jobs_page(r, 10)["data"][0]


@dataclass
class Case:
    answer: Answer
    retried: bool  # a glitch on the way: retried (then APIUnavailableError); else UnexpectedResponseError at once
    status: int | None  # the status the error must name (None: there was none)


CASES: dict[str, Case] = {
    "empty 200": Case(body(b""), True, 200),
    "whitespace 200": Case(body(b"  \r\n "), True, 200),
    "HTML 200 from a proxy": Case(body("<html><body>Please log in</body></html>", "text/html"), True, 200),
    "a valid page as text/plain": Case(lambda r, w, o: w.reply(200, jobs_page(r, 10), content_type="text/plain"), True, 200),
    "truncated JSON": Case(body('{"data": [{"id": "job-0001"'), True, 200),
    "Content-Length longer than the body": Case(short_body, True, None),
    "chunked body cut off": Case(chunked_cut, True, None),
    "corrupt gzip": Case(encoded("gzip", b"this is not gzip"), True, None),
    "100 Continue, then closed": Case(interim_then_close, True, None),
    "headers past httpcore's 100 KB": Case(lambda r, w, o: w.reply(200, jobs_page(r, 10), headers=[("X-Pad", "p" * 200_000)]), True, None),
    "101 Switching Protocols": Case(lambda r, w, o: w.send(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n"), True, None),  # h11 refuses it: a protocol error
    "204": Case(lambda r, w, o: w.reply(204, content_type=None), False, 204),
    "301 to another host": Case(redirect(301, True), False, 301),
    "302 on the same host": Case(redirect(302, False), False, 302),
    "303 to another host": Case(redirect(303, True), False, 303),
    "307 on the same host": Case(redirect(307, False), False, 307),
    "308 to another host": Case(redirect(308, True), False, 308),
    "304 without a request for it": Case(lambda r, w, o: w.reply(304, content_type=None), False, 304),
    "203 with a page": Case(status(203), False, 203),
    "206 with a page": Case(status(206), False, 206),
    "299 with a page": Case(status(299), False, 299),
    "600 with a page": Case(status(600), False, 600),
    "brotli, not asked for": Case(encoded("br", b"\x1b\x00"), False, 200),
    "gzip twice": Case(page_gzip_twice, False, 200),
    "[]": Case(body("[]"), False, 200),
    "{}": Case(body("{}"), False, 200),
    "null": Case(body("null"), False, 200),
    "a JSON string": Case(body('"data"'), False, 200),
    "a number": Case(body("42"), False, 200),
    "data null": Case(body('{"data": null, "links": {"next": null}}'), False, 200),
    "data a string": Case(body('{"data": "jobs"}'), False, 200),
    "data one object": Case(lambda r, w, o: w.reply(200, {"data": first_job(r)}), False, 200),
    "data a list of numbers": Case(body('{"data": [1, 2, 3, 4]}'), False, 200),
    "data with a null among objects": Case(lambda r, w, o: w.reply(200, {"data": [first_job(r), None]}), False, 200),
}


def odd_page(page: int, answer: Answer, other: HostileServer) -> Scripted:
    def hostile(r: Request, w: Wire) -> bool:
        if r.method == "GET" and r.path == "/v2/jobs" and r.page == page:
            answer(r, w, other)
            return True
        return False

    return Scripted(10, hostile)


@pytest.mark.parametrize("page", [1, 2])
@pytest.mark.parametrize("name", list(CASES))
def test_an_odd_page_fails_the_list(serve: Callable[..., HostileServer], name: str, page: int) -> None:
    case = CASES[name]
    other = serve(Scripted(10))  # where redirects to another host point: it must never be asked
    server = serve(odd_page(page, case.answer, other))
    with connect(server, MaxRetries=1) as conn:
        cur = conn.cursor()
        with pytest.raises(apidriver.OperationalError) as caught:
            cur.execute("SELECT count(*) FROM Jobs")
            cur.fetchall()
    error = caught.value
    expected = apidriver.APIUnavailableError if case.retried else apidriver.UnexpectedResponseError
    assert type(error) is expected, repr(error)
    assert isinstance(error, APIErrorMixin)
    message = str(error)
    assert f"GET {server.url}/v2/jobs?page={page}&per_page=4" in message
    if case.status is not None:
        assert str(case.status) in message and error.status == case.status
    assert error.method == "GET" and str(error.url).startswith(f"{server.url}/v2/jobs?page={page}&")
    asked = [r for r in server.requests if r.path == "/v2/jobs" and r.page == page]
    assert len(asked) == (2 if case.retried else 1)
    assert other.requests == []
    assert error.__cause__ is not error
    assert "sk-" not in message


def test_a_redirect_is_never_followed_and_takes_no_key_along(serve: Callable[..., HostileServer]) -> None:
    other = serve(Scripted(10))

    def answer(r: Request, w: Wire, _: HostileServer) -> None:
        w.reply(307, b"", content_type=None, headers=[("Location", f"{other.url}/v2/jobs?token=sk-REDIRECT-TOKEN")])

    server = serve(odd_page(1, answer, other))
    with connect(server, MaxRetries=3) as conn, pytest.raises(apidriver.UnexpectedResponseError) as caught:
        conn.cursor().execute("SELECT * FROM Jobs").fetchall()
    assert f"a redirect to {other.url}." in str(caught.value) and "BaseURL" in str(caught.value)
    assert "REDIRECT-TOKEN" not in str(caught.value)  # only the scheme and host of where it points
    assert server.count("GET", "/v2/jobs") == 1  # not retried: the same request gets the same redirect
    assert other.requests == []


# -- lists that never end ------------------------------------------------------------------------


def always_page_1(r: Request, w: Wire) -> bool:
    """A list of a million jobs, but whatever page is asked for, page 1."""
    if r.path != "/v2/jobs":
        return False
    w.reply(200, jobs_page(r, 10**6, page=1))
    return True


def run_bounded(conn: apidriver.Connection, sql: str, seconds: float = 10.0) -> Exception | list[tuple[object, ...]]:
    """Run ``sql``; a statement still running after ``seconds`` is interrupted (the test then fails)."""
    timer = threading.Timer(seconds, conn.interrupt)
    timer.start()
    try:
        return conn.cursor().execute(sql).fetchall()
    except Exception as error:  # noqa: BLE001 - the caller asserts which
        return error
    finally:
        timer.cancel()


def test_a_server_that_ignores_page_is_caught_at_the_first_repeat(serve: Callable[..., HostileServer]) -> None:
    server = serve(Scripted(10, always_page_1))
    with connect(server, MaxConcurrency=4) as conn:
        started = time.monotonic()
        outcome = run_bounded(conn, "SELECT count(*) FROM Jobs")
        elapsed = time.monotonic() - started
    assert isinstance(outcome, apidriver.UnexpectedResponseError), outcome
    assert "(page 2) answered 200 with the same 4 objects as page 1" in str(outcome)
    # page 1, page 2, and at most the pages already fetched ahead (MaxConcurrency): not thousands
    assert server.count("GET", "/v2/jobs") <= 2 + 4
    assert elapsed < 2


def test_a_server_that_cycles_through_pages_is_caught(serve: Callable[..., HostileServer]) -> None:
    def cycling(r: Request, w: Wire) -> bool:
        if r.path != "/v2/jobs":
            return False
        w.reply(200, jobs_page(r, 10**6, page=(r.page - 1) % 3 + 1))
        return True

    server = serve(Scripted(10, cycling))
    with connect(server, MaxConcurrency=1) as conn:
        outcome = run_bounded(conn, "SELECT count(*) FROM Jobs")
    assert isinstance(outcome, apidriver.UnexpectedResponseError), outcome
    assert "(page 4) answered 200 with the same 4 objects as page 1" in str(outcome)
    assert server.count("GET", "/v2/jobs") <= 5


@pytest.mark.parametrize("ids", ["none", "null", "boolean", "mixed"])
def test_a_repeated_page_is_caught_whatever_its_ids(serve: Callable[..., HostileServer], ids: str) -> None:
    """Pages are told apart by their objects' ids, read fast when every id is text or an integer;
    objects without one (or with null, boolean, or differently typed ids) still make a repeat known."""

    def ignoring(r: Request, w: Wire) -> bool:
        if r.path != "/v2/jobs":
            return False
        page = jobs_page(r, 10**6, page=1)
        for n, obj in enumerate(page["data"]):
            if ids == "none":
                del obj["id"]
            else:
                obj["id"] = {"null": None, "boolean": n % 2 == 0, "mixed": n if n % 2 else str(n)}[ids]
        w.reply(200, page)
        return True

    server = serve(Scripted(10, ignoring))
    with connect(server, MaxConcurrency=1) as conn:
        outcome = run_bounded(conn, "SELECT count(*) FROM Jobs")
    assert isinstance(outcome, apidriver.UnexpectedResponseError), outcome
    assert "(page 2) answered 200 with the same 4 objects as page 1" in str(outcome)


def test_a_list_served_again_from_cachettl_gives_every_row(serve: Callable[..., HostileServer]) -> None:
    """A CacheTTL snapshot's pages were checked as they came: read again, they give the same rows, no request."""
    server = serve(Scripted(10, lambda r, w: False))
    with connect(server, CacheTTL=60) as conn:
        first = conn.cursor().execute("SELECT id, tag FROM Jobs").fetchall()
        cursor = conn.cursor()
        again = cursor.execute("SELECT id, tag FROM Jobs").fetchall()
        assert again == first and len(first) == 10
        # The first read may ask for page 4 ahead (no page count is known) and that request can reach
        # the server late; what must not happen is any page being asked for a second time.
        pages = [r.page for r in server.requests if r.method == "GET" and r.path == "/v2/jobs"]
        assert sorted(pages)[:3] == [1, 2, 3] and len(pages) == len(set(pages)), pages
        assert cursor.requests and all(r.cached for r in cursor.requests)


def test_a_sync_from_a_server_that_ignores_page_ends(serve: Callable[..., HostileServer], tmp_path: Path) -> None:
    server = serve(Scripted(10, always_page_1))
    target = f"sqlite:///{tmp_path}/replica.sqlite"
    with connect(server) as conn:
        timer = threading.Timer(10, conn.close)  # a sync that never ends is cut off (and the test fails)
        timer.start()
        try:
            with pytest.raises(apidriver.UnexpectedResponseError, match="same 4 objects as page 1|repeats itself"):
                apidriver.sync(conn, target, tables="Jobs")
        finally:
            timer.cancel()
    assert server.count("GET", "/v2/jobs") <= 2 + 8


def test_a_sync_refuses_a_page_that_is_not_a_page(serve: Callable[..., HostileServer], tmp_path: Path) -> None:
    server = serve(odd_page(2, body('{"data": null}'), serve(Scripted(0))))
    with connect(server) as conn, pytest.raises(apidriver.UnexpectedResponseError, match='"data": null'):
        apidriver.sync(conn, f"sqlite:///{tmp_path}/replica.sqlite", tables="Jobs")  # type: ignore[operator]


# -- answers that are odd but whole: exactly the rows --------------------------------------------


def gzip_page(r: Request, w: Wire) -> bool:
    import json

    if r.path != "/v2/jobs":
        return False
    w.reply(200, gzip.compress(json.dumps(jobs_page(r, 10)).encode()), headers=[("Content-Encoding", "gzip")])
    return True


def deflate_page(r: Request, w: Wire) -> bool:
    import json

    if r.path != "/v2/jobs":
        return False
    w.reply(200, zlib.compress(json.dumps(jobs_page(r, 10)).encode()), headers=[("Content-Encoding", "deflate")])
    return True


def interim_then_page(r: Request, w: Wire) -> bool:
    if r.path != "/v2/jobs":
        return False
    w.send(b"HTTP/1.1 100 Continue\r\n\r\n")
    w.reply(200, jobs_page(r, 10))
    return True


def lying_meta(r: Request, w: Wire) -> bool:
    if r.path != "/v2/jobs":
        return False
    page = jobs_page(r, 10)
    page["meta"] = {"current_page": 1, "total": 3, "last_page": 1, "per_page": 100, "to": 2}
    page["links"]["last"] = "https://api.cloudconvert.com/v2/jobs?page=1"
    w.reply(200, page)
    return True


def links_elsewhere(r: Request, w: Wire) -> bool:
    if r.path != "/v2/jobs":
        return False
    page = jobs_page(r, 10)
    page["links"] = {"next": "http://127.0.0.1:9/steal?page=2", "self": "http://127.0.0.1:9/", "last": None}
    page["links"]["next"] = page["links"]["next"] if r.page < 3 else "http://127.0.0.1:9/more"  # even on the short last page
    w.reply(200, page)
    return True


@pytest.mark.parametrize("hostile", [gzip_page, deflate_page, interim_then_page, lying_meta, links_elsewhere])
def test_whole_answers_give_every_row(serve: Callable[..., HostileServer], hostile: Callable[[Request, Wire], bool]) -> None:
    server = serve(Scripted(10, hostile))
    with connect(server) as conn:
        rows = conn.cursor().execute("SELECT id FROM Jobs").fetchall()
    assert sorted(rows) == sorted((f"job-{n:04d}",) for n in range(1, 11))
    assert {r.page for r in server.requests if r.path == "/v2/jobs"} >= {1, 2, 3}
