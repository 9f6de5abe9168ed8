"""The control API's routes (``/_emulator``), for tests and tools: the request log, faults,
actions, the clock, the history, webhook deliveries and secrets, and reset. They are neither
logged nor faulted nor rate-limited (:mod:`.middleware` lets them through)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .backend import Backend
from .control import Action, Fault
from .emulation import Emulation
from .models import encode


def clock_state(backend: Backend) -> dict[str, Any]:
    """What ``GET /_emulator/clock`` answers."""
    now = backend.now()
    return {
        "now": dt.datetime.fromtimestamp(now, dt.timezone.utc).isoformat(),
        "timestamp": now,
        "advanced_seconds": backend.clock.offset,
        "retention_hours": backend.retention.hours,
    }


def control_routes(emu: Emulation) -> list[Route]:
    b = emu.backend

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

    return [
        Route("/_emulator/requests", control_requests, methods=["GET", "DELETE"]),
        Route("/_emulator/faults", control_faults, methods=["GET", "POST", "DELETE"]),
        Route("/_emulator/deliveries", control_deliveries, methods=["GET"]),
        Route("/_emulator/clock", control_clock, methods=["GET", "POST"]),
        Route("/_emulator/actions", control_actions, methods=["GET", "POST", "DELETE"]),
        Route("/_emulator/history", control_history, methods=["GET"]),
        Route("/_emulator/secrets", control_secrets, methods=["GET"]),
        Route("/_emulator/reset", control_reset, methods=["POST"]),
    ]
