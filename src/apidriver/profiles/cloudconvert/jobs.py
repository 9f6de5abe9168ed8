"""Jobs: ``GET /v2/jobs`` (filters status, tag) and ``GET /v2/jobs/{id}``."""

from ...engine.schema import Column, Delete, Embed, Endpoint, Insert, Table, Writes
from ...values import JSON, TEXT, TIMESTAMP
from .checks import check_job

jobs = Table(
    name="Jobs",
    description="Conversion jobs of the account: a tagged group of tasks run together. Jobs are deleted 24 h after they end.",
    columns=(
        Column("id", TEXT, "Job id (UUID).", primary_key=True),
        Column("tag", TEXT, "Free text set when the job was created; no effect on processing.", filter="filter[tag]"),
        Column("status", TEXT, "waiting, processing, finished or error.", filter="filter[status]"),
        Column("created_at", TIMESTAMP, "When the job was created (UTC)."),
        Column("started_at", TIMESTAMP, "When its first task started (UTC); NULL before."),
        Column("ended_at", TIMESTAMP, "When its last task ended (UTC); NULL before."),
        Column("links_self", TEXT, "The job's API URL.", path="links.self"),
        Column(
            "tasks",
            JSON,
            "The job's tasks as the API returns them (JSON array). On INSERT: the task specs by name (JSON object).",
            include="tasks",
        ),
        Column("webhook_url", TEXT, "Write-only: a URL told when this job ends (INSERT only; the API never returns it)."),
    ),
    # Seen newest first in every recorded list; the API does not promise it.
    list=Endpoint("/jobs", scope="task.read", paginated=True, order=("created_at", True)),
    get=Endpoint("/jobs/{key}", scope="task.read"),
    embeds=(Embed(table="Tasks", field="tasks", key="job_id", include="tasks"),),
    estimated_rows=2000,
    write=Writes(
        insert=Insert(
            "/jobs",
            columns=("tag", "tasks", "webhook_url"),
            required=("tasks",),
            body=lambda row: {k: row[k] for k in ("tasks", "tag", "webhook_url") if k in row},
            scope="task.write",
            check=check_job,
        ),
        delete=Delete("/jobs/{key}", scope="task.write"),
    ),
)
