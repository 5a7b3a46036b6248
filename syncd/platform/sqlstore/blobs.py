"""Content-addressed blobs in a folder: the FileRepository of the embedded store.

A blob lives at ``<root>/<sha[:2]>/<sha>`` (sha256 in lowercase hex), mode 0600 in
folders of mode 0700. :meth:`BlobStore.put` streams the content into a hidden temp file in
the root (``.put-*.tmp``, same filesystem), fsyncs it, and renames it into place, then
fsyncs the folder: a reader sees a whole blob or none, even after a crash. Content already
stored is not written again; its mtime is touched instead, so that a sweep started before
the put keeps it (see :meth:`BlobStore.sweep`).

Blobs are not transactional: rows that refer to them are. A blob put in a transaction that
rolls back stays as an orphan, which is harmless; :meth:`BlobStore.sweep` removes orphans
for a cleanup job.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Collection, Iterable
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import structlog

from syncd.platform.model import check_sha256

log = structlog.get_logger(__name__)

_TEMP_PREFIX, _TEMP_SUFFIX = ".put-", ".tmp"
_HEX = frozenset("0123456789abcdef")


class BlobStore:
    """FileRepository over the folder ``root`` (created, mode 0700, on the first put)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        """Where the blob with this hash is (or would be) stored."""
        check_sha256(sha256)
        return self.root / sha256[:2] / sha256

    def put(self, chunks: Iterable[bytes]) -> tuple[str, int]:
        """Store this content unless present (temp file, fsync, rename); return (sha256, size).

        When ``chunks`` raises, the temp file is removed and nothing is stored.
        """
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=_TEMP_PREFIX, suffix=_TEMP_SUFFIX, dir=self.root)
        try:
            digest, size = hashlib.sha256(), 0
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            sha256 = digest.hexdigest()
            self._place(Path(temp), sha256)
        finally:
            Path(temp).unlink(missing_ok=True)
        return sha256, size

    def _place(self, temp: Path, sha256: str) -> None:
        """Rename ``temp`` to the blob's path, or touch the blob already there."""
        target = self.path(sha256)
        if target.exists():
            os.utime(target)
            return
        folder = target.parent
        created = not folder.exists()
        folder.mkdir(mode=0o700, exist_ok=True)
        os.replace(temp, target)
        _fsync_dir(folder)
        if created:
            _fsync_dir(self.root)

    def open(self, sha256: str) -> BinaryIO:
        """The blob for reading (the caller closes it); FileNotFoundError when absent."""
        path = self.path(sha256)
        try:
            return path.open("rb")
        except FileNotFoundError:
            raise FileNotFoundError(f"no blob {sha256} in {self.root}") from None

    def exists(self, sha256: str) -> bool:
        """Whether the blob is stored."""
        return self.path(sha256).is_file()

    def sweep(self, referenced: Collection[str], *, older_than: datetime) -> int:
        """Remove the blobs not in ``referenced`` and the leftover temp files of crashed puts,
        when last written or touched before ``older_than``; return how many were removed.

        ``older_than`` must be earlier than the start of every platform transaction that may
        still be open when ``referenced`` was read (one may have put a blob and not yet
        committed the row that refers to it), e.g. a day before. Empty folders are removed.
        """
        if not self.root.is_dir():
            return 0
        limit, wanted = older_than.timestamp(), set(referenced)
        removed = sum(_remove_if_older(t, limit) for t in self.root.glob(f"{_TEMP_PREFIX}*{_TEMP_SUFFIX}"))
        for folder in self.root.iterdir():
            if not (_is_hex(folder.name, 2) and folder.is_dir()):
                continue
            for blob in folder.iterdir():
                if _is_hex(blob.name, 64) and blob.name.startswith(folder.name) and blob.name not in wanted:
                    removed += _remove_if_older(blob, limit)
            with contextlib.suppress(OSError):  # not empty
                folder.rmdir()
        log.info("blobs_swept", root=str(self.root), removed=removed, referenced=len(wanted))
        return removed


def _is_hex(name: str, length: int) -> bool:
    return len(name) == length and set(name) <= _HEX


def _remove_if_older(path: Path, limit: float) -> int:
    """Remove ``path`` when its mtime is before ``limit``: 1 if removed, else 0."""
    try:
        if path.lstat().st_mtime >= limit:
            return 0
        path.unlink()
    except FileNotFoundError:
        return 0
    return 1


def _fsync_dir(folder: Path) -> None:
    """Make a rename or a new entry in ``folder`` durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
