"""Receive one uploaded file from a multipart body, streamed into the import temp directory.

Routes call this after their authentication dependencies ran (FastAPI would otherwise parse a
declared form before any dependency); the body limit itself is the ASGI middleware's
(quarters.api.limits), this only caps the file part and keeps it out of ``/tmp``.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from fastapi import Request
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from quarters.errors import BadRequest, ImportRefused, PayloadTooLarge, UnsupportedMediaType
from quarters.importtmp import process_tmp, remove_quietly

MAX_NAME = 200


@dataclass
class Uploaded:
    """The file as stored (``path``, a temp file) and its name as the user gave it."""

    name: str
    path: Path
    size: int


def upload_body_schema(field: str = "file") -> dict:
    """OpenAPI requestBody of a route that reads one file itself (for openapi_extra)."""
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": [field],
        "properties": {field: {"type": "string", "format": "binary"}}}}}}}


async def receive_file(request: Request, tmp: Path, max_bytes: int, suffixes: tuple[str, ...],
                       field: str = "file") -> Uploaded:
    """Stream the form field ``field`` into a temp file under ``tmp``; refuse other types."""
    kind, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise UnsupportedMediaType(code="upload.not_multipart", params={"field": field})
    state = _Parts(process_tmp(tmp), max_bytes, suffixes, field)
    parser = MultipartParser(boundary, state.callbacks())
    try:
        async for chunk in request.stream():
            if chunk:
                parser.write(chunk)
        parser.finalize()
    except FormParserError:
        state.discard()
        raise BadRequest(code="upload.malformed") from None
    except BaseException:
        state.discard()
        raise
    finally:
        state.close()
    if state.result is None:
        state.discard()
        raise BadRequest(code="upload.no_file", params={"field": field})
    return state.result


class _Parts:
    """Callbacks of the multipart parser: keep the one file part, skip the rest."""

    def __init__(self, folder: Path, max_bytes: int, suffixes: tuple[str, ...], field: str):
        self.folder, self.max_bytes, self.suffixes, self.field = folder, max_bytes, suffixes, field
        self.header_field = b""
        self.header_value = b""
        self.headers: dict[bytes, bytes] = {}
        self.out = None
        self.path: Path | None = None
        self.name = ""
        self.size = 0
        self.result: Uploaded | None = None

    def callbacks(self) -> dict:
        return {"on_part_begin": self.part_begin, "on_header_field": self.header_field_data,
                "on_header_value": self.header_value_data, "on_header_end": self.header_end,
                "on_headers_finished": self.headers_finished, "on_part_data": self.part_data,
                "on_part_end": self.part_end}

    def part_begin(self) -> None:
        self.headers, self.header_field, self.header_value = {}, b"", b""

    def header_field_data(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def header_value_data(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def header_end(self) -> None:
        self.headers[self.header_field.lower()] = self.header_value
        self.header_field, self.header_value = b"", b""

    def headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        if options.get(b"name", b"").decode("utf-8", "replace") != self.field:
            return
        if self.result is not None or self.out is not None:
            raise BadRequest(code="upload.one_file", params={"field": self.field})
        raw = options.get(b"filename", b"upload").decode("utf-8", "replace")
        name = Path(raw.replace("\\", "/")).name[:MAX_NAME] or "upload"
        name = "".join(c if c.isprintable() else "?" for c in name)
        suffix = Path(name).suffix.lower()
        if suffix not in self.suffixes:
            raise ImportRefused(code="file.unsupported_type", params={
                "name": name, "suffix": suffix, "allowed": ", ".join(self.suffixes)})
        fd, path = tempfile.mkstemp(prefix="upload-", suffix=suffix, dir=self.folder)
        self.out, self.path, self.name, self.size = os.fdopen(fd, "wb"), Path(path), name, 0

    def part_data(self, data: bytes, start: int, end: int) -> None:
        if self.out is None:
            return
        self.size += end - start
        if self.size > self.max_bytes:
            raise PayloadTooLarge(code="file.upload_too_large",
                                  params={"name": self.name, "max": self.max_bytes})
        self.out.write(data[start:end])

    def part_end(self) -> None:
        if self.out is not None:
            self.out.close()
            self.out = None
            self.result = Uploaded(self.name, self.path, self.size)

    def close(self) -> None:
        if self.out is not None:
            self.out.close()
            self.out = None

    def discard(self) -> None:
        self.close()
        if self.path is not None:
            remove_quietly(self.path)
