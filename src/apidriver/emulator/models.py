"""Resource objects of the emulated account and their JSON shapes.

Times are kept as float epoch seconds and rendered the way the API does:
ISO 8601 with second precision and an explicit ``+00:00`` offset.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from dataclasses import dataclass, field
from typing import Any

import orjson

TERMINAL = frozenset({"finished", "error"})


def iso(ts: float | None) -> str | None:
    """Render an epoch time as the API does (``2020-12-17T05:34:14+00:00``)."""
    if ts is None:
        return None
    return _iso_seconds(int(ts))


@functools.lru_cache(maxsize=1 << 16)
def _iso_seconds(seconds: int) -> str:
    # Cached: a page of 100 jobs with their tasks renders ~1,000 timestamps,
    # most of them seen before; formatting was a third of the page's cost.
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).isoformat()


class Rendered:
    """An object's JSON value and the bytes orjson writes for it, kept while ``key`` (what the
    value was made from that can change) stays the same. A body may hold it wherever the value
    would stand: :func:`encode` writes the kept bytes (byte for byte what it writes for the value).

    Not a dataclass: orjson would write a dataclass's fields instead of asking ``default``.
    """

    __slots__ = ("fragment", "key", "value")

    def __init__(self, key: tuple[Any, ...], value: dict[str, Any]) -> None:
        self.key = key
        self.value = value
        self.fragment = orjson.Fragment(orjson.dumps(value))


def _fragment(obj: Any) -> Any:
    if isinstance(obj, Rendered):
        return obj.fragment
    raise TypeError(f"Type is not JSON serializable: {type(obj).__name__}")


def _value(obj: Any) -> Any:
    if isinstance(obj, Rendered):
        return obj.value
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def encode(body: Any, *, php: bool = True) -> bytes:
    """JSON bytes as the API sends them.

    ``php=True`` is the main host (and webhook bodies, see the recorded .NET
    webhook fixture): compact, with ``/`` escaped as ``\\/`` and non-ASCII as
    ``\\uXXXX``, as PHP's ``json_encode`` does. ``php=False`` is the sync
    host: compact, slashes and UTF-8 left as they are. A :class:`Rendered`
    in ``body`` stands for its value.
    """
    data = orjson.dumps(body, default=_fragment)
    if not php:
        return data
    if not data.isascii():  # PHP escapes non-ASCII; orjson cannot
        return json.dumps(body, ensure_ascii=True, separators=(",", ":"), default=_value).replace("/", "\\/").encode()
    return data.replace(b"/", b"\\/")


@dataclass(slots=True)
class FileRef:
    """One entry of a task's ``result.files``.

    ``content_key`` names where the bytes live: ``("blob", key)`` for stored
    uploads and fetched files, ``("render", filename)`` for generated ones.
    ``url_path`` is set on ``export/url`` results and is made absolute at
    serialisation time.
    """

    filename: str
    size: int | None = None
    md5: str | None = None
    dir: str | None = None
    url_path: str | None = None
    content_key: tuple[str, str] = ("render", "")

    def to_dict(self, root: str) -> dict[str, Any]:
        out: dict[str, Any] = {"filename": self.filename}
        if self.dir is not None:
            out["dir"] = self.dir
        if self.size is not None:
            out["size"] = self.size
        if self.md5 is not None:
            out["md5"] = self.md5
        if self.url_path is not None:
            out["url"] = root + self.url_path
        return out


@dataclass(slots=True, eq=False)
class Task:
    id: str
    operation: str
    payload: dict[str, Any]
    created_at: float
    user_id: int
    seq: int
    job_id: str | None = None
    name: str | None = None
    status: str = "waiting"
    message: str | None = None
    code: str | None = None
    credits: int | None = None
    engine: str | None = None
    engine_version: str | None = None
    has_engine: bool = False
    files: list[FileRef] | None = None
    form: dict[str, Any] | None = None
    extra_result: dict[str, Any] | None = None
    started_at: float | None = None
    ended_at: float | None = None
    retry_of_task_id: str | None = None
    copy_of_task_id: str | None = None
    depends_on_task_ids: list[str] = field(default_factory=list)
    retries: list[str] = field(default_factory=list)
    priority: int = 50
    host_name: str | None = None
    storage: str | None = None
    # Emulator-only planning state, never serialised.
    held: bool = False  # waiting for an upload or a background download
    planned_error: tuple[str, str] | None = None
    # The plain JSON of an ended task never changes: kept to serve pages fast (key: the root URL).
    rendered: Rendered | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def result(self, root: str) -> dict[str, Any] | None:
        if self.form is not None:
            return {"form": self.form}
        if self.files is None and self.extra_result is None:
            return None
        out: dict[str, Any] = {}
        if self.files is not None:
            out["files"] = [f.to_dict(root) for f in self.files]
        if self.extra_result:
            out.update(self.extra_result)
        return out

    def to_dict(self, root: str, include: frozenset[str] = frozenset(), lookup: Any = None) -> dict[str, Any]:
        kept = self.json(root, include, lookup)
        return kept.value if isinstance(kept, Rendered) else kept

    def json(self, root: str, include: frozenset[str] = frozenset(), lookup: Any = None) -> Rendered | dict[str, Any]:
        """The task's JSON: for an ended task without includes, kept (it never changes again:
        nothing changes an ended task's fields but ``retries``, shown only on request)."""
        if include or not self.terminal:
            return self._render(root, include, lookup)
        kept = self.rendered
        if kept is None or kept.key[0] != root:
            kept = self.rendered = Rendered((root,), self._render(root, include, lookup))
        return kept

    def _render(self, root: str, include: frozenset[str], lookup: Any) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id}
        if self.job_id is not None:
            d["name"] = self.name
        d["job_id"] = self.job_id
        d["status"] = self.status
        d["credits"] = self.credits
        d["code"] = self.code
        d["message"] = self.message
        d["percent"] = 100
        d["operation"] = self.operation
        if self.has_engine:
            d["engine"] = self.engine
            d["engine_version"] = self.engine_version
        if "payload" in include:
            d["payload"] = self.payload
        d["result"] = self.result(root)
        d["created_at"] = iso(self.created_at)
        d["started_at"] = iso(self.started_at)
        d["ended_at"] = iso(self.ended_at)
        d["retry_of_task_id"] = self.retry_of_task_id
        d["copy_of_task_id"] = self.copy_of_task_id
        d["user_id"] = self.user_id
        d["priority"] = self.priority
        d["host_name"] = self.host_name
        d["storage"] = self.storage
        d["depends_on_task_ids"] = list(self.depends_on_task_ids)
        if "retries" in include:
            d["retries"] = [
                t.to_dict(root) for t in (lookup.task(r) for r in self.retries) if t is not None
            ] if lookup else []
        if "depends_on_tasks" in include and lookup is not None:
            d["depends_on_tasks"] = [
                t.to_dict(root) for t in (lookup.task(i) for i in self.depends_on_task_ids) if t is not None
            ]
        if "job" in include and lookup is not None:
            job = lookup.job(self.job_id) if self.job_id else None
            d["job"] = job.to_dict(root) if job is not None else None
        d["links"] = {"self": f"{root}/v2/tasks/{self.id}"}
        return d


@dataclass(slots=True, eq=False)
class Job:
    id: str
    tag: str | None
    created_at: float
    seq: int
    task_ids: list[str] = field(default_factory=list)
    status: str = "waiting"
    started_at: float | None = None
    ended_at: float | None = None
    webhook_url: str | None = None
    # The JSON last served, without and with the tasks (see ``json``); never serialised.
    rendered: Rendered | None = None
    rendered_tasks: Rendered | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def json(self, root: str, tasks: list[Task] | None = None) -> Rendered | dict[str, Any]:
        """``to_dict``'s value, kept while what it is made of stays the same: the root URL and
        the fields that change (``status``, ``started_at``, ``ended_at``; ``id``, ``tag`` and
        ``created_at`` never do) and, with ``tasks``, the same task objects, all of them ended
        (whose JSON never changes, see :meth:`Task.json`). Otherwise made afresh, not kept."""
        if tasks is None:
            key: tuple[Any, ...] = (root, self.status, self.started_at, self.ended_at)
            kept = self.rendered
            if kept is None or kept.key != key:
                kept = self.rendered = Rendered(key, self.to_dict(root))
            return kept
        kept = self.rendered_tasks
        if kept is not None and kept.key == (root, self.status, self.started_at, self.ended_at, tasks):
            return kept
        if not all(t.terminal for t in tasks):
            return self.to_dict(root, tasks)
        kept = self.rendered_tasks = Rendered((root, self.status, self.started_at, self.ended_at, list(tasks)), self.to_dict(root, tasks))
        return kept

    def to_dict(self, root: str, tasks: list[Task] | None = None) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "tag": self.tag,
            "status": self.status,
            "created_at": iso(self.created_at),
            "started_at": iso(self.started_at),
            "ended_at": iso(self.ended_at),
        }
        if tasks is not None:
            d["tasks"] = [t.to_dict(root) for t in tasks]
        d["links"] = {"self": f"{root}/v2/jobs/{self.id}"}
        return d


@dataclass(slots=True, eq=False)
class Webhook:
    id: int
    url: str
    events: list[str]
    signing_secret: str
    created_at: float
    updated_at: float
    disabled: bool = False
    failing: bool = False

    def to_dict(self, root: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "events": list(self.events),
            "signing_secret": self.signing_secret,
            "disabled": self.disabled,
            "failing": self.failing,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "links": {"self": f"{root}/v2/webhooks/{self.id}"},
        }


@dataclass(slots=True)
class User:
    id: int
    username: str
    email: str
    credits: int
    created_at: float
    paying: bool = True
    task_priority: int | None = None
    tasks_per_minute: int | None = None

    def to_dict(self, root: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "username": self.username,
            "email": self.email,
            "created_at": iso(self.created_at),
            "credits": self.credits,
            "paying": self.paying,
            "task_priority": self.task_priority,
            "tasks_per_minute": self.tasks_per_minute,
            "links": {"self": f"{root}/v2/users/{self.id}"},
        }
