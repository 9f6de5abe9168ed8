"""The server's parts that need no client: addresses and tokens, the prompts' periods, secret scrubbing, row caps."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from apidriver.mcp.launch import _ScrubbingFormatter, scrubber
from apidriver.mcp.http import check_token, is_loopback, parse_address
from apidriver.mcp.prompts import period
from apidriver.mcp.queries import Limits, StatementError


@pytest.mark.parametrize(
    ("text", "address"),
    [("127.0.0.1:8765", ("127.0.0.1", 8765)), ("8765", ("127.0.0.1", 8765)), ("localhost:0", ("localhost", 0)), ("[::1]:9000", ("::1", 9000)), ("0.0.0.0:80", ("0.0.0.0", 80))],
)
def test_parse_address(text: str, address: tuple[str, int]) -> None:
    assert parse_address(text) == address


@pytest.mark.parametrize("text", ["", "host", "host:", ":80x", "[::1]", "1.2.3.4:70000"])
def test_parse_address_refuses_what_is_not_host_port(text: str) -> None:
    with pytest.raises(ValueError, match="is not HOST:PORT"):
        parse_address(text)


def test_loopback_and_tokens() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.8.0.1", "::1", "localhost", "LOCALHOST"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.0.2.10", "myhost", "localhost.example"))
    check_token("127.0.0.1", None)  # loopback: optional
    check_token("0.0.0.0", "x" * 16)
    with pytest.raises(ValueError, match="needs a bearer token"):
        check_token("::", None)
    with pytest.raises(ValueError, match="shorter than 16"):
        check_token("127.0.0.1", "x" * 15)


def test_period_defaults_to_the_last_day_and_reads_iso_8601() -> None:
    now = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)
    assert period("", "", now) == ("2026-12-03T12:00:00+00:00", "2026-12-04T12:00:00+00:00")
    assert period("2026-12-01", "2026-12-02T10:00:00+02:00", now) == ("2026-12-01T00:00:00+00:00", "2026-12-02T08:00:00+00:00")
    assert period("", "2026-12-02T00:00:00Z", now)[0] == "2026-12-01T00:00:00+00:00"
    with pytest.raises(ValueError, match="start must be an ISO 8601 date"):
        period("yesterday", "", now)
    with pytest.raises(ValueError, match="must be before end"):
        period("2026-12-05", "2026-12-01", now)


def test_secrets_are_scrubbed_from_text_and_log_lines() -> None:
    scrub = scrubber("sk-secret-key", None, "token-token-token")
    assert scrub("key sk-secret-key and token-token-token") == "key *** and ***"
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed with %s", ("sk-secret-key",), None)
    try:
        raise RuntimeError("sk-secret-key")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()
    line = _ScrubbingFormatter(scrub).format(record)
    assert "sk-secret-key" not in line and "failed with ***" in line and "RuntimeError: ***" in line


def test_row_caps() -> None:
    limits = Limits(default_rows=100, max_rows=1000)
    assert (limits.rows(None), limits.rows(5), limits.rows(5000)) == (100, 5, 1000)
    with pytest.raises(StatementError, match="max_rows must be at least 1"):
        limits.rows(0)
