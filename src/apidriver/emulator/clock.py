"""The emulator's clock: wall-clock time plus an offset that only grows.

Task processing, the timestamps of new objects, retention, the expiry of
export URLs and every answer's ``Date`` header follow it;
``POST /_emulator/clock`` moves it forward.
"""

from __future__ import annotations

import time


class Clock:
    """Wall-clock time plus :attr:`offset`, the seconds :meth:`forward` added."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        """The emulator's time: wall-clock time plus what :meth:`forward` added."""
        return time.time() + self.offset

    def forward(self, seconds: float) -> None:
        """Move the clock ``seconds`` forward; it never goes back."""
        if not seconds >= 0:
            raise ValueError("the clock only moves forward: give a number of seconds, 0 or more")
        self.offset += float(seconds)
