"""One running emulator: the account (:class:`~.backend.Backend`), the control state, the API
keys and the webhook dispatcher, plus what runs on the server's loop besides requests: the
50 ms ticker, the downloads of loopback ``import/url`` tasks, the control API's actions and reset."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from typing import Any

import httpx

from .backend import Backend
from .control import Action, Control
from .models import Task
from .seed import seed as seed_backend
from .webhooks import Dispatcher

ACTION_TASK = {"operation": "import/raw", "file": "made by an action"}  # the one task of jobs an action creates


class Emulation:
    """Everything one running emulator owns."""

    def __init__(
        self,
        backend: Backend,
        control: Control,
        keys: dict[str, frozenset[str]],
        webhook_retry_delay: float = 0.2,
        allow_webhook_hosts: Sequence[str] = (),
    ) -> None:
        self.backend = backend
        self.control = control
        self.keys = keys
        self.dispatcher = Dispatcher(backend, retry_delay=webhook_retry_delay, allow_hosts=allow_webhook_hosts)
        self._background: set[asyncio.Task[None]] = set()

    def run_action(self, action: Action) -> None:
        """Carry out an action of the control API (on the server's loop, between two requests)."""
        b = self.backend
        if action.do == "delete_jobs":
            for job in b.list_jobs(None, None)[action.offset : action.offset + action.count]:
                b.delete_job(job.id)
                action.jobs.append(job.id)
        elif action.do == "create_jobs":
            for number in range(action.count):
                job = b.create_job({"tag": action.tag or "created", "tasks": {"make": dict(ACTION_TASK, filename=f"created-{number}.txt")}})
                action.jobs.append(job.id)
        else:
            b.advance_clock(action.seconds)
        self.dispatcher.drain()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def start_downloads(self, tasks: list[Task]) -> None:
        """Download, in the background, what the loopback ``import/url`` tasks among ``tasks`` name."""
        for task in tasks:
            if task.operation == "import/url" and task.held:
                self.spawn(self.download(task.id, str(task.payload["url"])))

    async def download(self, task_id: str, url: str) -> None:
        b = self.backend
        try:
            async with httpx.AsyncClient(timeout=30) as client:
                response = await client.get(url)
            if response.status_code >= 400:
                b.fetched(task_id, None, f"Could not download the file: the server answered {response.status_code}")
            else:
                b.fetched(task_id, response.content, None)
        except httpx.HTTPError as exc:
            b.fetched(task_id, None, f"Could not download the file: {type(exc).__name__}")

    def reset(self, jobs: int = 0, seed: int = 0) -> None:
        """A new account (seeded with ``jobs`` sample jobs), an empty request log, no faults, the
        clock back at wall-clock time; downloads and webhook deliveries under way are dropped."""
        for task in list(self._background):
            task.cancel()
        self.dispatcher.cancel()
        self.backend.reset()
        self.control.reset()
        if jobs:
            seed_backend(self.backend, jobs, seed, self.backend.now())

    async def ticker(self) -> None:
        while True:
            self.backend.advance()
            self.dispatcher.drain()
            await asyncio.sleep(0.05)
