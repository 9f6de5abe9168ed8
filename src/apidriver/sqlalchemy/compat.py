"""What differs between SQLAlchemy 1.4 and 2.x, in one place (the dialects support both)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy
from sqlalchemy.engine import reflection

__all__ = ["SQLALCHEMY_1", "await_only", "reflection_cache"]

F = TypeVar("F", bound=Callable[..., Any])

SQLALCHEMY_1: bool = int(sqlalchemy.__version__.split(".")[0]) < 2
"""True on SQLAlchemy 1.4 (``dbapi()`` instead of ``import_dbapi()``, ``_isolation_lookup``)."""

try:  # 2.1 renamed it; 1.4 and 2.0 have only await_only
    from sqlalchemy.util.concurrency import await_ as await_only
except ImportError:  # pragma: no cover - depends on the installed SQLAlchemy
    from sqlalchemy.util.concurrency import await_only  # type: ignore[attr-defined,no-redef,unused-ignore]


def reflection_cache(fn: F) -> F:
    """``sqlalchemy.engine.reflection.cache``, also on 1.4.

    1.4's decorator rebuilds the signature as source text and cannot parse a
    return annotation (a ``SyntaxError`` at import), so on 1.4 the runtime
    annotations are dropped first; type checkers still read them from the source.
    """
    if SQLALCHEMY_1:
        fn.__annotations__ = {}
    cached: F = reflection.cache(fn)
    return cached
