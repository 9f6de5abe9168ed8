"""The driver reads the cache, as the commercial driver does: AutoCache, Offline, REPLICATE and CACHE.

The cache is a replica (:mod:`apidriver.replica`) in a SQLite file
(``CacheLocation``) or any database (``CacheConnection``). Its tables are
virtual tables with the API tables' columns (:mod:`.vtable`), read through
:mod:`.source`; :mod:`.attach` decides which names read it, and
:mod:`.statements` runs ``REPLICATE`` and ``CACHE``.
"""

from .attach import Cache, install
from .properties import CACHE_PROPERTIES
from .statements import CacheStatement, recognise

__all__ = ["CACHE_PROPERTIES", "Cache", "CacheStatement", "install", "recognise"]
