"""Small but real file contents for the files tasks produce.

A converted ``report.pdf`` downloads as a valid PDF, ``photo.png`` as a valid
PNG, ``bundle.zip`` as a readable ZIP, and so on. Contents are deterministic
functions of the file name, so seeded accounts need not store them.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zipfile
import zlib

_TEXT_EXTENSIONS = {"txt", "csv", "md", "html", "htm", "xml", "json", "rst", "tex", "svg", "rtf"}

# A 1x1 white baseline JPEG (the smallest widely accepted form).
_JPEG = bytes.fromhex(
    "ffd8ffe000104a46494600010100000100010000ffdb004300080606070605080707070909080a0c"
    "140d0c0b0b0c1912130f141d1a1f1e1d1a1c1c20242e2720222c231c1c2837292c30313434341f27"
    "393d38323c2e333432ffc0000b080001000101011100ffc4001f0000010501010101010100000000"
    "000000000102030405060708090a0bffc400b5100002010303020403050504040000017d01020300"
    "041105122131410613516107227114328191a1082342b1c11552d1f02433627282090a161718191a"
    "25262728292a3435363738393a434445464748494a535455565758595a636465666768696a737475"
    "767778797a838485868788898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9ba"
    "c2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8f9faffda"
    "0008010100003f00fbd3ffd9"
)
_GIF = bytes.fromhex(
    "47494638396101000100800000ffffff00000021f90401000000002c00000000010001000002024401003b"
)


def extension(filename: str) -> str:
    """The lower-case extension, counting ``tar.gz``-style double extensions."""
    name = filename.lower()
    for double in ("tar.gz", "tar.bz2", "tar.xz"):
        if name.endswith("." + double):
            return double
    return name.rsplit(".", 1)[1] if "." in name else ""


def stem(filename: str) -> str:
    ext = extension(filename)
    return filename[: -len(ext) - 1] if ext else filename


def _png(label: str) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00\xff\xff\xff")
    text = b"Comment\x00" + label.encode("utf-8", "replace")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"tEXt", text) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _pdf(label: str) -> bytes:
    text = label.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    stream = f"BT /F1 12 Tf 20 100 Td ({text}) Tj ET".encode("latin-1", "replace")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 144] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def zip_files(members: list[tuple[str, bytes]]) -> bytes:
    """A ZIP archive holding ``members`` (name, bytes), with fixed timestamps."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            archive.writestr(info, data)
    return out.getvalue()


def render(filename: str) -> bytes:
    """Deterministic, valid-looking bytes for ``filename`` (by its extension)."""
    ext = extension(filename)
    label = f"Produced by the apidriver CloudConvert emulator: {filename}"
    if ext == "png":
        return _png(label)
    if ext in ("jpg", "jpeg"):
        return _JPEG
    if ext == "gif":
        return _GIF
    if ext == "pdf":
        return _pdf(label)
    if ext == "zip":
        return zip_files([("README.txt", label.encode())])
    if ext == "svg":
        return (
            '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
            f"<title>{label}</title></svg>\n"
        ).encode()
    if ext == "json":
        return ('{"note": "%s"}\n' % label).encode()
    if ext in ("html", "htm"):
        return f"<!doctype html><html><body><p>{label}</p></body></html>\n".encode()
    if ext in _TEXT_EXTENSIONS:
        return (label + "\n").encode()
    digest = hashlib.sha256(filename.encode()).digest()
    return b"APIDRIVER-EMULATOR\n" + label.encode() + b"\n" + digest * 4


def media_type(filename: str) -> str:
    return {
        "png": "image/png",
        "jpg": "image/jpeg",
        "jpeg": "image/jpeg",
        "gif": "image/gif",
        "pdf": "application/pdf",
        "zip": "application/zip",
        "svg": "image/svg+xml",
        "json": "application/json",
        "html": "text/html",
        "txt": "text/plain",
        "csv": "text/csv",
    }.get(extension(filename), "application/octet-stream")
