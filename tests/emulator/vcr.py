"""A reader for the Ruby VCR cassettes in ``tests/fixtures``, without a YAML library.

VCR 6 writes a small, regular subset of YAML: ``http_interactions`` is a list
of ``request``/``response`` maps whose leaves are plain scalars, single-quoted
scalars (possibly folded over several lines), literal blocks (``|-``) and
``!binary |-`` base64 blocks; headers are maps of lists. This reader handles
exactly that subset and fails loudly on anything else, so a cassette it cannot
read is an error rather than a silently skipped fixture.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Message:
    """One side of an interaction."""

    headers: dict[str, list[str]] = field(default_factory=dict)
    body: bytes = b""


@dataclass
class Interaction:
    method: str
    uri: str
    request: Message
    status: int
    response: Message


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _plain(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1].replace("''", "'")
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return value


def _single_quoted(lines: list[str], i: int, first: str) -> tuple[str, int]:
    """Read a single-quoted scalar starting with ``first`` (after the quote); return (text, next line)."""
    pieces: list[str] = []
    current = first
    while True:
        # find a closing quote that is not an escaped ''
        j = 0
        closed = -1
        while j < len(current):
            if current[j] == "'":
                if j + 1 < len(current) and current[j + 1] == "'":
                    j += 2
                    continue
                closed = j
                break
            j += 1
        if closed >= 0:
            pieces.append(current[:closed])
            break
        pieces.append(current)
        i += 1
        if i >= len(lines):
            raise ValueError("unterminated single-quoted scalar")
        current = lines[i].strip()
    # YAML folding: a single line break becomes a space, each empty line a newline
    text = ""
    for n, piece in enumerate(pieces):
        if n == 0:
            text = piece.rstrip(" ") if len(pieces) > 1 else piece
        elif piece == "":
            text += "\n"
        else:
            sep = "" if text.endswith("\n") else " "
            text += sep + (piece.rstrip(" ") if n < len(pieces) - 1 else piece)
    return text.replace("''", "'"), i + 1


def _block(lines: list[str], i: int, parent_indent: int) -> tuple[list[str], int]:
    """Lines of a block scalar more indented than ``parent_indent``, from line ``i``."""
    out: list[str] = []
    while i < len(lines) and (lines[i].strip() == "" or _indent(lines[i]) > parent_indent):
        out.append(lines[i])
        i += 1
    while out and not out[-1].strip():
        out.pop()
    if not out:
        return [], i
    cut = min(_indent(line) for line in out if line.strip())
    return [line[cut:] for line in out], i


def _read_body(lines: list[str], i: int) -> tuple[bytes, int]:
    """Read ``body:`` (at line i) and return its bytes."""
    body_indent = _indent(lines[i])
    i += 1
    data = b""
    while i < len(lines) and _indent(lines[i]) > body_indent:
        line = lines[i]
        key, _, rest = line.strip().partition(":")
        rest = rest.strip()
        if key == "string":
            if rest.startswith("!binary"):
                block, i = _block(lines, i + 1, _indent(line))
                data = base64.b64decode("".join(b.strip() for b in block))
                continue
            if rest == "|-":
                block, i = _block(lines, i + 1, _indent(line))
                data = "\n".join(block).encode()
                continue
            if rest.startswith("'"):
                text, i = _single_quoted(lines, i, rest[1:])
                data = text.encode()
                continue
            raise ValueError(f"unsupported body scalar at line {i + 1}: {rest[:40]!r}")
        i += 1
    return data, i


def _read_headers(lines: list[str], i: int) -> tuple[dict[str, list[str]], int]:
    indent = _indent(lines[i])
    i += 1
    headers: dict[str, list[str]] = {}
    name = ""
    while i < len(lines) and _indent(lines[i]) > indent:
        stripped = lines[i].strip()
        if stripped.startswith("- "):
            headers.setdefault(name, []).append(_plain(stripped[2:]))
        else:
            name = stripped.rstrip(":")
            headers[name] = []
        i += 1
    return headers, i


def read_cassette(path: Path) -> list[Interaction]:
    """All interactions of a VCR cassette, in recorded order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0] != "---" or lines[1] != "http_interactions:":
        raise ValueError(f"{path} is not a VCR cassette")
    out: list[Interaction] = []
    i = 2
    while i < len(lines):
        if lines[i].startswith("recorded_with:"):
            break
        if lines[i] != "- request:":
            i += 1
            continue
        method = uri = ""
        status = 0
        request, response = Message(), Message()
        side = request
        i += 1
        while i < len(lines) and lines[i] != "- request:" and not lines[i].startswith("recorded_with:"):
            stripped = lines[i].strip()
            if stripped == "response:":
                side = response
            elif stripped.startswith("method:"):
                method = _plain(stripped[7:]).upper()
            elif stripped.startswith("uri:"):
                uri = _plain(stripped[4:])
            elif stripped.startswith("code:"):
                status = int(_plain(stripped[5:]))
            elif stripped == "headers:":
                side.headers, i = _read_headers(lines, i)
                continue
            elif stripped == "body:":
                side.body, i = _read_body(lines, i)
                continue
            i += 1
        out.append(Interaction(method, uri, request, status, response))
    return out
