"""The README's main command: start the emulator with sample data and use it."""

from __future__ import annotations

import httpx

from .emulator import Emulator


def main() -> None:
    with Emulator(jobs=200, seed=42, task_seconds=0.2) as emu:
        print(f"CloudConvert emulator serving at {emu.base_url} (API under /v2, key {emu.api_key!r})")
        with httpx.Client(base_url=emu.api_url, headers={"Authorization": f"Bearer {emu.api_key}"}) as api:
            user = api.get("/users/me").json()["data"]
            print(f"account {user['username']} has {user['credits']} credits")
            failed = api.get("/jobs", params={"filter[status]": "error", "per_page": 5}).json()["data"]
            print(f"{len(failed)} failed jobs on the first page:")
            for job in failed:
                print(f"  {job['id']}  tag={job['tag']}  created_at={job['created_at']}")
            job = api.post(
                "/jobs",
                json={
                    "tag": "demo",
                    "tasks": {
                        "import": {"operation": "import/url", "url": "https://example.com/report.docx"},
                        "convert": {"operation": "convert", "input": "import", "output_format": "pdf"},
                        "export": {"operation": "export/url", "input": "convert"},
                    },
                },
            ).json()["data"]
            done = httpx.get(f"{emu.base_url}/sync/v2/jobs/{job['id']}", headers=api.headers).json()["data"]
            export = next(t for t in done["tasks"] if t["operation"] == "export/url")
            url = export["result"]["files"][0]["url"]
            pdf = httpx.get(url).content
            print(f"created job {done['id']}: {done['status']}, produced {len(pdf)} bytes starting {pdf[:8]!r}")
        print(f"{len(emu.requests())} HTTP requests served")


if __name__ == "__main__":
    main()
