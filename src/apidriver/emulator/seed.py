"""Deterministic sample data: realistic jobs, standalone tasks and webhooks.

The same ``seed`` always gives the same ids, tags, operations, file names and
outcomes; timestamps are spread over the day before ``now`` so that queries
like "jobs of the last hour" find something. Mix: about 80 % finished jobs,
15 % failed (a failing import or conversion, its dependants failing with
``INPUT_TASK_FAILED``), 5 % waiting for an upload that never came.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

from .backend import Backend
from .catalogue import default_engine_version
from .files import stem
from .lifecycle import HOST_NAMES
from .models import FileRef, Job, Task, Webhook
from .storage import export_url_path, upload_form

TAGS = ["invoices", "thumbnails", "reports", "avatars", "podcasts", "ebooks", "marketing", None, None, None]
STEMS = ["invoice", "report", "photo", "scan", "slides", "contract", "podcast", "avatar", "brochure", "notes"]
CONVERSIONS = [
    ("docx", "pdf"), ("pdf", "png"), ("jpg", "png"), ("png", "webp"), ("mp4", "mp3"), ("mov", "mp4"),
    ("html", "pdf"), ("xlsx", "pdf"), ("pptx", "pdf"), ("heic", "jpg"), ("md", "pdf"), ("wav", "mp3"),
    ("epub", "pdf"), ("svg", "png"), ("pdf", "docx"), ("odt", "pdf"), ("png", "jpg"), ("flac", "mp3"),
]
# (template, weight): which chain of operations a seeded job runs.
TEMPLATES = [("convert", 50), ("upload", 15), ("thumbnail", 8), ("optimize", 7), ("merge", 5), ("capture", 5), ("archive", 5), ("metadata", 5)]
CONVERSION_ERRORS = [
    ("CONVERSION_FAILED", "The conversion failed: the input file seems to be corrupt"),
    ("FILE_TOO_LARGE", "The input file exceeds the maximum file size of your plan"),
]


SEEDED_HOURS = 23  # how far back seeded jobs were created


class Seeder:
    def __init__(self, backend: Backend, seed: int, now: float) -> None:
        self.b = backend
        self.rng = random.Random(seed)
        self.now = now
        self.pairs = [p for p in CONVERSIONS if backend.catalogue.convert_entry(*p) is not None]

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def run(self, jobs: int) -> None:
        # Within the last 23 hours: with 24-hour retention, nothing seeded expires in an
        # emulator's first hour unless its clock is moved on (POST /_emulator/clock).
        times = sorted(self.now - self.rng.uniform(120, SEEDED_HOURS * 3600) for _ in range(jobs))
        names = [t for t, _ in TEMPLATES]
        weights = [w for _, w in TEMPLATES]
        for created in times:
            template = self.rng.choices(names, weights)[0]
            roll = self.rng.random()
            outcome = "finished" if roll < 0.80 else "error" if roll < 0.95 else "waiting"
            if outcome == "waiting":
                template = "upload"
            self.job(template, outcome, int(created))
        for created in sorted(self.now - self.rng.uniform(120, SEEDED_HOURS * 3600) for _ in range(max(1, jobs // 20))):
            self.standalone(int(created))
        # Lists come in creation order (newest first), standalone tasks among the jobs' tasks.
        self.b.task_order.sort(key=lambda t: t.created_at)
        self.webhooks()

    # -- building blocks -------------------------------------------------------------

    def task(self, job: Job | None, name: str | None, operation: str, payload: dict[str, Any], created: int) -> Task:
        has_engine = not operation.startswith(("import/", "export/"))
        t = Task(
            id=self.uuid(),
            operation=operation,
            payload={"operation": operation, **payload},
            created_at=created,
            user_id=self.b.user.id,
            seq=self.b.next_seq(),
            job_id=job.id if job else None,
            name=name,
            has_engine=has_engine,
            storage="ceph-fra" if operation.startswith("export/") else None,
        )
        return t

    def run_task(self, t: Task, start: float, seconds: float, files: list[FileRef] | None, credits: int, engine: str | None = None) -> float:
        t.status = "finished"
        t.started_at = start
        t.ended_at = start + seconds
        t.files = files
        t.credits = credits
        t.host_name = self.rng.choice(HOST_NAMES)
        if t.has_engine:
            t.engine = engine
            t.engine_version = default_engine_version(engine or "")
        return t.ended_at

    def fail_task(self, t: Task, start: float | None, end: float, code: str, message: str) -> None:
        t.status = "error"
        t.started_at = start
        t.ended_at = end
        t.code = code
        t.message = message
        if start is not None:
            t.host_name = self.rng.choice(HOST_NAMES)

    def file(self, filename: str) -> FileRef:
        return self.b.storage.rendered_file(filename)

    # -- jobs ------------------------------------------------------------------------

    def job(self, template: str, outcome: str, created: int) -> None:
        job = Job(id=self.uuid(), tag=self.rng.choice(TAGS), created_at=created, seq=self.b.next_seq())
        in_fmt, out_fmt = self.rng.choice(self.pairs)
        base = f"{self.rng.choice(STEMS)}-{self.rng.randrange(1, 10000)}"
        chain: list[tuple[str, str, dict[str, Any]]] = []  # (name, operation, payload)
        imports: list[str] = []
        if template == "capture":
            out_fmt = self.rng.choice(["pdf", "png"])
            chain.append(("capture", "capture-website", {"url": f"https://www.example.com/{base}", "output_format": out_fmt}))
        else:
            count = 2 if template in ("merge", "archive") else 1
            for i in range(count):
                name = f"import-{i + 1}"
                imports.append(name)
                fmt = "pdf" if template == "merge" else in_fmt
                if template == "upload":
                    chain.append((name, "import/upload", {}))
                else:
                    chain.append((name, "import/url", {"url": f"https://files.example.com/{base}-{i + 1}.{fmt}"}))
            steps: dict[str, tuple[str, str, dict[str, Any]]] = {
                "convert": ("convert", "convert", {"input": imports[0], "output_format": out_fmt}),
                "upload": ("convert", "convert", {"input": imports[0], "output_format": out_fmt}),
                "thumbnail": ("thumbnail", "thumbnail", {"input": imports[0], "output_format": "png", "width": 200}),
                "optimize": ("optimize", "optimize", {"input": imports[0], "profile": "web"}),
                "merge": ("merge", "merge", {"input": imports, "output_format": "pdf"}),
                "archive": ("archive", "archive", {"input": imports, "output_format": "zip"}),
                "metadata": ("metadata", "metadata", {"input": imports[0]}),
            }
            chain.append(steps[template])
        if template != "metadata":
            last = chain[-1][0]
            if template == "optimize":
                chain.append(("export", "export/s3", {"input": last, "bucket": "exports", "region": "eu-central-1", "access_key_id": "AKIA...", "secret_access_key": "***"}))
            else:
                chain.append(("export", "export/url", {"input": last}))
        tasks = {name: self.task(job, name, op, payload, created) for name, op, payload in chain}
        for name, _, payload in chain:
            refs = payload.get("input")
            refs = [refs] if isinstance(refs, str) else refs or []
            tasks[name].depends_on_task_ids = [tasks[r].id for r in refs]
        self.play(job, chain, tasks, outcome, created, base, in_fmt, out_fmt)
        self.b.add_job(job)
        for t in tasks.values():
            job.task_ids.append(t.id)
            self.b.register_task(t)
        self.b.update_job(job, emit=False)

    def play(self, job: Job, chain: list[tuple[str, str, dict[str, Any]]], tasks: dict[str, Task], outcome: str, created: int, base: str, in_fmt: str, out_fmt: str) -> None:
        """Give each task of a seeded job its final state."""
        fail_at = None
        if outcome == "error":
            fail_at = self.rng.choice([name for name, op, _ in chain if not op.startswith("export/")])
        clock = float(created + self.rng.randint(0, 2))
        done: dict[str, list[FileRef]] = {}
        failed: set[str] = set()
        for name, op, payload in chain:
            t = tasks[name]
            refs = payload.get("input")
            refs = [refs] if isinstance(refs, str) else refs or []
            if any(r in failed for r in refs):
                self.fail_task(t, None, clock, "INPUT_TASK_FAILED", "Input task has failed")
                failed.add(name)
                continue
            if outcome == "waiting" and op == "import/upload":
                t.held = True
                t.message = "Waiting for file upload"
                t.form = upload_form(self.b.root_url, t.id, self.b.now())
                continue
            if outcome == "waiting":
                continue
            seconds = self.rng.uniform(1, 4) if op.startswith(("import/", "export/")) else self.rng.uniform(2, 40)
            if name == fail_at:
                if op.startswith("import/"):
                    code, message = "DOWNLOAD_FAILED", "Could not download the file: the server answered 404"
                else:
                    code, message = self.rng.choice(CONVERSION_ERRORS)
                self.fail_task(t, clock, clock + seconds, code, message)
                clock += seconds
                failed.add(name)
                continue
            inputs = [f for r in refs for f in done.get(r, [])]
            files, credits, engine = self.outputs(op, payload, inputs, base, in_fmt, out_fmt, t)
            clock = self.run_task(t, clock, seconds, files, credits, engine)
            done[name] = files or []

    def outputs(self, op: str, payload: dict[str, Any], inputs: list[FileRef], base: str, in_fmt: str, out_fmt: str, t: Task) -> tuple[list[FileRef] | None, int, str | None]:
        cat = self.b.catalogue
        if op == "import/url":
            return [self.file(payload["url"].rsplit("/", 1)[1])], 0, None
        if op == "import/upload":
            f = self.file(f"{base}.{in_fmt}")
            f.md5 = self.uuid().replace("-", "")
            return [f], 0, None
        if op == "export/url":
            return [FileRef(f.filename, f.size, content_key=f.content_key, url_path=export_url_path(t.id, f.filename, self.now)) for f in inputs], 0, None
        if op.startswith("export/"):
            return [FileRef(f.filename, f.size, dir="exports/", content_key=f.content_key) for f in inputs], 0, None
        if op == "convert":
            entry = cat.convert_entry(in_fmt, out_fmt)
            assert entry is not None
            return [self.file(f"{stem(f.filename)}.{out_fmt}") for f in inputs], entry.credits * len(inputs), entry.engine
        if op == "capture-website":
            return [self.file(f"www.example.com.{payload['output_format']}")], 1, "chrome"
        if op == "thumbnail":
            e = cat.entry_for("thumbnail", in_fmt)
            return [self.file(f"{stem(f.filename)}.png") for f in inputs], 1, e.engine if e else "imagemagick"
        if op == "optimize":
            return [FileRef(f.filename, f.size, content_key=f.content_key) for f in inputs], 1, "imagemagick" if in_fmt != "pdf" else "ghostscript"
        if op in ("merge", "archive"):
            return [self.file(f"{stem(inputs[0].filename)}.{payload['output_format']}")], 1, "qpdf" if op == "merge" else "archivetool"
        if op == "metadata":
            f = inputs[0]
            t.extra_result = {"metadata": {"FileName": f.filename, "FileSize": f"{f.size} bytes", "FileType": in_fmt.upper()}}
            return None, 1, "exiftool"
        return [], 1, None

    def standalone(self, created: int) -> None:
        in_fmt, out_fmt = self.rng.choice(self.pairs)
        name = f"{self.rng.choice(STEMS)}-{self.rng.randrange(1, 10000)}.{in_fmt}"
        imp = self.task(None, None, "import/url", {"url": f"https://files.example.com/{name}"}, created)
        conv = self.task(None, None, "convert", {"input": imp.id, "output_format": out_fmt}, created)
        conv.depends_on_task_ids = [imp.id]
        end = self.run_task(imp, created + 1, 2, [self.file(name)], 0)
        entry = self.b.catalogue.convert_entry(in_fmt, out_fmt)
        assert entry is not None
        self.run_task(conv, end, self.rng.uniform(2, 20), [self.file(f"{stem(name)}.{out_fmt}")], entry.credits, entry.engine)
        self.b.register_task(imp)
        self.b.register_task(conv)

    def webhooks(self) -> None:
        specs = [
            ("https://hooks.example.invalid/cloudconvert", ["job.created", "job.finished", "job.failed"], False),
            ("https://alerts.example.invalid/failed-jobs", ["job.failed"], False),
            ("https://old.example.invalid/hook", ["job.finished"], True),
        ]
        for url, events, disabled in specs:
            webhook_id = self.b.next_webhook_id()
            created = self.now - self.rng.uniform(86400, 30 * 86400)
            hook = Webhook(
                id=webhook_id,
                url=url,
                events=events,
                signing_secret="".join(self.rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") for _ in range(32)),
                created_at=int(created),
                updated_at=int(created),
                disabled=disabled,
            )
            self.b.webhooks[hook.id] = hook


def seed(backend: Backend, jobs: int, seed: int, now: float) -> None:
    """Fill ``backend`` with ``jobs`` seeded jobs (plus standalone tasks and webhooks)."""
    Seeder(backend, seed, now).run(jobs)
