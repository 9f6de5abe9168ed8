"""Sending the engine's GETs: the connection's client, on its worker pool.

The statement store shares one answer per GET within a statement
(``StatementContext.get``); this is what it sends with, so that the store
needs the client and the pool and nothing else of the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from ..answers import ApiResponse, RequestRecord
from ..cancel import Cancel
from ..client import ApiClient
from .workers import Workers


class Sender:
    """The client and the worker pool of one connection."""

    def __init__(self, client: ApiClient, pool: Workers) -> None:
        self.client = client
        self.pool = pool

    def get(
        self,
        path: str,
        params: list[tuple[str, str]],
        scope: str | None,
        observer: Callable[[RequestRecord], None],
        cancel: Cancel,
        allow_404: bool = False,
        cacheable: bool = True,
    ) -> Future[ApiResponse | None]:
        """A GET on the pool (``observer`` sees each attempt; ``cancel`` stops its waits)."""
        return self.pool.submit(
            self.client.request,
            "GET",
            path,
            params=params,
            scope=scope,
            observer=observer,
            allow_404=allow_404,
            cacheable=cacheable,
            cancel=cancel,
        )

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
        """Run any other work of the connection's requests (a write, a procedure) on the pool."""
        return self.pool.submit(fn, *args, **kwargs)
