"""``python -m apidriver.emulator``: see :mod:`apidriver.emulator.command`."""

from .command import main

main()
