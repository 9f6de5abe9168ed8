"""Compare the shape of two JSON documents: the same keys and the same JSON types, recursively.

``null`` on either side matches anything (a recorded ``null`` says nothing
about the type, and neither does ours). Lists are compared element by element
against one fixture element: the one with the same ``operation`` when the
elements are tasks or catalogue entries, else the fixture's first element;
every operation present in the fixture must be present in ours too.

Differences come back as ``(kind, path)``: ``kind`` is ``missing`` (the
fixture has the key, we do not), ``extra`` (we have it, the fixture does
not), ``type`` (both have it, as different JSON types) or
``missing-element``. Paths look like ``$.data.tasks[export/url].result``:
list elements are written ``[operation]`` when they carry one, else ``[]``.
"""

from __future__ import annotations

from typing import Any

Difference = tuple[str, str]


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    raise TypeError(f"not a JSON value: {value!r}")


def _operation(value: Any) -> str | None:
    if isinstance(value, dict) and isinstance(value.get("operation"), str):
        return str(value["operation"])
    return None


def differences(expected: Any, actual: Any, path: str = "$") -> list[Difference]:
    """How ``actual`` (ours) differs in shape from ``expected`` (the recorded fixture)."""
    if expected is None or actual is None:
        return []
    if json_type(expected) != json_type(actual):
        return [("type", path)]
    out: list[Difference] = []
    if isinstance(expected, dict):
        for key in expected:
            if key not in actual:
                out.append(("missing", f"{path}.{key}"))
        for key in actual:
            if key not in expected:
                out.append(("extra", f"{path}.{key}"))
            else:
                out += differences(expected[key], actual[key], f"{path}.{key}")
    elif isinstance(expected, list) and expected:
        by_operation = {op: e for e in expected if (op := _operation(e)) is not None}
        ours = {_operation(a) for a in actual}
        for op in by_operation:
            if op not in ours:
                out.append(("missing-element", f"{path}[{op}]"))
        for item in actual:
            op = _operation(item)
            model = by_operation.get(op, expected[0]) if op is not None else expected[0]
            out += differences(model, item, f"{path}[{op or ''}]")
    return sorted(set(out))
