"""``apidriver demo``: runs offline to the end and shows each section."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from .conftest import apidriver


def test_demo_runs_and_shows_each_section() -> None:
    result = apidriver("demo")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    headings = [
        "1. Failed jobs through the SQLAlchemy ORM",
        "2. Push-down: what each query sends to the API",
        "3. A join with an aggregate",
        "4. Writes and actions",
        "Your turn",
    ]
    positions = [out.index(h) for h in headings]
    assert positions == sorted(positions)
    assert 'session.query(Jobs).filter_by(status="error")' in out
    assert "the same through Core: " in out
    assert "→ GET /v2/jobs?filter[status]=error&page=1&per_page=100 -> 200" in out
    assert re.search(r"→ GET /v2/jobs/[0-9a-f-]{36} -> 200", out)
    assert "→ GET /v2/jobs?page=1&per_page=3 -> 200" in out  # LIMIT sent as the page size
    assert "→ POST /v2/jobs -> 201" in out
    assert re.search(r"→ DELETE /v2/jobs/[0-9a-f-]{36} -> 204", out)
    assert "2 rows affected" in out
    assert "minutes.pdf" in out and "b'%PDF-'" in out
    assert "Traceback" not in out + result.stderr
    assert "article" not in out.lower()  # no reference to a text the user has not read


def test_console_script() -> None:
    """``pip install`` puts an ``apidriver`` command next to the interpreter."""
    script = Path(sys.executable).parent / "apidriver"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    for command in ("demo", "query", "shell", "tables", "describe", "emulator"):
        assert re.search(rf"^  {command}\s", result.stdout, re.MULTILINE), command
