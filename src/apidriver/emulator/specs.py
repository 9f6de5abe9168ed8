"""The body of a new job or standalone task, checked as the API checks it: the tasks field, task
names, each operation's fields (:func:`.operations.validate`), inputs that exist, no circular inputs,
``tag`` and ``webhook_url``. Every problem is answered at once, as 422 ``INVALID_DATA``."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .errors import invalid, not_found
from .operations import OPERATIONS, validate

TASK_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


def check_job(body: Any, known_task: Callable[[str], bool]) -> tuple[dict[str, Any], str | None, str | None]:
    """``POST /v2/jobs``'s body: its tasks by name, its tag and its webhook URL.

    ``known_task`` says whether an input names a task the account already has.
    """
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
        for ref in inputs(spec):
            if ref not in specs and not known_task(ref):
                errors[prefix + "input"] = [f"The input task '{ref}' does not exist."]
    if not errors and _has_cycle(specs):
        errors["tasks"] = ["The tasks have circular input dependencies."]
    if errors:
        raise invalid(errors)
    return specs, tag, webhook_url


def check_task(operation: str, body: Any, known_task: Callable[[str], bool]) -> dict[str, Any]:
    """``POST /v2/{operation}``'s body, as the task's payload (``operation`` first)."""
    if operation not in OPERATIONS:
        raise not_found(f"Operation '{operation}'")
    if not isinstance(body, dict):
        body = {}
    payload = {"operation": operation, **{k: v for k, v in body.items() if k != "operation"}}
    errors = validate(operation, payload)
    for ref in inputs(payload):
        if not known_task(ref):
            errors["input"] = [f"The input task '{ref}' does not exist."]
    if errors:
        raise invalid(errors)
    return payload


def inputs(spec: dict[str, Any]) -> list[str]:
    """The names (in a job) or ids of the tasks ``spec`` takes its input from."""
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
        if any(visit(r) for r in inputs(specs[name])):
            return True
        state[name] = 2
        return False

    return any(visit(n) for n in specs)
