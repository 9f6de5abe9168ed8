"""TaskDependencies: one row per entry of a task's ``depends_on_task_ids`` (derived from Tasks)."""

from collections.abc import Mapping
from typing import Any

from ...engine.schema import Column, Derived, Table
from ...values import TEXT


def _edges(task: Mapping[str, Any]) -> list[dict[str, Any]]:
    ids = task.get("depends_on_task_ids")
    if not isinstance(ids, list):
        return []
    return [{"task_id": task.get("id"), "job_id": task.get("job_id"), "depends_on_task_id": i} for i in ids]


task_dependencies = Table(
    name="TaskDependencies",
    description="Which task takes its input from which: one row per input of a task.",
    columns=(
        Column("task_id", TEXT, "The task that takes the input.", primary_key=True, references="Tasks.id"),
        Column("depends_on_task_id", TEXT, "The task whose output it takes.", primary_key=True, references="Tasks.id"),
        Column("job_id", TEXT, "The job of the task (NULL for standalone tasks).", references="Jobs.id"),
    ),
    derived=Derived(parent="Tasks", rows=_edges, columns={"task_id": "id", "job_id": "job_id"}),
    estimated_rows=4000,
)
