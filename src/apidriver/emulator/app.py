"""HTTP routes of the emulator: the API under ``/v2``, the sync host under
``/sync/v2``, the storage host under ``/_storage`` and the control API under
``/_emulator``.

Handlers parse the request, call :class:`~.backend.Backend` and serialise; they
hold no state of their own.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape as xml_escape

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from .backend import Backend
from .control import Action, Control, ControlMiddleware, Fault
from .errors import ApiError, invalid, not_found
from .files import media_type
from .models import Job, Task, encode
from .seed import seed as seed_backend
from .webhooks import Dispatcher

SCOPES = ("user.read", "user.write", "task.read", "task.write", "webhook.read", "webhook.write", "preset.read", "preset.write")
WAIT_TIMEOUT = 300.0
ACTION_TASK = {"operation": "import/raw", "file": "made by an action"}  # the one task of jobs an action creates
Handler = Callable[[Request], Awaitable[Any]]


class Emulation:
    """Everything one running emulator owns."""

    def __init__(
        self,
        backend: Backend,
        control: Control,
        keys: dict[str, frozenset[str]],
        webhook_retry_delay: float = 0.2,
        allow_webhook_hosts: Sequence[str] = (),
    ) -> None:
        self.backend = backend
        self.control = control
        self.keys = keys
        self.dispatcher = Dispatcher(backend, retry_delay=webhook_retry_delay, allow_hosts=allow_webhook_hosts)
        self._background: set[asyncio.Task[None]] = set()

    def run_action(self, action: Action) -> None:
        """Carry out an action of the control API (on the server's loop, between two requests)."""
        b = self.backend
        if action.do == "delete_jobs":
            for job in b.list_jobs(None, None)[action.offset : action.offset + action.count]:
                b.delete_job(job.id)
                action.jobs.append(job.id)
        elif action.do == "create_jobs":
            for number in range(action.count):
                job = b.create_job({"tag": action.tag or "created", "tasks": {"make": dict(ACTION_TASK, filename=f"created-{number}.txt")}})
                action.jobs.append(job.id)
        else:
            b.advance_clock(action.seconds)
        self.dispatcher.drain()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def reset(self, jobs: int = 0, seed: int = 0) -> None:
        """A new account (seeded with ``jobs`` sample jobs), an empty request log, no faults, the
        clock back at wall-clock time; downloads and webhook deliveries under way are dropped."""
        for task in list(self._background):
            task.cancel()
        self.dispatcher.cancel()
        self.backend.reset()
        self.control.reset()
        if jobs:
            seed_backend(self.backend, jobs, seed, self.backend.now())

    async def ticker(self) -> None:
        while True:
            self.backend.advance()
            self.dispatcher.drain()
            await asyncio.sleep(0.05)


def _is_sync(request: Request) -> bool:
    return request.url.path.startswith("/sync/")


def weak_etag(data: bytes) -> str:
    """The sync host's ``ETag``: Express's weak tag, ``W/"<length in hex>-<27 chars of base64 SHA-1>"``
    (byte for byte the recorded ones)."""
    digest = base64.b64encode(hashlib.sha1(data).digest()).decode()[:27]
    return f'W/"{len(data):x}-{digest}"'


def json_response(request: Request, status: int, body: Any) -> Response:
    sync = _is_sync(request)
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


def _xml_error(status: int, code: str, message: str) -> Response:
    """An S3-style error answer of the storage host."""
    body = f"<Error><Code>{xml_escape(code)}</Code><Message>{xml_escape(message)}</Message></Error>"
    return Response(body, status, media_type="application/xml")


def _attachment(filename: str) -> str:
    """``Content-Disposition`` for a download; RFC 6266 ``filename*`` when the name is not plain ASCII."""
    if filename.isascii() and '"' not in filename and "\\" not in filename:
        return f'attachment; filename="{filename}"'
    fallback = "".join(c if c.isascii() and c not in '"\\' else "_" for c in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


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


def _expired(request: Request, now: float) -> bool:
    """Whether a signed download URL's ``Expires`` (epoch seconds) has passed on the emulator's clock."""
    try:
        return int(request.query_params.get("Expires", "")) < now
    except ValueError:
        return False


def clock_state(backend: Backend) -> dict[str, Any]:
    """What ``GET /_emulator/clock`` answers."""
    now = backend.now()
    return {
        "now": dt.datetime.fromtimestamp(now, dt.timezone.utc).isoformat(),
        "timestamp": now,
        "advanced_seconds": backend.clock.offset,
        "retention_hours": backend.retention.hours,
    }


def build_app(emu: Emulation) -> Any:
    b = emu.backend

    def job_dict(job: Job, with_tasks: bool = True) -> dict[str, Any]:
        return b.history.show(job, job.to_dict(b.root_url, b.job_tasks(job) if with_tasks else None))

    def task_dict(task: Task, include: frozenset[str] = frozenset()) -> dict[str, Any]:
        return task.to_dict(b.root_url, include, b)

    def start_downloads(tasks: list[Task]) -> None:
        for task in tasks:
            if task.operation == "import/url" and task.held:
                emu.spawn(download(task.id, str(task.payload["url"])))

    async def download(task_id: str, url: str) -> None:
        try:
            async with httpx.AsyncClient(timeout=30) as client:
                response = await client.get(url)
            if response.status_code >= 400:
                b.fetched(task_id, None, f"Could not download the file: the server answered {response.status_code}")
            else:
                b.fetched(task_id, response.content, None)
        except httpx.HTTPError as exc:
            b.fetched(task_id, None, f"Could not download the file: {type(exc).__name__}")

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
        start_downloads(b.job_tasks(job))
        if _is_sync(request):
            await _wait(emu, lambda: job.terminal)
            if isinstance(body, dict) and body.get("redirect"):
                for task in b.job_tasks(job):
                    if task.operation == "export/url" and task.files:
                        return RedirectResponse(b.root_url + (task.files[0].url_path or ""), status_code=302)
        return 201, {"data": job_dict(job)}

    @api(emu, "task.read")
    async def jobs_show(request: Request) -> Any:
        job = b.get_job(request.path_params["id"])
        if _is_sync(request) or request.url.path.endswith("/wait"):
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
        if _is_sync(request) or request.url.path.endswith("/wait"):
            await _wait(emu, lambda: task.terminal)
        return 200, {"data": task_dict(task, _includes(request))}

    @api(emu, "task.write")
    async def tasks_create(request: Request) -> Any:
        operation = request.path_params["operation"].strip("/")
        task = b.create_task(operation, await _json_body(request))
        start_downloads([task])
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

    # -- storage host ----------------------------------------------------------------------
    async def storage_upload(request: Request) -> Response:
        task_id = request.path_params["task_id"]
        async with request.form(max_part_size=1 << 30) as form:
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                return _xml_error(400, "InvalidArgument", "file field missing")
            data = await upload.read()
            filename = upload.filename or "file"
        try:
            b.upload(task_id, filename, data)
        except ApiError as error:
            return _xml_error(error.status, error.code, error.message)
        emu.dispatcher.drain()
        key = f"{task_id}/{filename}"
        # element order and the &#34;-quoted ETag as in the recorded storage answers
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<PostResponse>'
            f"<Bucket>tasks</Bucket><Key>{xml_escape(key)}</Key>"
            f"<ETag>&#34;{b.task(task_id).files[0].md5}&#34;</ETag>"  # type: ignore[union-attr,index]
            f"<Location>{xml_escape(b.root_url + '/_storage/tasks/' + quote(key))}</Location></PostResponse>"
        )
        return Response(body, 201, media_type="application/xml")

    async def storage_download(request: Request) -> Response:
        task = b.task(request.path_params["task_id"])
        filename = request.path_params["filename"]  # already percent-decoded by the server
        for ref in (task.files or []) if task is not None else []:
            if ref.filename == filename and ref.url_path is not None:
                if _expired(request, b.now()):
                    return _xml_error(403, "AccessDenied", "Request has expired")
                return Response(
                    b.storage.file_bytes(ref),
                    media_type=media_type(filename),
                    headers={"Content-Disposition": _attachment(filename)},
                )
        return _xml_error(404, "NoSuchKey", "The specified key does not exist.")

    # -- control API -------------------------------------------------------------------------
    async def control_requests(request: Request) -> Response:
        if request.method == "DELETE":
            emu.control.clear_requests()
            return Response(status_code=204)
        return Response(json.dumps(emu.control.requests()), media_type="application/json")

    async def control_faults(request: Request) -> Response:
        if request.method == "DELETE":
            emu.control.clear_faults()
            return Response(status_code=204)
        if request.method == "GET":
            return Response(json.dumps(emu.control.faults()), media_type="application/json")
        try:
            spec = await request.json()
            specs = spec if isinstance(spec, list) else [spec]
            faults = [Fault(**s) for s in specs]
        except (ValueError, TypeError) as exc:
            return Response(json.dumps({"message": f"bad fault: {exc}"}), 400, media_type="application/json")
        for fault in faults:
            emu.control.add_fault(fault)
        return Response(json.dumps(emu.control.faults()), 201, media_type="application/json")

    async def control_secrets(request: Request) -> Response:
        # What a webhook receiver in another process needs to verify per-job deliveries.
        return Response(json.dumps({"job_webhook_secret": b.job_webhook_secret}), media_type="application/json")

    async def control_deliveries(request: Request) -> Response:
        out = [
            {"event": d.event, "url": d.url, "webhook_id": d.webhook_id, "attempts": d.attempts}
            for d in b.deliveries
        ]
        return Response(json.dumps(out), media_type="application/json")

    async def control_actions(request: Request) -> Response:
        if request.method == "DELETE":
            emu.control.clear_actions()
            return Response(status_code=204)
        if request.method == "GET":
            return Response(json.dumps(emu.control.actions()), media_type="application/json")
        try:
            spec = await request.json()
            specs = spec if isinstance(spec, list) else [spec]
            actions = [Action(**{k: v for k, v in s.items() if k not in ("seen", "done", "jobs")}) for s in specs]
        except (ValueError, TypeError, AttributeError) as exc:
            return Response(json.dumps({"message": f"bad action: {exc}"}), 400, media_type="application/json")
        for action in actions:
            emu.control.add_action(action)
        return Response(json.dumps(emu.control.actions()), 201, media_type="application/json")

    async def control_history(request: Request) -> Response:
        # Every job the emulator ever had (with keep_history): those it has, as GET /v2/jobs?include=tasks
        # shows them, and those it deleted or expired, with why and when (its clock) and their last state;
        # each with the last state an answer or a webhook delivery showed ("shown"). Shows nothing itself.
        if not b.history.keep:
            message = "the emulator keeps no history: start it with keep_history=True (--keep-history)"
            return Response(json.dumps({"message": message}), 409, media_type="application/json")
        removed = [
            {
                "reason": r.reason,
                "at": dt.datetime.fromtimestamp(r.at, dt.timezone.utc).isoformat(),
                "job": r.job.to_dict(b.root_url, r.tasks),
                "shown": b.history.shown.get(r.job.id),
            }
            for r in b.history.removed.values()
        ]
        jobs = [{"job": j.to_dict(b.root_url, b.job_tasks(j)), "shown": b.history.shown.get(j.id)} for j in b.list_jobs(None, None)]
        return Response(encode({"now": clock_state(b)["now"], "jobs": jobs, "removed": removed}), media_type="application/json")

    async def control_clock(request: Request) -> Response:
        if request.method == "POST":
            try:
                body = await request.json()
                seconds = float(body["advance"]) if isinstance(body, dict) else float("nan")
                b.advance_clock(seconds)
            except (ValueError, TypeError, KeyError):
                message = 'give {"advance": SECONDS}, a number of seconds, 0 or more (the clock only moves forward)'
                return Response(json.dumps({"message": message}), 400, media_type="application/json")
            emu.dispatcher.drain()
        return Response(json.dumps(clock_state(b)), media_type="application/json")

    async def control_reset(request: Request) -> Response:
        try:
            body = await request.json() if await request.body() else {}
            jobs, seed = int(body.get("jobs", 0)), int(body.get("seed", 0))
            if jobs < 0:
                raise ValueError(jobs)
        except (ValueError, TypeError, AttributeError):
            message = 'give {"jobs": N, "seed": S}: the sample jobs to seed (0 or more) and their random seed, or nothing'
            return Response(json.dumps({"message": message}), 400, media_type="application/json")
        emu.reset(jobs, seed)
        return Response(json.dumps({"jobs": b.count_jobs(), **clock_state(b)}), media_type="application/json")

    async def not_found_route(request: Request) -> Response:
        return json_response(request, 404, not_found("Route").body())

    api_routes = [
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
    routes = list(api_routes)
    routes += [Route("/sync" + r.path, r.endpoint, methods=list(r.methods or [])) for r in api_routes]
    routes += [
        Route("/_storage/upload/{task_id}", storage_upload, methods=["POST"]),
        Route("/_storage/tasks/{task_id}/{filename:path}", storage_download, methods=["GET"]),
        Route("/_emulator/requests", control_requests, methods=["GET", "DELETE"]),
        Route("/_emulator/faults", control_faults, methods=["GET", "POST", "DELETE"]),
        Route("/_emulator/deliveries", control_deliveries, methods=["GET"]),
        Route("/_emulator/clock", control_clock, methods=["GET", "POST"]),
        Route("/_emulator/actions", control_actions, methods=["GET", "POST", "DELETE"]),
        Route("/_emulator/history", control_history, methods=["GET"]),
        Route("/_emulator/secrets", control_secrets, methods=["GET"]),
        Route("/_emulator/reset", control_reset, methods=["POST"]),
        Route("/{rest:path}", not_found_route, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        await emu.dispatcher.start()
        ticker = asyncio.get_running_loop().create_task(emu.ticker())
        try:
            yield
        finally:
            ticker.cancel()
            await emu.dispatcher.stop()

    app = Starlette(routes=routes, lifespan=lifespan)
    return ControlMiddleware(app, emu.control, lambda key: key in emu.keys, clock=b.now, run_action=emu.run_action)
