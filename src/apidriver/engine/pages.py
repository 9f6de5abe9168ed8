"""List and lookup requests: the parameters they send, and what their answers must look like.

One place for both, shared by the engine's streams and the replica's reader:
a list page is an object whose ``data`` is a list of objects, a lookup's
answer an object whose ``data`` is an object, and anything else (an empty
body, ``[]``, ``{"data": null}``, a page that repeats an earlier one) is an
``UnexpectedResponseError``, never a short list.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import repeat
from typing import Any

import orjson

from .. import exceptions as exc
from .schema import Endpoint, Pagination

_DICTS = {dict}
_KEYS = {str, int}


def list_params(endpoint: Endpoint, includes: Iterable[str], filters: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """The parameters of a request to ``endpoint``: its own, the ``include=`` values, the filters."""
    params = dict(endpoint.params)
    wanted = sorted(set(includes))
    if wanted:
        merged = [p for p in params.get("include", "").split(",") if p] + wanted
        params["include"] = ",".join(dict.fromkeys(merged))
    return list(params.items()) + sorted((filters or {}).items())


def page_data(body: Any, where: str, status: int | None = None, paginated: bool = False) -> list[Any]:
    """The objects of one list answer: its ``data``, a list of objects (unless ``paginated``, one
    object counts as a list of one: ``/users/me`` is the Users list).

    Anything else (no body, ``[]``, ``{"data": null}``, a string, a list
    holding something other than objects) raises
    :class:`UnexpectedResponseError`: read as an empty page, it would end
    the list there, silently partial. ``where`` is the URL (or path) asked.
    """
    data = body.get("data") if isinstance(body, Mapping) else None
    if isinstance(data, list):
        # Objects as orjson makes them (the usual case, checked in C: a page served again from a CacheTTL
        # snapshot is checked again on every read), or any mapping.
        if not data or set(map(type, data)) == _DICTS or all(isinstance(o, Mapping) for o in data):
            return data
    elif isinstance(data, Mapping) and not paginated:
        return [data]
    said = f" {status}" if status is not None else ""
    raise _unexpected(
        f"GET {where} answered{said} with {_shape(body)}, not a page of the list (an object whose \"data\" is a list "
        "of objects). The list cannot be read whole, so the statement fails rather than return part of it. Check "
        "BaseURL: something between here and the API (a proxy?) may be answering instead of it.",
        status, where,
    )


def _unexpected(message: str, status: int | None, where: str) -> exc.Error:
    return exc.api_error(exc.UnexpectedResponseError, message, "GET", where, status)


def object_data(body: Any, where: str, status: int | None = None) -> dict[str, Any]:
    """The object of a lookup's answer: its ``data``, an object.

    Anything else raises :class:`UnexpectedResponseError`: taken for "no
    such object", it would hide a row that exists (only a 404 says that).
    """
    data = body.get("data") if isinstance(body, Mapping) else None
    if isinstance(data, dict):
        return data
    said = f" {status}" if status is not None else ""
    raise _unexpected(
        f"GET {where} answered{said} with {_shape(body, list_page=False)}, not an object (an object whose \"data\" is the "
        "object asked for). Check BaseURL: something between here and the API (a proxy?) may be answering instead of it.",
        status, where,
    )


def _shape(body: Any, list_page: bool = True) -> str:
    """What a body that is not a list page is, for a message (never its values)."""
    if not isinstance(body, Mapping):
        return "no body" if body is None else f"a JSON {_kind(body)} instead of an object"
    if "data" not in body:
        return 'an object without "data"'
    data = body["data"]
    if not isinstance(data, list) or not list_page:
        return f'"data": {_kind(data)}'
    position = next(i for i, o in enumerate(data) if not isinstance(o, Mapping))
    return f'a "data" list holding a {_kind(data[position])} at position {position}'


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


class PageRepeats:
    """The pages one read of a list has had, to refuse a page that repeats an earlier one.

    A server that ignores the page parameter (or cycles through a few pages)
    answers full pages with a ``next`` link forever: without this, a scan
    would never end. A page is known by the ids of its objects, in order
    (whole objects when they have no ``id``): one small number per page.
    A list that moves by a whole page between two reads (a page's worth of
    new objects meanwhile) looks the same, and fails the same way; read
    again, it passes.
    """

    def __init__(self) -> None:
        self._pages: dict[int, int] = {}

    def check(self, data: list[Any], page: int, where: str, status: int | None = None) -> None:
        if not data:
            return
        fingerprint = hash(_identities(data))
        first = self._pages.setdefault(fingerprint, page)
        if first != page:
            said = f" {status}" if status is not None else ""
            raise _unexpected(
                f"GET {where} (page {page}) answered{said} with the same {len(data)} objects as page {first} of the same "
                "list: the server does not page this list (it ignores the page parameter), or the list moved by a "
                "whole page while it was read. It was not read to its end, so the statement fails rather than "
                "return part of it (or never end). Try again; if it repeats, check BaseURL and what answers there.",
                status, where,
            )


def _identities(data: list[Any]) -> tuple[Any, ...]:
    """The identities of a page's objects, in order. The usual page (dicts with text or integer ids)
    is read in C: a page served from a CacheTTL snapshot goes through here on every read."""
    if set(map(type, data)) == _DICTS:
        ids = tuple(map(dict.get, data, repeat("id", len(data))))
        if set(map(type, ids)) <= _KEYS:
            return ids  # what _identity gives each of them
    return tuple(_identity(o) for o in data)


def _identity(obj: Any) -> Any:
    key = obj.get("id") if isinstance(obj, Mapping) else None
    if isinstance(key, (str, int)):
        return key
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


def has_more(pagination: Pagination, body: Any, data: list[Any], size: int) -> bool:
    """Whether a list goes on after this page: a short page is the last, else its links say."""
    if len(data) < size:
        return False
    if pagination.next_link is not None:
        return bool(pagination.next_link(body))
    links = body.get("links") if isinstance(body, Mapping) else None
    if isinstance(links, Mapping) and "next" in links:
        return bool(links.get("next"))
    return True


def page_params(pagination: Pagination, endpoint: Endpoint, base: list[tuple[str, str]], page: int, size: int) -> list[tuple[str, str]]:
    """The parameters of one page request (the same function builds every page request)."""
    if not endpoint.paginated:
        return list(base)
    pag = pagination
    return list(base) + [(pag.page_param, str(page)), (pag.size_param, str(size))]
