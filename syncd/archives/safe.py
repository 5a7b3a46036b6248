"""Safe access to zip and tar archives: the only way syncd opens one.

Public surface::

    Limits(max_entries=10_000, max_total_bytes=2 GiB, max_entry_bytes=512 MiB,
           max_ratio=200, max_xml_bytes=32 MiB, ratio_floor=1 MiB)
    open_archive(path: Path, limits: Limits) -> Archive
    Archive (context manager)
        .label -> str                  the archive's file name, as messages show it
        .limits -> Limits
        .names() -> list[str]          normalised POSIX names of the regular-file members
        name in archive                membership test on those names
        .size(name) -> int             declared uncompressed size (enforced on read)
        .read(name, max_bytes) -> bytes
        .open(name) -> BinaryIO        streams; ArchiveError on corrupt data / size lies
        .copy_to(name, dest: Path) -> str   0600 file via hidden temp + rename; its sha256
    ArchiveError(RejectFile)           message: "<archive>: member '<name>': <reason>"
    member_name(raw) -> str            the name rules below (ValueError with the reason)

The format is told by magic bytes, never by the file name: ``PK\\x03\\x04`` (or an empty
zip's ``PK\\x05\\x06``) is zip; gzip, bzip2 and xz streams are taken as compressed tar;
``ustar`` at offset 257 is plain tar. Anything else is "not an archive".

Everything is checked when the archive is opened, before a single member is read:
member names (absolute, ``..``, drive letters, backslashes, NUL/control characters,
duplicates after normalisation — case-sensitive, NFC), member types (tar symlinks, hard
links, devices, FIFOs, sparse files; zip symlinks and special files; encrypted zip
entries; unknown compression methods), the entry count, each entry's and the total
declared size, the compression ratio per zip entry and for the whole archive, and
overlapping zip entries. Header sizes are then *enforced* while reading: a member that
yields more or fewer bytes than declared, or fails its CRC, raises ArchiveError. For tar
the decompressed stream itself is bounded (see ``_tar``), so lying headers cannot make
syncd decompress past the limits.

There is deliberately no "extract all": callers copy named members to paths they chose,
so nothing is ever written outside the caller's destination folder.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from syncd.archives._base import Archive, ArchiveError, Limits, member_name
from syncd.archives._tar import TarArchive
from syncd.archives._zip import ZipArchive

__all__ = ["Archive", "ArchiveError", "Limits", "member_name", "open_archive"]


def _sniff(head: bytes) -> str | None:
    """The container kind from the first 512 bytes: zip, gz, bz2, xz, tar, or None."""
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if head.startswith(b"\x1f\x8b"):
        return "gz"
    if head.startswith(b"BZh"):
        return "bz2"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if head[257:262] == b"ustar":
        return "tar"
    return None


def _open_regular(path: Path) -> BinaryIO:
    """Open ``path`` for reading without following a symlink; refuse non-regular files."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise ArchiveError(f"{path.name}: cannot be opened ({exc.strerror})") from None
    fileobj = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        fileobj.close()
        raise ArchiveError(f"{path.name}: not a regular file")
    return fileobj


def open_archive(path: Path, limits: Limits) -> Archive:
    """Open and check the zip or tar archive at ``path`` (see the module docstring)."""
    path = Path(path)
    fileobj = _open_regular(path)
    try:
        kind = _sniff(fileobj.read(512))
        fileobj.seek(0)
        if kind is None:
            raise ArchiveError(f"{path.name}: not an archive (no zip, tar, gzip, bzip2 or xz signature)")
        if kind == "zip":
            return ZipArchive(path, fileobj, limits)
        return TarArchive(path, fileobj, kind, limits)
    except BaseException:
        fileobj.close()
        raise
