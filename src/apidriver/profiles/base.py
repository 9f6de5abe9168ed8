"""What a profile is: the description of one REST API for the engine."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..answers import default_error_details
from ..engine.schema import Pagination, Table
from ..properties import Property, Settings
from ..version import __version__


@dataclass(frozen=True)
class Profile:
    """An API as tables: its tables, extra connection properties, auth and hosts.

    ``root_url`` turns validated settings into the API root when ``BaseURL``
    is not given; ``api_prefix`` is appended to the root for every request.
    """

    name: str
    description: str
    tables: tuple[Table, ...]
    root_url: Callable[[Settings], str]
    properties: tuple[Property, ...] = ()
    auth_schemes: tuple[str, ...] = ("APIKey",)
    api_key_env: str | None = None
    api_prefix: str = ""
    pagination: Pagination = field(default_factory=Pagination)
    error_details: Callable[[Any], tuple[str | None, str | None, dict[str, Any] | None]] = default_error_details
    procedures: tuple[Any, ...] = ()
    extras: Mapping[str, Any] = field(default_factory=dict)

    def table(self, name: str) -> Table:
        for t in self.tables:
            if t.name.lower() == name.lower():
                return t
        raise KeyError(name)

    def headers(self, settings: Settings) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {settings['APIKey']}",
            "Accept": "application/json",
            "User-Agent": f"apidriver/{__version__} (profile {self.name})",
        }
