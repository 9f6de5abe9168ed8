"""Connection properties: parsing connection strings and validating values.

A connection string is ``Name=Value;Name=Value``. Names are case-insensitive;
values may be quoted with ``"``, ``'`` or ``{}`` (inside, a doubled closing
character stands for one: ``''``, ``""``, ``}}`` as in ODBC). ``ProfileSettings`` holds a nested connection string of
profile properties (the form the commercial driver's articles use), e.g.
``Profile=CloudConvert;ProfileSettings="APIKey=...;Sandbox=true"``.
Properties given at the top level win over the same ones inside
``ProfileSettings``.

Errors never echo a value: any value, and any text where a name was
expected, could be an API key written in the wrong place (``connect("sk-...")``).
They name the property and the position instead; a name is shown only if it
looks like one (:func:`shown_name`).
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .exceptions import ProgrammingError

# MaxResponseSize's default: far above a page of 1,000 jobs with their tasks.
DEFAULT_MAX_RESPONSE_SIZE = 32 << 20

_NAME = re.compile(r"[A-Za-z_]{1,32}")


def shown_name(name: str) -> str | None:
    """``name`` if it can be shown in a message: letters and underscores only (keys have digits)."""
    text = name.strip()
    return text if _NAME.fullmatch(text) else None


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


def int_range(lower: int, upper: int) -> Callable[[Any], int]:
    """A whole number from ``lower`` to ``upper``."""

    def parse(value: Any) -> int:
        try:
            number = int(str(value).strip())
        except ValueError:
            number = lower - 1
        if not lower <= number <= upper:
            raise ValueError(f"use a whole number from {lower} to {upper}")
        return number

    return parse


def positive_int(upper: int) -> Callable[[Any], int]:
    return int_range(1, upper)


_SIZE = re.compile(r"(\d+)\s*([kmg]i?b?)?", re.IGNORECASE)


def byte_size(value: Any) -> int:
    """A number of bytes, at least 1 KB: ``1048576``, ``512KB``, ``32MB``, ``1GB`` (multiples of 1024)."""
    match = _SIZE.fullmatch(str(value).strip())
    if match is None:
        raise ValueError("use a number of bytes, or one with KB, MB or GB after it, such as 32MB")
    number = int(match.group(1)) << 10 * " kmg".index((match.group(2) or " ")[0].lower())
    if number < 1024:
        raise ValueError("use at least 1KB")
    return number


def _seconds(value: Any) -> float:
    try:
        return float(str(value).strip())
    except ValueError:
        return math.nan


def non_negative_float(value: Any) -> float:
    """Seconds, 0 or more (``inf`` allowed: forever)."""
    number = _seconds(value)
    if not number >= 0:
        raise ValueError("use a number of seconds, 0 or more")
    return number


def positive_seconds(value: Any) -> float:
    """Seconds, more than 0 and finite: a time limit."""
    number = _seconds(value)
    if not (number > 0 and math.isfinite(number)):
        raise ValueError("use a number of seconds more than 0, such as 30")
    return number


def base_url(value: Any) -> str:
    """An http(s) URL with a host, and nothing that could be a secret: no user-info, query or fragment.

    ``http://user:KEY@host`` would carry the key in every URL the driver
    shows (errors, logs, reprs, request records): refused, without echoing it.
    """
    text = str(value).strip()
    parts = urlsplit(text)
    if "@" in parts.netloc:
        raise ValueError(
            "it has a user name or password before an '@' (user:secret@host), which would show wherever the URL "
            "does. Give the host alone, and the key as APIKey"
        )
    if parts.query or parts.fragment or text.endswith(("?", "#")):
        raise ValueError("give the API root without a query (?...) or fragment (#...), such as https://api.cloudconvert.com")
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError("use an http:// or https:// URL with a host, such as https://api.cloudconvert.com")
    try:
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError:
        raise ValueError("use an http:// or https:// URL with a host and a valid port, such as http://127.0.0.1:8000") from None
    return text


CORE_PROPERTIES: tuple[Property, ...] = (
    Property("Profile", "The API profile: a built-in name (CloudConvert) or a path to a .apip file of that name.", "CloudConvert"),
    Property("AuthScheme", "How to authenticate; APIKey sends the key as a bearer token.", "APIKey"),
    Property("APIKey", "The API key (secret). Falls back to the profile's environment variable.", None, secret=True),
    Property("BaseURL", "The API root, e.g. https://api.cloudconvert.com (a trailing /v2 is accepted).", None, base_url),
    Property("ProfileSettings", "Nested Name=Value;... string of profile properties.", None),
    Property(
        "Timeout",
        "Seconds one HTTP attempt may take as a whole: connecting, sending, the headers and the whole body (more than 0).",
        30.0,
        positive_seconds,
    ),
    Property(
        "MaxResponseSize",
        "Largest answer body taken, in bytes after decompression (e.g. 32MB); a larger one is an error.",
        DEFAULT_MAX_RESPONSE_SIZE,
        byte_size,
    ),
    Property("PageSize", "Rows asked per page of a list request (per_page).", 100, positive_int(1000)),
    Property("MaxConcurrency", "HTTP requests one connection may have in flight at once.", 8, positive_int(64)),
    Property("MaxRetries", "Retries of a failed idempotent request (5xx, timeouts, dropped connections), 0 to 20.", 4, int_range(0, 20)),
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
        semi = text.find(";", i)
        if eq < 0 or (0 <= semi < eq):
            raise ProgrammingError(
                f"Bad connection string at position {i}: expected Name=Value pairs separated by ';', and the text there "
                "has no '=' (it is not shown: it may be a secret). An API key alone is written APIKey=<key>."
            )
        name = text[i:eq].strip()
        if not name:
            raise ProgrammingError(f"Bad connection string at position {i}: a property has an empty name.")
        called = _called(name, i)
        i = eq + 1
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] in "\"'{":
            close = "}" if text[i] == "{" else text[i]
            i += 1
            value = []
            while True:
                if i >= n:
                    raise ProgrammingError(f"Bad connection string: the value of {called} has no closing {close}.")
                ch = text[i]
                if ch == close:
                    if i + 1 < n and text[i + 1] == close:  # a doubled closer stands for one ('', "", ODBC's }})
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
                raise ProgrammingError(
                    f"Bad connection string at position {i}: unexpected text after the quoted value of {called} "
                    "(a ';' should follow it)."
                )
        else:
            end = text.find(";", i)
            end = n if end < 0 else end
            out[name] = text[i:end].strip()
            i = end
    return out


def _called(name: str, position: int) -> str:
    shown = shown_name(name)
    return shown if shown is not None else f"the property at position {position}"


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
        names = sorted(p.name for p in specs)
        described = []
        for name in unknown:
            shown = shown_name(name)
            if shown is None:
                described.append("one whose name is not shown (it does not look like a property name: a secret?)")
                continue
            close = difflib.get_close_matches(shown.lower(), list(by_lower), n=1, cutoff=0.7)
            described.append(f"{shown} (did you mean {by_lower[close[0]].name}?)" if close else shown)
        raise ProgrammingError(
            f"Unknown connection propert{'y' if len(unknown) == 1 else 'ies'} {'; '.join(described)}. "
            f"Known properties: {', '.join(names)}."
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
            # The value is never shown: it could be a key given in the wrong place.
            raise ProgrammingError(f"Bad value for the connection property {spec.name}: {exc}.") from None
    return Settings(values, specs)


def profile_name(value: str) -> str:
    """A Profile value as a profile name: ``/any/dir/CloudConvert.apip`` → ``cloudconvert``."""
    text = value.strip()
    base = text.replace("\\", "/").rsplit("/", 1)[-1]
    if base.lower().endswith(".apip"):
        base = base[: -len(".apip")]
    return base.lower()
