"""The account's objects: the user, its jobs, tasks and webhooks in creation order, with the
lookups and lists the API answers from, and adding and removing them."""

from __future__ import annotations

import time
from collections.abc import Iterable

from .errors import not_found
from .models import Job, Task, User, Webhook


class Account:
    """What the account holds, indexed as the API looks it up; no lifecycle, no clock."""

    def __init__(self, credits: int) -> None:
        self.user = User(
            id=37116784,
            username="emulator",
            email="emulator@example.com",
            credits=credits,
            created_at=time.time() - 400 * 86400,  # (the clock starts at wall-clock time)
        )
        self.jobs: dict[str, Job] = {}
        self.job_order: list[Job] = []  # oldest first
        self.tasks: dict[str, Task] = {}
        self.task_order: list[Task] = []  # oldest first
        self.tasks_by_job: dict[str, list[str]] = {}
        self.webhooks: dict[int, Webhook] = {}
        self._seq = 0
        self._webhook_seq = 0

    def next_seq(self) -> int:
        """The next number of one sequence shared by jobs, tasks and retention entries."""
        self._seq += 1
        return self._seq

    def next_webhook_id(self) -> int:
        self._webhook_seq += 1
        return self._webhook_seq

    # -- lookups -----------------------------------------------------------

    def task(self, task_id: str) -> Task | None:
        return self.tasks.get(task_id)

    def job(self, job_id: str) -> Job | None:
        return self.jobs.get(job_id)

    def get_task(self, task_id: str) -> Task:
        t = self.tasks.get(task_id)
        if t is None:
            raise not_found("Task")
        return t

    def get_job(self, job_id: str) -> Job:
        j = self.jobs.get(job_id)
        if j is None:
            raise not_found("Job")
        return j

    def job_tasks(self, job: Job) -> list[Task]:
        return [self.tasks[i] for i in job.task_ids if i in self.tasks]

    def list_jobs(self, status: str | None, tag: str | None) -> list[Job]:
        """Newest first (creation order reversed)."""
        if status is None and tag is None:
            return self.job_order[::-1]
        return [
            j
            for j in reversed(self.job_order)
            if (status is None or j.status == status) and (tag is None or j.tag == tag)
        ]

    def count_jobs(self) -> int:
        return len(self.job_order)

    def list_tasks(self, job_id: str | None, status: str | None, operation: str | None) -> list[Task]:
        if job_id is not None:
            candidates: Iterable[Task] = (self.tasks[i] for i in reversed(self.tasks_by_job.get(job_id, [])))
        elif status is None and operation is None:
            return self.task_order[::-1]
        else:
            candidates = reversed(self.task_order)
        return [
            t
            for t in candidates
            if (status is None or t.status == status) and (operation is None or t.operation == operation)
        ]

    def list_webhooks(self, url: str | None) -> list[Webhook]:
        return [w for w in reversed(list(self.webhooks.values())) if url is None or w.url == url]

    # -- adding and removing ----------------------------------------------------

    def add_job(self, job: Job) -> None:
        self.jobs[job.id] = job
        self.job_order.append(job)

    def add_task(self, task: Task) -> None:
        self.tasks[task.id] = task
        self.task_order.append(task)
        if task.job_id:
            self.tasks_by_job.setdefault(task.job_id, []).append(task.id)

    def remove_task(self, task: Task) -> None:
        self.tasks.pop(task.id, None)
        self.task_order.remove(task)
        if task.job_id and task.job_id in self.tasks_by_job:
            ids = self.tasks_by_job[task.job_id]
            if task.id in ids:
                ids.remove(task.id)

    def remove_job(self, job: Job) -> None:
        """Remove ``job`` itself (its tasks are removed one by one, before)."""
        self.tasks_by_job.pop(job.id, None)
        del self.jobs[job.id]
        self.job_order.remove(job)

    def remove_expired(self, jobs: list[Job], tasks: list[Task]) -> set[str]:
        """Remove ``jobs`` with their tasks, and the standalone ``tasks``; returns the ids of every task removed.

        One pass over the ordered lists, however many go at once (a clock jump).
        """
        gone_tasks = {t.id for t in tasks}
        for job in jobs:
            gone_tasks.update(self.tasks_by_job.pop(job.id, []))
            gone_tasks.update(job.task_ids)
            del self.jobs[job.id]
        for task_id in gone_tasks:
            self.tasks.pop(task_id, None)
        gone_jobs = {j.id for j in jobs}
        self.job_order = [j for j in self.job_order if j.id not in gone_jobs]
        self.task_order = [t for t in self.task_order if t.id not in gone_tasks]
        for task in tasks:
            if task.job_id and task.job_id in self.tasks_by_job:
                self.tasks_by_job[task.job_id] = [i for i in self.tasks_by_job[task.job_id] if i != task.id]
        return gone_tasks
