"""The zip back-end of :mod:`syncd.archives.safe`: every entry is checked from the central
directory before anything is read, and reads are bounded by the declared sizes."""

from __future__ import annotations

import itertools
import os
import stat
import zipfile
from pathlib import Path
from typing import IO, BinaryIO, cast

from syncd.archives._base import DATA_ERRORS, Archive, ArchiveError, Entry, Limits, member_name

_ENCRYPTED = 0x1
_UTF8 = 0x800
_LOCAL_HEADER = 30
_UNIX = 3  # "version made by" host system whose external attributes carry st_mode
_METHODS = {
    zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate",
    zipfile.ZIP_BZIP2: "bzip2", zipfile.ZIP_LZMA: "lzma",
}


def _decoded_name(info: zipfile.ZipInfo) -> str:
    """The entry's name; a non-UTF-8-flagged name that is valid UTF-8 is read as UTF-8
    (many tools write UTF-8 without setting the flag)."""
    raw = info.orig_filename
    if info.flag_bits & _UTF8 or raw.isascii():
        return raw
    try:
        return raw.encode("cp437").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return raw


def _raw_name_length(info: zipfile.ZipInfo) -> int:
    return len(info.orig_filename.encode("utf-8" if info.flag_bits & _UTF8 else "cp437"))


class ZipArchive(Archive):
    """A zip file (``PK\\x03\\x04``), checked whole when opened."""

    def __init__(self, path: Path, fileobj: BinaryIO, limits: Limits) -> None:
        super().__init__(path, limits)
        self._fileobj = fileobj
        try:
            self._zip = zipfile.ZipFile(fileobj)
        except DATA_ERRORS as exc:
            raise ArchiveError(f"{path.name}: corrupt or truncated zip archive ({exc})") from None
        try:
            self._scan()
        except BaseException:
            self._zip.close()
            raise

    def _scan(self) -> None:
        infos = self._zip.infolist()
        if len(infos) > self._limits.max_entries:
            raise ArchiveError(f"{self.label}: {len(infos)} entries, over the limit of "
                               f"{self._limits.max_entries}")
        total = 0
        for info in infos:
            raw = _decoded_name(info)
            name = self._check_entry(raw, info)
            if name is None:
                continue
            total += info.file_size
            self._check_size(raw, info.file_size, total)
            self._add(raw, name, info.file_size, info)
        size = os.fstat(self._fileobj.fileno()).st_size
        if self._limits.ratio_exceeded(total, size):
            raise ArchiveError(f"{self.label}: {total} bytes from a {size}-byte archive, over the "
                               f"compression ratio limit of {self._limits.max_ratio} (zip bomb?)")
        self._check_overlap(infos)

    def _check_entry(self, raw: str, info: zipfile.ZipInfo) -> str | None:
        """The entry's normalised name, None for a directory; refusals raise."""
        try:
            name = member_name(raw, directory=info.is_dir())
        except ValueError as exc:
            raise self.error(raw, str(exc)) from None
        kind = stat.S_IFMT(info.external_attr >> 16) if info.create_system == _UNIX else 0
        if kind == stat.S_IFLNK:
            raise self.error(raw, "symbolic link")
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise self.error(raw, "not a regular file (device, FIFO or socket)")
        if info.is_dir():
            return None
        if info.flag_bits & _ENCRYPTED:
            raise self.error(raw, "encrypted entry; syncd reads no encrypted archives")
        if info.compress_type not in _METHODS:
            raise self.error(raw, f"unsupported compression method {info.compress_type}")
        if info.file_size > self._limits.max_entry_bytes:
            raise self.error(raw, f"{info.file_size} bytes, over the entry limit of "
                                  f"{self._limits.max_entry_bytes}")
        if self._limits.ratio_exceeded(info.file_size, info.compress_size):
            raise self.error(raw, f"{info.file_size} bytes from {info.compress_size}, over the "
                                  f"compression ratio limit of {self._limits.max_ratio} (zip bomb?)")
        return name

    def _check_overlap(self, infos: list[zipfile.ZipInfo]) -> None:
        """Refuse entries whose data overlap (the construction of non-recursive zip bombs,
        where many entries inflate the same compressed stream) or run into the directory."""
        spans = sorted(
            (info.header_offset, info.header_offset + _LOCAL_HEADER + _raw_name_length(info)
             + info.compress_size, _decoded_name(info))
            for info in infos
        )
        for (_, end, raw), (start, _, other) in itertools.pairwise(spans):
            if start < end:
                raise self.error(other, f"its data overlap those of {raw!r} (zip bomb?)")
        directory = getattr(self._zip, "start_dir", None)
        if spans and isinstance(directory, int) and spans[-1][1] > directory:
            raise self.error(spans[-1][2], "its data run into the central directory (corrupt)")

    def _open_member(self, entry: Entry) -> IO[bytes]:
        return self._zip.open(cast(zipfile.ZipInfo, entry.ref))

    def _close(self) -> None:
        self._zip.close()
        self._fileobj.close()
