"""The storage host's routes (``/_storage``): the multipart POST an ``import/upload`` form points at,
answered with the recorded S3 ``PostResponse`` XML, and the signed downloads of ``export/url``
files (no key; 403 once ``Expires`` has passed on the emulator's clock). Errors are S3-style XML."""

from __future__ import annotations

from urllib.parse import quote
from xml.sax.saxutils import escape as xml_escape

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .emulation import Emulation
from .errors import ApiError
from .files import media_type


def _xml_error(status: int, code: str, message: str) -> Response:
    """An S3-style error answer of the storage host."""
    body = f"<Error><Code>{xml_escape(code)}</Code><Message>{xml_escape(message)}</Message></Error>"
    return Response(body, status, media_type="application/xml")


def _attachment(filename: str) -> str:
    """``Content-Disposition`` for a download; RFC 6266 ``filename*`` when the name is not plain ASCII."""
    if filename.isascii() and '"' not in filename and "\\" not in filename:
        return f'attachment; filename="{filename}"'
    fallback = "".join(c if c.isascii() and c not in '"\\' else "_" for c in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _expired(request: Request, now: float) -> bool:
    """Whether a signed download URL's ``Expires`` (epoch seconds) has passed on the emulator's clock."""
    try:
        return int(request.query_params.get("Expires", "")) < now
    except ValueError:
        return False


def storage_routes(emu: Emulation) -> list[Route]:
    b = emu.backend

    async def storage_upload(request: Request) -> Response:
        task_id = request.path_params["task_id"]
        async with request.form(max_part_size=1 << 30) as form:
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                return _xml_error(400, "InvalidArgument", "file field missing")
            data = await upload.read()
            filename = upload.filename or "file"
        try:
            b.upload(task_id, filename, data)
        except ApiError as error:
            return _xml_error(error.status, error.code, error.message)
        emu.dispatcher.drain()
        key = f"{task_id}/{filename}"
        # element order and the &#34;-quoted ETag as in the recorded storage answers
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<PostResponse>'
            f"<Bucket>tasks</Bucket><Key>{xml_escape(key)}</Key>"
            f"<ETag>&#34;{b.task(task_id).files[0].md5}&#34;</ETag>"  # type: ignore[union-attr,index]
            f"<Location>{xml_escape(b.root_url + '/_storage/tasks/' + quote(key))}</Location></PostResponse>"
        )
        return Response(body, 201, media_type="application/xml")

    async def storage_download(request: Request) -> Response:
        task = b.task(request.path_params["task_id"])
        filename = request.path_params["filename"]  # already percent-decoded by the server
        for ref in (task.files or []) if task is not None else []:
            if ref.filename == filename and ref.url_path is not None:
                if _expired(request, b.now()):
                    return _xml_error(403, "AccessDenied", "Request has expired")
                return Response(
                    b.storage.file_bytes(ref),
                    media_type=media_type(filename),
                    headers={"Content-Disposition": _attachment(filename)},
                )
        return _xml_error(404, "NoSuchKey", "The specified key does not exist.")

    return [
        Route("/_storage/upload/{task_id}", storage_upload, methods=["POST"]),
        Route("/_storage/tasks/{task_id}/{filename:path}", storage_download, methods=["GET"]),
    ]
