"""The tar back-end of :mod:`syncd.archives.safe` (plain, gzip, bzip2 or xz).

tarfile reads the decompressed stream through :class:`_Guard`, which refuses what tar
headers could abuse before any memory or time is spent: a single read larger than
:data:`_MAX_HEADER_READ` (a pax or GNU long-name header claiming gigabytes), a position
past the byte budget, and a decompression ratio over the limit, measured on the real
stream rather than on header sizes. Each header is checked before tarfile is asked for
the next one, so an oversized member is refused before its data are decompressed.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import tarfile
from pathlib import Path
from typing import IO, BinaryIO, cast

from syncd.archives._base import CHUNK, DATA_ERRORS, Archive, ArchiveError, Entry, Limits, member_name

_BLOCK = tarfile.BLOCKSIZE
_MAX_HEADER_READ = 1 << 20
# Per member at most a header, a pax header and a long-name header (plus their data).
_HEADER_ALLOWANCE = 3 * _BLOCK


class _Guard:
    """The decompressed stream as tarfile sees it, with the limits of the module docstring."""

    def __init__(self, inner: IO[bytes], label: str, budget: int, compressed: int | None,
                 limits: Limits) -> None:
        self._inner = inner
        self._label = label
        self._budget = budget
        self._compressed = compressed  # the file's size when the stream is compressed
        self._limits = limits

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0 or size > _MAX_HEADER_READ:
            raise ArchiveError(f"{self._label}: a tar header asks to read {size} bytes at once "
                               f"(limit {_MAX_HEADER_READ}; pax or long-name header bomb?)")
        data = self._inner.read(size)
        self._check(self._inner.tell())
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        target = offset if whence == 0 else self._inner.tell() + offset if whence == 1 else -1
        if target < 0:
            raise ArchiveError(f"{self._label}: unsupported seek in the tar stream")
        self._check(target)
        return self._inner.seek(target)

    def tell(self) -> int:
        return self._inner.tell()

    def _check(self, position: int) -> None:
        if position > self._budget:
            raise ArchiveError(f"{self._label}: the tar stream passes {self._budget} bytes "
                               "(over the total size limit; tar bomb?)")
        if self._compressed is not None and self._limits.ratio_exceeded(position, self._compressed):
            raise ArchiveError(f"{self._label}: {position} bytes from a {self._compressed}-byte "
                               f"archive, over the compression ratio limit of {self._limits.max_ratio}")


def _decompressor(kind: str, fileobj: BinaryIO) -> IO[bytes]:
    if kind == "gz":
        return cast(IO[bytes], gzip.GzipFile(fileobj=fileobj, mode="rb"))
    if kind == "bz2":
        return cast(IO[bytes], bz2.BZ2File(fileobj, "rb"))
    if kind == "xz":
        return cast(IO[bytes], lzma.LZMAFile(fileobj, "rb"))
    return fileobj


class TarArchive(Archive):
    """A tar archive, possibly compressed as a whole (``kind``: tar, gz, bz2 or xz)."""

    def __init__(self, path: Path, fileobj: BinaryIO, kind: str, limits: Limits) -> None:
        super().__init__(path, limits)
        self._fileobj = fileobj
        size = os.fstat(fileobj.fileno()).st_size
        budget = limits.max_total_bytes + (limits.max_entries + 1) * _HEADER_ALLOWANCE + CHUNK
        self._stream = _decompressor(kind, fileobj)
        self._guard = _Guard(self._stream, path.name, budget, None if kind == "tar" else size, limits)
        try:
            self._tar = tarfile.open(fileobj=cast(IO[bytes], self._guard), mode="r:")  # noqa: SIM115
            self._scan()
        except ArchiveError:
            self._close()
            raise
        except DATA_ERRORS as exc:
            self._close()
            raise ArchiveError(f"{path.name}: corrupt or truncated tar archive ({exc})") from None

    def _scan(self) -> None:
        count = total = 0
        while (info := self._tar.next()) is not None:
            count += 1
            if count > self._limits.max_entries:
                raise ArchiveError(f"{self.label}: more than {self._limits.max_entries} entries")
            name = self._check_member(info)
            if name is None:
                continue
            total += info.size
            self._check_size(info.name, info.size, total)
            self._add(info.name, name, info.size, info)
        self._check_end()

    def _check_member(self, info: tarfile.TarInfo) -> str | None:
        """The member's normalised name, None for a directory; refusals raise."""
        try:
            name = member_name(info.name, directory=info.isdir())
        except ValueError as exc:
            raise self.error(info.name, str(exc)) from None
        if info.issym():
            raise self.error(info.name, f"symbolic link (to {info.linkname!r})")
        if info.islnk():
            raise self.error(info.name, f"hard link (to {info.linkname!r})")
        if info.ischr() or info.isblk():
            raise self.error(info.name, "device file")
        if info.isfifo():
            raise self.error(info.name, "FIFO")
        if info.isdir():
            return None
        if info.issparse():
            raise self.error(info.name, "sparse file")
        if not info.isreg():
            raise self.error(info.name, f"unsupported member type {info.type!r}")
        return name

    def _check_end(self) -> None:
        """tarfile stops quietly at a bad header; only a zero block or the exact end of the
        stream is a proper end. The rest of the stream is read through (bounded) so a
        truncated or corrupt compressed stream is noticed now."""
        self._guard.seek(self._tar.offset)
        block = self._guard.read(_BLOCK)
        if block and block != bytes(len(block)):
            raise ArchiveError(f"{self.label}: corrupt tar header at offset {self._tar.offset}")
        if block and len(block) < _BLOCK:
            raise ArchiveError(f"{self.label}: truncated tar archive")
        while self._guard.read(CHUNK):
            pass

    def _open_member(self, entry: Entry) -> IO[bytes]:
        stream = self._tar.extractfile(cast(tarfile.TarInfo, entry.ref))
        if stream is None:
            raise self.error(entry.name, "not a regular file")
        return stream

    def _close(self) -> None:
        tar = getattr(self, "_tar", None)
        if tar is not None:
            tar.close()
        if self._stream is not self._fileobj:
            self._stream.close()
        self._fileobj.close()
