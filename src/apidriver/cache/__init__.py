"""The driver reads the cache, as the commercial driver does: AutoCache, Offline, REPLICATE and CACHE.

The cache is a replica (:mod:`apidriver.replica`) in a SQLite file
(``CacheLocation``) or any database (``CacheConnection``). Its tables are
virtual tables with the API tables' columns (:mod:`.vtable`), read through
:mod:`.source`; :mod:`.attach` decides which names read it; :mod:`.grammar`
recognises ``REPLICATE`` and ``CACHE`` and :mod:`.statements` runs them.

This package is imported by every connection, so it imports SQLAlchemy
(through :mod:`.attach`) only when a connection has a cache.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .grammar import CacheStatement, recognise
from .properties import CACHE_PROPERTIES

if TYPE_CHECKING:
    from .host import CacheHost
    from .attach import Cache

__all__ = ["CACHE_PROPERTIES", "CacheStatement", "install", "recognise"]


def install(connection: CacheHost, api_module: str) -> Cache | None:
    """The cache of ``connection`` set up from its properties, or None when it has none (see :mod:`.attach`)."""
    settings = connection.settings
    if not any(settings[name] for name in ("CacheLocation", "CacheConnection", "AutoCache", "Offline")):
        return None
    from .attach import install as attach

    return attach(connection, api_module)
