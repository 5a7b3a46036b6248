"""One entry point for the course_import processor: detect, then read.

Public surface::

    READERS: Mapping[ArchiveFormat, Reader]    format -> read_<fmt>(archive, where)
    read_course(archive: Archive, where: str) -> CourseArchive
    open_document(archive: Archive, doc: ArchiveDocument) -> BinaryIO
    copy_document(archive: Archive, doc: ArchiveDocument, dest: Path) -> str   (sha256)
    in_archive_order(archive, documents) -> list[ArchiveDocument]

``READERS`` has one reader per format :func:`~syncd.archives.detect.detect` tells apart,
``"syncd"`` included (the native backup course_backup writes, read by
:func:`syncd.archives.native.read_syncd`), so course_import re-imports syncd's own
backups; a format without a reader would be refused by :func:`read_course` with an
ArchiveError that says so. ``open_document`` / ``copy_document`` read a member-backed
document through the archive's bounded stream and a generated one (``member == ""``)
from its ``content``; ``copy_document`` writes like :meth:`Archive.copy_to` (0600,
hidden temp + rename) and returns the sha256.

Copy documents in :func:`in_archive_order`: a compressed tar is one stream, and reading
its members out of order makes every backward step decompress again from the start.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import BinaryIO

from syncd.archives._base import Archive, ArchiveError, iter_chunks, write_private
from syncd.archives.bitrix import read_bitrix
from syncd.archives.chamilo import read_chamilo
from syncd.archives.detect import detect
from syncd.archives.imscc import read_imscc
from syncd.archives.mbz import read_mbz
from syncd.archives.model import ArchiveDocument, ArchiveFormat, CourseArchive
from syncd.archives.native import read_syncd
from syncd.archives.scorm import read_scorm12

Reader = Callable[[Archive, str], CourseArchive]

READERS: Mapping[ArchiveFormat, Reader] = {
    "mbz": read_mbz,
    "scorm12": read_scorm12,
    "imscc": read_imscc,
    "chamilo": read_chamilo,
    "bitrix": read_bitrix,
    "syncd": read_syncd,
}


def read_course(archive: Archive, where: str) -> CourseArchive:
    """Detect the format of ``archive`` and read it with its reader."""
    fmt = detect(archive)
    reader = READERS.get(fmt)
    if reader is None:
        raise ArchiveError(f"{where}: {fmt} archives have no reader yet")
    return reader(archive, where)


def open_document(archive: Archive, doc: ArchiveDocument) -> BinaryIO:
    """A stream of the document's bytes (generated content, or its archive member)."""
    if doc.content is not None:
        return io.BytesIO(doc.content)
    return archive.open(doc.member)


def copy_document(archive: Archive, doc: ArchiveDocument, dest: Path) -> str:
    """Write the document to ``dest`` (0600, temp + rename); its sha256."""
    with open_document(archive, doc) as stream:
        return write_private(dest, iter_chunks(stream))


def in_archive_order(archive: Archive, documents: Iterable[ArchiveDocument]) -> list[ArchiveDocument]:
    """``documents`` in reading order: generated ones first, then by member position."""
    position = {name: index for index, name in enumerate(archive.names())}
    return sorted(documents, key=lambda doc: -1 if doc.content is not None
                  else position.get(doc.member, len(position)))
