"""The names ``cache/attach.py`` imports from here, where they were defined before the split (to be removed).

:class:`~.replicator.Replicator` is in :mod:`.replicator`, :class:`~.report.SyncReport` in :mod:`.report`,
:func:`~.schema.replica_specs` in :mod:`.schema`. Nothing in the replica imports this module; once the
cache imports those modules, it goes, and ``apidriver.replica.sync`` is only the function again.
"""

from __future__ import annotations

from .replicator import Replicator
from .report import SyncReport
from .schema import replica_specs

__all__ = ["Replicator", "SyncReport", "replica_specs"]
