"""Jobs: ``GET /v2/jobs`` (filters status, tag) and ``GET /v2/jobs/{id}``."""

from ...engine.schema import Column, Embed, Endpoint, Table
from ...values import TEXT, TIMESTAMP

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
    ),
    list=Endpoint("/jobs", scope="task.read", paginated=True),
    get=Endpoint("/jobs/{key}", scope="task.read"),
    embeds=(Embed(table="Tasks", field="tasks", key="job_id", include="tasks"),),
    estimated_rows=2000,
)
