"""The operations catalogue served at ``GET /v2/operations``.

The ``convert`` entries are a real 2025 response of the catalogue (2,045
input/output pairs with their default engine and credits, shipped in
``data/convert_formats.json``). The other operations (optimize, thumbnail,
merge, capture-website, archive, watermark, metadata, metadata/write,
command) are not in any recorded response; they are built here from the
operation descriptions in the SDKs, with plausible engines. Options and
engine versions are likewise emulator inventions: the real values were never
recorded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from typing import Any

ENGINE_VERSIONS: dict[str, list[str]] = {
    "archivetool": ["1.0"],
    "7z": ["22.01"],
    "bcl": ["5.0"],
    "cadconverter": ["1.0"],
    "calibre": ["6.29", "7.6"],
    "chrome": ["120", "126"],
    "ddjvu": ["3.5"],
    "exiftool": ["12.70"],
    "ffmpeg": ["5.1", "6.1", "7.1"],
    "fontforge": ["20230101"],
    "ghostscript": ["10.02"],
    "graphicsmagick": ["1.3.42"],
    "icnsutils": ["0.8"],
    "imagemagick": ["7.1.0", "7.1.1"],
    "inkscape": ["1.2", "1.3"],
    "iwork": ["1.0"],
    "libreoffice": ["7.4", "7.6", "24.2"],
    "mupdf": ["1.23"],
    "office": ["2016", "2019"],
    "pandoc": ["3.1"],
    "pdf2htmlex": ["0.18.8"],
    "pdftron-pdf2excel": ["10.8"],
    "pdftron-pdf2powerpoint": ["10.8"],
    "pdftron-pdf2word": ["10.8"],
    "poppler": ["23.08"],
    "pstoedit": ["4.0"],
    "qpdf": ["11.6"],
    "texlive": ["2023"],
    "woff2": ["1.0"],
}
EXPERIMENTAL_ENGINES = {"iwork", "pdf2htmlex"}

_OPTIONS: dict[str, list[dict[str, Any]]] = {
    "imagemagick": [
        {"name": "width", "type": "integer", "default": None},
        {"name": "height", "type": "integer", "default": None},
        {"name": "fit", "type": "enum", "default": "max", "possible_values": ["max", "crop", "scale", "upscale"]},
        {"name": "strip", "type": "boolean", "default": False},
        {"name": "quality", "type": "integer", "default": None},
        {"name": "auto_orient", "type": "boolean", "default": True},
    ],
    "ffmpeg": [
        {"name": "video_codec", "type": "enum", "default": "x264", "possible_values": ["copy", "x264", "x265", "vp9", "av1"]},
        {"name": "crf", "type": "integer", "default": 23},
        {"name": "audio_codec", "type": "enum", "default": "aac", "possible_values": ["copy", "aac", "mp3", "opus", "none"]},
        {"name": "audio_bitrate", "type": "integer", "default": 128},
        {"name": "width", "type": "integer", "default": None},
        {"name": "height", "type": "integer", "default": None},
        {"name": "fps", "type": "integer", "default": None},
    ],
    "office": [
        {"name": "pages", "type": "string", "default": None},
        {"name": "pdf_a", "type": "boolean", "default": False},
        {"name": "hidden_slides", "type": "boolean", "default": False},
    ],
    "libreoffice": [
        {"name": "pages", "type": "string", "default": None},
        {"name": "pdf_a", "type": "boolean", "default": False},
    ],
    "calibre": [
        {"name": "base_font_size", "type": "integer", "default": None},
        {"name": "embed_fonts", "type": "boolean", "default": False},
    ],
    "chrome": [
        {"name": "page_width", "type": "float", "default": None},
        {"name": "page_height", "type": "float", "default": None},
        {"name": "print_background", "type": "boolean", "default": True},
        {"name": "wait_time", "type": "integer", "default": 0},
    ],
    "mupdf": [
        {"name": "pages", "type": "string", "default": None},
        {"name": "pixel_density", "type": "integer", "default": 300},
    ],
    "exiftool": [],
}

# Operations other than convert: (operation, input formats, output formats or
# None for "same as input", engine chooser by input format).
_IMAGES = ["jpg", "png", "gif", "webp", "tiff", "bmp", "heic", "psd"]
_VIDEOS = ["mp4", "mov", "avi", "mkv", "webm"]
_AUDIO = ["mp3", "wav", "flac", "m4a", "ogg"]
_DOCS = ["pdf", "docx", "doc", "pptx", "xlsx", "odt"]


def _image_engine(fmt: str) -> str:
    if fmt in _VIDEOS:
        return "ffmpeg"
    if fmt == "pdf":
        return "mupdf"
    if fmt in ("docx", "doc", "pptx", "xlsx"):
        return "office"
    if fmt == "odt":
        return "libreoffice"
    return "imagemagick"


@dataclass(frozen=True, slots=True)
class Entry:
    operation: str
    input_format: str | None
    output_format: str | None
    engine: str
    credits: int
    extra: tuple[tuple[str, Any], ...] = ()

    def to_dict(self, include: frozenset[str]) -> dict[str, Any]:
        d: dict[str, Any] = {
            "operation": self.operation,
            "input_format": self.input_format,
            "output_format": self.output_format,
            "engine": self.engine,
            "credits": self.credits,
        }
        d.update(self.extra)
        if "options" in include:
            d["options"] = [dict(o) for o in _OPTIONS.get(self.engine, [])]
        if "engine_versions" in include:
            d["engine_versions"] = engine_versions(self.engine)
        return d


def engine_versions(engine: str) -> list[dict[str, Any]]:
    versions = ENGINE_VERSIONS.get(engine, ["1.0"])
    experimental = engine in EXPERIMENTAL_ENGINES
    return [
        {
            "version": v,
            "default": i == len(versions) - 1,
            "latest": i == len(versions) - 1,
            "deprecated": i < len(versions) - 2,
            "experimental": experimental,
        }
        for i, v in enumerate(versions)
    ]


def default_engine_version(engine: str) -> str:
    return ENGINE_VERSIONS.get(engine, ["1.0"])[-1]


class Catalogue:
    """All operation entries, with the lookups the task lifecycle needs."""

    @cached_property
    def convert_entries(self) -> list[Entry]:
        raw = json.loads(resources.files(__package__).joinpath("data/convert_formats.json").read_text())
        out = []
        for item in raw["data"]:
            extra = tuple((k, v) for k, v in item.items() if k not in Entry.__slots__)
            out.append(
                Entry(item["operation"], item["input_format"], item["output_format"], item["engine"], item["credits"], extra)
            )
        return out

    @cached_property
    def groups(self) -> dict[str, str]:
        """Format → family ('image', 'document', ...), from the real catalogue."""
        groups: dict[str, str] = {}
        for e in self.convert_entries:
            meta = dict(e.extra).get("meta") or {}
            if e.output_format and "group" in meta:
                groups.setdefault(e.output_format, meta["group"])
        return groups

    def _meta(self, fmt: str | None) -> tuple[tuple[str, Any], ...]:
        return (("meta", {"group": self.groups.get(fmt or "", "other")}),)

    @cached_property
    def other_entries(self) -> list[Entry]:
        out: list[Entry] = []
        add = out.append
        for fmt in ["pdf", "png", "jpg"]:
            add(Entry("optimize", fmt, fmt, "ghostscript" if fmt == "pdf" else "imagemagick", 1, self._meta(fmt)))
        for fmt in _IMAGES + _VIDEOS + _DOCS:
            for out_fmt in ["png", "jpg", "webp"]:
                add(Entry("thumbnail", fmt, out_fmt, _image_engine(fmt), 1, self._meta(out_fmt)))
        for out_fmt in ["pdf", "png", "jpg"]:
            add(Entry("capture-website", "website", out_fmt, "chrome", 1, self._meta(out_fmt)))
        for fmt in ["pdf", "jpg", "png", "docx", "pptx", "xlsx", "odt", "html", "txt"]:
            engine = "qpdf" if fmt == "pdf" else _image_engine(fmt) if fmt in _IMAGES + _DOCS else "libreoffice"
            add(Entry("merge", fmt, "pdf", engine, 1, self._meta("pdf")))
        for out_fmt in ["zip", "rar", "7z", "tar", "tar.gz", "tar.bz2"]:
            add(Entry("archive", "any", out_fmt, "archivetool", 1, self._meta(out_fmt)))
        for fmt in ["pdf", "jpg", "png", "mp4", "mov", "docx"]:
            add(Entry("watermark", fmt, fmt, "ffmpeg" if fmt in _VIDEOS else "imagemagick" if fmt in _IMAGES else "mupdf", 1, self._meta(fmt)))
        for fmt in _IMAGES + _VIDEOS + _AUDIO + _DOCS:
            add(Entry("metadata", fmt, None, "exiftool", 1, self._meta(fmt)))
            add(Entry("metadata/write", fmt, fmt, "exiftool", 1, self._meta(fmt)))
        for engine in ["ffmpeg", "imagemagick", "graphicsmagick"]:
            add(Entry("command", None, None, engine, 1, ()))
        return out

    @cached_property
    def alternative_entries(self) -> list[Entry]:
        """Non-default engines for pairs that have them (``alternatives=true``)."""
        raster = {"jpg", "png", "gif", "bmp", "tiff", "webp"}
        out = []
        for e in self.convert_entries:
            if e.engine == "office" and e.output_format in {"pdf", "docx", "odt", "html", "txt"}:
                out.append(Entry("convert", e.input_format, e.output_format, "libreoffice", 1, self._meta(e.output_format)))
            elif e.engine == "imagemagick" and e.input_format in raster and e.output_format in raster:
                out.append(Entry("convert", e.input_format, e.output_format, "graphicsmagick", 1, self._meta(e.output_format)))
            elif e.engine.startswith("pdftron-"):
                out.append(Entry("convert", e.input_format, e.output_format, "libreoffice", 1, self._meta(e.output_format)))
        return out

    @cached_property
    def _convert_index(self) -> dict[tuple[str, str], Entry]:
        return {(e.input_format or "", e.output_format or ""): e for e in self.convert_entries}

    @cached_property
    def _other_index(self) -> dict[tuple[str, str], Entry]:
        return {(e.operation, e.input_format or ""): e for e in self.other_entries}

    def convert_entry(self, input_format: str, output_format: str) -> Entry | None:
        return self._convert_index.get((input_format.lower(), output_format.lower()))

    def entry_for(self, operation: str, input_format: str) -> Entry | None:
        return self._other_index.get((operation, input_format.lower()))

    def query(self, filters: dict[str, str], alternatives: bool) -> list[Entry]:
        entries = self.convert_entries + self.other_entries
        if alternatives:
            entries = entries + self.alternative_entries
        result = []
        version = filters.get("engine_version")
        for e in entries:
            if any(
                filters.get(key) not in (None, getattr(e, key))
                for key in ("operation", "input_format", "output_format", "engine")
            ):
                continue
            if version is not None and version not in ENGINE_VERSIONS.get(e.engine, ["1.0"]):
                continue
            result.append(e)
        return result
