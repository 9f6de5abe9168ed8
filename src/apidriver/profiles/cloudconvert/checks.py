"""Checks of write inputs made before anything is sent, with messages that say how to fix them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ...exceptions import ProgrammingError
from .operations_list import OPERATIONS, WEBHOOK_EVENTS

TASK_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


def check_operation(operation: Any) -> None:
    if operation not in OPERATIONS:
        raise ProgrammingError(f"Unknown operation {operation!r}. Operations: {', '.join(OPERATIONS)}.")


def check_job(row: Mapping[str, Any]) -> None:
    tasks = row.get("tasks")
    example = '{"import-1": {"operation": "import/url", "url": "https://..."}, "convert-1": {"operation": "convert", "input": "import-1", "output_format": "pdf"}}'
    if not isinstance(tasks, Mapping) or not tasks:
        raise ProgrammingError(f"Jobs.tasks must be a JSON object of task specs by name, e.g. {example}.")
    for name, spec in tasks.items():
        if not TASK_NAME.match(str(name)):
            raise ProgrammingError(f"Task name {name!r} is not allowed: use letters, digits, '-' and '_' only.")
        if not isinstance(spec, Mapping) or "operation" not in spec:
            raise ProgrammingError(f"Task {name!r} must be an object with an 'operation', e.g. {example}.")
        check_operation(spec["operation"])
    tag = row.get("tag")
    if tag is not None and not isinstance(tag, str):
        raise ProgrammingError("Jobs.tag must be text.")


def check_task(row: Mapping[str, Any]) -> None:
    check_operation(row.get("operation"))
    payload = row.get("payload")
    if payload is not None and not isinstance(payload, Mapping):
        raise ProgrammingError('Tasks.payload must be a JSON object of the options of the operation, e.g. {"url": "https://..."}.')


def check_webhook(row: Mapping[str, Any]) -> None:
    events = row.get("events")
    if not isinstance(events, list) or not events or any(e not in WEBHOOK_EVENTS for e in events):
        raise ProgrammingError(f"Webhooks.events must be a JSON array of events among {', '.join(WEBHOOK_EVENTS)}.")
    url = row.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ProgrammingError("Webhooks.url must be an http(s) URL.")
