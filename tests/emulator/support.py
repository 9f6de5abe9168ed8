"""Helpers shared by the emulator tests: clients, waiting, job bodies, a local HTTP receiver."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx

from apidriver.emulator import Emulator

T = TypeVar("T")
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cloudconvert"


def client(emu: Emulator, key: str | None = "", *, sync: bool = False, timeout: float = 10.0) -> httpx.Client:
    """An httpx client for ``emu``'s API (``/v2`` or the sync ``/sync/v2``).

    ``key=""`` means the emulator's main key, ``None`` sends no Authorization.
    """
    headers = {} if key is None else {"Authorization": f"Bearer {key or emu.api_key}"}
    base = emu.base_url + ("/sync/v2" if sync else "/v2")
    return httpx.Client(base_url=base, headers=headers, timeout=timeout)


def wait_until(check: Callable[[], T | None], timeout: float = 5.0, interval: float = 0.01, what: str = "condition") -> T:
    """Poll ``check`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def conversion_tasks(url: str = "https://files.example.com/report.docx", output_format: str = "pdf") -> dict[str, Any]:
    """The classic three-task job: import/url → convert → export/url."""
    return {
        "import-it": {"operation": "import/url", "url": url},
        "convert-it": {"operation": "convert", "input": "import-it", "output_format": output_format},
        "export-it": {"operation": "export/url", "input": ["convert-it"]},
    }


def create_job(api: httpx.Client, tasks: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """POST /v2/jobs and return the created job (asserting the 201)."""
    response = api.post("/jobs", json={"tasks": tasks or conversion_tasks(), **extra})
    assert response.status_code == 201, response.text
    job: dict[str, Any] = response.json()["data"]
    return job


def wait_job(emu: Emulator, job_id: str) -> dict[str, Any]:
    """The job once ended, read through the sync host (which blocks)."""
    with client(emu, sync=True) as sync:
        response = sync.get(f"/jobs/{job_id}")
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()["data"]
    assert job["status"] in ("finished", "error"), job["status"]
    return job


def task_named(job: dict[str, Any], name: str) -> dict[str, Any]:
    matches: list[dict[str, Any]] = [t for t in job["tasks"] if t["name"] == name]
    assert len(matches) == 1, f"no single task named {name!r} in {[t['name'] for t in job['tasks']]}"
    return matches[0]


def upload(form: dict[str, Any], filename: str, data: bytes, content_type: str = "application/octet-stream") -> httpx.Response:
    """POST a file to an import/upload form as a browser or SDK would: parameters plus ``file``."""
    return httpx.post(form["url"], data=form["parameters"], files={"file": (filename, data, content_type)}, timeout=10)


def closed_port() -> int:
    """A loopback port with nothing listening on it (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def all_pages(api: httpx.Client, path: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every item of a paginated list, following ``links.next`` (re-sending the filters)."""
    items: list[dict[str, Any]] = []
    page = 1
    while True:
        body = api.get(path, params={**(params or {}), "page": page}).json()
        items.extend(body["data"])
        if body["links"]["next"] is None:
            return items
        page += 1
        assert page < 1000, "pagination does not end"


@dataclass
class Received:
    """One request a :class:`Receiver` got."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """A tiny HTTP server on 127.0.0.1 standing in for a webhook receiver or a file host.

    ``statuses`` are answered to POSTs in turn (the last one repeats); GETs of
    a path in ``files`` are answered with its bytes.
    """

    def __init__(self, statuses: Sequence[int] = (200,), files: dict[str, bytes] | None = None) -> None:
        self.statuses = list(statuses)
        self.files = dict(files or {})
        self.received: list[Received] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _record(self) -> Received:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                item = Received(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with outer._lock:
                    outer.received.append(item)
                return item

            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                with outer._lock:
                    status = outer.statuses.pop(0) if len(outer.statuses) > 1 else outer.statuses[0]
                self._record()
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def do_GET(self) -> None:  # noqa: N802
                self._record()
                data = outer.files.get(self.path.split("?")[0])
                self.send_response(200 if data is not None else 404)
                self.send_header("Content-Length", str(len(data or b"")))
                self.end_headers()
                self.wfile.write(data or b"")

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def posts(self, path: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.method == "POST" and (path is None or r.path == path)]

    def wait_posts(self, count: int, path: str | None = None, timeout: float = 5.0) -> list[Received]:
        """Wait until at least ``count`` POSTs (to ``path``) arrived; return them all."""
        return wait_until(
            lambda: p if len(p := self.posts(path)) >= count else None, timeout, what=f"{count} POST(s) to {path or self.url}"
        )

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
