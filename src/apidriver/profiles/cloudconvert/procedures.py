"""CloudConvert actions: create, wait for, cancel, retry and delete; convert a
local file end to end; check a webhook signature.

Waits use the synchronous host (``sync.api.cloudconvert.com``, or
``<BaseURL>/sync`` for other roots), which answers when the job or task has
ended. A wait gives up after ``WaitTimeout`` seconds (the connection
property, 600 by default) or the ``timeout`` argument of ``WaitJob`` and
``WaitTask``, all attempts together; if the sync host answers before the
end with the job still running, it is asked again. Uploads and downloads go
to the storage hosts named in task results, through a client that never
carries the API key. Ids go into paths as one percent-encoded segment;
``.`` and ``..`` name nothing, and nothing is sent for them.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...engine.procedures import ProcedureContext
from ...engine.schema import Column, Param, Procedure
from ...exceptions import APIUnavailableError, OperationalError, ProgrammingError
from ...values import BOOLEAN, INTEGER, JSON, REAL, TEXT
from .checks import check_job
from .jobs import jobs
from .tasks import tasks

WAIT_TIMEOUT = 600.0  # default of the WaitTimeout property: seconds a wait may take in all
ENDED = ("finished", "error")

JOB_COLUMNS = tuple(c for c in jobs.columns if c.name not in ("webhook_url",))
TASK_COLUMNS = tuple(c for c in tasks.columns if c.name not in ("payload",))


def _sync(ctx: ProcedureContext) -> str:
    return str(ctx.extras["sync_root_url"](ctx.settings)) + "/v2"


def _limit(ctx: ProcedureContext, given: Any, procedure: str) -> float:
    """The wait limit: the ``timeout`` argument, else the WaitTimeout property."""
    if given is None:
        return float(ctx.settings.get("WaitTimeout") or WAIT_TIMEOUT)
    limit = float(given)
    if not (limit > 0 and math.isfinite(limit)):
        raise ProgrammingError(f"{procedure}: timeout must be a number of seconds more than 0.")
    return limit


def wait_for(ctx: ProcedureContext, kind: str, key: Any, limit: float, procedure: str) -> Mapping[str, Any]:
    """The job or task ``key`` once it has ended, waited for on the sync host for at most ``limit`` s."""
    path = ctx.path(f"{_sync(ctx)}/{kind}s/{{key}}", key, kind)
    deadline = time.monotonic() + limit
    while True:
        try:
            found = ctx.api("GET", path, scope="task.read", timeout=limit, deadline=deadline)
        except APIUnavailableError as error:
            if time.monotonic() < deadline:
                raise
            found = None
            cause: BaseException | None = error
        else:
            cause = None
            if not isinstance(found, Mapping):
                raise OperationalError(f"{procedure}: the sync host answered without the {kind}.")
            if found.get("status") in ENDED:
                return found
        if time.monotonic() >= deadline:
            raise OperationalError(
                f"{procedure}: the {kind} {key} had not ended after {limit:g} s (the limit of the WaitTimeout property, "
                f"or of the timeout argument of {procedure}). It goes on running: wait again, or give a longer limit."
            ) from cause
        ctx.statement.cancel.sleep(min(1.0, max(0.0, deadline - time.monotonic())))  # the sync host gave up early


def wait_job(ctx: ProcedureContext, job_id: Any, timeout: Any = None, procedure: str = "WaitJob") -> Mapping[str, Any]:
    return wait_for(ctx, "job", job_id, _limit(ctx, timeout, procedure), procedure)


def create_job(ctx: ProcedureContext, args: dict[str, Any]) -> list[Mapping[str, Any]]:
    body = {"tasks": args["tasks"]}
    check_job(body)
    if args.get("tag") is not None:
        body["tag"] = args["tag"]
    job = ctx.api("POST", "/jobs", json=body, scope="task.write")
    if args.get("wait"):
        job = wait_job(ctx, job["id"], procedure="CreateJob")
    return [job]


def wait_job_proc(ctx: ProcedureContext, args: dict[str, Any]) -> list[Mapping[str, Any]]:
    return [wait_job(ctx, args["id"], args.get("timeout"))]


def wait_task(ctx: ProcedureContext, args: dict[str, Any]) -> list[Mapping[str, Any]]:
    return [wait_for(ctx, "task", args["id"], _limit(ctx, args.get("timeout"), "WaitTask"), "WaitTask")]


def cancel_task(ctx: ProcedureContext, args: dict[str, Any]) -> list[Mapping[str, Any]]:
    return [ctx.api("POST", ctx.path("/tasks/{key}/cancel", args["id"], "task"), scope="task.write")]


def retry_task(ctx: ProcedureContext, args: dict[str, Any]) -> list[Mapping[str, Any]]:
    return [ctx.api("POST", ctx.path("/tasks/{key}/retry", args["id"], "task"), scope="task.write")]


def delete_job(ctx: ProcedureContext, args: dict[str, Any]) -> list[Mapping[str, Any]]:
    ctx.api("DELETE", ctx.path("/jobs/{key}", args["id"], "job"), scope="task.write")
    return [{"id": str(args["id"]), "deleted": True}]


def verify_webhook_signature(payload: bytes | str, signature: str, secret: str) -> bool:
    """Whether ``signature`` (the ``CloudConvert-Signature`` header) signs ``payload``.

    ``payload`` must be the exact raw request body; the check is HMAC-SHA256
    keyed with the webhook's signing secret, compared in constant time.
    """
    body = payload.encode() if isinstance(payload, str) else payload
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, (signature or "").strip().lower())


def verify_proc(ctx: ProcedureContext, args: dict[str, Any]) -> list[Mapping[str, Any]]:
    return [{"valid": verify_webhook_signature(args["payload"], args["signature"], args["secret"])}]


def _target(source: Path, filename: str, destination: str | None, count: int) -> Path:
    if destination:
        dest = Path(destination).expanduser()
        if dest.is_dir() or destination.endswith(("/", os.sep)) or count > 1:
            dest.mkdir(parents=True, exist_ok=True)
            return dest / filename
        return dest
    target = source.with_name(filename)
    if target.resolve() == source.resolve():
        target = source.with_name(f"{Path(filename).stem}-converted{Path(filename).suffix}")
    return target


def convert_file(ctx: ProcedureContext, args: dict[str, Any]) -> list[Mapping[str, Any]]:
    """Upload a local file, convert it, download the result(s); stream both ways."""
    source = Path(str(args["path"])).expanduser()
    if not source.is_file():
        raise ProgrammingError(f"ConvertFile: no file at {str(source)!r}.")
    options = args.get("options") or {}
    if not isinstance(options, Mapping):
        raise ProgrammingError('ConvertFile: options must be a JSON object, e.g. {"engine": "office"}.')
    convert = {"operation": "convert", "input": "upload", "output_format": str(args["output_format"]).lower(), **options}
    job = ctx.api(
        "POST",
        "/jobs",
        json={
            "tag": "apidriver:ConvertFile",
            "tasks": {
                "upload": {"operation": "import/upload"},
                "convert": convert,
                "export": {"operation": "export/url", "input": "convert"},
            },
        },
        scope="task.write",
    )
    upload = next(t for t in job["tasks"] if t.get("name") == "upload")
    form = (upload.get("result") or {}).get("form") or {}
    if not form.get("url"):
        raise OperationalError(f"ConvertFile: job {job['id']} gave no upload form.")
    with source.open("rb") as handle:  # httpx streams the file in chunks
        response = ctx.storage.post(form["url"], data=form.get("parameters") or {}, files={"file": (source.name, handle)})
    if response.status_code >= 300:
        raise OperationalError(
            f"ConvertFile: uploading {source.name} failed ({response.status_code}); job {job['id']} is left waiting."
        )
    done = wait_job(ctx, job["id"], procedure="ConvertFile")
    if done.get("status") != "finished":
        failures = "; ".join(
            f"{t.get('name')}: {t.get('code')} {t.get('message')}" for t in done.get("tasks", []) if t.get("status") == "error"
        )
        raise OperationalError(f"ConvertFile: job {job['id']} ended with status {done.get('status')}: {failures}")
    export = next(t for t in done["tasks"] if t.get("name") == "export")
    files = (export.get("result") or {}).get("files") or []
    credits = sum(int(t.get("credits") or 0) for t in done["tasks"])
    rows: list[Mapping[str, Any]] = []
    for f in files:
        target = _target(source, f["filename"], args.get("destination"), len(files))
        partial = target.with_name(target.name + ".part")
        size = 0
        with ctx.storage.stream("GET", f["url"]) as download:
            if download.status_code >= 300:
                raise OperationalError(f"ConvertFile: downloading {f['filename']} failed ({download.status_code}).")
            with partial.open("wb") as out:
                for chunk in download.iter_bytes():
                    out.write(chunk)
                    size += len(chunk)
        partial.replace(target)
        rows.append({"output_path": str(target), "filename": f["filename"], "size": size, "credits": credits, "job_id": done["id"]})
    return rows


procedures = (
    Procedure(
        "CreateJob",
        "Create a job from task specs by name; with wait, return it when it has ended.",
        (
            Param("tasks", JSON, "Task specs by name (JSON object), as for INSERT INTO Jobs."),
            Param("tag", TEXT, "Free text tag.", required=False),
            Param("wait", BOOLEAN, "Wait until the job ends (sync API; at most WaitTimeout seconds).", required=False, default=False),
        ),
        JOB_COLUMNS,
        create_job,
    ),
    Procedure(
        "WaitJob",
        "Wait until a job ends (sync API); return it. Gives up after timeout (or WaitTimeout) seconds.",
        (Param("id", TEXT, "Job id."), Param("timeout", REAL, "Seconds to wait at most (default: the WaitTimeout property, 600).", required=False)),
        JOB_COLUMNS,
        wait_job_proc,
        writes=False,
    ),
    Procedure(
        "WaitTask",
        "Wait until a task ends (sync API); return it. Gives up after timeout (or WaitTimeout) seconds.",
        (Param("id", TEXT, "Task id."), Param("timeout", REAL, "Seconds to wait at most (default: the WaitTimeout property, 600).", required=False)),
        TASK_COLUMNS,
        wait_task,
        writes=False,
    ),
    Procedure("CancelTask", "Cancel a waiting or processing task; return it (status error, code CANCELLED).", (Param("id", TEXT, "Task id."),), TASK_COLUMNS, cancel_task),
    Procedure("RetryTask", "Retry an ended task; return the new task (retry_of_task_id = id).", (Param("id", TEXT, "Task id."),), TASK_COLUMNS, retry_task),
    Procedure(
        "DeleteJob",
        "Delete a job with its tasks and files.",
        (Param("id", TEXT, "Job id."),),
        (Column("id", TEXT, "The deleted job's id."), Column("deleted", BOOLEAN, "True once deleted.")),
        delete_job,
    ),
    Procedure(
        "ConvertFile",
        "Upload a local file, convert it, and download the result next to it (or to destination).",
        (
            Param("path", TEXT, "Path of the local file."),
            Param("output_format", TEXT, "Target format, e.g. pdf."),
            Param("options", JSON, "More convert options (JSON object), e.g. {\"engine\": \"office\"}.", required=False),
            Param("destination", TEXT, "A directory, or a file path for a single output.", required=False),
        ),
        (
            Column("output_path", TEXT, "Where the result was written."),
            Column("filename", TEXT, "The result's file name."),
            Column("size", INTEGER, "Bytes written."),
            Column("credits", INTEGER, "Credits the job used."),
            Column("job_id", TEXT, "The job that did it."),
        ),
        convert_file,
    ),
    Procedure(
        "VerifyWebhookSignature",
        "Check a webhook delivery: HMAC-SHA256 of the raw body with the signing secret.",
        (
            Param("payload", TEXT, "The exact raw request body."),
            Param("signature", TEXT, "The CloudConvert-Signature header."),
            Param("secret", TEXT, "The webhook's signing_secret."),
        ),
        (Column("valid", BOOLEAN, "Whether the signature matches."),),
        verify_proc,
        writes=False,
    ),
)

__all__ = ["procedures", "verify_webhook_signature"]
