"""Fixtures of the SQLAlchemy tests: engines on emulators, and the request log."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from apidriver.emulator import Emulator

SQLALCHEMY_1 = sqlalchemy.__version__.startswith("1.")


def url_for(emulator: Emulator, scheme: str = "cloudconvert", key: str | None = None, **properties: Any) -> str:
    """A ``cloudconvert://`` (key as password) or ``api:///`` (key in ProfileSettings) URL for ``emulator``."""
    key = emulator.api_key if key is None else key
    query = {"BaseURL": emulator.base_url, **properties}
    tail = "&".join(f"{name}={quote(str(value), safe='')}" for name, value in query.items())
    if scheme == "cloudconvert":
        return f"cloudconvert://:{quote(key, safe='')}@?{tail}"
    return f"api:///?Profile=CloudConvert&AuthScheme=APIKey&ProfileSettings={quote('APIKey=' + key, safe='')}&{tail}"


def overlap(requests: list[dict[str, Any]]) -> int:
    """The largest number of requests the emulator was serving at the same moment."""
    events = []
    for r in requests:
        events.append((r["time"], 1))
        events.append((r["time"] + r["duration_ms"] / 1000, -1))
    best = current = 0
    for _, step in sorted(events, key=lambda e: (e[0], e[1])):
        current += step
        best = max(best, current)
    return best


@pytest.fixture(scope="module")
def engine(shared_emulator: Emulator) -> Iterator[Engine]:
    """A ``cloudconvert://`` engine on the module's shared emulator (60 jobs, seed 11)."""
    eng = create_engine(url_for(shared_emulator))
    yield eng
    eng.dispose()
