"""Running the emulator: in-process (:class:`Emulator`) or as a command."""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any

import uvicorn

from .app import SCOPES, Emulation, build_app
from .backend import Backend
from .control import Control, Fault
from .seed import seed as seed_backend

DEFAULT_API_KEY = "emulator-key"


class Emulator:
    """A CloudConvert API v2 emulator serving on a free port of 127.0.0.1.

    >>> with Emulator(jobs=20, seed=1) as emu:
    ...     emu.base_url        # 'http://127.0.0.1:41234' (the API is under /v2)
    ...     emu.requests()      # the request log, as GET /_emulator/requests

    ``scoped_keys`` maps further API keys to the scopes they carry; the main
    ``api_key`` has every scope.
    """

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        scoped_keys: dict[str, Iterable[str]] | None = None,
        jobs: int = 0,
        seed: int = 0,
        latency_ms: float = 0,
        rate_limit: int | None = None,
        rate_window: float = 60.0,
        task_seconds: float = 1.0,
        credits: int = 2500,
        host: str = "127.0.0.1",
        port: int = 0,
        webhook_retry_delay: float = 0.2,
    ) -> None:
        self.api_key = api_key
        keys = {api_key: frozenset(SCOPES)}
        for key, scopes in (scoped_keys or {}).items():
            keys[key] = frozenset(scopes)
        self.backend = Backend(task_seconds=task_seconds, credits=credits)
        self.control = Control(latency_ms=latency_ms, rate_limit=rate_limit, rate_window=rate_window, seed=seed)
        self.emulation = Emulation(self.backend, self.control, keys, webhook_retry_delay)
        self._host = host
        self._port = port
        self._jobs = jobs
        self._seed = seed
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self.base_url = ""

    @property
    def api_url(self) -> str:
        return self.base_url + "/v2"

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        sock.listen(128)
        sock.setblocking(False)
        port = sock.getsockname()[1]
        shown = "127.0.0.1" if self._host in ("0.0.0.0", "") else f"[{self._host}]" if ":" in self._host else self._host
        self.base_url = f"http://{shown}:{port}"
        self.backend.root_url = self.base_url
        return sock

    def _prepare(self) -> uvicorn.Server:
        self._socket = self._bind()
        if self._jobs:
            seed_backend(self.backend, self._jobs, self._seed, time.time())
        config = uvicorn.Config(
            build_app(self.emulation), log_level="warning", access_log=False, lifespan="on", timeout_keep_alive=30
        )
        self._server = uvicorn.Server(config)
        return self._server

    def start(self) -> Emulator:
        server = self._prepare()
        sockets = [self._socket]
        self._thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=sockets)), name="cloudconvert-emulator", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the emulator did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted (the command-line form)."""
        server = self._prepare()
        print(self.base_url, flush=True)
        asyncio.run(server.serve(sockets=[self._socket]))

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    # -- control API (the same as /_emulator/...) -------------------------------------------------
    def requests(self) -> list[dict[str, Any]]:
        """The API requests served so far: method, path, query, params, status, fault."""
        return self.control.requests()

    def clear_requests(self) -> None:
        self.control.clear_requests()

    def add_fault(
        self,
        kind: str,
        path: str = "/",
        method: str | None = None,
        count: int | None = None,
        rate: float | None = None,
        stall_seconds: float = 30.0,
    ) -> None:
        """Make matching requests fail; see :mod:`apidriver.emulator.control`."""
        self.control.add_fault(Fault(kind=str(kind), path=path, method=method, count=count, rate=rate, stall_seconds=stall_seconds))

    def clear_faults(self) -> None:
        self.control.clear_faults()

    def deliveries(self) -> list[dict[str, Any]]:
        """Webhook deliveries finished so far, with their attempts."""
        return [
            {"event": d.event, "url": d.url, "webhook_id": d.webhook_id, "attempts": list(d.attempts)}
            for d in list(self.backend.deliveries)
        ]


def _scoped(value: str) -> tuple[str, list[str]]:
    key, sep, scopes = value.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError("use KEY=scope,scope (e.g. readonly=task.read,user.read)")
    names = [s.strip() for s in scopes.split(",") if s.strip()]
    unknown = [s for s in names if s not in SCOPES]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(SCOPES)}")
    return key, names


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m apidriver.emulator",
        description="A local CloudConvert API v2. Prints its root URL on the first line of stdout; the API is under /v2.",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    p.add_argument("--api-key", default=DEFAULT_API_KEY, help=f"key with every scope (default {DEFAULT_API_KEY})")
    p.add_argument("--scoped-key", type=_scoped, action="append", default=[], metavar="KEY=SCOPE,...", help="a key with only these scopes; repeatable")
    p.add_argument("--jobs", type=int, default=0, help="seed this many jobs (default 0)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the sample data")
    p.add_argument("--latency-ms", type=float, default=0, help="delay added to every request")
    p.add_argument("--rate-limit", type=int, default=0, help="API requests per window (minute) per account; 0 = unlimited")
    p.add_argument("--rate-window", type=float, default=60.0, help="length of the rate-limit window in seconds (default 60)")
    p.add_argument("--task-seconds", type=float, default=1.0, help="how long each task processes (default 1)")
    p.add_argument("--credits", type=int, default=2500, help="conversion credits of the account")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    emulator = Emulator(
        api_key=args.api_key,
        scoped_keys=dict(args.scoped_key),
        jobs=args.jobs,
        seed=args.seed,
        latency_ms=args.latency_ms,
        rate_limit=args.rate_limit or None,
        rate_window=args.rate_window,
        task_seconds=args.task_seconds,
        credits=args.credits,
        host=args.host,
        port=args.port,
    )
    try:
        emulator.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
