"""Reading the API for a sync: list pages (fetched ahead), single objects by key, request counts.

Requests go through the connection's :class:`~apidriver.client.ApiClient`,
so they are retried, paced by ``X-RateLimit-Remaining`` and wait out 429s
like every query. Pages are fetched ahead on a small thread pool (up to
``MaxConcurrency`` at once, the window growing 1, 2, 4, ... while pages come
back full) and handed out in order.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ..client import ApiClient, ApiResponse, RequestRecord
from ..engine.schema import Endpoint, Pagination
from ..engine.streams import PageRepeats, has_more, list_params, page_data

Obj = dict[str, Any]


@dataclass
class Page:
    number: int
    objects: list[Obj]
    more: bool


class ApiReader:
    """The requests of one sync (or one table of it), counted."""

    def __init__(
        self,
        client: ApiClient,
        pagination: Pagination,
        page_size: int,
        concurrency: int,
        observer: Callable[[RequestRecord], None] | None = None,
    ) -> None:
        self.client = client
        self.pagination = pagination
        self.size = min(page_size, pagination.max_size) if pagination.max_size else page_size
        self.concurrency = max(1, concurrency)
        self.observer = observer
        self.requests = 0
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="apidriver-sync")

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _observe(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests += 1
        if self.observer is not None:
            self.observer(record)

    # -- lists -----------------------------------------------------------------------------------

    def fetch_page(self, endpoint: Endpoint, includes: Iterable[str], number: int, filters: Mapping[str, str] | None = None) -> Page:
        params = list_params(endpoint, includes, filters)
        if endpoint.paginated:
            params += [(self.pagination.page_param, str(number)), (self.pagination.size_param, str(self.size))]
        response = self.client.request("GET", endpoint.path, params=params, scope=endpoint.scope, observer=self._observe)
        body = response.body if response is not None else None
        status = response.status if response is not None else None
        objects = page_data(body, endpoint.path, status, endpoint.paginated)  # objects, or it raises
        return Page(number, objects, endpoint.paginated and has_more(self.pagination, body, objects, self.size))

    def pages(
        self,
        endpoint: Endpoint,
        includes: Iterable[str],
        first: int = 1,
        wanted: Callable[[Page], bool] = lambda page: True,
        expected: int | None = None,
        filters: Mapping[str, str] | None = None,
    ) -> Iterator[Page]:
        """Pages from ``first`` on, in order, until the last one or until ``wanted(page)`` is false.

        Pages after one that comes back full are requested ahead; those not
        needed in the end are cancelled (or their answers dropped). With
        ``expected`` (how many pages the list is thought to have), pages past
        it are requested one at a time, so a good guess wastes nothing.
        """
        includes = tuple(includes)
        futures: dict[int, Future[Page]] = {}
        # Page 1 alone; then the window doubles once per round (when the page at ``mark`` arrives),
        # as the engine's list streams do: a short list wastes a request or two, a long one runs
        # ``concurrency`` pages at a time.
        window, mark, number = 1, first, first
        repeats = PageRepeats()  # a server that ignores the page parameter must not make a sync endless
        try:
            while True:
                top = number + window
                if expected is not None and number <= expected:
                    top = min(top, expected + 1)
                for ahead in range(number, max(top, number + 1)):
                    if ahead not in futures:
                        futures[ahead] = self._pool.submit(self.fetch_page, endpoint, includes, ahead, filters)
                page = futures.pop(number).result()
                repeats.check(page.objects, number, endpoint.path)
                yield page
                if not page.more or not wanted(page):
                    return
                if number >= mark:
                    window = min(window * 2, self.concurrency)
                    mark = number + window
                number += 1
        finally:
            for future in futures.values():
                future.cancel()

    # -- single objects -----------------------------------------------------------------------------

    def get(self, endpoint: Endpoint, key: Any, includes: Iterable[str]) -> Obj | None:
        """One object by key; None when the API answers 404 (it is gone)."""
        path = endpoint.path.replace("{key}", quote(str(key), safe=""))
        response: ApiResponse | None = self.client.request(
            "GET", path, params=list_params(endpoint, includes), scope=endpoint.scope, observer=self._observe, allow_404=True
        )
        body = response.body if response is not None else None
        data = body.get("data") if isinstance(body, Mapping) else None
        return data if isinstance(data, dict) else None

    def get_many(self, endpoint: Endpoint, keys: Iterable[Any], includes: Iterable[str]) -> Iterator[tuple[Any, Obj | None]]:
        """Objects by key, fetched concurrently, handed out in the order of ``keys``."""
        includes = tuple(includes)
        futures = [(key, self._pool.submit(self.get, endpoint, key, includes)) for key in keys]
        try:
            for key, future in futures:
                yield key, future.result()
        finally:
            for _, future in futures:
                future.cancel()
