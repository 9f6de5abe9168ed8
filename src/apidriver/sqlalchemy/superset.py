"""The Apache Superset DB engine spec of the ``cloudconvert://`` and ``api://`` dialects.

Superset picks a spec by the URL's backend name; without one it falls back
to its generic spec, which has no time grains (charts cannot group by day or
month) and no SQLite function list. Our SQL is SQLite's and every timestamp
column holds SQLite's own UTC text (``YYYY-MM-DD HH:MM:SS``), so SQLite's
spec is right as it is: its time grains (``DATETIME(col, 'start of month')``
...), ``LIMIT`` handling and datetime literals work unchanged on API tables.

Registered through the ``superset.db_engine_specs`` entry point; only
Superset imports this module (it needs Superset installed).
"""

from __future__ import annotations

from typing import Any

from superset.db_engine_specs.sqlite import SqliteEngineSpec  # type: ignore[import-not-found,unused-ignore]

__all__ = ["APIDriverEngineSpec"]


class APIDriverEngineSpec(SqliteEngineSpec):  # type: ignore[misc,unused-ignore]
    """``cloudconvert://`` and ``api://``: SQLite's spec, named for the API."""

    engine = "cloudconvert"
    engine_aliases = {"api"}
    engine_name = "CloudConvert (apidriver)"
    disable_ssh_tunneling = True  # the connection is HTTPS to the API, not a socket to tunnel
    supports_file_upload = False  # CSV upload creates tables: the API has no such thing

    metadata: dict[str, Any] = {
        **SqliteEngineSpec.metadata,
        "description": "CloudConvert API v2 (and other REST APIs) as SQL tables, through apidriver.",
        "homepage_url": "https://github.com/apidriver/apidriver",
        "pypi_packages": ["apidriver"],
        "connection_string": "cloudconvert://:API_KEY@",
        "notes": "Any connection property goes in the query string: cloudconvert://:API_KEY@?Timeout=10",
    }
