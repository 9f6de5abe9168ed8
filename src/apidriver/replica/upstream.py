"""What the replica needs from its caller: an API connection, seen through a small interface it owns.

The replica sits beside the cache, under the connection, and never imports
the connection, the cursor or the cache. Whoever syncs hands it an object
with what a sync reads through (an :class:`apidriver.Connection` is one):
the profile, its API client (retries, pacing, 429s), its settings and the
API's root URL; a follower also runs SQL on it to register its webhook.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from ..client import ApiClient
from ..profiles.base import Profile


class ApiSource(Protocol):
    """What a sync reads the API through."""

    @property
    def profile(self) -> Profile:
        """The API's tables, pagination and ``extras["replica"]`` (how its tables are replicated)."""

    @property
    def client(self) -> ApiClient:
        """The connection's HTTP client: every request of a sync goes through it."""

    @property
    def settings(self) -> Mapping[str, Any]:
        """The connection's properties (a sync reads ``PageSize`` and ``MaxConcurrency``)."""

    @property
    def root_url(self) -> str:
        """The API's root URL: one API clock per API in a process."""


class SqlCursor(Protocol):
    """The part of a DB-API cursor a follower uses."""

    def execute(self, operation: str, parameters: Sequence[Any] | Mapping[str, Any] | None = None) -> object: ...

    def fetchone(self) -> tuple[Any, ...] | None: ...


class ApiConnection(ApiSource, Protocol):
    """An :class:`ApiSource` that also runs SQL on the API's tables (a follower's webhook: ``INSERT INTO Webhooks``)."""

    def cursor(self) -> SqlCursor: ...
