"""Running the emulator: :class:`Emulator` serves one on a free port, in a thread of this process or
(:meth:`Emulator.serve_forever`, the command line) in this thread, on a uvicorn server that stops fast."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import threading
import time
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any

import httpx
import uvicorn

from .app import build_app
from .backend import Backend
from .control import DEFAULT_RATE_LIMIT, Action, Control, Fault
from .emulation import Emulation
from .keys import DEFAULT_API_KEY, SCOPES
from .seed import seed as seed_backend

SHUTDOWN_GRACE_SECONDS = 1


class _Server(uvicorn.Server):
    """uvicorn's server, but :meth:`Emulator.stop` takes milliseconds instead of ~0.15 s.

    uvicorn notices ``should_exit`` on a 0.1 s tick and then always sleeps
    0.1 s for connections to close; test suites start and stop hundreds of
    emulators. Here :meth:`request_exit` wakes the main loop at once, and
    shutdown waits for open connections only while there are some (at most
    the same 0.1 s). Everything else is uvicorn's own shutdown; with a uvicorn
    whose internals differ, this falls back to it entirely.
    """

    _loop: asyncio.AbstractEventLoop | None = None
    _wake: asyncio.Event | None = None

    def request_exit(self) -> None:
        """Ask the server to stop (from any thread)."""
        self.should_exit = True
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            try:
                loop.call_soon_threadsafe(wake.set)
            except RuntimeError:  # the loop already closed: the server is gone
                pass

    async def main_loop(self) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 1) % 864000
            try:
                await asyncio.wait_for(self._wake.wait(), 0.1)
            except TimeoutError:
                pass
            should_exit = await self.on_tick(counter)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        state = getattr(self, "server_state", None)
        servers = getattr(self, "servers", None)
        wait_tasks = getattr(self, "_wait_tasks_to_complete", None)
        if state is None or servers is None or wait_tasks is None or not hasattr(self, "lifespan"):
            await super().shutdown(sockets)
            return
        for server in servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(state.connections):
            connection.shutdown()
        deadline = time.monotonic() + 0.1
        while state.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.002)
        try:
            await asyncio.wait_for(wait_tasks(), timeout=self.config.timeout_graceful_shutdown)
        except TimeoutError:
            for task in state.tasks:
                task.cancel(msg="Task cancelled, timeout graceful shutdown exceeded")
        if not self.force_exit:
            await self.lifespan.shutdown()


class Emulator:
    """A CloudConvert API v2 emulator serving on a free port of 127.0.0.1.

    >>> with Emulator(jobs=20, seed=1) as emu:
    ...     emu.base_url        # 'http://127.0.0.1:41234' (the API is under /v2)
    ...     emu.requests()      # the request log, as GET /_emulator/requests

    ``scoped_keys`` maps further API keys to the scopes they carry; the main
    ``api_key`` has every scope. ``rate_limit`` is 500 requests a minute per
    method, as the recorded API says; ``rate_limit=0`` turns it off (for
    benchmarks and tests that make many requests). ``job_webhook_secret``
    signs per-job ``webhook_url`` deliveries (random unless given; also at
    ``GET /_emulator/secrets``). Webhook deliveries go only to loopback
    addresses unless ``allow_webhook_hosts`` names the host (``"*"``: any).
    ``keep_history`` remembers every job it ever had (:meth:`history`).
    """

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        scoped_keys: dict[str, Iterable[str]] | None = None,
        jobs: int = 0,
        seed: int = 0,
        latency_ms: float = 0,
        rate_limit: int | None = DEFAULT_RATE_LIMIT,
        rate_window: float = 60.0,
        task_seconds: float = 1.0,
        credits: int = 2500,
        retention_hours: float = 24.0,
        host: str = "127.0.0.1",
        port: int = 0,
        webhook_retry_delay: float = 0.2,
        job_webhook_secret: str | None = None,
        allow_webhook_hosts: Sequence[str] = (),
        keep_history: bool = False,
    ) -> None:
        self.api_key = api_key
        keys = {api_key: frozenset(SCOPES)}
        for key, scopes in (scoped_keys or {}).items():
            keys[key] = frozenset(scopes)
        self.backend = Backend(task_seconds=task_seconds, credits=credits, retention_hours=retention_hours, keep_history=keep_history)
        if job_webhook_secret:
            self.backend.job_webhook_secret = job_webhook_secret
        self.control = Control(latency_ms=latency_ms, rate_limit=rate_limit, rate_window=rate_window, seed=seed)
        self.emulation = Emulation(self.backend, self.control, keys, webhook_retry_delay, allow_webhook_hosts)
        self._host = host
        self._port = port
        self._jobs = jobs
        self._seed = seed
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self.base_url = ""

    @property
    def api_url(self) -> str:
        return self.base_url + "/v2"

    @property
    def job_webhook_secret(self) -> str:
        """The secret that signs per-job ``webhook_url`` deliveries (``CloudConvert-Signature``)."""
        return self.backend.job_webhook_secret

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted
        # sockets whose proto says TCP, and without it Nagle's algorithm plus
        # delayed ACKs add ~40 ms to every request on a kept-alive connection.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        sock.listen(128)
        sock.setblocking(False)
        port = sock.getsockname()[1]
        shown = "127.0.0.1" if self._host in ("0.0.0.0", "") else f"[{self._host}]" if ":" in self._host else self._host
        self.base_url = f"http://{shown}:{port}"
        self.backend.root_url = self.base_url
        return sock

    def _prepare(self) -> _Server:
        self._socket = self._bind()
        if self._jobs:
            seed_backend(self.backend, self._jobs, self._seed, self.backend.now())
        # timeout_graceful_shutdown: a stalled request (the ``stall`` fault) or a
        # sync wait on a task that never ends must not hold stop() up.
        config = uvicorn.Config(
            build_app(self.emulation),
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_keep_alive=30,
            timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
            date_header=False,  # the middleware dates answers on the emulator's clock
        )
        self._server = _Server(config)
        return self._server

    def start(self) -> Emulator:
        server = self._prepare()
        assert self._socket is not None
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
            self._server.request_exit()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted (the command-line form).

        Prints the root URL on the first line of stdout, then
        ``job_webhook_secret=<secret>`` for receivers in other processes.
        """
        server = self._prepare()
        assert self._socket is not None
        print(self.base_url, flush=True)
        print(f"job_webhook_secret={self.job_webhook_secret}", flush=True)
        asyncio.run(server.serve(sockets=[self._socket]))

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    # -- control API (the same as /_emulator/...) -------------------------------------------------
    def requests(self) -> list[dict[str, Any]]:
        """The API requests served so far: method, path (decoded), raw_path (as sent), query, params, status, fault."""
        return self.control.requests()

    def pending_requests(self) -> list[dict[str, Any]]:
        """The API requests under way (arrived, not answered yet): a ``stall``, a sync wait."""
        return self.control.pending()

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
        query: str | None = None,
        retry_after: float = 1.0,
    ) -> None:
        """Make matching requests fail; see :mod:`apidriver.emulator.control`."""
        self.control.add_fault(
            Fault(
                kind=str(kind), path=path, method=method, count=count, rate=rate, stall_seconds=stall_seconds,
                query=query, retry_after=retry_after,
            )
        )

    def clear_faults(self) -> None:
        self.control.clear_faults()

    def add_action(
        self,
        do: str,
        path: str = "/",
        method: str | None = None,
        query: str | None = None,
        after: int = 1,
        count: int = 1,
        offset: int = 0,
        seconds: float = 0.0,
        tag: str | None = None,
    ) -> None:
        """Change the account once the ``after``-th matching request has been answered; see
        :mod:`apidriver.emulator.control` (``delete_jobs``, ``create_jobs``, ``advance_clock``)."""
        self.control.add_action(
            Action(do=do, path=path, method=method, query=query, after=after, count=count, offset=offset, seconds=seconds, tag=tag)
        )

    def actions(self) -> list[dict[str, Any]]:
        """The actions given so far: whether each was done, and the job ids it deleted or created."""
        return self.control.actions()

    def history(self) -> dict[str, Any]:
        """Every job the emulator ever had (with ``keep_history``), as ``GET /_emulator/history`` answers:
        ``jobs`` (those it has) and ``removed`` (deleted or expired: ``reason``, ``at``), each with ``job``
        (its state) and ``shown`` (the last state an answer or a webhook delivery showed)."""
        response = httpx.get(self.base_url + "/_emulator/history", timeout=60)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def advance_clock(self, seconds: float) -> dt.datetime:
        """Move the emulator's clock forward (as ``POST /_emulator/clock``); returns the new time.

        Tasks progress, new objects get later timestamps, jobs and tasks that
        ended more than the retention ago are deleted, export URLs expire.
        """
        response = httpx.post(self.base_url + "/_emulator/clock", json={"advance": seconds}, timeout=30)
        if response.status_code != 200:
            raise ValueError(response.json()["message"])
        return dt.datetime.fromisoformat(response.json()["now"])

    def reset(self, jobs: int = 0, seed: int = 0) -> None:
        """Start over (as ``POST /_emulator/reset``): a new account seeded with ``jobs`` sample
        jobs, an empty request log, no faults, the clock at wall-clock time. Keys, settings,
        the URL and the job webhook secret stay: one running emulator serves test after test.

        Runs on the server's event loop, which owns the account's state, without an HTTP
        round trip (a new HTTP client costs tens of milliseconds: this runs before every test).
        """
        if jobs < 0:
            raise ValueError("jobs: 0 or more sample jobs to seed")
        loop = self._server._loop if self._server is not None else None
        if loop is None or self._thread is None or not self._thread.is_alive():
            raise RuntimeError("the emulator is not running: start() it first")

        async def reset() -> None:
            self.emulation.reset(jobs, seed)

        asyncio.run_coroutine_threadsafe(reset(), loop).result(timeout=30)

    def clock(self) -> dt.datetime:
        """The emulator's current time (aware UTC), as ``GET /_emulator/clock``."""
        return dt.datetime.fromtimestamp(self.backend.now(), dt.timezone.utc)

    def deliveries(self) -> list[dict[str, Any]]:
        """Webhook deliveries finished so far, with their attempts."""
        return [
            {"event": d.event, "url": d.url, "webhook_id": d.webhook_id, "attempts": list(d.attempts)}
            for d in list(self.backend.deliveries)
        ]
