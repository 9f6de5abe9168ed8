"""Timeout is a deadline for the whole attempt; bodies are capped by MaxResponseSize, compressed or not.

Drips send every byte well within a socket read timeout, so only a deadline
for the whole exchange stops them. Bombs and big bodies are read streaming
and refused past the cap; the memory figures are taken in a child process
(its own high-water mark, ``VmHWM``), so that the server's buffers do not count.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

import apidriver

from .conftest import connect
from .server import KEY, HostileServer, Request, Scripted, Wire, head, jobs_page

TIMEOUT = 0.5
DRIP = 0.05  # seconds between bytes: ten times within a socket read timeout of TIMEOUT


def dripping(part: str, server_box: list[HostileServer], method: str = "GET", status: int = 200) -> Scripted:
    """A server that drips its headers or its body on ``method`` /v2/jobs... (a whole answer takes seconds)."""

    def hostile(r: Request, w: Wire) -> bool:
        if r.method != method or not r.path.startswith("/v2/jobs"):
            return False
        page = json.dumps(jobs_page(r, 10) if method == "GET" else {"data": {"id": "job-0011"}}).encode()
        page = page + b" " * max(0, 200 - len(page))  # at least 200 bytes: 10 s of drip
        top = head(status, length=len(page))
        stop = server_box[0].stopping
        if part == "headers":
            w.drip(top + page, DRIP, stop)
        else:
            w.send(top)
            w.drip(page, DRIP, stop)
        return True

    return Scripted(10, hostile)


@pytest.mark.parametrize("part", ["headers", "body"])
def test_a_drip_fails_within_timeout(serve: Callable[..., HostileServer], part: str) -> None:
    box: list[HostileServer] = []
    server = serve(dripping(part, box))
    box.append(server)
    with connect(server, Timeout=TIMEOUT) as conn:
        started = time.monotonic()
        with pytest.raises(apidriver.APIUnavailableError) as caught:
            conn.cursor().execute("SELECT count(*) FROM Jobs").fetchall()
        elapsed = time.monotonic() - started
    assert elapsed < TIMEOUT + 0.5, elapsed
    assert f"no complete answer within {TIMEOUT:g} s" in str(caught.value)
    assert "page=1" in str(caught.value)


def test_a_drip_through_a_proxy_fails_within_timeout(serve: Callable[..., HostileServer], monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP_PROXY from the environment is honoured, and its connections obey the deadline too."""
    box: list[HostileServer] = []
    proxy = serve(dripping("headers", box))
    box.append(proxy)
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    with connect(proxy, BaseURL="http://api.cloudconvert.invalid", Timeout=TIMEOUT) as conn:
        started = time.monotonic()
        with pytest.raises(apidriver.APIUnavailableError, match="no complete answer within"):
            conn.cursor().execute("SELECT count(*) FROM Jobs").fetchall()
        assert time.monotonic() - started < TIMEOUT + 0.5
    assert proxy.requests and proxy.requests[0].target.startswith("http://api.cloudconvert.invalid/v2/jobs?")


def test_each_retry_of_a_drip_has_its_own_deadline(serve: Callable[..., HostileServer]) -> None:
    box: list[HostileServer] = []
    server = serve(dripping("body", box))
    box.append(server)
    with connect(server, Timeout=TIMEOUT, MaxRetries=1) as conn:
        started = time.monotonic()
        with pytest.raises(apidriver.APIUnavailableError, match="after 2 attempts"):
            conn.cursor().execute("SELECT count(*) FROM Jobs").fetchall()
        elapsed = time.monotonic() - started
    assert elapsed < 2 * TIMEOUT + 0.1 + 0.5, elapsed  # two attempts and one backoff
    assert server.count("GET", "/v2/jobs") == 2


def test_a_dripped_create_is_ambiguous_within_timeout(serve: Callable[..., HostileServer]) -> None:
    box: list[HostileServer] = []
    server = serve(dripping("body", box, method="POST", status=201))
    box.append(server)
    tasks = '{"import": {"operation": "import/url", "url": "https://example.com/a.pdf"}}'
    with connect(server, Timeout=TIMEOUT) as conn:
        started = time.monotonic()
        with pytest.raises(apidriver.AmbiguousWriteError):
            conn.cursor().execute(f"INSERT INTO Jobs (tasks) VALUES ('{tasks}')")
        assert time.monotonic() - started < TIMEOUT + 0.5
    assert server.count("POST") == 1


def test_a_dripped_error_body_does_not_outlast_timeout(serve: Callable[..., HostileServer]) -> None:
    box: list[HostileServer] = []
    server = serve(dripping("body", box, status=500))
    box.append(server)
    with connect(server, Timeout=TIMEOUT) as conn:
        started = time.monotonic()
        with pytest.raises(apidriver.APIUnavailableError):
            conn.cursor().execute("SELECT count(*) FROM Jobs").fetchall()
        assert time.monotonic() - started < TIMEOUT + 0.5


def test_a_slow_answer_within_timeout_is_fine(serve: Callable[..., HostileServer]) -> None:
    def slow(r: Request, w: Wire) -> bool:
        if r.path != "/v2/jobs":
            return False
        page = json.dumps(jobs_page(r, 10)).encode()
        w.send(head(200, length=len(page)) + page[:-10])
        w.drip(page[-10:], 0.02, server.stopping)  # 0.2 s, within Timeout
        return True

    server = serve(Scripted(10, slow))
    with connect(server, Timeout=2) as conn:
        assert conn.cursor().execute("SELECT count(*) FROM Jobs").fetchall() == [(10,)]


# -- size ------------------------------------------------------------------------------------------


def gzip_of(size: int, level: int = 9) -> bytes:
    """A gzip body that inflates to ``size`` bytes of a JSON page padded with spaces."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
    block = b" " * (1 << 20)
    parts = [compressor.compress(b'{"data": [], "links": {"next": null}}')]
    parts += [compressor.compress(block) for _ in range(size >> 20)]
    return b"".join(parts) + compressor.flush()


def big_page(size: int) -> bytes:
    return b'{"data": [], "pad": "' + b"x" * size + b'"}'


def answering(data: bytes, *, encoding: str | None = None, chunked: bool = False, method: str = "GET") -> Scripted:
    def hostile(r: Request, w: Wire) -> bool:
        if r.method != method or r.path != "/v2/jobs":
            return False
        headers = [("Content-Encoding", encoding)] if encoding else []
        if chunked:
            w.send(head(201 if method == "POST" else 200, headers + [("Transfer-Encoding", "chunked")]))
            for start in range(0, len(data), 1 << 16):
                piece = data[start : start + (1 << 16)]
                w.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            w.send(b"0\r\n\r\n")
        else:
            w.reply(201 if method == "POST" else 200, data, headers=headers)
        return True

    return Scripted(10, hostile)


@pytest.mark.parametrize(
    "how", ["declared length", "chunked", "gzip bomb", "deflate, chunked"]
)
def test_a_body_past_max_response_size_is_refused(serve: Callable[..., HostileServer], how: str) -> None:
    size = 1 << 20
    if how == "gzip bomb":
        server = serve(answering(gzip_of(8 << 20), encoding="gzip"))
    elif how == "deflate, chunked":
        server = serve(answering(zlib.compress(big_page(size)), encoding="deflate", chunked=True))
    else:
        server = serve(answering(big_page(size), chunked=how == "chunked"))
    with connect(server, MaxResponseSize="64KB", MaxRetries=2) as conn, pytest.raises(apidriver.UnexpectedResponseError) as caught:
        conn.cursor().execute("SELECT count(*) FROM Jobs").fetchall()
    message = str(caught.value)
    assert "more than MaxResponseSize (65,536 bytes)" in message and "Raise MaxResponseSize" in message
    assert ("decompressed" in message) == ("gzip" in how or "deflate" in how)
    assert server.count("GET", "/v2/jobs") == 1  # the same request would get the same answer


def test_a_create_past_max_response_size_is_ambiguous(serve: Callable[..., HostileServer]) -> None:
    server = serve(answering(big_page(1 << 20), method="POST"))
    tasks = '{"import": {"operation": "import/url", "url": "https://example.com/a.pdf"}}'
    with connect(server, MaxResponseSize="64KB") as conn, pytest.raises(apidriver.AmbiguousWriteError, match="MaxResponseSize"):
        conn.cursor().execute(f"INSERT INTO Jobs (tasks) VALUES ('{tasks}')")
    assert server.count("POST") == 1


def test_a_body_within_max_response_size_is_read(serve: Callable[..., HostileServer]) -> None:
    def padded(r: Request, w: Wire) -> bool:
        if r.path != "/v2/jobs":
            return False
        page = jobs_page(r, 10)
        page["pad"] = "x" * 50_000
        w.reply(200, page)
        return True

    server = serve(Scripted(10, padded))
    with connect(server, MaxResponseSize="64KB") as conn:
        assert conn.cursor().execute("SELECT count(*) FROM Jobs").fetchall() == [(10,)]


@pytest.mark.parametrize("value", ["lots", "10", "-1MB", "1.5MB"])
def test_max_response_size_is_checked_at_connect(value: str) -> None:
    with pytest.raises(apidriver.ProgrammingError, match="MaxResponseSize: use") as caught:
        apidriver.connect(APIKey=KEY, BaseURL="http://127.0.0.1:9", MaxResponseSize=value)
    assert value not in str(caught.value)


# The peak is VmHWM, this process's own high-water mark (ru_maxrss would start from the parent's size).
CLIENT = textwrap.dedent(
    """
    import json, sys
    import apidriver

    def peak_kb():
        with open("/proc/self/status") as status:
            return int(next(line for line in status if line.startswith("VmHWM:")).split()[1])

    conn = apidriver.connect(APIKey=sys.argv[2], BaseURL=sys.argv[1], MaxRetries=0, Timeout=30)
    conn.cursor().execute("SELECT 1").fetchall()
    before = peak_kb()
    try:
        conn.cursor().execute("SELECT count(*) FROM Jobs").fetchall()
        outcome = "rows"
    except apidriver.Error as error:
        outcome = type(error).__name__
    print(json.dumps({"before_kb": before, "after_kb": peak_kb(), "outcome": outcome}))
    """
)


@pytest.mark.parametrize(
    ("name", "make", "bound_mb"),
    [
        ("200 KB of gzip inflating to 200 MB", lambda: answering(gzip_of(200 << 20), encoding="gzip"), 64),
        ("50 MB, length declared", lambda: answering(big_page(50 << 20)), 20),
        ("50 MB, chunked", lambda: answering(big_page(50 << 20), chunked=True), 64),
    ],
)
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
def test_memory_stays_bounded(serve: Callable[..., HostileServer], tmp_path: Path, name: str, make: Callable[[], Scripted], bound_mb: int) -> None:
    """With the default MaxResponseSize (32 MB), the client's peak memory grows by far less than the body."""
    server = serve(make())
    script = tmp_path / "client.py"
    script.write_text(CLIENT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, str(script), server.url, KEY], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["outcome"] == "UnexpectedResponseError"
    grown_mb = (figures["after_kb"] - figures["before_kb"]) / 1024
    assert grown_mb < bound_mb, f"{name}: peak RSS grew by {grown_mb:.0f} MB"
