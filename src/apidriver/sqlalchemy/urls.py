"""Database URLs of the dialects: connection properties, and the API key kept out of sight.

Two forms reach the same DB-API ``connect()``::

    cloudconvert://:API_KEY@?BaseURL=http%3A%2F%2F127.0.0.1%3A8000&Timeout=10
    api:///?Profile=CloudConvert&AuthScheme=APIKey&ProfileSettings=APIKey%3DAPI_KEY

Every query parameter is a connection property (names are case-insensitive;
a value quoted as in a connection string, ``'...'``, ``"..."`` or ``{...}``,
is unquoted). The key may be the URL's password, an ``APIKey`` parameter or
an ``APIKey`` inside ``ProfileSettings``. SQLAlchemy hides only the password
of a URL, so :func:`parse` also returns the URL rewritten with the key moved
into the password slot: the dialect gives that URL to the engine, and
``repr(engine)``, ``str(engine.url)`` and ``engine.url.render_as_string()``
then show ``***`` whichever form carried the key, while
``render_as_string(hide_password=False)`` still gives a URL that connects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import exc
from sqlalchemy.engine import URL

from ..exceptions import ProgrammingError
from ..properties import parse_connection_string, profile_name
from .compat import SQLALCHEMY_1

__all__ = ["MaskedURL", "ParsedURL", "parse"]

FORMS = (
    "Valid forms:\n"
    "  cloudconvert://:API_KEY@?BaseURL=...&Timeout=...  (the key is the password: note the colon)\n"
    "  api:///?Profile=CloudConvert&AuthScheme=APIKey&ProfileSettings=APIKey%3DAPI_KEY\n"
    "Connection properties go in the query string; see README.md, 'Connection properties'."
)


class MaskedURL(URL):
    """On SQLAlchemy 1.4, ``str(url)`` shows the password; this URL hides it, as 2.x does.

    (``render_as_string(hide_password=False)`` still gives the key.)
    """

    __slots__ = ()

    def __str__(self) -> str:
        return self.render_as_string(hide_password=True)


@dataclass(frozen=True)
class ParsedURL:
    properties: dict[str, Any]
    """Keyword arguments for ``apidriver.connect``, the key included."""
    url: URL
    """The same URL with the key, if any, as its password (what the engine shows)."""


def _unquote(name: str, value: str) -> str:
    """A query value written as a quoted connection-string value, unquoted."""
    text = value.strip()
    if text[:1] not in ("'", '"', "{"):
        return value
    try:
        return parse_connection_string(f"v={text}")["v"]
    except ProgrammingError:
        raise exc.ArgumentError(f"The value of {name} in the URL opens a quote it does not close.") from None


def _render(properties: dict[str, str]) -> str:
    """``Name=Value;...`` with values quoted where the parser needs it."""
    parts = []
    for name, value in properties.items():
        if any(c in value for c in ";\"'{}") or value != value.strip():
            value = '"' + value.replace('"', '""') + '"'
        parts.append(f"{name}={value}")
    return ";".join(parts)


def parse(url: URL, profile: str | None = None) -> ParsedURL:
    """The connection properties of ``url``; ``profile`` is the one a named dialect implies."""
    scheme = url.drivername
    if url.username:
        # Never echo it: it is most likely a key written without the colon.
        raise exc.ArgumentError(
            f"A {scheme}:// URL takes no user name; an API key goes in the password part, "
            f"{scheme}://:API_KEY@ (note the colon).\n{FORMS}"
        )
    if url.host or url.port:
        raise exc.ArgumentError(
            f"A {scheme}:// URL takes no host or port (got {url.host or ''}{':' if url.port else ''}{url.port or ''}); "
            f"give the API root as a property: ?BaseURL=https%3A%2F%2Fapi.example.com\n{FORMS}"
        )
    if url.database:
        raise exc.ArgumentError(f"A {scheme}:// URL takes no database name (got {url.database!r}).\n{FORMS}")

    keys: list[str] = [url.password] if url.password else []
    query: dict[str, str] = {}
    for name, raw in url.query.items():
        if isinstance(raw, tuple):
            raise exc.ArgumentError(f"The property {name} appears more than once in the URL; give it once.")
        value = _unquote(name, raw)
        lowered = name.lower()
        if lowered == "apikey":
            if value:
                keys.append(value)
            continue
        if lowered == "profilesettings":
            try:
                nested = parse_connection_string(value)
            except ProgrammingError as error:
                raise exc.ArgumentError(f"Bad ProfileSettings in the URL: {error}") from None
            rest = {}
            for inner, inner_value in nested.items():
                if inner.lower() == "apikey":
                    if inner_value:
                        keys.append(inner_value)
                else:
                    rest[inner] = inner_value
            if rest:
                query[name] = _render(rest)
            continue
        query[name] = value

    if len(set(keys)) > 1:
        raise exc.ArgumentError(
            "The URL gives two different API keys (password, APIKey= or inside ProfileSettings); give the key once."
        )
    key = keys[0] if keys else None

    properties: dict[str, Any] = dict(query)
    if profile is not None:
        given = next((v for k, v in query.items() if k.lower() == "profile"), None)
        if given is not None and profile_name(given) != profile.lower():
            raise exc.ArgumentError(
                f"A {scheme}:// URL always uses the {profile} profile (got Profile={given!r}); use api:///?Profile=... for another."
            )
        if given is None:
            properties["Profile"] = profile
    if key is not None:
        properties["APIKey"] = key
    shown = (MaskedURL if SQLALCHEMY_1 else URL).create(
        url.drivername,
        username="" if key is not None else None,
        password=key,
        database=url.database,
        query=query,
    )
    return ParsedURL(properties, shown)
