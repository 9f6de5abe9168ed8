"""Tasks: ``GET /v2/tasks`` (filters job_id, status, operation) and ``GET /v2/tasks/{id}``."""

from collections.abc import Mapping
from typing import Any

from ...engine.schema import Column, Delete, Endpoint, Insert, Table, Writes
from ...values import INTEGER, JSON, TEXT, TIMESTAMP
from .checks import check_task


def _task_body(row: Mapping[str, Any]) -> dict[str, Any]:
    body = dict(row.get("payload") or {})
    if "name" in row:
        body["name"] = row["name"]
    return body


tasks = Table(
    name="Tasks",
    description="Tasks: one operation (import, convert, export, ...) each, in a job or standalone. Deleted 24 h after they end.",
    columns=(
        Column("id", TEXT, "Task id (UUID).", primary_key=True),
        Column("job_id", TEXT, "The job the task belongs to; NULL for standalone tasks.", filter="filter[job_id]", references="Jobs.id"),
        Column("name", TEXT, "The task's name within its job (NULL for standalone tasks)."),
        Column("operation", TEXT, "The operation, e.g. import/url, convert, export/url.", filter="filter[operation]"),
        Column("status", TEXT, "waiting, processing, finished or error.", filter="filter[status]"),
        Column("code", TEXT, "Error code when status is error, e.g. INPUT_TASK_FAILED, CANCELLED."),
        Column("message", TEXT, "Status or error message."),
        Column("percent", INTEGER, "Progress in percent."),
        Column("credits", INTEGER, "Credits the task consumed; NULL until it finishes."),
        Column("engine", TEXT, "Engine that ran the task (processing operations only)."),
        Column("engine_version", TEXT, "Version of that engine."),
        Column("payload", JSON, "The options the task was created with (JSON).", include="payload"),
        Column("result", JSON, "The task's result (JSON): files, or the upload form while waiting."),
        Column("created_at", TIMESTAMP, "When the task was created (UTC)."),
        Column("started_at", TIMESTAMP, "When processing started (UTC); NULL before."),
        Column("ended_at", TIMESTAMP, "When the task ended (UTC); NULL before."),
        Column("retry_of_task_id", TEXT, "The task this one retries, if created by a retry.", references="Tasks.id"),
        Column("copy_of_task_id", TEXT, "The task this one copies, if any.", references="Tasks.id"),
        Column("depends_on_task_ids", JSON, "Ids of the tasks this one takes its input from (JSON array)."),
        Column("user_id", INTEGER, "The owning account's id.", references="Users.id"),
        Column("priority", INTEGER, "Scheduling priority."),
        Column("host_name", TEXT, "Worker host that processed the task."),
        Column("storage", TEXT, "Storage location label of the task's files."),
        Column("links_self", TEXT, "The task's API URL.", path="links.self"),
    ),
    # Seen newest first in every recorded list; the API does not promise it.
    list=Endpoint("/tasks", scope="task.read", paginated=True, order=("created_at", True)),
    get=Endpoint("/tasks/{key}", scope="task.read"),
    estimated_rows=6000,
    write=Writes(
        insert=Insert(
            lambda row: "/" + str(row["operation"]),
            columns=("operation", "payload", "name"),
            required=("operation",),
            body=_task_body,
            scope="task.write",
            check=check_task,
        ),
        delete=Delete("/tasks/{key}", scope="task.write"),
    ),
)
