"""The emulated account's operations: creating jobs and tasks, cancelling, retrying and deleting
them, uploads and downloads into imports, webhooks; each queues the webhook events it causes.

:class:`Backend` is the :class:`~.account.Account` with these operations. It
hands unfinished tasks to the task clock (:mod:`.lifecycle`), ended jobs and
standalone tasks to :mod:`.retention`, what it removes to :mod:`.history`,
and file contents to :mod:`.storage`; bodies are checked by :mod:`.specs`.

All methods run on the server's event-loop thread (handlers are ``async``),
so the state needs no lock. ``advance`` moves tasks along their lifecycle by
the emulator's clock (:mod:`.clock`); the server calls it before each request
and every 50 ms in the background, so webhooks fire even when nobody polls.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

from .account import Account
from .catalogue import Catalogue, default_engine_version
from .clock import Clock
from .errors import ApiError, invalid, not_found
from .history import History
from .lifecycle import TaskClock, settle_job
from .models import Job, Task, Webhook
from .operations import OPERATIONS, import_filename
from .retention import Retention
from .specs import check_job, check_task, inputs
from .storage import Storage, upload_form

WEBHOOK_EVENTS = ("job.created", "job.finished", "job.failed")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(slots=True)
class Event:
    """A webhook delivery waiting to be sent."""

    event: str
    url: str
    secret: str
    body: dict[str, Any]
    webhook_id: int | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)


class Backend(Account):
    def __init__(
        self,
        *,
        task_seconds: float = 1.0,
        credits: int = 2500,
        catalogue: Catalogue | None = None,
        retention_hours: float = 24.0,
        keep_history: bool = False,
    ) -> None:
        super().__init__(credits)
        self.task_seconds = task_seconds
        self.initial_credits = credits
        self.catalogue = catalogue or Catalogue()
        self.root_url = "http://127.0.0.1"
        self.clock = Clock()
        self.storage = Storage()
        self.history = History(keep_history)
        self.retention = Retention(retention_hours, self.next_seq)
        self.task_clock = TaskClock(self, self.storage, self.catalogue, self.clock, task_seconds, self.retention.schedule_task)
        self.outbox: list[Event] = []
        self.deliveries: list[Event] = []
        self.job_webhook_secret = secrets.token_hex(16)

    def reset(self) -> None:
        """Start over as a new, empty account with the same settings, root URL and job webhook
        secret (``POST /_emulator/reset``): one server can serve test after test."""
        root_url, secret = self.root_url, self.job_webhook_secret
        Backend.__init__(
            self,
            task_seconds=self.task_seconds,
            credits=self.initial_credits,
            catalogue=self.catalogue,
            retention_hours=self.retention.hours,
            keep_history=self.history.keep,
        )
        self.root_url, self.job_webhook_secret = root_url, secret

    # -- the clock -------------------------------------------------------------

    def now(self) -> float:
        """The emulator's time: wall-clock time plus what ``advance_clock`` added."""
        return self.clock.now()

    def advance_clock(self, seconds: float) -> float:
        """Move the clock forward: tasks progress, retention deletes, export URLs expire.

        Returns the new time. The clock never goes back.
        """
        self.clock.forward(seconds)
        self.advance()
        return self.now()

    def advance(self, now: float | None = None) -> None:
        """Move every unfinished task along by the clock, update their jobs, then apply retention."""
        now = self.now() if now is None else now
        for job_id in self.task_clock.advance(now):
            job = self.jobs.get(job_id)
            if job is not None:
                self.update_job(job)
        self.expire(now)

    def expire(self, now: float | None = None) -> int:
        """Delete what ended ``retention`` ago or earlier; returns how many jobs and tasks went."""
        now = self.now() if now is None else now
        jobs, tasks = self.retention.due(now, self.jobs, self.tasks)
        if not jobs and not tasks:
            return 0
        for job in jobs:
            self.history.remove(job, self.job_tasks(job), "expired", now)
        for task_id in self.remove_expired(jobs, tasks):
            self.task_clock.stop(task_id)
            self.retention.forget(task_id)
        return len(jobs) + len(tasks)

    # -- creation ------------------------------------------------------------

    def check_credits(self) -> None:
        if self.user.credits <= 0:
            raise ApiError(402, "CREDITS_EXCEEDED", "Your account has run out of conversion minutes")

    def register_task(self, task: Task) -> None:
        """Add ``task`` to the account: the task clock moves it along, or retention waits for it."""
        self.add_task(task)
        if not self.task_clock.track(task):
            self.retention.schedule_task(task)

    def update_job(self, job: Job, emit: bool = True) -> None:
        """Refresh ``job``'s status from its tasks; once it ends, retention waits for it and (with
        ``emit``) ``job.finished`` or ``job.failed`` is queued."""
        before = job.status
        settle_job(job, self.job_tasks(job))
        if job.terminal:
            self.retention.schedule_job(job)
        if emit and job.status != before and job.terminal:
            self._emit(job, "job.finished" if job.status == "finished" else "job.failed")

    def _new_task(self, operation: str, payload: dict[str, Any], now: float, job: Job | None, name: str | None) -> Task:
        spec = OPERATIONS[operation]
        task = Task(
            id=str(uuid.uuid4()),
            operation=operation,
            payload=payload,
            created_at=now,
            user_id=self.user.id,
            seq=self.next_seq(),
            job_id=job.id if job else None,
            name=name,
            has_engine=spec.has_engine,
            storage="ceph-fra" if spec.kind == "export" else None,
        )
        if spec.has_engine and payload.get("engine"):
            task.engine = str(payload["engine"])
            task.engine_version = str(payload.get("engine_version") or default_engine_version(task.engine))
        self._prepare_import(task)
        return task

    def _prepare_import(self, task: Task) -> None:
        """Imports whose content is known at creation time get it now."""
        p = task.payload
        if task.operation == "import/upload":
            task.held = True
            task.message = "Waiting for file upload"
            task.form = upload_form(self.root_url, task.id, self.now())
        elif task.operation == "import/base64":
            try:
                data = base64.b64decode(str(p.get("file", "")), validate=True)
            except ValueError:
                task.planned_error = ("INVALID_FILE", "The file is not valid base64")
            else:
                task.files = [self.storage.file_from_bytes(str(p["filename"]), data)]
        elif task.operation == "import/raw":
            task.files = [self.storage.file_from_bytes(str(p["filename"]), str(p.get("file", "")).encode())]
        elif task.operation == "import/url":
            from urllib.parse import urlsplit

            host = urlsplit(str(p.get("url", ""))).hostname or ""
            if not host or host.endswith(".invalid"):
                task.planned_error = ("DOWNLOAD_FAILED", f"Could not download the file: cannot resolve host '{host}'")
            elif host in LOOPBACK_HOSTS:
                task.held = True  # the server downloads it, then calls fetched()

    def create_job(self, body: Any) -> Job:
        specs, tag, webhook_url = check_job(body, lambda ref: ref in self.tasks)
        self.check_credits()
        now = self.now()
        job = Job(id=str(uuid.uuid4()), tag=tag, created_at=now, seq=self.next_seq(), webhook_url=webhook_url)
        created: dict[str, Task] = {}
        for name, spec in specs.items():
            created[name] = self._new_task(str(spec["operation"]), dict(spec), now, job, name)
        for name, spec in specs.items():
            created[name].depends_on_task_ids = [created[r].id if r in created else r for r in inputs(spec)]
        self.add_job(job)
        for task in created.values():
            job.task_ids.append(task.id)
            self.register_task(task)
        # No advance here: the answer (and job.created) shows every task
        # still ``waiting``, as recorded; the clock moves them on from the
        # next request or tick.
        self._emit(job, "job.created")
        return job

    def create_task(self, operation: str, body: Any) -> Task:
        payload = check_task(operation, body, lambda ref: ref in self.tasks)
        self.check_credits()
        now = self.now()
        task = self._new_task(operation, payload, now, None, payload.get("name"))
        task.depends_on_task_ids = list(inputs(payload))
        self.register_task(task)
        return task

    # -- actions ---------------------------------------------------------------

    def cancel_task(self, task_id: str) -> Task:
        task = self.get_task(task_id)
        self.advance()
        if task.terminal:
            raise invalid({"status": ["Cannot change status: task already completed."]})
        now = self.now()
        task.status = "error"
        task.code = "CANCELLED"
        task.message = "Task has been cancelled"
        task.ended_at = now
        task.held = False
        task.form = None
        self.task_clock.stop(task.id)
        self.retention.schedule_task(task)
        self._touch(task, now)
        return task

    def retry_task(self, task_id: str) -> Task:
        old = self.get_task(task_id)
        self.advance()
        if not old.terminal:
            raise invalid({"status": ["Cannot retry: the task is not completed yet."]})
        self.check_credits()
        now = self.now()
        job = self.jobs.get(old.job_id) if old.job_id else None
        new = self._new_task(old.operation, dict(old.payload), now, job, old.name)
        new.depends_on_task_ids = list(old.depends_on_task_ids)
        new.retry_of_task_id = old.id
        new.copy_of_task_id = old.id
        old.retries.append(new.id)
        if job is not None:
            job.task_ids.append(new.id)
        self.register_task(new)
        if job is not None:  # the job is running again; the copy itself answers ``waiting``
            self.update_job(job)
        return new

    def delete_task(self, task_id: str) -> None:
        task = self.get_task(task_id)
        self._drop_task(task)
        if task.job_id and task.job_id in self.jobs:
            job = self.jobs[task.job_id]
            job.task_ids = [i for i in job.task_ids if i != task.id]

    def _drop_task(self, task: Task) -> None:
        self.remove_task(task)
        self.task_clock.stop(task.id)

    def delete_job(self, job_id: str) -> None:
        job = self.get_job(job_id)
        self.history.remove(job, self.job_tasks(job), "deleted", self.now())
        for task in self.job_tasks(job):
            self._drop_task(task)
        self.remove_job(job)

    def upload(self, task_id: str, filename: str, data: bytes) -> Task:
        task = self.get_task(task_id)
        if task.form is None:
            raise ApiError(400, "INVALID_UPLOAD", "This task does not accept an upload.")
        now = self.now()
        task.held = False
        task.form = None
        task.message = None
        task.files = [self.storage.file_from_bytes(filename, data, md5=True)]
        task.status = "finished"
        task.credits = 0
        task.started_at = task.ended_at = now
        self.task_clock.stop(task.id)
        self.retention.schedule_task(task)
        self._touch(task, now)
        return task

    def fetched(self, task_id: str, data: bytes | None, error: str | None) -> None:
        """Outcome of the background download of a loopback ``import/url``."""
        task = self.tasks.get(task_id)
        if task is None or task.terminal:
            return
        if error is not None:
            task.planned_error = ("DOWNLOAD_FAILED", error)
        else:
            task.files = [self.storage.file_from_bytes(import_filename(task.operation, task.payload), data or b"")]
        task.held = False
        self.task_clock.wake()
        self._touch(task, self.now())

    def _touch(self, task: Task, now: float) -> None:
        """Advance the clock after an action and refresh the task's job."""
        self.advance(now)
        job = self.jobs.get(task.job_id) if task.job_id else None
        if job is not None:
            self.update_job(job)

    # -- webhooks ----------------------------------------------------------------

    def create_webhook(self, body: Any) -> Webhook:
        errors: dict[str, list[str]] = {}
        if not isinstance(body, dict):
            body = {}
        url = body.get("url")
        events = body.get("events")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            errors["url"] = ["The url field is required and must be a valid URL."]
        if not isinstance(events, list) or not events:
            errors["events"] = ["The events field is required."]
        elif any(e not in WEBHOOK_EVENTS for e in events):
            errors["events"] = [f"The events must be among: {', '.join(WEBHOOK_EVENTS)}."]
        if errors:
            raise invalid(errors)
        now = self.now()
        hook = Webhook(
            id=self.next_webhook_id(),
            url=str(url),
            events=[str(e) for e in events],
            signing_secret=secrets.token_urlsafe(24),
            created_at=now,
            updated_at=now,
        )
        self.webhooks[hook.id] = hook
        return hook

    def delete_webhook(self, webhook_id: str) -> None:
        try:
            key = int(webhook_id)
        except ValueError:
            raise not_found("Webhook") from None
        if key not in self.webhooks:
            raise not_found("Webhook")
        del self.webhooks[key]

    def _emit(self, job: Job, event: str) -> None:
        """Queue ``event`` of ``job`` for the account's webhooks that want it and the job's own ``webhook_url``."""
        body: dict[str, Any] = {"event": event, "job": job.to_dict(self.root_url, self.job_tasks(job))}
        queued = len(self.outbox)
        for hook in self.webhooks.values():
            if not hook.disabled and event in hook.events:
                self.outbox.append(Event(event, hook.url, hook.signing_secret, body, hook.id))
        if job.webhook_url and event != "job.created":
            self.outbox.append(Event(event, job.webhook_url, self.job_webhook_secret, body))
        if len(self.outbox) > queued:
            self.history.show(job, body["job"])
