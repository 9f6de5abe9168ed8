"""The emulator the benchmarks measure against, in its own process (its work never shares ours)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def emulator_process(*args: str, api_key: str = "bench") -> Iterator[str]:
    """Run ``python -m apidriver.emulator ARGS`` on a free port; yields its root URL.

    The emulator's default rate limit (500 requests a minute) is off unless
    ``args`` give ``--rate-limit`` (the last one given wins).
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "apidriver.emulator", "--port", "0", "--api-key", api_key, "--rate-limit", "0", *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield process.stdout.readline().strip()
    finally:
        process.terminate()
        process.wait(timeout=30)
