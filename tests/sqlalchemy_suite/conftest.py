"""SQLAlchemy's test plugin, set up as README.dialects.rst says, plus an emulator to test against.

Without ``--dburi`` (or ``--db``) the session starts an in-process emulator
and tests ``cloudconvert://`` against it. The suite creates its own local
tables and sends nothing to the API.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

pytest.register_assert_rewrite("sqlalchemy.testing.assertions")

from sqlalchemy.testing.plugin import pytestplugin  # noqa: E402
from sqlalchemy.testing.plugin.pytestplugin import *  # noqa: E402,F403

_started: list[Any] = []


def pytest_sessionstart(session: pytest.Session) -> None:
    option = session.config.option
    if not getattr(option, "dburi", None) and not getattr(option, "db", None) and not hasattr(session.config, "workerinput"):
        from apidriver.emulator import Emulator

        emulator = Emulator(jobs=0, seed=5).start()
        _started.append(emulator)
        option.dburi = [f"cloudconvert://:{quote(emulator.api_key, safe='')}@?BaseURL={quote(emulator.base_url, safe='')}"]
    pytestplugin.pytest_sessionstart(session)


def pytest_unconfigure(config: pytest.Config) -> None:
    unconfigure = getattr(pytestplugin, "pytest_unconfigure", None)  # SQLAlchemy 2.x only
    if unconfigure is not None:
        unconfigure(config)
    while _started:
        _started.pop().stop()
