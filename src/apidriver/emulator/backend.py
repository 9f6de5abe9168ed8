"""The emulated account: its state, the CRUD operations and the task clock.

All methods run on the server's event-loop thread (handlers are ``async``),
so the state needs no lock. ``advance`` moves tasks along their lifecycle by
the emulator's clock; the server calls it before each request and every
50 ms in the background, so webhooks fire even when nobody polls.

The clock is wall-clock time plus an offset that only grows
(:meth:`Backend.advance_clock`, ``POST /_emulator/clock``): task
processing, the timestamps of new objects, retention and the expiry of
export URLs all follow it. Retention: a job (with its tasks) and a
standalone task are deleted ``retention_hours`` after they end, as the API
deletes them 24 hours after they end.

With ``keep_history`` the emulator remembers every job it ever had: a job
deleted (``DELETE``) or expired (retention) is kept in ``removed`` with why
and when it went and its last state, and ``shown`` holds the last state of
each job any answer or webhook delivery showed, so that tests and the churn
soak can compare a replica with the whole truth (``GET /_emulator/history``).
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import re
import secrets
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .catalogue import Catalogue, default_engine_version
from .files import render
from .models import FileRef, Job, Task, User, Webhook
from .operations import OPERATIONS, TaskFailure, import_filename, produce, validate

TASK_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
WEBHOOK_EVENTS = ("job.created", "job.finished", "job.failed")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
HOST_NAMES = ("dulce", "kirstin", "lesly", "virgil", "marlon", "ivy")


class ApiError(Exception):
    """An error answer of the API: HTTP status plus the JSON error body."""

    def __init__(self, status: int, code: str, message: str, errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors is not None:
            out["errors"] = self.errors
        return out


def invalid(errors: dict[str, list[str]]) -> ApiError:
    return ApiError(422, "INVALID_DATA", "The given data was invalid.", errors)


def not_found(what: str) -> ApiError:
    return ApiError(404, "NOT_FOUND", f"{what} not found.")


@dataclass(slots=True)
class Removed:
    """A job the API no longer has: why it went (``deleted`` or ``expired``), when (the emulator's clock), as it was."""

    job: Job
    tasks: list[Task]
    reason: str
    at: float


@dataclass(slots=True)
class Event:
    """A webhook delivery waiting to be sent."""

    event: str
    url: str
    secret: str
    body: dict[str, Any]
    webhook_id: int | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)


class Backend:
    def __init__(
        self,
        *,
        task_seconds: float = 1.0,
        credits: int = 2500,
        catalogue: Catalogue | None = None,
        retention_hours: float = 24.0,
        keep_history: bool = False,
    ) -> None:
        self.task_seconds = task_seconds
        self.initial_credits = credits
        self.keep_history = keep_history
        self.retention = retention_hours * 3600.0
        self.clock_offset = 0.0
        self.catalogue = catalogue or Catalogue()
        self.root_url = "http://127.0.0.1"
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
        self.removed: dict[str, Removed] = {}  # (keep_history) every job deleted or expired, by id
        self.shown: dict[str, dict[str, Any]] = {}  # (keep_history) the last state of each job an answer or delivery showed
        self.blobs: dict[str, bytes] = {}
        self.outbox: list[Event] = []
        self.deliveries: list[Event] = []
        self.job_webhook_secret = secrets.token_hex(16)
        self._active: dict[str, Task] = {}
        self._seq = 0
        self._webhook_seq = 0
        # (deletion time, tie-breaker, "job"|"task", id): checked lazily, see ``expire``.
        self._expiries: list[tuple[float, int, str, str]] = []
        self._expiry_of: dict[str, float] = {}

    def reset(self) -> None:
        """Start over as a new, empty account with the same settings, root URL and job webhook
        secret (``POST /_emulator/reset``): one server can serve test after test."""
        root_url, secret = self.root_url, self.job_webhook_secret
        Backend.__init__(
            self,
            task_seconds=self.task_seconds,
            credits=self.initial_credits,
            catalogue=self.catalogue,
            retention_hours=self.retention / 3600.0,
        )
        self.root_url, self.job_webhook_secret = root_url, secret

    # -- the clock -------------------------------------------------------------

    def now(self) -> float:
        """The emulator's time: wall-clock time plus what ``advance_clock`` added."""
        return time.time() + self.clock_offset

    def advance_clock(self, seconds: float) -> float:
        """Move the clock forward: tasks progress, retention deletes, export URLs expire.

        Returns the new time. The clock never goes back.
        """
        if not seconds >= 0:
            raise ValueError("the clock only moves forward: give a number of seconds, 0 or more")
        self.clock_offset += float(seconds)
        self.advance()
        return self.now()

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

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def list_jobs(self, status: str | None, tag: str | None) -> list[Job]:
        """Newest first (creation order reversed)."""
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
        else:
            candidates = reversed(self.task_order)
        return [
            t
            for t in candidates
            if (status is None or t.status == status) and (operation is None or t.operation == operation)
        ]

    def list_webhooks(self, url: str | None) -> list[Webhook]:
        return [w for w in reversed(list(self.webhooks.values())) if url is None or w.url == url]

    # -- storage -------------------------------------------------------------

    def file_bytes(self, ref: FileRef) -> bytes:
        kind, key = ref.content_key
        if kind == "blob":
            return self.blobs.get(key, b"")
        return render(key or ref.filename)

    def store_blob(self, data: bytes) -> str:
        key = hashlib.sha256(data).hexdigest()
        self.blobs[key] = data
        return key

    def _file_from_bytes(self, filename: str, data: bytes, md5: bool = False) -> FileRef:
        return FileRef(
            filename=filename,
            size=len(data),
            md5=hashlib.md5(data).hexdigest() if md5 else None,
            content_key=("blob", self.store_blob(data)),
        )

    def rendered_file(self, filename: str, **kw: Any) -> FileRef:
        return FileRef(filename=filename, size=len(render(filename)), content_key=("render", filename), **kw)

    # -- creation ------------------------------------------------------------

    def check_credits(self) -> None:
        if self.user.credits <= 0:
            raise ApiError(402, "CREDITS_EXCEEDED", "Your account has run out of conversion minutes")

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
            task.form = self.upload_form(task.id)
        elif task.operation == "import/base64":
            try:
                data = base64.b64decode(str(p.get("file", "")), validate=True)
            except ValueError:
                task.planned_error = ("INVALID_FILE", "The file is not valid base64")
            else:
                task.files = [self._file_from_bytes(str(p["filename"]), data)]
        elif task.operation == "import/raw":
            task.files = [self._file_from_bytes(str(p["filename"]), str(p.get("file", "")).encode())]
        elif task.operation == "import/url":
            from urllib.parse import urlsplit

            host = urlsplit(str(p.get("url", ""))).hostname or ""
            if not host or host.endswith(".invalid"):
                task.planned_error = ("DOWNLOAD_FAILED", f"Could not download the file: cannot resolve host '{host}'")
            elif host in LOOPBACK_HOSTS:
                task.held = True  # the server downloads it, then calls fetched()

    def upload_form(self, task_id: str) -> dict[str, Any]:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self.now()))
        return {
            "url": f"{self.root_url}/_storage/upload/{task_id}",
            "parameters": {
                "acl": "private",
                "key": f"{task_id}/${{filename}}",
                "success_action_status": "201",
                "X-Amz-Credential": f"cloudconvert-emulator/{stamp[:8]}/local/s3/aws4_request",
                "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
                "X-Amz-Date": stamp,
                "Policy": base64.b64encode(f'{{"task":"{task_id}"}}'.encode()).decode(),
                "X-Amz-Signature": hashlib.sha256(task_id.encode()).hexdigest(),
            },
        }

    def _register_task(self, task: Task) -> None:
        self.tasks[task.id] = task
        self.task_order.append(task)
        if task.job_id:
            self.tasks_by_job.setdefault(task.job_id, []).append(task.id)
        if not task.terminal:
            self._active[task.id] = task
        else:
            self._schedule_task(task)

    def _register_job(self, job: Job) -> None:
        self.jobs[job.id] = job
        self.job_order.append(job)

    def create_job(self, body: Any) -> Job:
        if not isinstance(body, dict):
            raise invalid({"tasks": ["The tasks field is required."]})
        specs = body.get("tasks")
        errors: dict[str, list[str]] = {}
        if not isinstance(specs, dict) or not specs:
            errors["tasks"] = ["The tasks field is required."]
        tag = body.get("tag")
        if tag is not None and not isinstance(tag, str):
            errors["tag"] = ["The tag must be a string."]
        webhook_url = body.get("webhook_url")
        if webhook_url is not None and not (isinstance(webhook_url, str) and webhook_url.startswith(("http://", "https://"))):
            errors["webhook_url"] = ["The webhook url format is invalid."]
        if errors:
            raise invalid(errors)
        assert isinstance(specs, dict)
        for name, spec in specs.items():
            prefix = f"tasks.{name}."
            if not TASK_NAME.match(name):
                errors[f"tasks.{name}"] = ["Task names may only contain letters, numbers, dashes and underscores."]
                continue
            if not isinstance(spec, dict):
                errors[f"tasks.{name}"] = ["The task must be an object."]
                continue
            op = spec.get("operation")
            if not op:
                errors[prefix + "operation"] = ["The operation field is required."]
                continue
            errors.update(validate(str(op), spec, prefix))
            for ref in _inputs(spec):
                if ref not in specs and ref not in self.tasks:
                    errors[prefix + "input"] = [f"The input task '{ref}' does not exist."]
        if not errors and _has_cycle(specs):
            errors["tasks"] = ["The tasks have circular input dependencies."]
        if errors:
            raise invalid(errors)
        self.check_credits()
        now = self.now()
        job = Job(id=str(uuid.uuid4()), tag=tag, created_at=now, seq=self.next_seq(), webhook_url=webhook_url)
        created: dict[str, Task] = {}
        for name, spec in specs.items():
            created[name] = self._new_task(str(spec["operation"]), dict(spec), now, job, name)
        for name, spec in specs.items():
            created[name].depends_on_task_ids = [created[r].id if r in created else r for r in _inputs(spec)]
        self._register_job(job)
        for task in created.values():
            job.task_ids.append(task.id)
            self._register_task(task)
        # No advance here: the answer (and job.created) shows every task
        # still ``waiting``, as recorded; the clock moves them on from the
        # next request or tick.
        self._emit(job, "job.created")
        return job

    def create_task(self, operation: str, body: Any) -> Task:
        if operation not in OPERATIONS:
            raise not_found(f"Operation '{operation}'")
        if not isinstance(body, dict):
            body = {}
        payload = {"operation": operation, **{k: v for k, v in body.items() if k != "operation"}}
        errors = validate(operation, payload)
        for ref in _inputs(payload):
            if ref not in self.tasks:
                errors["input"] = [f"The input task '{ref}' does not exist."]
        if errors:
            raise invalid(errors)
        self.check_credits()
        now = self.now()
        task = self._new_task(operation, payload, now, None, payload.get("name"))
        task.depends_on_task_ids = list(_inputs(payload))
        self._register_task(task)
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
        self._active.pop(task.id, None)
        self._schedule_task(task)
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
        self._register_task(new)
        if job is not None:  # the job is running again; the copy itself answers ``waiting``
            self._update_job(job)
        return new

    def delete_task(self, task_id: str) -> None:
        task = self.get_task(task_id)
        self._drop_task(task)
        if task.job_id and task.job_id in self.jobs:
            job = self.jobs[task.job_id]
            job.task_ids = [i for i in job.task_ids if i != task.id]

    def _drop_task(self, task: Task) -> None:
        self.tasks.pop(task.id, None)
        self._active.pop(task.id, None)
        self.task_order.remove(task)
        if task.job_id and task.job_id in self.tasks_by_job:
            ids = self.tasks_by_job[task.job_id]
            if task.id in ids:
                ids.remove(task.id)

    def delete_job(self, job_id: str) -> None:
        job = self.get_job(job_id)
        if self.keep_history:
            self.removed[job.id] = Removed(job, self.job_tasks(job), "deleted", self.now())
        for task in self.job_tasks(job):
            self._drop_task(task)
        self.tasks_by_job.pop(job.id, None)
        del self.jobs[job.id]
        self.job_order.remove(job)

    def upload(self, task_id: str, filename: str, data: bytes) -> Task:
        task = self.get_task(task_id)
        if task.form is None:
            raise ApiError(400, "INVALID_UPLOAD", "This task does not accept an upload.")
        now = self.now()
        task.held = False
        task.form = None
        task.message = None
        task.files = [self._file_from_bytes(filename, data, md5=True)]
        task.status = "finished"
        task.credits = 0
        task.started_at = task.ended_at = now
        self._active.pop(task.id, None)
        self._schedule_task(task)
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
            task.files = [self._file_from_bytes(import_filename(task.operation, task.payload), data or b"")]
        task.held = False
        self._touch(task, self.now())

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
        self._webhook_seq += 1
        hook = Webhook(
            id=self._webhook_seq,
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

    def show(self, job: Job, shown: dict[str, Any]) -> dict[str, Any]:
        """``shown`` (``job`` as an answer or a delivery shows it), remembered with ``keep_history``."""
        if self.keep_history:
            self.shown[job.id] = shown
        return shown

    def _emit(self, job: Job, event: str) -> None:
        body = {"event": event, "job": job.to_dict(self.root_url, self.job_tasks(job))}
        queued = len(self.outbox)
        for hook in self.webhooks.values():
            if not hook.disabled and event in hook.events:
                self.outbox.append(Event(event, hook.url, hook.signing_secret, body, hook.id))
        if job.webhook_url and event != "job.created":
            self.outbox.append(Event(event, job.webhook_url, self.job_webhook_secret, body))
        if len(self.outbox) > queued:
            self.show(job, body["job"])

    # -- lifecycle ---------------------------------------------------------------

    def _touch(self, task: Task, now: float) -> None:
        """Advance the clock after an action and refresh the task's job."""
        self.advance(now)
        job = self.jobs.get(task.job_id) if task.job_id else None
        if job is not None:
            self._update_job(job)

    def advance(self, now: float | None = None) -> None:
        """Move every unfinished task along by the clock, then update jobs."""
        now = self.now() if now is None else now
        touched: set[str] = set()
        changed = True
        while changed and self._active:
            changed = False
            for task in list(self._active.values()):
                if self._step(task, now):
                    changed = True
                    if task.job_id:
                        touched.add(task.job_id)
                if task.terminal:
                    self._active.pop(task.id, None)
                    self._schedule_task(task)
        for job_id in touched:
            job = self.jobs.get(job_id)
            if job is not None:
                self._update_job(job)
        self.expire(now)

    # -- retention ---------------------------------------------------------------

    def _schedule(self, kind: str, key: str, ended_at: float | None) -> None:
        if ended_at is None:
            return
        at = ended_at + self.retention
        if self._expiry_of.get(key) != at:
            self._expiry_of[key] = at
            heapq.heappush(self._expiries, (at, self.next_seq(), kind, key))

    def _schedule_task(self, task: Task) -> None:
        """A standalone task is deleted ``retention`` after it ends (job tasks go with their job)."""
        if task.job_id is None and task.terminal:
            self._schedule("task", task.id, task.ended_at)

    def expire(self, now: float | None = None) -> int:
        """Delete what ended ``retention`` ago or earlier; returns how many jobs and tasks went.

        Entries are checked when due: a job that was re-opened (a retried
        task) or re-ended later is skipped here and scheduled again when it ends.
        """
        now = self.now() if now is None else now
        jobs: list[Job] = []
        tasks: list[Task] = []
        while self._expiries and self._expiries[0][0] <= now:
            at, _, kind, key = heapq.heappop(self._expiries)
            if self._expiry_of.get(key) != at:
                continue
            del self._expiry_of[key]
            if kind == "job":
                job = self.jobs.get(key)
                if job is not None and job.terminal and job.ended_at is not None and job.ended_at + self.retention == at:
                    jobs.append(job)
            else:
                task = self.tasks.get(key)
                if task is not None and task.terminal and task.ended_at is not None and task.ended_at + self.retention == at:
                    tasks.append(task)
        if not jobs and not tasks:
            return 0
        gone_tasks = {t.id for t in tasks}
        for job in jobs:
            if self.keep_history:
                self.removed[job.id] = Removed(job, self.job_tasks(job), "expired", now)
            gone_tasks.update(self.tasks_by_job.pop(job.id, []))
            gone_tasks.update(job.task_ids)
            del self.jobs[job.id]
        for task_id in gone_tasks:
            self.tasks.pop(task_id, None)
            self._active.pop(task_id, None)
            self._expiry_of.pop(task_id, None)
        gone_jobs = {j.id for j in jobs}
        # One pass over the ordered lists, however many expire at once (a clock jump).
        self.job_order = [j for j in self.job_order if j.id not in gone_jobs]
        self.task_order = [t for t in self.task_order if t.id not in gone_tasks]
        for task in tasks:
            if task.job_id and task.job_id in self.tasks_by_job:
                self.tasks_by_job[task.job_id] = [i for i in self.tasks_by_job[task.job_id] if i != task.id]
        return len(jobs) + len(tasks)

    def _step(self, task: Task, now: float) -> bool:
        """Advance one task; True when its state changed."""
        changed = False
        if task.status == "waiting":
            if task.held:
                return False
            deps = [self.tasks.get(d) for d in task.depends_on_task_ids]
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
        self.user.credits -= task.credits or 0

    def _produce(self, task: Task) -> None:
        spec = OPERATIONS[task.operation]
        inputs = [f for d in task.depends_on_task_ids if (t := self.tasks.get(d)) for f in (t.files or [])]
        if spec.kind == "import":
            if task.files is None:
                task.files = [self.rendered_file(import_filename(task.operation, task.payload))]
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
                        url_path=export_url_path(task.id, f.filename, task.ended_at or self.now()),
                    )
                    for f in inputs
                ]
            else:
                prefix = str(task.payload.get("key_prefix") or task.payload.get("path") or "")
                task.files = [FileRef(filename=f.filename, size=f.size, dir=prefix or None, content_key=f.content_key) for f in inputs]
            task.credits = 0
        else:
            files, extra, credits, engine, version = produce(task.operation, task.payload, inputs, self.catalogue)
            task.files = [self._sized(f) for f in files] if files is not None else None
            task.extra_result = extra
            task.credits = credits
            task.engine, task.engine_version = engine, version

    def _sized(self, ref: FileRef) -> FileRef:
        if ref.size is None:
            ref.size = len(self.file_bytes(ref))
        return ref

    def _update_job(self, job: Job, emit: bool = True) -> None:
        tasks = [t for t in self.job_tasks(job) if not t.retries]
        before = job.status
        started = [t.started_at for t in tasks if t.started_at is not None]
        job.started_at = min(started) if started else None
        if tasks and all(t.terminal for t in tasks):
            job.status = "error" if any(t.status == "error" for t in tasks) else "finished"
            job.ended_at = max(t.ended_at or 0.0 for t in tasks)
            self._schedule("job", job.id, job.ended_at)
        else:
            job.status = "processing" if started or any(t.terminal for t in tasks) else "waiting"
            job.ended_at = None
        if emit and job.status != before and job.terminal:
            self._emit(job, "job.finished" if job.status == "finished" else "job.failed")


def export_url_path(task_id: str, filename: str, now: float) -> str:
    """The download path of an export/url file made at ``now``: valid 24 hours, like the API's."""
    from urllib.parse import quote

    expires = int(now) + 86400
    signature = hashlib.sha256(f"{task_id}/{filename}/{expires}".encode()).hexdigest()[:27]
    return f"/_storage/tasks/{task_id}/{quote(filename)}?Expires={expires}&Signature={signature}"


def _inputs(spec: dict[str, Any]) -> list[str]:
    inp = spec.get("input")
    if inp is None:
        return []
    return [inp] if isinstance(inp, str) else [str(i) for i in inp]


def _has_cycle(specs: dict[str, Any]) -> bool:
    state: dict[str, int] = {}

    def visit(name: str) -> bool:
        if state.get(name) == 1:
            return True
        if state.get(name) == 2 or name not in specs:
            return False
        state[name] = 1
        if any(visit(r) for r in _inputs(specs[name])):
            return True
        state[name] = 2
        return False

    return any(visit(n) for n in specs)
