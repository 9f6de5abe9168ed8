"""``python -m apidriver.cli``: the same as the ``apidriver`` command."""

from . import main

main()
