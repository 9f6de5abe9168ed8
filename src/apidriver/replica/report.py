"""What a sync did: per table, rows inserted, updated and newly gone, requests, re-reads and seconds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .writer import Counts

Progress = Callable[[str, int, int], None]  # (table, objects read, requests sent) since the last call


@dataclass
class TableReport:
    """What a sync did to one table."""

    table: str
    inserted: int = 0
    updated: int = 0
    removed: int = 0
    requests: int = 0
    seconds: float = 0.0
    rereads: int = 0  # pages read again because the list shifted under the scan

    def add(self, counts: Counts) -> None:
        self.inserted += counts.inserted
        self.updated += counts.updated
        self.removed += counts.removed


@dataclass
class SyncReport:
    """Per table: rows inserted, updated, newly gone, requests and seconds (``report["Jobs"].inserted``)."""

    target: str
    tables: dict[str, TableReport] = field(default_factory=dict)
    seconds: float = 0.0

    def __getitem__(self, name: str) -> TableReport:
        for key, value in self.tables.items():
            if key.lower() == name.lower():
                return value
        raise KeyError(name)

    def __iter__(self) -> Any:
        return iter(self.tables.values())

    @property
    def requests(self) -> int:
        return sum(t.requests for t in self.tables.values())

    def as_dict(self) -> dict[str, dict[str, Any]]:
        return {t.table: {k: v for k, v in vars(t).items() if k != "table"} for t in self.tables.values()}
