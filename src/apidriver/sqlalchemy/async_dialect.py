"""The asyncio dialects ``api+async://`` and ``cloudconvert+async://``, for ``create_async_engine``.

The same URLs, properties, types and reflection as the sync dialects; the
DB-API calls go through :mod:`.async_dbapi`, one worker thread per pooled
connection, so statements of many tasks run at the same time without
blocking the event loop; connections are opened (and their threads started)
off the loop too, so a cold pool does not stall it. Needs greenlet (``pip install apidriver[async]``),
as every SQLAlchemy async dialect does.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import pool
from sqlalchemy.engine import URL

from .async_dbapi import AsyncDBAPI
from .compat import SQLALCHEMY_1
from .dialect import APIDialect, APIExecutionContext

__all__ = ["AsyncAPIDialect", "AsyncCloudConvertDialect"]


class AsyncAPIExecutionContext(APIExecutionContext):
    def create_server_side_cursor(self) -> Any:
        """``stream()`` and ``yield_per``: rows fetched batch by batch on the connection's worker."""
        return self._dbapi_connection.cursor(server_side=True)


class AsyncAPIDialect(APIDialect):
    """``api+async:///?Profile=...``: :class:`APIDialect` for asyncio."""

    driver = "apidriver_async"
    is_async = True
    supports_statement_cache = True
    supports_server_side_cursors = True
    execution_ctx_cls = AsyncAPIExecutionContext

    @classmethod
    def import_dbapi(cls) -> Any:
        return AsyncDBAPI()

    if SQLALCHEMY_1:
        dbapi = classmethod(lambda cls: cls.import_dbapi())  # type: ignore[assignment,unused-ignore]

    @classmethod
    def get_pool_class(cls, url: URL) -> type[pool.Pool]:
        return pool.AsyncAdaptedQueuePool

    def get_driver_connection(self, connection: Any) -> Any:
        """The ``apidriver.Connection`` behind the adapter (``AsyncConnection.get_raw_connection``)."""
        return connection.driver


class AsyncCloudConvertDialect(AsyncAPIDialect):
    """``cloudconvert+async://:API_KEY@?BaseURL=...``: the CloudConvert profile for asyncio."""

    supports_statement_cache = True
    profile = "CloudConvert"


dialect = AsyncAPIDialect
