"""TaskFiles: one row per file in a task's ``result.files`` (derived from Tasks)."""

from collections.abc import Mapping
from typing import Any

from ...engine.schema import Column, Derived, Table
from ...values import INTEGER, TEXT


def _files(task: Mapping[str, Any]) -> list[dict[str, Any]]:
    result = task.get("result")
    files = result.get("files") if type(result) is dict or isinstance(result, Mapping) else None
    if not isinstance(files, list):
        return []
    task_id, job_id, operation = task.get("id"), task.get("job_id"), task.get("operation")
    # (type(f) is dict first: a page's files are decoded JSON, and an ABC check costs more than the copy;
    # dict(f, **fields) is the quickest copy with the task's fields added, which win over the file's)
    return [
        dict(f if type(f) is dict or isinstance(f, Mapping) else (), task_id=task_id, job_id=job_id, operation=operation, idx=i)
        for i, f in enumerate(files)
    ]


task_files = Table(
    name="TaskFiles",
    description="Files in the results of tasks: imported, produced and exported files (export/url ones have a download url).",
    columns=(
        Column("task_id", TEXT, "The task whose result lists the file.", primary_key=True, references="Tasks.id"),
        Column("idx", INTEGER, "Position of the file in the task's result (0-based).", primary_key=True),
        Column("job_id", TEXT, "The job of that task (NULL for standalone tasks).", references="Jobs.id"),
        Column("operation", TEXT, "The operation of that task, e.g. export/url."),
        Column("filename", TEXT, "File name."),
        Column("size", INTEGER, "Size in bytes, when the API reports it."),
        Column("url", TEXT, "Download URL (export/url results only; valid 24 h)."),
        Column("md5", TEXT, "MD5 checksum, when the API reports it."),
        Column("dir", TEXT, "Directory within the archive or bucket, when there is one."),
    ),
    derived=Derived(parent="Tasks", rows=_files, columns={"task_id": "id", "job_id": "job_id", "operation": "operation"}),
    estimated_rows=6000,
)
