"""Writes and lookups answered by something other than the API's documented answer.

The API answers a DELETE with 204, a create with 201 and the object, a
lookup with 200 and the object or 404. A DELETE answered by a redirect or an
empty 200 deleted nothing that we know of: never ``rowcount = 1``. A create
answered by a redirect, a 204 or an empty 200 may have made the object: always
:class:`AmbiguousWriteError`, never retried. A lookup answered by a redirect
is an error, never "no such row".
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

import apidriver

from .conftest import connect
from .server import HostileServer, Request, Scripted, Wire, job

TASKS = '{"import": {"operation": "import/url", "url": "https://example.com/a.pdf"}}'
INSERT = f"INSERT INTO Jobs (tag, tasks) VALUES ('hostile', '{TASKS}')"

Reply = Callable[[Request, Wire], None]

REDIRECTS: dict[str, Reply] = {
    f"{code}": (lambda code: lambda r, w: w.reply(code, b"", content_type=None, headers=[("Location", "/elsewhere")]))(code)
    for code in (301, 302, 303, 307, 308)
}


def when(method: str, reply: Reply, path: str = "/v2/jobs") -> Scripted:
    """The healthy 10 jobs, except that ``method`` requests under ``path`` get ``reply``."""

    def hostile(r: Request, w: Wire) -> bool:
        if r.method == method and r.path.startswith(path):
            reply(r, w)
            return True
        return False

    return Scripted(10, hostile)


# -- DELETE ----------------------------------------------------------------------------------------

DELETE_ODD: dict[str, Reply] = {
    **{f"redirect {k}": v for k, v in REDIRECTS.items()},
    "206": lambda r, w: w.reply(206, {"data": None}),
    "203": lambda r, w: w.reply(203, {"data": None}),
}


@pytest.mark.parametrize("name", list(DELETE_ODD))
def test_a_delete_answered_oddly_is_not_a_deleted_row(serve: Callable[..., HostileServer], name: str) -> None:
    server = serve(when("DELETE", DELETE_ODD[name]))
    with connect(server, MaxRetries=2) as conn:
        cur = conn.cursor()
        with pytest.raises(apidriver.AmbiguousWriteError) as caught:
            cur.execute("DELETE FROM Jobs WHERE id = 'job-0003'")
        assert cur.rowcount == -1
    assert "DELETE" in str(caught.value) and "/v2/jobs/job-0003" in str(caught.value)
    assert "Whether the DELETE took effect is unknown" in str(caught.value)
    assert server.count("DELETE") == 1  # the same request would get the same answer: not retried


@pytest.mark.parametrize("retry", ["none", "404", "204", "empty again"])
def test_a_delete_answered_by_an_empty_200(serve: Callable[..., HostileServer], retry: str) -> None:
    """An empty 200 is not the 204 the API sends: retried like an unanswered DELETE; a 404 then means it was done."""

    def reply(r: Request, w: Wire) -> None:
        later = server.count("DELETE") > 1
        if later and retry == "404":
            w.reply(404, {"message": "Not found", "code": "NOT_FOUND"})
        elif later and retry == "204":
            w.reply(204, content_type=None)
        else:
            w.reply(200, b"")

    server = serve(when("DELETE", reply))
    with connect(server, MaxRetries=0 if retry == "none" else 1) as conn:
        cur = conn.cursor()
        if retry in ("404", "204"):
            cur.execute("DELETE FROM Jobs WHERE id = 'job-0003'")
            assert cur.rowcount == 1
        else:
            with pytest.raises(apidriver.APIUnavailableError, match="answering 200 with an empty body") as caught:
                cur.execute("DELETE FROM Jobs WHERE id = 'job-0003'")
            assert cur.rowcount == -1
            assert "Whether it took effect is unknown" in str(caught.value)
    assert server.count("DELETE") == (1 if retry == "none" else 2)


def test_a_delete_answered_200_with_json_deleted_the_row(serve: Callable[..., HostileServer]) -> None:
    """Not CloudConvert's answer (204), but a common REST one: 200 with the deleted object."""
    server = serve(when("DELETE", lambda r, w: w.reply(200, {"data": job(3)})))
    with connect(server) as conn:
        cur = conn.cursor()
        cur.execute("DELETE FROM Jobs WHERE id = 'job-0003'")
        assert cur.rowcount == 1


def test_a_delete_answered_by_an_html_page(serve: Callable[..., HostileServer]) -> None:
    server = serve(when("DELETE", lambda r, w: w.reply(200, "<html>maintenance</html>", content_type="text/html")))
    with connect(server) as conn, pytest.raises(apidriver.APIUnavailableError, match="text/html"):
        conn.cursor().execute("DELETE FROM Jobs WHERE id = 'job-0003'")


# -- lookups by key --------------------------------------------------------------------------------

LOOKUP_ODD: dict[str, tuple[Reply, type[apidriver.Error]]] = {
    **{f"redirect {k}": (v, apidriver.UnexpectedResponseError) for k, v in REDIRECTS.items()},
    "204": (lambda r, w: w.reply(204, content_type=None), apidriver.UnexpectedResponseError),
    "data null": (lambda r, w: w.reply(200, {"data": None}), apidriver.UnexpectedResponseError),
    "[]": (lambda r, w: w.reply(200, []), apidriver.UnexpectedResponseError),
    "{}": (lambda r, w: w.reply(200, {}), apidriver.UnexpectedResponseError),
    "data a list": (lambda r, w: w.reply(200, {"data": [job(3)]}), apidriver.UnexpectedResponseError),
    "empty 200": (lambda r, w: w.reply(200, b""), apidriver.APIUnavailableError),
}


@pytest.mark.parametrize("name", list(LOOKUP_ODD))
def test_a_lookup_answered_oddly_is_not_no_such_row(serve: Callable[..., HostileServer], name: str) -> None:
    reply, error = LOOKUP_ODD[name]
    server = serve(when("GET", reply, "/v2/jobs/"))
    with connect(server) as conn, pytest.raises(error) as caught:
        conn.cursor().execute("SELECT id, status FROM Jobs WHERE id = 'job-0003'").fetchall()
    assert "GET" in str(caught.value) and "/v2/jobs/job-0003" in str(caught.value)


def test_a_lookup_answered_404_is_no_row(serve: Callable[..., HostileServer]) -> None:
    server = serve(Scripted(10))
    with connect(server) as conn:
        assert conn.cursor().execute("SELECT id FROM Jobs WHERE id = 'job-0042'").fetchall() == []
        assert conn.cursor().execute("SELECT id FROM Jobs WHERE id = 'job-0003'").fetchall() == [("job-0003",)]


# -- INSERT ----------------------------------------------------------------------------------------

INSERT_ODD: dict[str, Reply] = {
    **{f"redirect {k}": v for k, v in REDIRECTS.items()},
    "204": lambda r, w: w.reply(204, content_type=None),
    "empty 200": lambda r, w: w.reply(200, b""),
    "empty 201": lambda r, w: w.reply(201, b""),
    "201 data null": lambda r, w: w.reply(201, {"data": None}),
    "201 {}": lambda r, w: w.reply(201, {}),
    "201 without an id": lambda r, w: w.reply(201, {"data": {"status": "waiting"}}),
    "200 HTML": lambda r, w: w.reply(200, "<html>proxy</html>", content_type="text/html"),
    "206": lambda r, w: w.reply(206, {"data": job(11)}),
}


@pytest.mark.parametrize("name", list(INSERT_ODD))
def test_an_insert_answered_oddly_is_ambiguous(serve: Callable[..., HostileServer], name: str) -> None:
    server = serve(when("POST", INSERT_ODD[name]))
    with connect(server, MaxRetries=3) as conn:
        cur = conn.cursor()
        with pytest.raises(apidriver.AmbiguousWriteError) as caught:
            cur.execute(INSERT)
        assert cur.rowcount == -1
    assert "POST" in str(caught.value) and "/v2/jobs" in str(caught.value)
    assert "SELECT the objects by tag" in str(caught.value)
    assert server.count("POST") == 1  # never twice: it may have created the job


def test_an_insert_answered_201_creates_the_row(serve: Callable[..., HostileServer]) -> None:
    server = serve(Scripted(10))
    with connect(server) as conn:
        cur = conn.cursor()
        cur.execute(INSERT + " RETURNING id")
        assert cur.fetchall() == [("job-0011",)] and cur.rowcount == 1
