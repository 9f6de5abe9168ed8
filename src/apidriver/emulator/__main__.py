"""``python -m apidriver.emulator``: see :func:`apidriver.emulator.server.main`."""

import sys

from .server import main

sys.exit(main())
