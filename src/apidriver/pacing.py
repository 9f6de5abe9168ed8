"""Rate pacing: a connection's requests slow down as the API's window runs out, instead of meeting 429s."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping


class RatePacer:
    """Slows requests down as ``X-RateLimit-Remaining`` approaches zero.

    While plenty of the window's budget is left, requests go out at full
    speed. With ``reserve`` or fewer left, the requests of the connection
    follow one shared schedule (whatever the concurrency) that spreads what
    is left over what is left of the window, so a long scan stretches to the
    window's end instead of running into 429s, and runs at full speed again
    when a new window starts (``Remaining`` jumps back up). The API does not
    say how long its window is or when it started: ``window`` is a minute
    unless the ``RateLimitWindow`` property says otherwise, and a window is
    taken to start when a jump (or the first answer) is seen. A 429 that
    still comes is waited out by the client.
    """

    def __init__(self, window: float = 60.0, reserve: int = 16) -> None:
        self.window = window
        self.reserve = reserve
        self.limit: int | None = None
        self.remaining: int | None = None
        self.window_start = 0.0
        self._next_slot = 0.0
        self._lock = threading.Lock()

    def update(self, headers: Mapping[str, str]) -> None:
        try:
            limit = int(headers["x-ratelimit-limit"])
            remaining = int(headers["x-ratelimit-remaining"])
        except (KeyError, ValueError):
            return
        with self._lock:
            if self.remaining is None or remaining > self.remaining + self.reserve:
                self.window_start = time.monotonic()  # a new window
                self._next_slot = 0.0
                self.remaining = remaining
            else:  # answers lag behind requests already scheduled: keep the lower count
                self.remaining = min(self.remaining, remaining)
            self.limit = limit

    def wait(self, sleep: Callable[[float], None] = time.sleep) -> float:
        """Sleep until this request's turn (when pacing); returns the seconds slept."""
        with self._lock:
            if self.limit is None or self.remaining is None or self.remaining > self.reserve:
                return 0.0
            now = time.monotonic()
            reset = self.window_start + self.window
            if reset <= now:
                return 0.0  # the window has ended: the next answer says how much is left
            slot = max(now, self._next_slot)
            self._next_slot = slot + (reset - slot) / max(1, self.remaining)
            self.remaining -= 1  # in flight: later answers will say the same
        delay = slot - now
        if delay > 0:
            sleep(delay)
        return delay
