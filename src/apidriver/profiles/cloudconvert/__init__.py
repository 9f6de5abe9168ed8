"""The built-in CloudConvert API v2 profile.

Hosts: ``https://api.cloudconvert.com`` (live), ``https://api.sandbox.cloudconvert.com``
(``Sandbox=true``), ``https://{Region}.api.cloudconvert.com`` (``Region=eu-central``
or ``us-east``); ``BaseURL`` overrides all of them (the emulator's root URL goes
there). The synchronous "wait" host is derived from the same settings.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from ...engine.schema import Pagination
from ...properties import Property, Settings, parse_bool, positive_seconds
from ..base import Profile
from .jobs import jobs
from .operations import operations
from .procedures import WAIT_TIMEOUT, procedures, verify_webhook_signature
from .task_dependencies import task_dependencies
from .task_files import task_files
from .tasks import tasks
from .users import users
from .webhooks import webhooks

_REGION = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def _region(value: object) -> str:
    text = str(value).strip().lower()
    if not _REGION.match(text):
        raise ValueError("use a region name such as eu-central or us-east")
    return text


def root_url(settings: Settings) -> str:
    """The API root (without /v2) the settings point at."""
    base = settings.get("BaseURL")
    if base:
        text = str(base).strip().rstrip("/")
        if text.endswith("/v2"):
            text = text[: -len("/v2")]
        return text
    host = "api.sandbox.cloudconvert.com" if settings.get("Sandbox") else "api.cloudconvert.com"
    region = settings.get("Region")
    if region and not settings.get("Sandbox"):
        host = f"{region}.{host}"
    return f"https://{host}"


def sync_root_url(settings: Settings) -> str:
    """The root of the synchronous host: ``sync.`` + the API host, or ``<BaseURL>/sync`` elsewhere."""
    root = root_url(settings)
    parts = urlsplit(root)
    host = parts.hostname or ""
    if host.endswith("cloudconvert.com"):
        if host.startswith("api."):
            host = "sync." + host
        else:
            host = host.replace(".api.", ".sync.api.", 1)
        netloc = host + (f":{parts.port}" if parts.port else "")
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    return root + "/sync"


def _webhook_objects(body: object) -> tuple[str, list[dict[str, object]]]:
    """What a webhook delivery carries: ``{"event": ..., "job": {... "tasks": [...]}}``."""
    job = body.get("job") if isinstance(body, dict) else None
    return "Jobs", [job] if isinstance(job, dict) and job.get("id") else []


profile = Profile(
    name="CloudConvert",
    description="CloudConvert API v2: jobs, tasks, task files, webhooks, the account and the operations catalogue.",
    tables=(jobs, tasks, task_files, task_dependencies, users, webhooks, operations),
    root_url=root_url,
    properties=(
        Property("Sandbox", "Use the sandbox API (api.sandbox.cloudconvert.com).", False, parse_bool),
        Property("Region", "Pin a region: eu-central or us-east.", None, _region),
        Property(
            "WaitTimeout",
            "Seconds WaitJob, WaitTask, CreateJob(wait) and ConvertFile wait for a job or task to end, all attempts together.",
            WAIT_TIMEOUT,
            positive_seconds,
        ),
    ),
    api_key_env="CLOUDCONVERT_API_KEY",
    api_prefix="/v2",
    pagination=Pagination(page_param="page", size_param="per_page", default_size=100),
    procedures=procedures,
    extras={
        "sync_root_url": sync_root_url,
        # The API key scopes each procedure's requests need (tables declare theirs on their endpoints),
        # for the reference (docs/tables.md); tests/docs/test_scopes.py checks them against the emulator.
        "procedure_scopes": {
            "CreateJob": ("task.write", "task.read (with wait)"),
            "WaitJob": ("task.read",),
            "WaitTask": ("task.read",),
            "CancelTask": ("task.write",),
            "RetryTask": ("task.write",),
            "DeleteJob": ("task.write",),
            "ConvertFile": ("task.write", "task.read"),
            "VerifyWebhookSignature": (),
        },
        # For apidriver.replica: jobs and tasks change no more once ended_at is set (a retry
        # shows as a new task), and those still open are listed by status; the account behind
        # the key is the one Users row; a webhook delivery carries the job with its tasks,
        # signed with the webhook's secret. The API deletes jobs and tasks 24 hours after they
        # end (``retention``: seconds after the settled column); webhook signing secrets are
        # secrets (not replicated unless asked for).
        "replica": {
            "settled": {"Jobs": "ended_at", "Tasks": "ended_at"},
            "retention": 24 * 3600,
            "secrets": {"Webhooks": ("signing_secret",)},
            "open": {"Jobs": ("status", ("waiting", "processing")), "Tasks": ("status", ("waiting", "processing"))},
            "account": "Users",
            "webhooks": {
                "table": "Webhooks",
                "events": ("job.created", "job.finished", "job.failed"),
                "signature_header": "CloudConvert-Signature",
                "verify": verify_webhook_signature,
                "objects": _webhook_objects,
            },
        },
    },
)

__all__ = ["profile", "root_url", "sync_root_url", "verify_webhook_signature"]
