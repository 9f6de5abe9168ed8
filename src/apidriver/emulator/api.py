"""The API host's routes: ``/v2``, and the same under the sync host's ``/sync/v2`` (which waits
for the job or task to end and writes JSON its own way). Handlers check the key and its scope,
move the clock, parse the request, call :class:`~.backend.Backend` and write the answer, paged as
Laravel pages; they hold no state of their own.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from .emulation import Emulation
from .errors import ApiError, invalid, not_found
from .models import Job, Rendered, Task, encode

WAIT_TIMEOUT = 300.0
Handler = Callable[[Request], Awaitable[Any]]


def is_sync(request: Request) -> bool:
    return request.url.path.startswith("/sync/")


def weak_etag(data: bytes) -> str:
    """The sync host's ``ETag``: Express's weak tag, ``W/"<length in hex>-<27 chars of base64 SHA-1>"``
    (byte for byte the recorded ones)."""
    digest = base64.b64encode(hashlib.sha1(data).digest()).decode()[:27]
    return f'W/"{len(data):x}-{digest}"'


def json_response(request: Request, status: int, body: Any) -> Response:
    sync = is_sync(request)
    data = encode(body, php=not sync)
    return Response(
        data,
        status_code=status,
        media_type="application/json; charset=utf-8" if sync else "application/json",
        headers={"ETag": weak_etag(data)} if sync else None,
    )


def _param(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    return value if value not in (None, "") else None


def _includes(request: Request) -> frozenset[str]:
    raw = _param(request, "include") or ""
    return frozenset(p.strip() for p in raw.split(",") if p.strip())


def _int_param(request: Request, name: str, default: int) -> int:
    raw = _param(request, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid({name: [f"The {name.replace('_', ' ')} must be an integer."]}) from None
    if value < 1:
        raise invalid({name: [f"The {name.replace('_', ' ')} must be at least 1."]})
    return value


def paginate(request: Request, emu: Emulation, items: Sequence[Any], render: Callable[[Any], Any]) -> dict[str, Any]:
    """Laravel's simple paginator: links without ``last``, meta without ``total``.

    ``links.next`` is ``path?page=N+1`` without the other query parameters, as
    Laravel does by default; clients must keep their own filters.
    """
    page = _int_param(request, "page", 1)
    per_page = _int_param(request, "per_page", 100)
    start = (page - 1) * per_page
    chunk = items[start : start + per_page]
    more = len(items) > start + per_page
    path = emu.backend.root_url + request.url.path.removeprefix("/sync")
    return {
        "data": [render(i) for i in chunk],
        "links": {
            "first": f"{path}?page=1",
            "last": None,
            "prev": f"{path}?page={page - 1}" if page > 1 else None,
            "next": f"{path}?page={page + 1}" if more else None,
        },
        "meta": {
            "current_page": page,
            "from": start + 1 if chunk else None,
            "path": path,
            "per_page": per_page,
            "to": start + len(chunk) if chunk else None,
        },
    }


def api(emu: Emulation, scope: str | None) -> Callable[[Callable[..., Awaitable[Any]]], Handler]:
    """Wrap a handler with auth, the scope check, the clock and error bodies."""

    def decorate(fn: Callable[..., Awaitable[Any]]) -> Handler:
        async def handler(request: Request) -> Response:
            try:
                if scope is not None:
                    auth = request.headers.get("authorization", "")
                    key = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
                    scopes = emu.keys.get(key)
                    if scopes is None:
                        raise ApiError(401, "UNAUTHENTICATED", "Unauthenticated.")
                    if scope not in scopes:
                        raise ApiError(403, "FORBIDDEN", f"This action is unauthorized: the API key lacks the scope '{scope}'.")
                emu.backend.advance()
                result = await fn(request)
                emu.dispatcher.drain()
            except ApiError as error:
                return json_response(request, error.status, error.body())
            if isinstance(result, Response):
                return result
            status, body = result
            if body is None:
                return Response(status_code=status)
            return json_response(request, status, body)

        return handler

    return decorate


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        raise ApiError(400, "INVALID_JSON", "The request body is not valid JSON.") from None


async def _wait(emu: Emulation, done: Callable[[], bool], timeout: float = WAIT_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
        emu.backend.advance()
    emu.dispatcher.drain()


def api_routes(emu: Emulation) -> list[Route]:
    """The routes of ``/v2``, then the same under ``/sync/v2``."""
    b = emu.backend

    def job_dict(job: Job, with_tasks: bool = True) -> Rendered | dict[str, Any]:
        shown = job.json(b.root_url, b.job_tasks(job) if with_tasks else None)
        b.history.show(job, shown.value if isinstance(shown, Rendered) else shown)
        return shown

    def task_dict(task: Task, include: frozenset[str] = frozenset()) -> Rendered | dict[str, Any]:
        return task.json(b.root_url, include, b)

    # -- users ------------------------------------------------------------------
    @api(emu, "user.read")
    async def users_me(request: Request) -> Any:
        return 200, {"data": b.user.to_dict(b.root_url)}

    # -- jobs ---------------------------------------------------------------------
    @api(emu, "task.read")
    async def jobs_list(request: Request) -> Any:
        include = _includes(request)
        jobs = b.list_jobs(_param(request, "filter[status]"), _param(request, "filter[tag]"))
        return 200, paginate(request, emu, jobs, lambda j: job_dict(j, "tasks" in include))

    @api(emu, "task.write")
    async def jobs_create(request: Request) -> Any:
        body = await _json_body(request)
        job = b.create_job(body)
        emu.start_downloads(b.job_tasks(job))
        if is_sync(request):
            await _wait(emu, lambda: job.terminal)
            if isinstance(body, dict) and body.get("redirect"):
                for task in b.job_tasks(job):
                    if task.operation == "export/url" and task.files:
                        return RedirectResponse(b.root_url + (task.files[0].url_path or ""), status_code=302)
        return 201, {"data": job_dict(job)}

    @api(emu, "task.read")
    async def jobs_show(request: Request) -> Any:
        job = b.get_job(request.path_params["id"])
        if is_sync(request) or request.url.path.endswith("/wait"):
            await _wait(emu, lambda: job.terminal)
        return 200, {"data": job_dict(job)}

    @api(emu, "task.write")
    async def jobs_delete(request: Request) -> Any:
        b.delete_job(request.path_params["id"])
        return 204, None

    # -- tasks ----------------------------------------------------------------------
    @api(emu, "task.read")
    async def tasks_list(request: Request) -> Any:
        include = _includes(request)
        tasks = b.list_tasks(
            _param(request, "filter[job_id]"), _param(request, "filter[status]"), _param(request, "filter[operation]")
        )
        return 200, paginate(request, emu, tasks, lambda t: task_dict(t, include))

    @api(emu, "task.read")
    async def tasks_show(request: Request) -> Any:
        task = b.get_task(request.path_params["id"])
        if is_sync(request) or request.url.path.endswith("/wait"):
            await _wait(emu, lambda: task.terminal)
        return 200, {"data": task_dict(task, _includes(request))}

    @api(emu, "task.write")
    async def tasks_create(request: Request) -> Any:
        operation = request.path_params["operation"].strip("/")
        task = b.create_task(operation, await _json_body(request))
        emu.start_downloads([task])
        return 201, {"data": task_dict(task)}

    @api(emu, "task.write")
    async def tasks_cancel(request: Request) -> Any:
        return 200, {"data": task_dict(b.cancel_task(request.path_params["id"]))}

    @api(emu, "task.write")
    async def tasks_retry(request: Request) -> Any:
        return 201, {"data": task_dict(b.retry_task(request.path_params["id"]))}

    @api(emu, "task.write")
    async def tasks_delete(request: Request) -> Any:
        b.delete_task(request.path_params["id"])
        return 204, None

    # -- webhooks ----------------------------------------------------------------------
    @api(emu, "webhook.read")
    async def webhooks_list(request: Request) -> Any:
        hooks = b.list_webhooks(_param(request, "filter[url]"))
        return 200, paginate(request, emu, hooks, lambda w: w.to_dict(b.root_url))

    @api(emu, "webhook.write")
    async def webhooks_create(request: Request) -> Any:
        return 201, {"data": b.create_webhook(await _json_body(request)).to_dict(b.root_url)}

    @api(emu, "webhook.write")
    async def webhooks_delete(request: Request) -> Any:
        b.delete_webhook(request.path_params["id"])
        return 204, None

    # -- operations catalogue --------------------------------------------------------------
    @api(emu, None)
    async def operations(request: Request) -> Any:
        filters = {
            key: value
            for key in ("operation", "input_format", "output_format", "engine", "engine_version")
            if (value := _param(request, f"filter[{key}]")) is not None
        }
        if request.url.path.endswith("/convert/formats"):
            filters["operation"] = "convert"
        alternatives = (_param(request, "alternatives") or "false").lower() in ("1", "true")
        include = _includes(request)
        entries = b.catalogue.query(filters, alternatives)
        return 200, {"data": [e.to_dict(include) for e in entries]}

    routes = [
        Route("/v2/users/me", users_me, methods=["GET"]),
        Route("/v2/users/me/webhooks", webhooks_list, methods=["GET"]),
        Route("/v2/jobs", jobs_list, methods=["GET"]),
        Route("/v2/jobs", jobs_create, methods=["POST"]),
        Route("/v2/jobs/{id}", jobs_show, methods=["GET"]),
        Route("/v2/jobs/{id}", jobs_delete, methods=["DELETE"]),
        Route("/v2/jobs/{id}/wait", jobs_show, methods=["GET"]),
        Route("/v2/tasks", tasks_list, methods=["GET"]),
        Route("/v2/tasks/{id}", tasks_show, methods=["GET"]),
        Route("/v2/tasks/{id}", tasks_delete, methods=["DELETE"]),
        Route("/v2/tasks/{id}/wait", tasks_show, methods=["GET"]),
        Route("/v2/tasks/{id}/cancel", tasks_cancel, methods=["POST"]),
        Route("/v2/tasks/{id}/retry", tasks_retry, methods=["POST"]),
        Route("/v2/webhooks", webhooks_create, methods=["POST"]),
        Route("/v2/webhooks/{id}", webhooks_delete, methods=["DELETE"]),
        Route("/v2/operations", operations, methods=["GET"]),
        Route("/v2/convert/formats", operations, methods=["GET"]),
        Route("/v2/{operation:path}", tasks_create, methods=["POST"]),
    ]
    return routes + [Route("/sync" + r.path, r.endpoint, methods=list(r.methods or [])) for r in routes]


def not_found_routes() -> list[Route]:
    """Any other path: 404 ``NOT_FOUND`` (last of all routes)."""

    async def not_found_route(request: Request) -> Response:
        return json_response(request, 404, not_found("Route").body())

    return [Route("/{rest:path}", not_found_route, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])]
