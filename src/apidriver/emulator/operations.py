"""Task operations: what each one requires and what it produces.

Validation follows the reference (required fields per operation). What a
finished task produces is the emulator's choice, documented per operation in
``produce``: file names follow the input names with the new extension, and
contents come from :mod:`.files`.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from .catalogue import Catalogue, default_engine_version
from .files import extension, stem
from .models import FileRef


@dataclass(frozen=True, slots=True)
class OperationSpec:
    name: str
    kind: str  # "import", "process" or "export"
    required: tuple[str, ...] = ()

    @property
    def has_engine(self) -> bool:
        return self.kind == "process"

    @property
    def needs_input(self) -> bool:
        return self.kind == "export" or (self.kind == "process" and self.name != "capture-website")


def _spec(name: str, kind: str, *required: str) -> OperationSpec:
    return OperationSpec(name, kind, tuple(required))


_S3 = ("bucket", "region", "access_key_id", "secret_access_key")
_AZURE = ("storage_account", "container")
_GCS = ("project_id", "bucket", "client_email", "private_key")
_OPENSTACK = ("auth_url", "username", "password", "region", "container")
_SFTP = ("host", "username")

OPERATIONS: dict[str, OperationSpec] = {
    s.name: s
    for s in [
        _spec("import/url", "import", "url"),
        _spec("import/upload", "import"),
        _spec("import/base64", "import", "file", "filename"),
        _spec("import/raw", "import", "file", "filename"),
        _spec("import/s3", "import", *_S3),
        _spec("import/azure/blob", "import", *_AZURE),
        _spec("import/google-cloud-storage", "import", *_GCS),
        _spec("import/openstack", "import", *_OPENSTACK),
        _spec("import/sftp", "import", *_SFTP),
        _spec("convert", "process", "input", "output_format"),
        _spec("optimize", "process", "input"),
        _spec("watermark", "process", "input"),
        _spec("capture-website", "process", "url", "output_format"),
        _spec("thumbnail", "process", "input", "output_format"),
        _spec("merge", "process", "input", "output_format"),
        _spec("archive", "process", "input", "output_format"),
        _spec("command", "process", "input", "engine", "command"),
        _spec("metadata", "process", "input"),
        _spec("metadata/write", "process", "input", "metadata"),
        _spec("export/url", "export", "input"),
        _spec("export/s3", "export", "input", *_S3),
        _spec("export/azure/blob", "export", "input", *_AZURE),
        _spec("export/google-cloud-storage", "export", "input", *_GCS),
        _spec("export/openstack", "export", "input", *_OPENSTACK),
        _spec("export/sftp", "export", "input", *_SFTP),
    ]
}


class TaskFailure(Exception):
    """Raised while producing results: the task ends in ``error``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def validate(operation: str, payload: dict[str, Any], prefix: str = "") -> dict[str, list[str]]:
    """Field errors for a task body, keyed as Laravel would (``tasks.x.url``)."""
    spec = OPERATIONS.get(operation)
    if spec is None:
        return {f"{prefix}operation": [f"The operation '{operation}' does not exist."]}
    errors: dict[str, list[str]] = {}
    for name in spec.required:
        value = payload.get(name)
        if value is None or value == "" or value == []:
            errors[f"{prefix}{name}"] = [f"The {name.replace('_', ' ')} field is required."]
    inp = payload.get("input")
    if inp is not None and not (isinstance(inp, str) or (isinstance(inp, list) and all(isinstance(i, str) for i in inp))):
        errors[f"{prefix}input"] = ["The input must be a task name, a task id or an array of them."]
    return errors


def import_filename(operation: str, payload: dict[str, Any]) -> str:
    """The file name an import produces."""
    if payload.get("filename"):
        return str(payload["filename"])
    if operation == "import/url":
        path = unquote(urlsplit(str(payload.get("url", ""))).path)
        return posixpath.basename(path) or "file"
    for key in ("key", "blob", "file", "path"):
        if payload.get(key):
            return posixpath.basename(str(payload[key])) or "file"
    return "file"


def _out(filename: str) -> FileRef:
    return FileRef(filename=filename, content_key=("render", filename))


def produce(
    operation: str, payload: dict[str, Any], inputs: list[FileRef], catalogue: Catalogue
) -> tuple[list[FileRef] | None, dict[str, Any] | None, int, str | None, str | None]:
    """Files, extra result keys, credits, engine and engine version of a processing task.

    Raises :class:`TaskFailure` when the conversion type is not supported.
    """
    engine: str | None = payload.get("engine")
    out_fmt = str(payload.get("output_format") or "").lower()
    if operation == "capture-website":
        host = urlsplit(str(payload.get("url", ""))).hostname or "website"
        name = payload.get("filename") or f"{host}.{out_fmt}"
        engine = engine or "chrome"
        return [_out(name)], None, 1, engine, payload.get("engine_version") or default_engine_version(engine)
    if not inputs:
        raise TaskFailure("INPUT_TASK_FAILED", "The input task did not produce any files")
    files: list[FileRef] = []
    extra: dict[str, Any] | None = None
    credits = 0
    for f in inputs:
        in_fmt = str(payload.get("input_format") or extension(f.filename)).lower()
        if operation == "convert":
            entry = catalogue.convert_entry(in_fmt, out_fmt)
            if entry is None:
                raise TaskFailure(
                    "INVALID_CONVERSION_TYPE",
                    f"This conversion type is not supported: {in_fmt} to {out_fmt}",
                )
        else:
            entry = catalogue.entry_for(operation, in_fmt)
        engine = engine or (entry.engine if entry else "imagemagick")
        credits += entry.credits if entry else 1
        if operation in ("convert", "thumbnail"):
            files.append(_out(f"{stem(f.filename)}.{out_fmt}"))
        elif operation in ("optimize", "watermark", "metadata/write", "command"):
            files.append(FileRef(filename=f.filename, size=f.size, content_key=f.content_key))
        elif operation == "metadata":
            extra = {"metadata": {"FileName": f.filename, "FileSize": f"{f.size or 0} bytes", "FileType": in_fmt.upper()}}
    if operation in ("merge", "archive"):
        credits = 1
        name = payload.get("filename") or f"{stem(inputs[0].filename)}.{out_fmt}"
        files = [_out(name)]
    if operation == "metadata":
        return None, extra, credits, engine, payload.get("engine_version") or default_engine_version(engine or "")
    return files, extra, credits, engine, payload.get("engine_version") or default_engine_version(engine or "")
