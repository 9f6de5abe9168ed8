"""The cache's connection properties, named as the commercial driver names them."""

from __future__ import annotations

from ..properties import Property, non_negative_float, parse_bool

CACHE_PROPERTIES: tuple[Property, ...] = (
    Property(
        "CacheLocation",
        "A SQLite file holding the cache (a replica as apidriver sync makes it); ~ is expanded.",
        None,
    ),
    Property(
        "CacheConnection",
        "The cache as a SQLAlchemy URL of any database, e.g. postgresql+psycopg://user:password@host/db (secret: it may hold a password).",
        None,
        secret=True,
    ),
    Property(
        "AutoCache",
        "SELECTs read the cache, after bringing the tables they read up to date if older than CacheTolerance.",
        False,
        parse_bool,
    ),
    Property("CacheTolerance", "Seconds a cached table may be old before AutoCache brings it up to date.", 600.0, non_negative_float),
    Property("Offline", "Statements read the cache only and send no request at all; writes are refused.", False, parse_bool),
)
