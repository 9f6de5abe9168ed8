"""Fixtures of the documents' tests: an emulator per document, and a throw-away PostgreSQL database."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from ..history.conftest import postgres  # noqa: F401  (the session's PostgreSQL server)
from ..history.postgres import PostgresServer


@pytest.fixture
def pg_database(request: pytest.FixtureRequest) -> Iterator[tuple[PostgresServer, str] | None]:
    """A new, empty database of the session's PostgreSQL server (dropped after the test), or None
    with ``APIDRIVER_TEST_POSTGRES=0``: the blocks that need it are then not run, and say so."""
    if os.environ.get("APIDRIVER_TEST_POSTGRES") == "0":
        yield None
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    name = server.create_database()
    yield server, name
    server.drop_database(name)
