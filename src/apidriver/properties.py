"""Connection properties: parsing connection strings and validating values.

A connection string is ``Name=Value;Name=Value``. Names are case-insensitive;
values may be quoted with ``"``, ``'`` (a doubled quote inside stands for
one) or ``{}``. ``ProfileSettings`` holds a nested connection string of
profile properties (the form the commercial driver's articles use), e.g.
``Profile=CloudConvert;ProfileSettings="APIKey=...;Sandbox=true"``.
Properties given at the top level win over the same ones inside
``ProfileSettings``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .exceptions import ProgrammingError


@dataclass(frozen=True)
class Property:
    name: str
    description: str
    default: Any = None
    parse: Callable[[Any], Any] = str
    secret: bool = False
    env: str | None = None


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", ""):
        return False
    raise ValueError("use true or false")


def positive_int(upper: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        number = int(str(value).strip())
        if not 1 <= number <= upper:
            raise ValueError(f"use a whole number from 1 to {upper}")
        return number

    return parse


def non_negative_float(value: Any) -> float:
    number = float(str(value).strip())
    if number < 0:
        raise ValueError("use a number of seconds, 0 or more")
    return number


def non_negative_int(value: Any) -> int:
    number = int(str(value).strip())
    if number < 0:
        raise ValueError("use a whole number, 0 or more")
    return number


CORE_PROPERTIES: tuple[Property, ...] = (
    Property("Profile", "The API profile: a built-in name (CloudConvert) or a path to a .apip file of that name.", "CloudConvert"),
    Property("AuthScheme", "How to authenticate; APIKey sends the key as a bearer token.", "APIKey"),
    Property("APIKey", "The API key (secret). Falls back to the profile's environment variable.", None, secret=True),
    Property("BaseURL", "The API root, e.g. https://api.cloudconvert.com (a trailing /v2 is accepted).", None),
    Property("ProfileSettings", "Nested Name=Value;... string of profile properties.", None),
    Property("Timeout", "Seconds to wait for one HTTP response.", 30.0, non_negative_float),
    Property("PageSize", "Rows asked per page of a list request (per_page).", 100, positive_int(1000)),
    Property("MaxConcurrency", "HTTP requests one connection may have in flight at once.", 8, positive_int(64)),
    Property("MaxRetries", "Retries of a failed idempotent request (5xx, timeouts, dropped connections).", 4, non_negative_int),
    Property("ReadOnly", "Refuse every write (INSERT, UPDATE, DELETE, actions) before any request is sent.", False, parse_bool),
    Property("RateLimitWindow", "Seconds of the API's rate-limit window, for pacing (the API does not say; 60).", 60.0, non_negative_float),
    Property(
        "TrustListOrder",
        "Assume lists come in the order the profile observed (CloudConvert: newest first), so ORDER BY created_at DESC LIMIT n reads one page. Not promised by the API.",
        False,
        parse_bool,
    ),
    Property("CacheTTL", "Seconds to keep GET answers across statements (0 = off); never shared across API keys.", 0.0, non_negative_float),
)


def parse_connection_string(text: str) -> dict[str, str]:
    """``Name=Value;...`` into a dict, names as written (quotes removed)."""
    out: dict[str, str] = {}
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t\r\n;":
            i += 1
        if i >= n:
            break
        eq = text.find("=", i)
        if eq < 0:
            raise ProgrammingError(f"Bad connection string near {text[i:i + 20]!r}: expected Name=Value pairs separated by ';'.")
        name = text[i:eq].strip()
        if not name:
            raise ProgrammingError("Bad connection string: a property has an empty name.")
        i = eq + 1
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] in "\"'{":
            close = "}" if text[i] == "{" else text[i]
            i += 1
            value = []
            while True:
                if i >= n:
                    raise ProgrammingError(f"Bad connection string: the value of {name} has no closing {close}.")
                ch = text[i]
                if ch == close:
                    if close != "}" and i + 1 < n and text[i + 1] == close:
                        value.append(ch)
                        i += 2
                        continue
                    i += 1
                    break
                value.append(ch)
                i += 1
            out[name] = "".join(value)
            while i < n and text[i] in " \t":
                i += 1
            if i < n and text[i] != ";":
                raise ProgrammingError(f"Bad connection string: unexpected text after the quoted value of {name}.")
        else:
            end = text.find(";", i)
            end = n if end < 0 else end
            out[name] = text[i:end].strip()
            i = end
    return out


class Settings(Mapping[str, Any]):
    """Validated properties by canonical name; the repr hides secrets."""

    def __init__(self, values: dict[str, Any], specs: Iterable[Property]) -> None:
        self._values = values
        self._specs = {p.name: p for p in specs}

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self) -> Any:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def masked(self) -> dict[str, Any]:
        return {
            k: ("***" if self._specs[k].secret and v else v)
            for k, v in self._values.items()
            if k != "ProfileSettings"
        }

    def __repr__(self) -> str:
        return f"Settings({self.masked()!r})"


def resolve(raw: Mapping[str, Any], specs: Iterable[Property]) -> Settings:
    """Validate ``raw`` (any case, ProfileSettings unfolded) against ``specs``."""
    specs = tuple(specs)
    by_lower = {p.name.lower(): p for p in specs}
    merged: dict[str, Any] = {}
    nested = None
    for name, value in raw.items():
        if name.lower() == "profilesettings" and value not in (None, ""):
            nested = value
    if nested is not None:
        inner = parse_connection_string(nested) if isinstance(nested, str) else dict(nested)
        for name, value in inner.items():
            merged[name.lower()] = (name, value)
    for name, value in raw.items():
        if name.lower() != "profilesettings":
            merged[name.lower()] = (name, value)
    unknown = sorted(name for key, (name, _) in merged.items() if key not in by_lower)
    if unknown:
        known = ", ".join(sorted(p.name for p in specs))
        raise ProgrammingError(
            f"Unknown connection propert{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)}. Known properties: {known}."
        )
    values: dict[str, Any] = {}
    for spec in specs:
        entry = merged.get(spec.name.lower())
        value = entry[1] if entry is not None else None
        if (value is None or value == "") and spec.env:
            value = os.environ.get(spec.env) or None
        if value is None or value == "":
            values[spec.name] = spec.default
            continue
        try:
            values[spec.name] = spec.parse(value)
        except (TypeError, ValueError) as exc:
            shown = "***" if spec.secret else repr(value)
            raise ProgrammingError(f"Bad value {shown} for the connection property {spec.name}: {exc}.") from None
    return Settings(values, specs)


def profile_name(value: str) -> str:
    """A Profile value as a profile name: ``/any/dir/CloudConvert.apip`` → ``cloudconvert``."""
    text = value.strip()
    base = text.replace("\\", "/").rsplit("/", 1)[-1]
    if base.lower().endswith(".apip"):
        base = base[: -len(".apip")]
    return base.lower()
