"""Pictures identified by their bytes: format and size from PNG, GIF and JPEG headers."""

from __future__ import annotations

import struct
import zlib

import pytest

from syncd.processors._images import NotAnImage, image_info


def png(width: int, height: int) -> bytes:
    """A minimal valid PNG of ``width`` x ``height`` (one IHDR, one empty IDAT, IEND)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


def gif(width: int, height: int) -> bytes:
    """A GIF89a header with a logical screen of ``width`` x ``height``."""
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\x00\x00\x00;"


def jpeg(width: int, height: int, progressive: bool = False) -> bytes:
    """A JPEG with APP0 (JFIF), a comment and a start-of-frame segment."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    comment = b"\xff\xfe" + struct.pack(">H", 7) + b"hello"
    sof = b"\xff" + (b"\xc2" if progressive else b"\xc0") + struct.pack(">HBHHB", 11, 8, height, width, 1)
    return b"\xff\xd8" + app0 + comment + sof + b"\x01\x11\x00" + b"\xff\xda\x00\x02" + b"\xff\xd9"


@pytest.mark.parametrize(("data", "kind", "size"), [
    (png(100, 80), "png", (100, 80)),
    (gif(32, 16), "gif", (32, 16)),
    (jpeg(640, 480), "jpeg", (640, 480)),
    (jpeg(10, 20, progressive=True), "jpeg", (10, 20)),
])
def test_format_and_size_come_from_the_bytes(data: bytes, kind: str, size: tuple[int, int]) -> None:
    """Each format is recognised by its magic bytes and its size read from its header."""
    info = image_info(data)
    assert (info.kind, (info.width, info.height)) == (kind, size)
    assert info.mimetype == f"image/{kind}"


@pytest.mark.parametrize(("data", "reason"), [
    (b"%PDF-1.4 not a picture", "not a PNG, JPEG or GIF"),
    (b"", "not a PNG, JPEG or GIF"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "IHDR"),
    (png(0, 10), "0x10 pixels"),
    (b"GIF89a\x01", "cut short"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", "without a frame header"),
    (b"\xff\xd8\x00\x00\x00\x00", "marker expected"),
])
def test_what_is_not_a_readable_picture_is_refused_with_a_reason(data: bytes, reason: str) -> None:
    """Other content, truncated headers and empty sizes are NotAnImage with the reason."""
    with pytest.raises(NotAnImage, match=reason):
        image_info(data)
