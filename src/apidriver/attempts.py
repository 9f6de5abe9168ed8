"""The retry policy's state for one request: attempts, backoff, waits, the deadline and cancelling.

:class:`Attempt` counts the attempts of one request and remembers what they
saw (an attempt that got no answer, a 5xx), so that the client can tell
whether a failed write may have taken effect. Its waits (backoffs, 429
waits, pacing slots) end at once when the statement is cancelled or the
client stops, and never run past the request's deadline.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time

from . import exceptions as exc
from .cancel import Cancel

logger = logging.getLogger("apidriver")


class Attempt:
    """The state of one request across its attempts: counts, what was seen, cancel and deadline."""

    def __init__(
        self,
        method: str,
        shown: str,
        idempotent: bool,
        cancel: Cancel | None,
        deadline: float | None,
        max_retries: int,
        default_timeout: float,
        stopping: Cancel,
        backoff: float = 0.1,
    ) -> None:
        self.method = method
        self.shown = shown
        self.idempotent = idempotent
        self.cancel = cancel
        self.deadline = deadline
        self.number = 0
        self.limited = 0
        self.unanswered = False  # an attempt was sent and got no (readable) answer
        self.server_error: int | None = None
        self.max_retries = max_retries
        self.default_timeout = default_timeout
        self.stopping = stopping
        self.backoff = backoff

    def next(self) -> None:
        self.number += 1

    def check(self) -> None:
        if self.cancel is not None:
            self.cancel.check(self._cancel_note())
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise exc.APIUnavailableError(
                f"{self.method} {self.shown}: no answer within the time allowed ({self.number - 1} attempts)."
            )

    def _cancel_note(self) -> str:
        if self.number > 1 and self.method not in ("GET", "HEAD") and (self.unanswered or self.server_error):
            return f" ({self.method} {self.shown} had been sent without a clear answer: it may have taken effect.)"
        return ""

    def sleep(self, seconds: float) -> None:
        """Sleep (a backoff, a 429 wait, a pacing slot) unless cancelled or the client stops meanwhile."""
        if self.deadline is not None:
            seconds = min(seconds, max(0.0, self.deadline - time.monotonic()))
        self.stopping.wait(seconds, *([self.cancel] if self.cancel is not None else []))
        if self.cancel is not None:
            self.cancel.check(self._cancel_note())
        if self.stopping.is_set:
            raise exc.InterfaceError(f"{self.method} {self.shown}: not sent again, the connection was closed.")

    def seconds(self, timeout: float | None) -> float:
        """The time this attempt may take, all of it: connecting, sending, the headers and the body."""
        seconds = timeout if timeout is not None else self.default_timeout
        if self.deadline is None:
            return seconds
        return min(seconds, max(0.001, self.deadline - time.monotonic()))

    def allows(self, wait: float) -> bool:
        """Whether a wait of ``wait`` seconds ends before the deadline."""
        return self.deadline is None or time.monotonic() + wait < self.deadline

    def last(self) -> bool:
        """Whether this attempt was the last one allowed."""
        return self.number > self.max_retries or (self.deadline is not None and time.monotonic() >= self.deadline)

    def outcome(self) -> str:
        """What a failed non-GET may have done, for a message ('' or a sentence and a space)."""
        if self.method in ("GET", "HEAD") or not (self.unanswered or self.server_error):
            return ""
        return "Whether it took effect is unknown; check the current state before trying again. "

    def back_off(self, why: str) -> None:
        """Wait before the next attempt: exponential, with jitter, at most 5 s."""
        delay = min(5.0, self.backoff * 2.0 ** (self.number - 1)) * (0.5 + random.random() / 2)
        logger.info(
            "Retrying %s %s in %.2f s after %s (attempt %d of %d)",
            self.method, self.shown, delay, why, self.number + 1, self.max_retries + 1,
        )
        self.sleep(delay)

    def retry_after(self, value: str | None) -> float:
        """The seconds a 429's ``Retry-After`` asks for (seconds or an HTTP date); a backoff without one."""
        if value:
            try:
                return max(0.0, float(value))
            except ValueError:
                try:
                    parsed = email.utils.parsedate_to_datetime(value)
                except (TypeError, ValueError):
                    parsed = None
                if parsed is not None:
                    return max(0.0, float(parsed.timestamp()) - time.time())
        return min(10.0, self.backoff * 2.0**self.number)
