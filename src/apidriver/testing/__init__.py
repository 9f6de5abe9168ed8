"""Testing your own CloudConvert code offline, against the emulator: what apidriver's pytest plugin hands out.

The plugin (module ``pytest_apidriver``, registered as ``apidriver`` through
the ``pytest11`` entry point; fixtures in ``docs/testing.md``) is a thin layer
over the real :class:`~apidriver.emulator.Emulator`, a CloudConvert API v2 on
a local port: one per test session, reset before each test. This module holds
what its fixtures build on, usable without pytest too:

- :func:`start_emulator`: the emulator a session shares (tasks take 0.05 s);
- :class:`Jobs`: puts chosen jobs (finished, failed, waiting for an upload, or
  any tasks) in the account through the emulator's own API;
- :func:`sqlalchemy_url` and :func:`sdk_settings`: how apidriver and the
  official ``cloudconvert`` SDK reach an emulator.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from ..emulator import Emulator

__all__ = ["TASK_SECONDS", "Jobs", "conversion", "sdk_settings", "sqlalchemy_url", "start_emulator"]

TASK_SECONDS = 0.05
"""How long each task of the shared emulator processes (the real API takes seconds)."""

ENDED = ("finished", "error")


def start_emulator(**options: Any) -> Emulator:
    """A started emulator for a test session: quick tasks and webhook retries, the API's rate limit."""
    options.setdefault("task_seconds", TASK_SECONDS)
    options.setdefault("webhook_retry_delay", 0.02)
    return Emulator(**options).start()


def sqlalchemy_url(emulator: Emulator, *, asynchronous: bool = False) -> str:
    """``cloudconvert://:KEY@?BaseURL=...`` (``cloudconvert+async://`` for ``create_async_engine``)."""
    scheme = "cloudconvert+async" if asynchronous else "cloudconvert"
    return f"{scheme}://:{quote(emulator.api_key, safe='')}@?BaseURL={quote(emulator.base_url, safe='')}"


def sdk_settings(emulator: Emulator) -> dict[str, Any]:
    """The official Python SDK's settings for ``emulator``: ``cloudconvert.configure(**sdk_settings(emu))``."""
    return {"api_key": emulator.api_key, "sandbox": False, "endpoint": emulator.base_url, "sync_endpoint": emulator.base_url + "/sync"}


def conversion(url: str, output_format: str = "pdf") -> dict[str, dict[str, Any]]:
    """Task specs of a job that imports ``url``, converts it to ``output_format`` and exports a download URL."""
    return {
        "import": {"operation": "import/url", "url": url},
        "convert": {"operation": "convert", "input": "import", "output_format": output_format},
        "export": {"operation": "export/url", "input": "convert"},
    }


class Jobs:
    """Chosen jobs in the emulated account, made through its API (``POST /v2/jobs``) as your code will find them.

    >>> jobs = Jobs(emulator)
    >>> jobs.finished("invoice.docx", tag="invoices")["status"]
    'finished'

    The emulator decides how each ends, as it does for any client: an import
    from a host under ``.invalid`` fails (``DOWNLOAD_FAILED``, and the tasks
    after it ``INPUT_TASK_FAILED``), an ``import/upload`` waits for its file.
    Settling a job moves the emulator's clock forward (a fraction of a second
    per task) rather than waiting.
    """

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self._http: httpx.Client | None = None

    def _client(self) -> httpx.Client:
        """One HTTP client for all the calls (a new one costs tens of milliseconds)."""
        if self._http is None:
            self._http = httpx.Client(
                base_url=self.emulator.base_url, headers={"Authorization": f"Bearer {self.emulator.api_key}"}, timeout=30
            )
        return self._http

    def close(self) -> None:
        """Close the HTTP client (the fixture does, after the test)."""
        if self._http is not None:
            self._http.close()
            self._http = None

    def create(self, tasks: Mapping[str, Mapping[str, Any]] | None = None, *, tag: str | None = None, **fields: Any) -> dict[str, Any]:
        """A new job, as the API answered its creation (every task ``waiting``).

        ``tasks`` maps task names to their specs, as the API takes them;
        the default imports a URL, converts it to PDF and exports it.
        ``fields`` are further job fields (``webhook_url``, ...).
        """
        body: dict[str, Any] = {"tasks": dict(tasks or conversion("https://files.example.com/report.docx")), **fields}
        if tag is not None:
            body["tag"] = tag
        response = self._client().post("/v2/jobs", json=body)
        if response.status_code != 201:
            raise ValueError(f"The emulator refused the job ({response.status_code}): {response.text}")
        job: dict[str, Any] = response.json()["data"]
        return job

    def finished(self, filename: str = "report.docx", output_format: str = "pdf", *, tag: str | None = None) -> dict[str, Any]:
        """A job that imported ``filename`` from a URL, converted and exported it: ``finished``."""
        return self.settle(self.create(conversion(f"https://files.example.com/{filename}", output_format), tag=tag))

    def failed(self, filename: str = "report.docx", output_format: str = "pdf", *, tag: str | None = None) -> dict[str, Any]:
        """A job whose import failed (``DOWNLOAD_FAILED``), so the whole job did: ``error``."""
        return self.settle(self.create(conversion(f"https://files.invalid/{filename}", output_format), tag=tag))

    def waiting(self, filename: str = "report.docx", output_format: str = "pdf", *, tag: str | None = None) -> dict[str, Any]:
        """A job waiting for an upload that never comes (``import/upload``): ``waiting`` for ever."""
        tasks = conversion("", output_format)
        tasks["import"] = {"operation": "import/upload", "filename": filename}
        return self.create(tasks, tag=tag)

    def get(self, job_id: str) -> dict[str, Any]:
        """The job as the API shows it now, with its tasks."""
        response = self._client().get(f"/v2/jobs/{job_id}")
        response.raise_for_status()
        job: dict[str, Any] = response.json()["data"]
        return job

    def settle(self, job: Mapping[str, Any]) -> dict[str, Any]:
        """Move the emulator's clock on until ``job`` has ended (or waits for an upload); its state then."""
        step = self.emulator.backend.task_seconds * max(1, len(job.get("tasks") or ()))
        current = self.get(str(job["id"]))
        for _ in range(20):
            if current["status"] in ENDED or _waits_for_upload(current):
                return current
            self._client().post("/_emulator/clock", json={"advance": step}).raise_for_status()
            current = self.get(str(job["id"]))
        raise RuntimeError(f"Job {job['id']} did not end: {current['status']}")


def _waits_for_upload(job: Mapping[str, Any]) -> bool:
    return any(t["operation"] == "import/upload" and t["status"] == "waiting" for t in job.get("tasks") or ())
