"""Retention, as the API does it: a job (with its tasks) and a standalone task are deleted
``retention_hours`` after they end (24 by default). Jobs that never end are never deleted."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping

from .models import Job, Task


class Retention:
    """When each ended job and standalone task is due: a heap checked lazily, when entries fall due.

    ``next_seq`` breaks ties between entries due at the same time (the account's sequence).
    """

    def __init__(self, hours: float, next_seq: Callable[[], int]) -> None:
        self.seconds = hours * 3600.0
        self._next_seq = next_seq
        # (deletion time, tie-breaker, "job"|"task", id): checked when due, see ``due``.
        self._expiries: list[tuple[float, int, str, str]] = []
        self._expiry_of: dict[str, float] = {}

    @property
    def hours(self) -> float:
        return self.seconds / 3600.0

    def schedule(self, kind: str, key: str, ended_at: float | None) -> None:
        """Delete the ``kind`` (``job`` or ``task``) ``key`` ``seconds`` after ``ended_at`` (nothing when unended)."""
        if ended_at is None:
            return
        at = ended_at + self.seconds
        if self._expiry_of.get(key) != at:
            self._expiry_of[key] = at
            heapq.heappush(self._expiries, (at, self._next_seq(), kind, key))

    def schedule_job(self, job: Job) -> None:
        self.schedule("job", job.id, job.ended_at)

    def schedule_task(self, task: Task) -> None:
        """A standalone task is deleted ``seconds`` after it ends (job tasks go with their job)."""
        if task.job_id is None and task.terminal:
            self.schedule("task", task.id, task.ended_at)

    def forget(self, key: str) -> None:
        """``key`` is gone: nothing to delete any more."""
        self._expiry_of.pop(key, None)

    def due(self, now: float, jobs: Mapping[str, Job], tasks: Mapping[str, Task]) -> tuple[list[Job], list[Task]]:
        """The jobs and standalone tasks that ended ``seconds`` ago or earlier, as of ``now``.

        Entries are checked when due: a job that was re-opened (a retried
        task) or re-ended later is skipped here and scheduled again when it ends.
        """
        due_jobs: list[Job] = []
        due_tasks: list[Task] = []
        while self._expiries and self._expiries[0][0] <= now:
            at, _, kind, key = heapq.heappop(self._expiries)
            if self._expiry_of.get(key) != at:
                continue
            del self._expiry_of[key]
            if kind == "job":
                job = jobs.get(key)
                if job is not None and job.terminal and job.ended_at is not None and job.ended_at + self.seconds == at:
                    due_jobs.append(job)
            else:
                task = tasks.get(key)
                if task is not None and task.terminal and task.ended_at is not None and task.ended_at + self.seconds == at:
                    due_tasks.append(task)
        return due_jobs, due_tasks
