"""Shared fixtures: every test that needs the API starts its own emulator."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from apidriver.emulator import Emulator

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "cloudconvert"

# A job's task specs by name: fetch a file, convert it, make a download URL.
CONVERSION_TASKS = {
    "import": {"operation": "import/url", "url": "https://example.com/report.docx"},
    "convert": {"operation": "convert", "input": "import", "output_format": "pdf"},
    "export": {"operation": "export/url", "input": "convert"},
}


@pytest.fixture
def make_emulator() -> Iterator[Callable[..., Emulator]]:
    """Start emulators with the given options; all are stopped after the test."""
    started: list[Emulator] = []

    def make(**options: Any) -> Emulator:
        options.setdefault("task_seconds", 0.05)
        options.setdefault("webhook_retry_delay", 0.02)
        emulator = Emulator(**options).start()
        started.append(emulator)
        return emulator

    yield make
    for emulator in started:
        emulator.stop()


@pytest.fixture
def emulator(make_emulator: Callable[..., Emulator]) -> Emulator:
    """A fresh emulator with a small seeded account (30 jobs, seed 7)."""
    return make_emulator(jobs=30, seed=7)


@pytest.fixture
def api(emulator: Emulator) -> Iterator[httpx.Client]:
    """A raw HTTP client for the emulator's API, authenticated."""
    with httpx.Client(base_url=emulator.api_url, headers={"Authorization": f"Bearer {emulator.api_key}"}) as client:
        yield client


def connect_to(emulator: Emulator, **properties: Any) -> Any:
    """A DB-API connection to ``emulator`` with the given extra properties."""
    import apidriver

    return apidriver.connect(APIKey=emulator.api_key, BaseURL=emulator.base_url, **properties)


@pytest.fixture(scope="module")
def shared_emulator() -> Iterator[Emulator]:
    """One emulator for a whole module of read-only tests (60 jobs, seed 11)."""
    emulator = Emulator(jobs=60, seed=11, task_seconds=0.05).start()
    yield emulator
    emulator.stop()


@pytest.fixture
def conn(shared_emulator: Emulator) -> Iterator[Any]:
    """A connection to the shared emulator, closed after the test."""
    connection = connect_to(shared_emulator)
    yield connection
    connection.close()


def raw_list(emulator: Emulator, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every object of a list endpoint, read page by page with plain HTTP."""
    out: list[dict[str, Any]] = []
    page = 1
    with httpx.Client(base_url=emulator.api_url, headers={"Authorization": f"Bearer {emulator.api_key}"}) as client:
        while True:
            body = client.get(path, params={**params, "page": page}).json()
            out.extend(body["data"])
            if not body.get("links", {}).get("next"):
                return out
            page += 1


@pytest.fixture(scope="module")
def api_user(shared_emulator: Emulator) -> dict[str, Any]:
    """The account of the shared emulator, read with plain HTTP."""
    response = httpx.get(shared_emulator.api_url + "/users/me", headers={"Authorization": f"Bearer {shared_emulator.api_key}"})
    return response.json()["data"]
