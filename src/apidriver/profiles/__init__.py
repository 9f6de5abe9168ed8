"""Finding profiles: built-in ones and any installed through the
``apidriver.profiles`` entry-point group (name → a :class:`Profile` object).
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points

from ..exceptions import ProgrammingError
from ..properties import profile_name, shown_name
from .base import Profile


@cache
def _installed() -> tuple[EntryPoint, ...]:
    """The ``apidriver.profiles`` entry points, read once per process: reading them scans every
    installed distribution's metadata (~4 ms, two thirds of what ``connect()`` cost)."""
    return tuple(entry_points(group="apidriver.profiles"))


def available() -> dict[str, str]:
    """Profile names (lower case) → entry-point targets."""
    found = {ep.name.lower(): ep.value for ep in _installed()}
    found.setdefault("cloudconvert", "apidriver.profiles.cloudconvert:profile")
    return found


def load(value: str) -> Profile:
    """The profile a ``Profile`` property names (a name or a ``.apip`` path)."""
    name = profile_name(value)
    for ep in _installed():
        if ep.name.lower() == name:
            loaded: object = ep.load()
            if not isinstance(loaded, Profile):
                raise ProgrammingError(f"The entry point for profile {ep.name!r} does not give a Profile object.")
            return loaded
    if name == "cloudconvert":
        from .cloudconvert import profile

        return profile
    known = ", ".join(sorted(available()))
    shown = shown_name(value) or shown_name(name)
    called = f" {shown!r}" if shown is not None else " (the Profile value is not shown: it does not look like a name)"
    raise ProgrammingError(f"Unknown profile{called}. Available profiles: {known}.")


def __getattr__(name: str) -> object:
    """The built-in profile's module on first use, so that ``apidriver.profiles.cloudconvert.X`` works
    after a plain ``import apidriver`` (which does not import it: ``connect()`` does, when needed)."""
    if name == "cloudconvert":
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Profile", "available", "load"]
