"""The task clock: each unfinished task moves along its lifecycle by the emulator's time (waits
for its inputs, processes for ``task_seconds``, then finishes with what it produces or fails), and
a job's status follows its tasks."""

from __future__ import annotations

import math
from collections.abc import Callable

from .account import Account
from .catalogue import Catalogue
from .clock import Clock
from .models import FileRef, Job, Task
from .operations import OPERATIONS, TaskFailure, import_filename, produce
from .storage import Storage, export_url_path

HOST_NAMES = ("dulce", "kirstin", "lesly", "virgil", "marlon", "ivy")


class TaskClock:
    """Moves the account's unfinished tasks along; ``ended`` hears of each task that has just ended."""

    def __init__(
        self,
        account: Account,
        storage: Storage,
        catalogue: Catalogue,
        clock: Clock,
        task_seconds: float,
        ended: Callable[[Task], None],
    ) -> None:
        self.account = account
        self.storage = storage
        self.catalogue = catalogue
        self.clock = clock
        self.task_seconds = task_seconds
        self.ended = ended
        self.active: dict[str, Task] = {}
        # The earliest time at which a tracked task can move by itself; -inf when not known
        # (a task was tracked or stopped, or :meth:`wake` was called). Until then nothing
        # can change on its own, and :meth:`advance` returns at once (it runs before every
        # request, and tasks held by an upload that never comes would be stepped each time).
        self._due = -math.inf

    def track(self, task: Task) -> bool:
        """Move ``task`` along from now on, unless it has ended (then False)."""
        if task.terminal:
            return False
        self.active[task.id] = task
        self._due = -math.inf
        return True

    def stop(self, task_id: str) -> None:
        """Stop moving a task (it ended out of turn, or is gone)."""
        self.active.pop(task_id, None)
        self._due = -math.inf

    def wake(self) -> None:
        """Something a tracked task waits for changed outside the clock (an upload's or a
        download's outcome): look at every task again on the next :meth:`advance`."""
        self._due = -math.inf

    def advance(self, now: float) -> set[str]:
        """Move every unfinished task along to ``now``; returns the ids of the jobs whose tasks changed."""
        touched: set[str] = set()
        if now < self._due:
            return touched
        changed = True
        while changed and self.active:
            changed = False
            for task in list(self.active.values()):
                if self._step(task, now):
                    changed = True
                    if task.job_id:
                        touched.add(task.job_id)
                if task.terminal:
                    self.active.pop(task.id, None)
                    self.ended(task)
        self._due = min((self._due_at(task) for task in self.active.values()), default=math.inf)
        return touched

    def _due_at(self, task: Task) -> float:
        """When :meth:`_step` would next change ``task`` if nothing outside the clock changes it:
        exactly the times it compares ``now`` with; ``inf`` while it waits for another task or an
        upload (changes that come through :meth:`track`, :meth:`stop` or :meth:`wake`, or
        through a task that is tracked itself); ``-inf`` for any state not foreseen here."""
        if task.status == "processing" and task.started_at is not None:
            return task.started_at + self.task_seconds
        if task.status != "waiting":
            return -math.inf
        if task.held:
            return math.inf
        deps = [self.account.tasks.get(d) for d in task.depends_on_task_ids]
        if any(d is None or d.status == "error" for d in deps):
            return -math.inf
        ready = task.created_at
        for dep in deps:
            assert dep is not None
            if dep.status != "finished":
                return math.inf if dep.id in self.active else -math.inf
            ready = max(ready, dep.ended_at or task.created_at)
        return ready

    def _step(self, task: Task, now: float) -> bool:
        """Advance one task; True when its state changed."""
        changed = False
        if task.status == "waiting":
            if task.held:
                return False
            deps = [self.account.tasks.get(d) for d in task.depends_on_task_ids]
            failed = [d for d in deps if d is None or (d.status == "error")]
            if failed:
                task.status = "error"
                task.code = "INPUT_TASK_FAILED"
                task.message = "Input task has failed"
                ended = [d.ended_at for d in failed if d is not None and d.ended_at is not None]
                task.ended_at = max(ended) if ended else now
                return True
            if any(d is not None and d.status != "finished" for d in deps):
                return False
            ready = max([task.created_at] + [d.ended_at or task.created_at for d in deps if d is not None])
            if now < ready:
                return False
            task.status = "processing"
            task.started_at = ready
            task.message = None
            task.host_name = HOST_NAMES[task.seq % len(HOST_NAMES)]
            changed = True
        if task.status == "processing":
            assert task.started_at is not None
            end = task.started_at + self.task_seconds
            if now >= end:
                self._finish(task, end)
                changed = True
        return changed

    def _finish(self, task: Task, end: float) -> None:
        task.ended_at = end
        try:
            if task.planned_error:
                raise TaskFailure(*task.planned_error)
            self._produce(task)
        except TaskFailure as failure:
            task.status = "error"
            task.code = failure.code
            task.message = failure.message
            task.files = None
            task.credits = None
            return
        task.status = "finished"
        self.account.user.credits -= task.credits or 0

    def _produce(self, task: Task) -> None:
        spec = OPERATIONS[task.operation]
        inputs = [f for d in task.depends_on_task_ids if (t := self.account.tasks.get(d)) for f in (t.files or [])]
        if spec.kind == "import":
            if task.files is None:
                task.files = [self.storage.rendered_file(import_filename(task.operation, task.payload))]
            task.credits = 0
        elif spec.kind == "export":
            if not inputs:
                raise TaskFailure("INPUT_TASK_FAILED", "The input task did not produce any files")
            if task.operation == "export/url":
                task.files = [
                    FileRef(
                        filename=f.filename,
                        size=f.size,
                        content_key=f.content_key,
                        url_path=export_url_path(task.id, f.filename, task.ended_at or self.clock.now()),
                    )
                    for f in inputs
                ]
            else:
                prefix = str(task.payload.get("key_prefix") or task.payload.get("path") or "")
                task.files = [FileRef(filename=f.filename, size=f.size, dir=prefix or None, content_key=f.content_key) for f in inputs]
            task.credits = 0
        else:
            files, extra, credits, engine, version = produce(task.operation, task.payload, inputs, self.catalogue)
            task.files = [self.storage.sized(f) for f in files] if files is not None else None
            task.extra_result = extra
            task.credits = credits
            task.engine, task.engine_version = engine, version


def settle_job(job: Job, tasks: list[Task]) -> None:
    """Set ``job``'s status, start and end from its ``tasks`` (those superseded by a retry aside):
    ``processing`` once any started, ended (``finished`` or ``error``) when all have."""
    tasks = [t for t in tasks if not t.retries]
    started = [t.started_at for t in tasks if t.started_at is not None]
    job.started_at = min(started) if started else None
    if tasks and all(t.terminal for t in tasks):
        job.status = "error" if any(t.status == "error" for t in tasks) else "finished"
        job.ended_at = max(t.ended_at or 0.0 for t in tasks)
    else:
        job.status = "processing" if started or any(t.terminal for t in tasks) else "waiting"
        job.ended_at = None
