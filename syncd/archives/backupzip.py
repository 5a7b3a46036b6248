"""The zip writer both backup formats share (syncd/archives/native.py and scorm_writer.py).

Public surface::

    BackupZip(dest, when)          context manager: add_bytes(name, data),
                                   add_stream(name, opener, size, sha256)
    check_importable(members, manifest_bytes, limits)   BackupError unless re-importable
    BackupError(ValueError)        a backup that cannot be written (too big, blob changed)
    MAX_STORED_RATIO = 100

Decisions: the zip is built in a hidden 0600 temp file next to ``dest`` (folder created
0700) and published with a hard link, so an existing ``dest`` is never replaced
(FileExistsError) and a half-written backup never has its final name; on any error the
temp file is removed. Each blob is read twice: once to check its sha256 and size and
measure how well it deflates, once to copy it (its sha256 checked again on the way). A
member that would inflate more than :data:`MAX_STORED_RATIO` times is *stored* rather
than deflated, so the archive layer's zip-bomb ratio check (200:1) never refuses
syncd's own backup. Member dates are the backup's time (1980-01-01 when none is given).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from syncd.archives._base import Limits, iter_chunks

#: members inflating more than this many times their deflated size are stored instead
MAX_STORED_RATIO = 100
_LEVEL = 6
_DIR_MODE = 0o700
_FILE_MODE = 0o600
_MEMBER_MODE = 0o644 << 16
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


class BackupError(ValueError):
    """The backup cannot be written: over the import limits, or a blob is not what the
    document says (missing blobs raise FileNotFoundError from ``open_blob``)."""


class BackupZip:
    """A zip written to a hidden temp file and published at ``dest`` on success only.

    Use as a context manager; on any exception the temp file is removed and ``dest`` is
    untouched. Publishing never replaces an existing ``dest`` (FileExistsError).
    """

    def __init__(self, dest: Path, when: datetime | None = None) -> None:
        self.dest = Path(os.path.abspath(dest))
        self._date = _ZIP_EPOCH if when is None or when.year < 1980 else when.timetuple()[:6]
        self._tmp: Path | None = None
        self._file: BinaryIO | None = None
        self._zip: zipfile.ZipFile | None = None

    def __enter__(self) -> BackupZip:
        self.dest.parent.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.dest.name[:100]}.", suffix=".tmp", dir=self.dest.parent)
        os.fchmod(fd, _FILE_MODE)
        self._tmp, self._file = Path(tmp), os.fdopen(fd, "w+b")
        self._zip = zipfile.ZipFile(self._file, "w", zipfile.ZIP_DEFLATED, compresslevel=_LEVEL)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        assert self._zip is not None and self._file is not None and self._tmp is not None
        try:
            if exc is None:
                self._zip.close()
                self._file.flush()
                os.fsync(self._file.fileno())
                self._file.close()
                _publish(self._tmp, self.dest)
        finally:
            with contextlib.suppress(Exception):
                self._zip.close()
            self._file.close()
            with contextlib.suppress(FileNotFoundError):
                self._tmp.unlink()

    def _info(self, name: str, size: int, compressed: int) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, self._date)
        info.external_attr = _MEMBER_MODE
        info.file_size = size
        stored = size > MAX_STORED_RATIO * max(compressed, 1)
        info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
        return info

    def add_bytes(self, name: str, data: bytes) -> None:
        """Add member ``name`` holding ``data``."""
        assert self._zip is not None
        self._zip.writestr(self._info(name, len(data), _deflated_size([data])), data)

    def add_stream(self, name: str, opener: Callable[[], BinaryIO], size: int, sha256: str) -> None:
        """Add member ``name`` from ``opener()`` (called twice), checking size and sha256."""
        assert self._zip is not None
        compressed = _measure(opener, size, sha256)
        digest, count = hashlib.sha256(), 0
        with opener() as source, self._zip.open(self._info(name, size, compressed), "w") as out:
            for chunk in iter_chunks(source):
                digest.update(chunk)
                count += len(chunk)
                if count > size:
                    break
                out.write(chunk)
        if (digest.hexdigest(), count) != (sha256, size):
            raise BackupError(f"blob {sha256} changed while it was being copied")


def _deflated_size(chunks: Iterable[bytes]) -> int:
    """How many bytes the zip's deflate (same level, raw stream) makes of ``chunks``."""
    compressor = zlib.compressobj(_LEVEL, zlib.DEFLATED, -15)
    total = sum(len(compressor.compress(chunk)) for chunk in chunks)
    return total + len(compressor.flush())


def _measure(opener: Callable[[], BinaryIO], size: int, sha256: str) -> int:
    """Read the blob once: check its sha256 and size, return its deflated size."""
    digest, count = hashlib.sha256(), 0

    def chunks(stream: BinaryIO) -> Iterable[bytes]:
        nonlocal count
        for chunk in iter_chunks(stream):
            digest.update(chunk)
            count += len(chunk)
            yield chunk

    with opener() as source:
        compressed = _deflated_size(chunks(source))
    if count != size or digest.hexdigest() != sha256:
        raise BackupError(f"blob {sha256} of {size} bytes holds {count} bytes with sha256 "
                          f"{digest.hexdigest()} (the file store is damaged)")
    return compressed


def _publish(tmp: Path, dest: Path) -> None:
    """Give ``tmp`` the name ``dest`` without ever replacing an existing file."""
    try:
        os.link(tmp, dest)
    except FileExistsError:
        raise
    except OSError:  # a filesystem without hard links: check, then rename
        if os.path.lexists(dest):
            raise FileExistsError(f"{dest} exists") from None
        os.rename(tmp, dest)
    fd = os.open(dest.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check_importable(members: Mapping[str, int], manifest_bytes: int, limits: Limits) -> None:
    """BackupError unless an archive of these members (name -> size) and a manifest of
    ``manifest_bytes`` passes the import ``limits``."""
    if len(members) + 1 > limits.max_entries:
        raise BackupError(f"{len(members) + 1} members, over the import limit of {limits.max_entries}")
    if manifest_bytes > limits.max_xml_bytes:
        raise BackupError(f"a manifest of {manifest_bytes} bytes, over the limit of {limits.max_xml_bytes}")
    for name, size in members.items():
        if size > limits.max_entry_bytes:
            raise BackupError(f"{name}: {size} bytes, over the import limit of "
                              f"{limits.max_entry_bytes} bytes per file")
    total = sum(members.values()) + manifest_bytes
    if total > limits.max_total_bytes:
        raise BackupError(f"{total} bytes in all, over the import limit of {limits.max_total_bytes}")
