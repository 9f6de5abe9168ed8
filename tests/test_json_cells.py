"""JSON cells are made by orjson but must be byte for byte what ``json.dumps(value,
ensure_ascii=False, separators=(",", ":"))`` wrote before: unicode, floats, key order."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import orjson
import pytest

from apidriver.values import JSON, json_text, to_sql

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "cloudconvert"


def stdlib(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def floats() -> list[float]:
    rng = random.Random(13)
    out = [float(f"{m}e{e}") for e in range(-320, 308) for m in (1, 1.5, 9.87654321, 3.0000000000000004)]
    out += [rng.uniform(-1e6, 1e6) for _ in range(2000)] + [rng.random() * 10 ** rng.randint(-30, 30) for _ in range(4000)]
    return out + [-0.0, 0.0, 1e-4, 0.00012, 10.00001, 5e-324]


def test_every_recorded_response_encodes_the_same() -> None:
    files = sorted(FIXTURES.rglob("*.json"))
    assert len(files) > 40
    for path in files:
        value = orjson.loads(path.read_bytes())
        assert json_text(value) == stdlib(value), path


@pytest.mark.parametrize(
    "value",
    [
        {"b": 1, "a": {"z": [3, 2, 1], "y": None}},  # insertion order, not sorted
        {"name": "Übersicht – 報告.pdf", "emoji": "📄", "sep": "\u2028\u2029", "ctl": "\x00\x1f\x7f", "q": '"\\/'},
        {"big": 2**63, "small": -(2**63), "huge": 10**30},  # beyond 64 bits: the stdlib
        {1: "non-string key"},  # orjson refuses: the stdlib
        ["\ud800"],  # a lone surrogate: the stdlib
        [True, False, None, 0, -1, 1.0, 1e16, 1e-05, 2.5e-07, 0.1],
        {"id": "6f3c8e1e-5b2a-4e7d-9e0f-1e2d3c4b5a69", "t": 1e-7},
        1e-05,
        "plain",
    ],
)
def test_tricky_values(value: Any) -> None:
    assert json_text(value) == stdlib(value)
    assert to_sql(value, JSON) == stdlib(value)


def test_floats_in_every_range_are_spelled_as_python_spells_them() -> None:
    values = floats()
    assert json_text(values) == stdlib(values)
    mismatched = [v for v in values if json_text({"v": v}) != stdlib({"v": v})]
    assert mismatched == []
