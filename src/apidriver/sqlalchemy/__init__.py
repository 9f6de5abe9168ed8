"""SQLAlchemy support: the ``api://`` and ``cloudconvert://`` dialects.

>>> from sqlalchemy import create_engine, text
>>> engine = create_engine("cloudconvert://:API_KEY@")
>>> with engine.connect() as conn:
...     conn.execute(text("SELECT id, status FROM Jobs WHERE status = 'error'")).all()

The dialects register through the ``sqlalchemy.dialects`` entry point; this
package only needs importing to use its names directly. See docs/sqlalchemy.md.
"""

from __future__ import annotations

from .dialect import APIDialect, CloudConvertDialect
from .types import UTCDateTime

__all__ = ["APIDialect", "CloudConvertDialect", "UTCDateTime"]
