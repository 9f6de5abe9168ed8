"""``import apidriver`` stays lean: nothing of a command line, the emulator or SQLAlchemy
is imported until used (run in fresh interpreters, since this one has them loaded)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("click", "rich", "pygments", "prompt_toolkit", "starlette", "uvicorn", "sqlalchemy", "apidriver.cli", "apidriver.emulator")


def fresh(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)


def test_import_apidriver_loads_no_cli_emulator_or_sqlalchemy() -> None:
    done = fresh(f"import sys, apidriver; apidriver.connect; print([m for m in {HEAVY!r} if m in sys.modules])")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_connecting_loads_none_of_them_either() -> None:
    code = (
        "import sys, apidriver\n"
        "try:\n    apidriver.connect(APIKey='k', BaseURL='http://127.0.0.1:9').close()\n"
        "except apidriver.Error:\n    pass\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    done = fresh(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_httpx_command_line_still_works_after_import_apidriver() -> None:
    done = fresh("import sys, apidriver, httpx; sys.argv = ['httpx', '--help']; httpx.main()")
    assert done.returncode == 0, done.stderr
    assert "Usage: httpx" in done.stdout
