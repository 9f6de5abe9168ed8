"""Fixtures of the hostile-server tests: servers started on free ports and stopped after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import apidriver

from .server import KEY, Handler, HostileServer


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], HostileServer]]:
    """Start servers answering through the given handlers; all are stopped after the test."""
    started: list[HostileServer] = []

    def start(handler: Handler) -> HostileServer:
        server = HostileServer(handler).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def connect(server: HostileServer, **properties: Any) -> apidriver.Connection:
    """A connection to ``server``: small pages, no retries and a short Timeout unless told otherwise."""
    settings: dict[str, Any] = {"APIKey": KEY, "BaseURL": server.url, "PageSize": 4, "MaxRetries": 0, "Timeout": 1}
    settings.update(properties)
    return apidriver.connect(**settings)
