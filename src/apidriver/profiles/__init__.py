"""Finding profiles: built-in ones and any installed through the
``apidriver.profiles`` entry-point group (name → a :class:`Profile` object).
"""

from __future__ import annotations

from importlib.metadata import entry_points

from ..exceptions import ProgrammingError
from ..properties import profile_name
from .base import Profile


def available() -> dict[str, str]:
    """Profile names (lower case) → entry-point targets."""
    found = {ep.name.lower(): ep.value for ep in entry_points(group="apidriver.profiles")}
    found.setdefault("cloudconvert", "apidriver.profiles.cloudconvert:profile")
    return found


def load(value: str) -> Profile:
    """The profile a ``Profile`` property names (a name or a ``.apip`` path)."""
    name = profile_name(value)
    for ep in entry_points(group="apidriver.profiles"):
        if ep.name.lower() == name:
            loaded: object = ep.load()
            if not isinstance(loaded, Profile):
                raise ProgrammingError(f"The entry point for profile {value!r} does not give a Profile object.")
            return loaded
    if name == "cloudconvert":
        from .cloudconvert import profile

        return profile
    known = ", ".join(sorted(available()))
    raise ProgrammingError(f"Unknown profile {value!r}. Available profiles: {known}.")


__all__ = ["Profile", "available", "load"]
