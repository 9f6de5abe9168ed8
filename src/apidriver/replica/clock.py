"""The two clocks of a sync: this machine's, which orders observations, and the API's, from ``Date`` headers.

Every read is a :class:`Moment`: when it went out on this machine's clock
(to the microsecond: observations are ordered by it, and a state read
earlier never replaces one read later), and on the API's clock. Every
answer's ``Date`` header says the API's time (whole seconds);
:class:`ApiClock` keeps the offset between it and this machine's clock, so
that the time a row is found gone is on the API's clock, comparable with its
``created_at`` and ``ended_at`` even when the two clocks differ (the
emulator's can be moved forward).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class Moment:
    """When a request went out: on this machine's clock (``local``) and on the API's (``api``), both UTC."""

    local: dt.datetime
    api: dt.datetime


class ApiClock:
    """The API's time, as its ``Date`` headers say it, and this machine's clock mapped onto it.

    A ``Date`` header has whole seconds, so each answer bounds the offset
    (API time minus local time) from both sides; the offset kept is the
    largest lower bound seen while the bounds agree, so the mapped time does
    not go back. When the bounds stop agreeing, the API's clock jumped (the
    emulator's can be moved), and the offset is learnt afresh. An offset
    under ``AGREE`` seconds is taken as 0: the two clocks agree as far as a
    ``Date`` header can tell, and this machine's clock (to the microsecond)
    orders observations better. Without any ``Date`` header the offset is 0.
    One clock serves every sync of an API in a process (:func:`clock_of`).
    """

    AGREE = 2.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._low: float | None = None
        self._high: float | None = None

    def learn(self, headers: Mapping[str, str] | None, sent: float, received: float) -> None:
        value = headers.get("date") if headers is not None else None
        if not value:
            return
        try:
            api = parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return
        low, high = api - received, api + 1.0 - sent
        with self._lock:
            if self._low is None or self._high is None or low > self._high or high < self._low:
                self._low, self._high = low, high
            else:
                self._low, self._high = max(self._low, low), min(self._high, high)

    @property
    def offset(self) -> float:
        low = self._low or 0.0
        return 0.0 if abs(low) < self.AGREE else low

    def moment(self, local: float | None = None) -> Moment:
        """Local time ``local`` (``time.time()`` seconds; by default now) on both clocks."""
        local = time.time() if local is None else local
        utc = dt.timezone.utc
        return Moment(dt.datetime.fromtimestamp(local, utc), dt.datetime.fromtimestamp(local + self.offset, utc))


_CLOCKS: dict[str, ApiClock] = {}
_CLOCKS_LOCK = threading.Lock()


def clock_of(root_url: str) -> ApiClock:
    """The one :class:`ApiClock` of the API at ``root_url`` in this process."""
    with _CLOCKS_LOCK:
        return _CLOCKS.setdefault(root_url, ApiClock())
