"""Where the command line's connection comes from: ``--connect``, ``APIDRIVER_CONNECTION``, the profile's key variable."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from .. import Connection, connect
from ..connection import settings_for
from ..profiles import Profile
from .errors import NoConnection

ENV = "APIDRIVER_CONNECTION"
F = TypeVar("F", bound=Callable[..., Any])


def connection_option(function: F) -> F:
    """The shared ``--connect`` option (falls back to ``$APIDRIVER_CONNECTION``)."""
    return click.option(
        "--connect",
        "connection",
        envvar=ENV,
        metavar="PROPERTIES",
        help=f'Connection string, e.g. "APIKey=...;BaseURL=http://127.0.0.1:8000" (default: ${ENV}, '
        "else the API key in $CLOUDCONVERT_API_KEY).",
    )(function)


def profile_of(connection: str | None) -> Profile:
    """The profile a connection string names (CloudConvert by default); needs no API key."""
    profile, _ = settings_for(connection, {})
    return profile


def open_connection(connection: str | None, **properties: Any) -> Connection:
    """``apidriver.connect(connection, **properties)``, or a one-line hint when no API key is given anywhere.

    ``properties`` override the connection string's (``apidriver mcp`` adds ``ReadOnly=True``).
    """
    profile, settings = settings_for(connection, properties)
    if not settings["APIKey"] and not settings["Offline"]:  # Offline reads the cache only
        variable = f" or {profile.api_key_env}" if profile.api_key_env else ""
        how = f'pass --connect "APIKey=...", or set {ENV}{variable}'
        raise NoConnection(f"no API key: {how} (try: apidriver demo)" if connection else f"no connection: {how} (try: apidriver demo)")
    return connect(connection, **properties)
