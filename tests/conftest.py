"""Shared fixtures: every test that needs the API starts its own emulator."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from apidriver.emulator import Emulator

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "cloudconvert"


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
