"""The server's prompts: questions people ask about a CloudConvert account, with the SQL that answers them.

Each prompt is a user message that names the period and the statements to
start from (with their parameters), so that the assistant's first calls
are the right ones and cost few requests.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated

from pydantic import Field

__all__ = ["credits_used", "explain_failed_jobs", "period"]

Start = Annotated[str, Field(description="Start of the period, ISO 8601 (e.g. 2026-12-01 or 2026-12-01T09:00:00Z); default: 24 hours before end.")]
End = Annotated[str, Field(description="End of the period, ISO 8601; default: now.")]

CACHE_NOTE = (
    "The API deletes jobs and tasks 24 hours after they end: for an older period the server must read a cache "
    "(apidriver sync, then Offline=true or AutoCache=true in its connection)."
)


def period(start: str, end: str, now: dt.datetime | None = None) -> tuple[str, str]:
    """``start`` and ``end`` as ISO 8601 UTC text; empty means the last 24 hours (up to now)."""
    now = now or dt.datetime.now(dt.UTC)
    until = _instant(end, "end") if end else now
    since = _instant(start, "start") if start else until - dt.timedelta(hours=24)
    if since >= until:
        raise ValueError(f"start ({since.isoformat()}) must be before end ({until.isoformat()}).")
    return since.isoformat(timespec="seconds"), until.isoformat(timespec="seconds")


def _instant(text: str, name: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{name} must be an ISO 8601 date or time, e.g. 2026-12-01 or 2026-12-01T09:00:00Z (got {text!r}).") from None
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def explain_failed_jobs(
    start: Start = "", end: End = "", tag: Annotated[str, Field(description="Only jobs with this tag; default: every job.")] = ""
) -> str:
    """Explain the jobs that failed in a period (default: the last 24 hours), optionally only those with a tag."""
    since, until = period(start, end)
    parameters = {"start": since, "end": until} | ({"tag": tag} if tag else {})
    join = " JOIN Jobs j ON j.id = t.job_id" if tag else ""
    tagged = " AND j.tag = :tag" if tag else ""
    return f"""Explain the CloudConvert jobs that failed between {since} and {until}{f" with the tag {tag!r}" if tag else ""}.

Use the run_query tool (SQLite; timestamps are ISO 8601 UTC and compare as instants), with the parameters {json.dumps(parameters)}:

1. The failed tasks by cause:
   SELECT t.operation, t.code, t.message, count(*) AS tasks, count(DISTINCT t.job_id) AS jobs
   FROM Tasks t{join}
   WHERE t.status = 'error' AND t.created_at >= :start AND t.created_at < :end{tagged}
   GROUP BY t.operation, t.code, t.message ORDER BY tasks DESC
2. The failed jobs with their tasks (the task that failed first is the cause; INPUT_TASK_FAILED only says that an input failed):
   SELECT j.id, j.tag, j.created_at, t.name, t.operation, t.status, t.code, t.message, t.ended_at
   FROM Jobs j JOIN Tasks t ON t.job_id = j.id
   WHERE j.status = 'error' AND j.created_at >= :start AND j.created_at < :end{" AND j.tag = :tag" if tag else ""}
   ORDER BY j.created_at DESC, t.ended_at LIMIT 100
3. For scale, the jobs of the period by status:
   SELECT status, count(*) AS jobs FROM Jobs j WHERE created_at >= :start AND created_at < :end{" AND j.tag = :tag" if tag else ""} GROUP BY status

Then say what failed, how often, the likely causes (operation, input format, engine, message), and what to change.
{CACHE_NOTE}"""


def credits_used(
    start: Start = "", end: End = "", group_by: Annotated[str, Field(description="tag (the default) or operation.")] = "tag"
) -> str:
    """How many conversion credits were used in a period (default: the last 24 hours), per job tag or per operation."""
    if group_by not in ("tag", "operation"):
        raise ValueError(f"group_by must be tag or operation (got {group_by!r}).")
    since, until = period(start, end)
    parameters = {"start": since, "end": until}
    if group_by == "tag":
        first = """SELECT coalesce(j.tag, '(no tag)') AS tag, sum(t.credits) AS credits, count(*) AS tasks
   FROM Tasks t LEFT JOIN Jobs j ON j.id = t.job_id
   WHERE t.credits IS NOT NULL AND t.ended_at >= :start AND t.ended_at < :end
   GROUP BY 1 ORDER BY credits DESC"""
    else:
        first = """SELECT t.operation, t.engine, sum(t.credits) AS credits, count(*) AS tasks
   FROM Tasks t
   WHERE t.credits IS NOT NULL AND t.ended_at >= :start AND t.ended_at < :end
   GROUP BY t.operation, t.engine ORDER BY credits DESC"""
    return f"""How many CloudConvert conversion credits were used between {since} and {until}, per {group_by}?

Use the run_query tool (SQLite; timestamps are ISO 8601 UTC and compare as instants), with the parameters {json.dumps(parameters)}:

1. Credits by {group_by} (a task's credits are known once it has ended):
   {first}
2. What the account has left: SELECT credits FROM Users

Answer with the totals, the largest consumers, and anything unusual.
{CACHE_NOTE}"""
