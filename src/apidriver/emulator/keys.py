"""API keys: the scopes a key may carry, the default key with all of them, and the
``KEY=scope,scope`` form that gives a key only some (``--scoped-key``)."""

from __future__ import annotations

SCOPES = ("user.read", "user.write", "task.read", "task.write", "webhook.read", "webhook.write", "preset.read", "preset.write")
DEFAULT_API_KEY = "emulator-key"


def scoped_key(value: str) -> tuple[str, list[str]]:
    """``KEY=scope,scope`` as the key and its scopes; ValueError says what is wrong."""
    key, sep, scopes = value.partition("=")
    if not sep or not key:
        raise ValueError("use KEY=scope,scope (e.g. readonly=task.read,user.read)")
    names = [s.strip() for s in scopes.split(",") if s.strip()]
    unknown = [s for s in names if s not in SCOPES]
    if unknown:
        raise ValueError(f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(SCOPES)}")
    return key, names
