"""A local CloudConvert API v2, for tests, demos, benchmarks and offline work.

Start it with ``python -m apidriver.emulator --port 0 --api-key KEY --jobs 100``
(the first line printed is the root URL; the API is under ``/v2``), or
in-process with :class:`Emulator`. It is a real HTTP server (Starlette on
uvicorn) on 127.0.0.1, so clients talk to it exactly as they would to
``https://api.cloudconvert.com``: point their base URL at ``emulator.base_url``.

What it does (after https://cloudconvert.com/api/v2, the official SDKs and their recorded answers in ``tests/fixtures/cloudconvert``):

- Auth: ``Authorization: Bearer KEY``; 401 ``UNAUTHENTICATED`` without a known
  key, 403 ``FORBIDDEN`` when the key lacks the endpoint's scope.
  ``/v2/operations`` needs no key.
- Users, jobs, tasks (every operation the reference lists, with its required
  fields), webhooks and the operations catalogue, with the reference's paths,
  filters, ``include`` values, status codes and JSON shapes. The main host
  writes JSON as PHP's ``json_encode`` does (compact, ``\\/`` and ``\\uXXXX``
  escapes), the sync host (``/sync/v2/...``) as compact UTF-8 without escapes,
  byte for byte like the recorded traffic; webhook bodies are written as the
  main host writes them. The sync host adds Express's weak ``ETag``
  (``W/"<length>-<SHA-1>"``, the recorded tags exactly).
- Pagination as recorded: ``links`` (``first``, ``last`` = null, ``prev``,
  ``next``) and ``meta`` (``current_page``, ``from``, ``path``, ``per_page``,
  ``to``), no total, newest first, ``per_page`` 100 by default. Empty filter
  values count as unset.
- Lifecycle on the clock: a task waits for its inputs, processes for
  ``task_seconds``, then finishes or fails; dependants of a failed task fail
  with ``INPUT_TASK_FAILED``; a job's status follows its tasks; conversions
  cost the catalogue's credits, and ``402 CREDITS_EXCEEDED`` answers new work
  once the account has none left.
- Storage: ``import/upload`` forms point at ``/_storage/upload/{task}``, which
  takes the multipart POST (parameters plus ``file``) and answers 201 with the
  recorded S3 ``PostResponse`` XML; ``export/url`` files download (no auth)
  from ``/_storage/tasks/...``.
- Webhooks are delivered, signed, retried; see :mod:`.webhooks`. The
  emulator never calls the internet by default: deliveries go only to
  loopback addresses unless ``allow_webhook_hosts`` (``--allow-webhook-host``)
  names the host.
- Latency, faults and the rate limit (500 requests a minute per method by
  default, labelled ``X-RateLimit-*`` as recorded; ``rate_limit=0`` or
  ``--rate-limit 0`` turns it off): see :mod:`.control`. The request log and
  faults are at ``/_emulator/requests`` and ``/_emulator/faults``; requests
  under way at :meth:`Emulator.pending_requests`. Actions
  (``/_emulator/actions``, :meth:`Emulator.add_action`) delete or create
  jobs, or move the clock, right after a given request was answered.
- History: with ``keep_history`` (``--keep-history``), ``GET
  /_emulator/history`` (:meth:`Emulator.history`) lists every job the
  emulator ever had, deleted and expired ones with why and when, and the last
  state an answer or a webhook delivery showed of each.
- Time: ``POST /_emulator/clock`` with ``{"advance": SECONDS}``
  (:meth:`Emulator.advance_clock`) moves the emulator's clock forward: task
  processing, timestamps of new objects, retention and the expiry of export
  URLs follow it; ``GET /_emulator/clock`` says the time, and so does every
  answer's ``Date`` header. Retention as the API
  does it: a job (with its tasks) and a standalone task are deleted 24 hours
  after they end (``retention_hours``, ``--retention-hours``); export URLs
  expire 24 hours after they were made (403 ``AccessDenied``).
- Reset: ``POST /_emulator/reset`` with ``{"jobs": N, "seed": S}``
  (:meth:`Emulator.reset`) starts a new account on the running server, so one
  emulator serves test after test (the pytest plugin, ``docs/testing.md``).

Where the reference is unsure, the emulator picks (and these are choices, not
facts about the real API):

- New jobs and tasks start ``waiting``: the answer to a create (and the
  ``job.created`` event) shows every task ``waiting``, as recorded; the clock
  moves them on from the next request or tick. A job is ``processing`` once
  any task started and ends (``finished`` or ``error``) when all its tasks
  have ended.
  A task superseded by a retry no longer counts for its job; its failed
  dependants are not re-run.
- Retry works on ended tasks only (422 otherwise) and puts the copy, still
  ``waiting``, in the same job under the same name (the job is ``processing``
  again). Cancel of an ended task is 422 with
  ``errors.status`` = "Cannot change status: task already completed.".
- ``convert`` of a pair missing from the catalogue fails the task with
  ``INVALID_CONVERSION_TYPE``. ``import/url`` of a host under ``.invalid``
  fails with ``DOWNLOAD_FAILED``; URLs on 127.0.0.1/localhost are really
  downloaded; others produce generated content named after the URL.
- Import results report ``size``; uploaded files report ``md5`` too (the
  recorded sandbox uploads show ``md5`` only, live imports ``size`` only).
- Webhook ids are integers. Per-job ``webhook_url`` deliveries
  (``job.finished``/``job.failed`` only) are signed with the account's
  ``job_webhook_secret`` (``Emulator.job_webhook_secret``, ``GET
  /_emulator/secrets``, the second line the command prints; set it with
  ``job_webhook_secret=`` / ``--job-webhook-secret``).
- ``links.next`` carries only ``page``: clients must re-send their filters.
- The catalogue answers ``{"data": [...]}`` without pagination; ``page`` and
  ``per_page`` are ignored there. ``alternatives=true`` adds entries with the
  non-default engines.
- 404 bodies are ``{"message": "... not found.", "code": "NOT_FOUND"}``; 403
  bodies use ``FORBIDDEN``; 429 bodies ``TOO_MANY_REQUESTS``; 500 bodies
  ``INTERNAL_SERVER_ERROR``, all compact JSON like every other body.
- Sync waits give up after 300 s and answer with the current state.
- Jobs that never end (a task waiting for an upload that never comes) are
  never deleted by retention. Seeded lists come in creation order, standalone
  tasks among the jobs' tasks.
- :meth:`Emulator.stop` gives requests still running (a ``stall`` fault, a
  sync wait) 1 s, then cuts them (the connection closes without an answer).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .server import Emulator

__all__ = ["Emulator"]


def __getattr__(name: str) -> Any:
    """``Emulator`` (and with it Starlette and uvicorn) is loaded when first asked for: the
    ``apidriver`` command loads the emulator's options (:mod:`.command`) at start-up without it."""
    if name == "Emulator":
        from .server import Emulator

        globals()["Emulator"] = Emulator
        return Emulator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
