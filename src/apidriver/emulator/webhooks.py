"""Outgoing webhook deliveries, signed as CloudConvert signs them.

The body is the JSON ``{"event": ..., "job": {...}}``, written as the main
host writes JSON (compact, ``\\/`` escapes: the recorded .NET body is byte
for byte what :func:`.models.encode` makes of it); the
``CloudConvert-Signature`` header is the lowercase hex HMAC-SHA256 of the
exact body bytes keyed with the webhook's signing secret. A delivery is
retried 3 times (4 attempts) on a network error or a 5xx answer; a ``410``
disables the webhook; other 4xx answers are final. Hosts under the reserved
``.invalid`` domain (used by the seeded webhooks) count as unreachable
without any network traffic.

The emulator never calls the internet by default: deliveries go only to
loopback addresses (``127.0.0.0/8``, ``::1``, ``localhost`` and names under
``.localhost``). Any other host counts as unreachable, without any network
traffic, unless it is allowed (``allow_hosts``: ``--allow-webhook-host HOST``,
``*`` for every host).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import time
from collections.abc import Iterable
from urllib.parse import urlsplit

import httpx

from .backend import Backend, Event
from .models import encode


def sign(body: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine without asking DNS: a loopback address or ``localhost``."""
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Dispatcher:
    def __init__(self, backend: Backend, retry_delay: float = 0.2, timeout: float = 5.0, allow_hosts: Iterable[str] = ()) -> None:
        self.backend = backend
        self.retry_delay = retry_delay
        self.timeout = timeout
        self.allow_hosts = frozenset(h.strip("[]").lower().rstrip(".") for h in allow_hosts)
        self._client: httpx.AsyncClient | None = None
        self._running: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=self.timeout)

    def cancel(self) -> None:
        """Drop the deliveries under way (their events are not recorded)."""
        for task in list(self._running):
            task.cancel()

    async def stop(self) -> None:
        self.cancel()
        if self._client is not None:
            await self._client.aclose()

    def drain(self) -> None:
        """Start sending every queued event (called from the event loop)."""
        while self.backend.outbox:
            event = self.backend.outbox.pop(0)
            task = asyncio.get_running_loop().create_task(self.deliver(event))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    def allowed(self, host: str) -> bool:
        """Whether a delivery may go to ``host``: loopback always, others only when allowed."""
        return is_loopback(host) or "*" in self.allow_hosts or host.lower().rstrip(".") in self.allow_hosts

    async def deliver(self, event: Event) -> None:
        body = encode(event.body)  # byte for byte as the main host would send it
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "CloudConvert-Webhook (apidriver emulator)",
            "CloudConvert-Signature": sign(body, event.secret),
        }
        hook = self.backend.webhooks.get(event.webhook_id) if event.webhook_id is not None else None
        for attempt in range(4):
            status: int | None = None
            error: str | None = None
            host = urlsplit(event.url).hostname or ""
            if host.endswith(".invalid"):
                error = f"could not resolve host {host}"
            elif not self.allowed(host):
                error = f"not delivered: the emulator delivers only to loopback addresses unless --allow-webhook-host {host} allows it"
            else:
                assert self._client is not None
                try:
                    response = await self._client.post(event.url, content=body, headers=headers)
                    status = response.status_code
                except httpx.HTTPError as exc:
                    error = f"{type(exc).__name__}: {exc}"
            event.attempts.append({"at": time.time(), "status": status, "error": error})
            if status is not None and status < 300:
                if hook is not None:
                    hook.failing = False
                break
            if hook is not None:
                hook.failing = True
                hook.updated_at = time.time()
            if status == 410:
                if hook is not None:
                    hook.disabled = True
                break
            if status is not None and status < 500:
                break
            if attempt < 3:
                await asyncio.sleep(self.retry_delay * (attempt + 1))
        self.backend.deliveries.append(event)
