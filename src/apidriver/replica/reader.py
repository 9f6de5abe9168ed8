"""Reading the API for a sync: pages of lists, runs of plain pages, objects by key, every request counted.

Requests go through the connection's :class:`~apidriver.client.ApiClient`,
so they are retried, paced by ``X-RateLimit-Remaining`` and wait out 429s
like every query. Pages are fetched ahead on a small thread pool (up to
``MaxConcurrency`` at once, the window growing 1, 2, 4, ... while pages come
back full) and handed out in order. Every answer's ``Date`` header teaches
the API's clock (:mod:`.clock`), and every answer is dated by when its
request went out. Reading a list whole under concurrent changes is
:class:`~.scan.Scan`'s business; it reads through an :class:`ApiReader`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar
from urllib.parse import quote

from .. import exceptions as exc
from ..answers import ApiResponse, RequestRecord
from ..client import ApiClient
from ..engine.schema import Endpoint, Pagination
from ..engine.pages import PageRepeats, has_more, list_params, object_data, page_data
from .clock import ApiClock, Moment

Obj = dict[str, Any]
P = ParamSpec("P")
T = TypeVar("T")


@dataclass
class Page:
    """One answer of a list: its rows, whether the list goes on, when its request went out."""

    number: int
    objects: list[Obj]
    more: bool
    observed: Moment
    accepted: bool = True  # (scans) part of the chain of windows that proves the scan complete


def drain(futures: dict[int, Future[Page]]) -> Iterator[Page]:
    """The pages already asked for and no longer needed: those under way are awaited and handed out
    (not accepted), so that every answer the API gave is written; the others are cancelled."""
    pending = sorted(futures.items())
    futures.clear()
    for _, future in pending:
        if future.cancel():
            continue
        try:
            page = future.result()
        except exc.Error:
            continue  # a page no longer needed: its failure changes nothing
        page.accepted = False
        yield page


class ApiReader:
    """The requests of one sync (or one table of it), counted."""

    def __init__(
        self,
        client: ApiClient,
        pagination: Pagination,
        page_size: int,
        concurrency: int,
        observer: Callable[[RequestRecord], None] | None = None,
        clock: ApiClock | None = None,
    ) -> None:
        self.client = client
        self.pagination = pagination
        self.size = min(page_size, pagination.max_size) if pagination.max_size else page_size
        self.concurrency = max(1, concurrency)
        self.observer = observer
        self.clock = clock or ApiClock()
        self.requests = 0
        self.rereads = 0  # windows read again by scans, as the list shifted under them
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="apidriver-sync")

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def submit(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Run ``fn`` on the reader's request threads (at most ``concurrency`` at once)."""
        return self._pool.submit(fn, *args, **kwargs)

    def count_reread(self) -> None:
        """Count a window a scan read again (``rereads``)."""
        with self._lock:
            self.rereads += 1

    def _observe(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests += 1
        if self.observer is not None:
            self.observer(record)

    def _get(self, path: str, params: list[tuple[str, str]], scope: str | None, allow_404: bool = False) -> tuple[ApiResponse | None, Moment]:
        """One GET and when it went out (the answer shows the object at that moment or later)."""
        sent = time.time()
        response = self.client.request("GET", path, params=params, scope=scope, observer=self._observe, allow_404=allow_404)
        self.clock.learn(response.headers if response is not None else None, sent, time.time())
        return response, self.clock.moment(sent)

    # -- lists -----------------------------------------------------------------------------------

    def fetch_page(
        self, endpoint: Endpoint, includes: Iterable[str], number: int, filters: Mapping[str, str] | None = None, size: int | None = None
    ) -> Page:
        """Page ``number`` of ``size`` rows (the reader's page size by default)."""
        size = size or self.size
        params = list_params(endpoint, includes, filters)
        if endpoint.paginated:
            params += [(self.pagination.page_param, str(number)), (self.pagination.size_param, str(size))]
        response, observed = self._get(endpoint.path, params, endpoint.scope)
        body = response.body if response is not None else None
        status = response.status if response is not None else None
        objects = page_data(body, endpoint.path, status, endpoint.paginated)  # objects, or it raises
        return Page(number, objects, endpoint.paginated and has_more(self.pagination, body, objects, size), observed)

    def pages(
        self,
        endpoint: Endpoint,
        includes: Iterable[str],
        first: int = 1,
        wanted: Callable[[Page], bool] = lambda page: True,
        expected: int | None = None,
        filters: Mapping[str, str] | None = None,
    ) -> Iterator[Page]:
        """Plain pages from ``first`` on, in order, until the last one or until ``wanted(page)`` is false.

        Not complete under concurrent changes (see :class:`~.scan.Scan`): for lists whose
        misses are caught otherwise (the open rows of a status, read by key after).
        Pages after one that comes back full are requested ahead; those not
        needed in the end are cancelled (or their answers dropped). With
        ``expected`` (how many pages the list is thought to have), pages past
        it are requested one at a time, so a good guess wastes nothing.
        """
        includes = tuple(includes)
        futures: dict[int, Future[Page]] = {}
        window, mark, number = 1, first, first
        repeats = PageRepeats()  # a server that ignores the page parameter must not make a sync endless
        try:
            while True:
                top = number + window
                if expected is not None and number <= expected:
                    top = min(top, expected + 1)
                for ahead in range(number, max(top, number + 1)):
                    if ahead not in futures:
                        futures[ahead] = self.submit(self.fetch_page, endpoint, includes, ahead, filters)
                page = futures.pop(number).result()
                repeats.check(page.objects, number, endpoint.path)
                yield page
                if not page.more or not wanted(page):
                    yield from drain(futures)  # (pages read ahead: written too, every answer is)
                    return
                if number >= mark:
                    window = min(window * 2, self.concurrency)
                    mark = number + window
                number += 1
        finally:
            for future in futures.values():
                future.cancel()

    # -- single objects -----------------------------------------------------------------------------

    def get(self, endpoint: Endpoint, key: Any, includes: Iterable[str]) -> tuple[Obj | None, Moment]:
        """One object by key (None when the API answers 404: it is gone), and when it was asked."""
        path = endpoint.path.replace("{key}", quote(str(key), safe=""))
        response, observed = self._get(path, list_params(endpoint, includes), endpoint.scope, allow_404=True)
        if response is None:
            return None, observed
        return object_data(response.body, response.url or path, response.status), observed  # an object, or it raises

    def get_many(self, endpoint: Endpoint, keys: Iterable[Any], includes: Iterable[str]) -> Iterator[tuple[Any, Obj | None, Moment]]:
        """Objects by key, fetched concurrently, handed out in the order of ``keys``."""
        includes = tuple(includes)
        futures = [(key, self.submit(self.get, endpoint, key, includes)) for key in keys]
        try:
            for key, future in futures:
                obj, observed = future.result()
                yield key, obj, observed
        finally:
            for _, future in futures:
                future.cancel()
