"""The documents' commands: Python imports this module at start-up (it is on their PYTHONPATH), and
with ``APIDRIVER_DOCS_API_URL`` set, the API's default host is that emulator in their process too,
as it is in the test's (``harness.api_at``)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any


def point_at(url: str) -> Callable[[], None]:
    """Connections that name no ``BaseURL`` reach ``url`` (their API and its sync host); returns the
    function that puts the real hosts back."""
    from apidriver.profiles.cloudconvert import profile

    original, original_sync = profile.root_url, profile.extras["sync_root_url"]

    def root_url(settings: Any) -> str:
        return str(original(settings)) if settings.get("BaseURL") else url

    def sync_root_url(settings: Any) -> str:
        return str(original_sync(settings)) if settings.get("BaseURL") else url + "/sync"

    object.__setattr__(profile, "root_url", root_url)  # the profile is a frozen dataclass
    profile.extras["sync_root_url"] = sync_root_url  # type: ignore[index]

    def restore() -> None:
        object.__setattr__(profile, "root_url", original)
        profile.extras["sync_root_url"] = original_sync  # type: ignore[index]

    return restore


if os.environ.get("APIDRIVER_DOCS_API_URL"):
    point_at(os.environ["APIDRIVER_DOCS_API_URL"])
