"""The local side of a pull: ``sync/<target>/`` and the pull's hidden work folder in it.

A download is written to ``.syncd-pull-<name>/incoming/<file>.part`` (0600), fsynced,
checked byte for byte against the size listed, given the remote mtime, then renamed to
``.syncd-pull-<name>/<file>``: a *verified* copy. Delivering it links it to
``sync/<target>/<file>`` (a hard link never replaces a file; a rename is the fallback on
file systems without links) and removes the work name. Intake ignores the hidden work
folder, but its watcher counts ``users.csv.part`` there as an upload of ``users.csv``
under way, so the gather rule holds lower-priority files back while it downloads.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from syncd.domain import SyncdError
from syncd.intake.store import free_path

_PART = ".part"
_CHUNK = 1 << 18
_PRIVATE_DIR = 0o700
_PRIVATE_FILE = 0o600
_NO_LINKS = (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.ENOSYS)


class Readable(Protocol):
    """A remote file open for reading."""

    def read(self, size: int = ..., /) -> bytes:
        """Up to ``size`` bytes; b'' at the end."""
        ...


class FileChanged(SyncdError):
    """The remote file changed while it was downloaded (still being written): try next run."""


class PullStopped(SyncdError):
    """The daemon is stopping; the partial download was discarded."""


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Landing:
    """Where one pull writes: ``sync/<target>`` and ``sync/<target>/.syncd-pull-<name>``."""

    def __init__(self, sync_dir: Path, target: str, pull_name: str) -> None:
        self.folder = sync_dir.joinpath(*Path(target.strip("/")).parts) if target.strip("/") else sync_dir
        self.work = self.folder / f".syncd-pull-{pull_name}"
        self.incoming = self.work / "incoming"

    def prepare(self) -> list[str]:
        """Make the folders (0700) and remove partial downloads of an interrupted run; their names."""
        _makedirs(self.incoming)
        removed = []
        for entry in os.scandir(self.incoming):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
            removed.append(entry.name)
        return removed

    def verified(self) -> list[Path]:
        """Verified copies left by an earlier run (crash or failure after the download), by name."""
        if not self.work.is_dir():
            return []
        found = [Path(e.path) for e in os.scandir(self.work) if e.is_file(follow_symlinks=False)]
        return sorted(found)

    def taken(self, name: str) -> bool:
        """Whether ``sync/<target>/<name>`` exists (an earlier copy still waiting for intake), or a
        verified copy of that name still waits to be delivered."""
        return os.path.lexists(self.folder / name) or os.path.lexists(self.work / name)

    def receive(self, name: str, source: Readable, size: int, mtime: int, stop: threading.Event) -> Path:
        """Copy ``source`` to a verified work copy of exactly ``size`` bytes; FileChanged otherwise."""
        part = self.incoming / (name + _PART)
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, _PRIVATE_FILE)
        try:
            with os.fdopen(fd, "wb") as out:
                count = _copy(source, out.write, size, stop)
                out.flush()
                os.fsync(out.fileno())
            if count != size:
                raise FileChanged(f"got {count} bytes, the listing said {size}: still being written?")
            os.utime(part, (mtime, mtime))
            verified = self.work / name
            os.replace(part, verified)
            _fsync_dir(self.incoming)
            _fsync_dir(self.work)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                part.unlink()
            raise
        return verified

    def deliver(self, verified: Path) -> Path:
        """Give a verified copy its final name in ``sync/<target>`` without replacing anything."""
        dest = self.folder / verified.name
        while True:
            dest = free_path(dest)
            try:
                os.link(verified, dest, follow_symlinks=False)
            except FileExistsError:
                continue  # taken since free_path looked
            except OSError as exc:
                if exc.errno not in _NO_LINKS:
                    raise
                os.rename(verified, dest)  # no hard links here (some network file systems)
                break
            verified.unlink()
            break
        _fsync_dir(self.folder)
        return dest

    def discard(self, verified: Path) -> None:
        """Remove a work copy (its remote file is still there and will be fetched again)."""
        with contextlib.suppress(FileNotFoundError):
            verified.unlink()


def _makedirs(folder: Path) -> None:
    """Make ``folder`` and its missing parents, each 0700 (``mkdir(parents=True)`` would not)."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=_PRIVATE_DIR)


def _copy(source: Readable, write: Callable[[bytes], object], size: int, stop: threading.Event) -> int:
    """Copy until end of file; FileChanged as soon as more than ``size`` bytes come."""
    count = 0
    while True:
        if stop.is_set():
            raise PullStopped("stopping: download abandoned")
        chunk = source.read(_CHUNK)
        if not chunk:
            return count
        count += len(chunk)
        if count > size:
            raise FileChanged(f"grew past the {size} bytes listed while downloading: still being written?")
        write(chunk)
