"""Running the ``apidriver`` command as a subprocess, against emulators the tests start."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping

from apidriver.emulator import Emulator

COMMAND = [sys.executable, "-m", "apidriver.cli"]
# Variables that would change which connection a command uses.
CONNECTION_VARIABLES = ("APIDRIVER_CONNECTION", "CLOUDCONVERT_API_KEY")


def environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without connection variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in CONNECTION_VARIABLES}
    env.update(extra or {})
    return env


def apidriver(*args: str, env: Mapping[str, str] | None = None, stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``apidriver ARGS`` and wait for it (stdout and stderr are pipes, not terminals)."""
    return subprocess.run(
        [*COMMAND, *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        check=False,
        env=environment(env),
        timeout=timeout,
    )


def connection(emulator: Emulator, **properties: str) -> str:
    """A ``--connect`` string for ``emulator``."""
    extra = "".join(f";{k}={v}" for k, v in properties.items())
    return f"APIKey={emulator.api_key};BaseURL={emulator.base_url}{extra}"
