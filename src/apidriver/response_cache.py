"""``CacheTTL``: GET answers kept across statements and connections of a process, per credentials."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from .answers import ApiResponse


class ResponseCache:
    """GET answers kept across statements (``CacheTTL``), shared by the connections of a process.

    Entries are keyed by a hash of the credentials and API root plus the full
    URL, so answers are never shared across API keys. A successful write
    through a connection drops every entry of its credentials.
    """

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str], tuple[float, ApiResponse]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, owner: str, url: str, ttl: float) -> ApiResponse | None:
        with self._lock:
            hit = self._entries.get((owner, url))
            if hit is None:
                return None
            if time.monotonic() - hit[0] > ttl:
                del self._entries[(owner, url)]
                return None
            self._entries.move_to_end((owner, url))
            return hit[1]

    def put(self, owner: str, url: str, response: ApiResponse) -> None:
        with self._lock:
            self._entries[(owner, url)] = (time.monotonic(), response)
            self._entries.move_to_end((owner, url))
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self, owner: str | None = None) -> None:
        with self._lock:
            if owner is None:
                self._entries.clear()
            else:
                for key in [k for k in self._entries if k[0] == owner]:
                    del self._entries[key]


CACHE = ResponseCache()


def clear_cache() -> None:
    """Drop every cached GET answer (of every connection of this process)."""
    CACHE.clear()
