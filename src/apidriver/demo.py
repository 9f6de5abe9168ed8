"""``python -m apidriver.demo``: the same as ``apidriver demo`` (see :mod:`apidriver.cli.demo`)."""

from __future__ import annotations

from .cli.demo import run_demo

__all__ = ["main"]


def main() -> None:
    run_demo()


if __name__ == "__main__":
    main()
