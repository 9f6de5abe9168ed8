"""Quoted values in connection strings: ``'…'``, ``"…"`` and ODBC's ``{…}``, each with its doubled closer."""

from __future__ import annotations

import pytest

import apidriver
from apidriver.emulator import Emulator
from apidriver.properties import parse_connection_string

AWKWARD = ["a;b", "}", "{x}", "a}}b", "k=v;w=x", "it's", 'say "hi"', " padded ", "", "}{;='\""]


def quoted(value: str, style: str) -> str:
    """``value`` quoted as a user would write it: the closing character doubled inside."""
    opener, closer = {"{": ("{", "}"), '"': ('"', '"'), "'": ("'", "'")}[style]
    return opener + value.replace(closer, closer * 2) + closer


@pytest.mark.parametrize("style", ["{", '"', "'"])
@pytest.mark.parametrize("value", AWKWARD)
def test_quoted_values_round_trip(value: str, style: str) -> None:
    text = f"First={quoted(value, style)};Second={quoted(value, style)} ; Third=plain"
    assert parse_connection_string(text) == {"First": value, "Second": value, "Third": "plain"}


def test_odbc_braces_escape_a_closing_brace() -> None:
    assert parse_connection_string("APIKey={ab}}c};PageSize=5") == {"APIKey": "ab}c", "PageSize": "5"}
    assert parse_connection_string("A={}}}") == {"A": "}"}
    assert parse_connection_string("A={{}") == {"A": "{"}  # an opening brace needs no escape


def test_a_brace_value_left_open_by_its_escape_is_refused() -> None:
    with pytest.raises(apidriver.ProgrammingError, match="the value of APIKey has no closing }"):
        parse_connection_string("APIKey={ab}}")  # '}}' is one '}', so nothing closes the value
    with pytest.raises(apidriver.ProgrammingError, match="unexpected text after the quoted value of APIKey"):
        parse_connection_string("APIKey={ab}c}")


def test_a_key_with_every_awkward_character_reaches_the_connection(shared_emulator: Emulator) -> None:
    key = "}{;='\" x"
    text = f"APIKey={quoted(key, '{')};BaseURL={{{shared_emulator.base_url}}}"
    with apidriver.connect(text) as conn:
        assert conn.settings["APIKey"] == key
        assert conn.base_url.startswith(shared_emulator.base_url)
