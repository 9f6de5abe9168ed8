"""With ``keep_history``: every job the account no longer has (why, when, as it was) and the last
state of each job an answer or a webhook delivery showed, so that tests and the churn soak can
compare a replica with the whole truth (``GET /_emulator/history``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .models import Job, Task


@dataclass(slots=True)
class Removed:
    """A job the API no longer has: why it went (``deleted`` or ``expired``), when (the emulator's clock), as it was."""

    job: Job
    tasks: list[Task]
    reason: str
    at: float


class History:
    """Remembers removed jobs and shown states when ``keep`` is true; nothing otherwise."""

    def __init__(self, keep: bool) -> None:
        self.keep = keep
        self.removed: dict[str, Removed] = {}  # every job deleted or expired, by id
        self.shown: dict[str, dict[str, Any]] = {}  # the last state of each job an answer or delivery showed

    def remove(self, job: Job, tasks: list[Task], reason: str, at: float) -> None:
        """``job`` (with ``tasks``) leaves the account for ``reason`` at ``at``."""
        if self.keep:
            self.removed[job.id] = Removed(job, tasks, reason, at)

    def show(self, job: Job, shown: dict[str, Any]) -> dict[str, Any]:
        """``shown`` (``job`` as an answer or a delivery shows it), remembered."""
        if self.keep:
            self.shown[job.id] = shown
        return shown
