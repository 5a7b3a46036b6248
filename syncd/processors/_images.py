"""What a picture really is, from its first bytes: PNG, JPEG or GIF, and its size in pixels.

Only the headers are parsed (no image library, no decoding): the magic bytes give the
format, the PNG ``IHDR`` chunk, the GIF logical screen or the JPEG start-of-frame
segment give width and height. A file whose name says ``.png`` but whose bytes are a
JPEG is read as a JPEG; bytes that are none of the three are not an image.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: JPEG start-of-frame markers (baseline, progressive, lossless...); C4, C8, CC are not frames
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # markers without a length field


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """The format (``png``, ``jpeg``, ``gif``), MIME type and size in pixels of a picture."""

    kind: str
    mimetype: str
    width: int
    height: int


class NotAnImage(ValueError):
    """The bytes are not a PNG, JPEG or GIF picture we can read the size of."""


def image_info(data: bytes) -> ImageInfo:
    """Identify ``data`` by content; NotAnImage with the reason otherwise."""
    if data.startswith(PNG_MAGIC):
        return _png(data)
    if data[:6] in (b"GIF87a", b"GIF89a"):
        if len(data) < 10:
            raise NotAnImage("GIF header cut short")
        width, height = struct.unpack_from("<HH", data, 6)
        return _checked(ImageInfo("gif", "image/gif", width, height))
    if data.startswith(b"\xff\xd8"):
        return _jpeg(data)
    raise NotAnImage("not a PNG, JPEG or GIF picture (by its content)")


def _png(data: bytes) -> ImageInfo:
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise NotAnImage("PNG without an IHDR header")
    width, height = struct.unpack_from(">II", data, 16)
    return _checked(ImageInfo("png", "image/png", width, height))


def _jpeg(data: bytes) -> ImageInfo:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise NotAnImage(f"JPEG marker expected at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _STANDALONE:
            pos += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no frame header before it
            break
        (length,) = struct.unpack_from(">H", data, pos + 2)
        if length < 2:
            raise NotAnImage(f"JPEG segment with length {length} at byte {pos}")
        if marker in _SOF:
            if pos + 9 > len(data):
                break
            height, width = struct.unpack_from(">HH", data, pos + 5)
            return _checked(ImageInfo("jpeg", "image/jpeg", width, height))
        pos += 2 + length
    raise NotAnImage("JPEG without a frame header (cut short or not a picture)")


def _checked(info: ImageInfo) -> ImageInfo:
    if info.width <= 0 or info.height <= 0:
        raise NotAnImage(f"{info.kind} of {info.width}x{info.height} pixels")
    return info
