"""The account's file contents: stored bytes by SHA-256, generated files, the upload form of an
``import/upload`` task and the signed download path of an ``export/url`` file."""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any
from urllib.parse import quote

from .files import render
from .models import FileRef


class Storage:
    """Uploaded and imported bytes (``("blob", sha256)``) and generated files (``("render", name)``)."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def file_bytes(self, ref: FileRef) -> bytes:
        kind, key = ref.content_key
        if kind == "blob":
            return self.blobs.get(key, b"")
        return render(key or ref.filename)

    def store_blob(self, data: bytes) -> str:
        key = hashlib.sha256(data).hexdigest()
        self.blobs[key] = data
        return key

    def file_from_bytes(self, filename: str, data: bytes, md5: bool = False) -> FileRef:
        return FileRef(
            filename=filename,
            size=len(data),
            md5=hashlib.md5(data).hexdigest() if md5 else None,
            content_key=("blob", self.store_blob(data)),
        )

    def rendered_file(self, filename: str, **kw: Any) -> FileRef:
        return FileRef(filename=filename, size=len(render(filename)), content_key=("render", filename), **kw)

    def sized(self, ref: FileRef) -> FileRef:
        """``ref`` with its ``size`` filled in from its bytes when it has none."""
        if ref.size is None:
            ref.size = len(self.file_bytes(ref))
        return ref


def upload_form(root_url: str, task_id: str, now: float) -> dict[str, Any]:
    """The S3-style form an ``import/upload`` task answers with, pointing at ``/_storage/upload``."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    return {
        "url": f"{root_url}/_storage/upload/{task_id}",
        "parameters": {
            "acl": "private",
            "key": f"{task_id}/${{filename}}",
            "success_action_status": "201",
            "X-Amz-Credential": f"cloudconvert-emulator/{stamp[:8]}/local/s3/aws4_request",
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-Date": stamp,
            "Policy": base64.b64encode(f'{{"task":"{task_id}"}}'.encode()).decode(),
            "X-Amz-Signature": hashlib.sha256(task_id.encode()).hexdigest(),
        },
    }


def export_url_path(task_id: str, filename: str, now: float) -> str:
    """The download path of an export/url file made at ``now``: valid 24 hours, like the API's."""
    expires = int(now) + 86400
    signature = hashlib.sha256(f"{task_id}/{filename}/{expires}".encode()).hexdigest()[:27]
    return f"/_storage/tasks/{task_id}/{quote(filename)}?Expires={expires}&Signature={signature}"
