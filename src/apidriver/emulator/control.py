"""What the control API sets for the requests to come, and what it saw: the request log,
latency, faults, actions and the rate limit (:class:`Control`, lock-protected); the middleware
(:mod:`.middleware`) applies them to every request.

Faults (``POST /_emulator/faults``) match on method, path prefix and
(optionally) a substring of the raw query string (``"query": "page=2"``), and
fire ``count`` times or with probability ``rate``:

- ``500``, ``502``, ``503``, ``429``: answered at once; the request has no
  effect (502/503 have an HTML body, as a proxy in front of the API would send;
  500 and 429 a compact JSON body, as the host writes every body; 429 says
  ``Retry-After: retry_after``, 1 s unless the fault says otherwise).
- ``drop``, ``stall``, ``malformed``: the request IS carried out, then the
  connection is closed without an answer (``drop``), the answer is held back
  for ``stall_seconds`` (``stall``, default 30), or the body is cut short
  (``malformed``). These are the ambiguous failures a client must not retry
  blindly on a POST.

Actions (``POST /_emulator/actions``) change the account once a matching
request has been answered (the ``after``-th one; method, path prefix and
query substring as for faults): ``delete_jobs`` deletes ``count`` jobs from
position ``offset`` of the list (newest first), ``create_jobs`` creates
``count`` jobs (tagged ``tag``), ``advance_clock`` moves the clock ``seconds``
forward. They run on the server's loop before it serves anything else, so a
test can delete or create rows exactly between two pages of a list; each
action records the job ids it touched (``GET /_emulator/actions``).

Rate limit (on by default in :class:`~.server.Emulator`: 500 requests a
minute, as recorded; ``rate_limit=0`` turns it off): each account may make
``rate_limit`` API requests of each HTTP method per window, which starts at
the first request of that method and lasts ``rate_window`` seconds (60).
The recordings show separate counts for GET, POST and DELETE, and a window
that is not the clock minute. Counted requests carry ``X-RateLimit-Limit``
and ``X-RateLimit-Remaining``; past the limit the answer is ``429`` with
``Retry-After`` (the seconds until the window ends). As in the recorded
traffic, ``GET /v2/users/me``, the sync host and requests without a valid
key are neither counted nor labelled.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

DEFAULT_RATE_LIMIT = 500  # requests a minute per method, as the recorded answers say (0: unlimited)
FAULT_KINDS = ("500", "502", "503", "429", "drop", "stall", "malformed")
ACTION_KINDS = ("delete_jobs", "create_jobs", "advance_clock")


@dataclass
class Fault:
    kind: str
    path: str = "/"
    method: str | None = None
    count: int | None = None
    rate: float | None = None
    stall_seconds: float = 30.0
    query: str | None = None  # only requests whose raw query string contains this
    retry_after: float = 1.0  # the Retry-After of a 429 fault (real servers send whole seconds)

    def __post_init__(self) -> None:
        self.kind = str(self.kind)
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; use one of {', '.join(FAULT_KINDS)}")
        if self.count is None and self.rate is None:
            self.count = 1
        if self.method:
            self.method = self.method.upper()


@dataclass
class Action:
    """A change of the account made once the ``after``-th matching request has been answered."""

    do: str
    path: str = "/"
    method: str | None = None
    query: str | None = None
    after: int = 1
    count: int = 1
    offset: int = 0
    seconds: float = 0.0
    tag: str | None = None
    seen: int = 0  # matching requests answered so far
    done: bool = False
    jobs: list[str] = field(default_factory=list)  # the ids it deleted or created

    def __post_init__(self) -> None:
        if self.do not in ACTION_KINDS:
            raise ValueError(f"unknown action {self.do!r}; use one of {', '.join(ACTION_KINDS)}")
        if int(self.after) < 1 or int(self.count) < 0 or int(self.offset) < 0 or not float(self.seconds) >= 0:
            raise ValueError("after must be 1 or more; count, offset and seconds 0 or more")
        self.after, self.count, self.offset, self.seconds = int(self.after), int(self.count), int(self.offset), float(self.seconds)
        if self.method:
            self.method = self.method.upper()


class Control:
    """Shared, lock-protected state of the middleware, also used from the Python API."""

    def __init__(self, latency_ms: float = 0, rate_limit: int | None = None, rate_window: float = 60.0, seed: int = 0) -> None:
        self.latency = latency_ms / 1000.0
        self.rate_limit = rate_limit or None
        self.rate_window = rate_window
        self._lock = threading.Lock()
        self._log: list[dict[str, Any]] = []
        self._pending: dict[int, dict[str, Any]] = {}  # arrived, not answered yet (id of the entry)
        self._faults: list[Fault] = []
        self._seed = seed
        self._random = random.Random(seed)
        self._windows: dict[str, tuple[float, int]] = {}  # method → (window start, requests counted)
        self._actions: list[Action] = []

    def reset(self) -> None:
        """Forget the request log, the faults and the rate-limit windows (requests under way stay)."""
        with self._lock:
            self._log.clear()
            self._faults.clear()
            self._windows.clear()
            self._random = random.Random(self._seed)

    # request log
    def arrived(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._pending[id(entry)] = entry

    def record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._pending.pop(id(entry), None)
            self._log.append(entry)

    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in self._log]

    def pending(self) -> list[dict[str, Any]]:
        """Requests under way: arrived and not answered yet (a stall, a sync wait)."""
        with self._lock:
            return [dict(e) for e in self._pending.values()]

    def clear_requests(self) -> None:
        with self._lock:
            self._log.clear()

    # faults
    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def faults(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(f) for f in self._faults]

    def match(self, method: str, path: str, query: str = "") -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.method not in (None, "", "*", method) or not path.startswith(fault.path):
                    continue
                if fault.query and fault.query not in query:
                    continue
                if fault.count is not None:
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                    return fault
                if fault.rate is not None and self._random.random() < fault.rate:
                    return fault
            return None

    # actions
    def add_action(self, action: Action) -> None:
        with self._lock:
            self._actions.append(action)

    def clear_actions(self) -> None:
        with self._lock:
            self._actions.clear()

    def actions(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(a) for a in self._actions]

    def due(self, method: str, path: str, query: str = "") -> list[Action]:
        """The actions a request just answered sets off (each once)."""
        with self._lock:
            out = []
            for action in self._actions:
                if action.done or action.method not in (None, "", "*", method) or not path.startswith(action.path):
                    continue
                if action.query and action.query not in query:
                    continue
                action.seen += 1
                if action.seen >= action.after:
                    action.done = True
                    out.append(action)
            return out

    # rate limit
    def take(self, method: str = "GET") -> tuple[bool, int, float]:
        """Count one request of ``method``: (allowed, remaining, seconds until its window resets)."""
        assert self.rate_limit is not None
        with self._lock:
            now = time.monotonic()
            start, count = self._windows.get(method, (0.0, 0))
            if count == 0 or now - start >= self.rate_window:
                start, count = now, 0
            reset = start + self.rate_window - now
            if count >= self.rate_limit:
                self._windows[method] = (start, count)
                return False, 0, reset
            count += 1
            self._windows[method] = (start, count)
            return True, self.rate_limit - count, reset
