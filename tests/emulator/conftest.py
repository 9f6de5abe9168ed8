"""Fixtures of the emulator tests (the emulators themselves come from ``tests/conftest.py``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import pytest

from .support import Receiver


@pytest.fixture
def make_receiver() -> Iterator[Callable[..., Receiver]]:
    """Start local HTTP receivers (webhook targets, file hosts); all are closed after the test."""
    started: list[Receiver] = []

    def make(statuses: Sequence[int] = (200,), files: dict[str, bytes] | None = None) -> Receiver:
        receiver = Receiver(statuses, files)
        started.append(receiver)
        return receiver

    yield make
    for receiver in started:
        receiver.close()


@pytest.fixture
def receiver(make_receiver: Callable[..., Receiver]) -> Receiver:
    """A receiver that answers every POST with 200."""
    return make_receiver()
