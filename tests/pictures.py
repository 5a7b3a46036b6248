"""Pictures and picture zips for the user_pictures tests, and the runner's way of applying
an item file (check, header, records in batches).

The images are built from the formats' headers (``png``, ``gif``, ``jpeg``): enough for
syncd's content check, which reads headers only.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from syncd.csvfile import row_values, validate_header
from syncd.domain import RowResult
from syncd.platform.base import Platform
from syncd.processors.base import ProcessorSpec, Row, RunContext

CTX = RunContext(timezone=UTC, now=lambda: datetime(2026, 11, 22, tzinfo=UTC))


def png(width: int, height: int, salt: bytes = b"") -> bytes:
    """A small PNG of ``width`` x ``height`` (``salt`` changes its bytes, not its size)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"tEXt", b"c\x00" + salt)
            + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


def gif(width: int, height: int) -> bytes:
    """A GIF89a header with a logical screen of ``width`` x ``height``."""
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\x00\x00\x00;"


def jpeg(width: int, height: int, salt: bytes = b"") -> bytes:
    """A JPEG with a comment (``salt``) and a baseline start-of-frame segment."""
    comment = b"\xff\xfe" + struct.pack(">H", 2 + len(salt) + 1) + salt + b"!"
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + comment + sof + b"\xff\xda\x00\x02\xff\xd9"


def apply_items(platform: Platform, spec: ProcessorSpec, path: Path, batch: int = 2,
                ctx: RunContext = CTX, **options: Any) -> list[RowResult]:
    """Run ``spec``'s processor on ``path`` as the runner does: check, header, batches."""
    processor = spec.factory(options, ctx)
    assert spec.source is not None
    source = spec.source(path, processor)
    source.check()
    header = source.resolve_header(processor.schema)
    validate_header(header, processor.schema, path.name)
    rows = [Row(r.line, row_values(header, r)) for r in source.records()]
    results: list[RowResult] = []
    for start in range(0, len(rows), batch):
        with platform.transaction() as tx:
            results += processor.apply(rows[start:start + batch], tx)
    assert len(results) == len(rows)
    return results


def reasons(results: Sequence[RowResult]) -> list[tuple[str, str]]:
    """(outcome, reason) of each result, for compact assertions."""
    return [(r.outcome.value, r.reason) for r in results]
