"""The ``<data>`` folder layout and the only code that moves or writes files in it.

Every move is an atomic rename (copy + fsync + rename + unlink across filesystems), never
follows a symlink and never overwrites anything. Files syncd creates are mode 0600 and
its folders 0700, because command files and tryback files may carry passwords.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

import structlog

from syncd.domain import RejectFile

#: Store folders managed by syncd; everything else in store/ belongs to the operator.
RESERVED = ("archives", "reports", "tryback", "failed")

#: Multi-part extensions kept whole when a collision suffix is added (x-2.tar.gz).
_COMPOUND_SUFFIXES = (".tar.gz", ".tar.bz2", ".tar.xz", ".tar.zst", ".report.txt", ".report.json")

_PRIVATE_DIR = 0o700
_PRIVATE_FILE = 0o600
# sync/ is written by the SFTP side (another user sharing syncd's group), so the group needs
# rwx there, and x on <data> itself to reach it (x only: it may traverse, not list).
_SYNC_DIR = 0o770
_DATA_DIR = 0o710
_COPY_CHUNK = 1 << 20


def _log() -> Any:
    return structlog.get_logger(__name__)


def _fsync_dir(directory: Path) -> None:
    """Make a rename or unlink in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _split_ext(name: str) -> tuple[str, str]:
    """Split a basename into stem and extension, keeping known compound extensions whole."""
    lower = name.lower()
    for compound in _COMPOUND_SUFFIXES:
        if lower.endswith(compound) and len(name) > len(compound):
            return name[: -len(compound)], name[-len(compound) :]
    dot = name.rfind(".")
    if dot <= 0:  # no extension, or a dot-file such as ".profile"
        return name, ""
    return name[:dot], name[dot:]


def free_path(path: Path) -> Path:
    """``path`` if nothing is there, else the first free ``stem-N.ext`` (N = 2, 3, …)."""
    if not os.path.lexists(path):
        return path
    stem, ext = _split_ext(path.name)
    n = 2
    while True:
        candidate = path.with_name(f"{stem}-{n}{ext}")
        if not os.path.lexists(candidate):
            return candidate
        n += 1


def _temp_in(directory: Path, name: str) -> tuple[int, Path]:
    """Create a hidden, private (0600) temp file next to its final ``name``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{name[:100]}.", suffix=".tmp", dir=directory)
    os.fchmod(fd, _PRIVATE_FILE)
    return fd, Path(tmp)


class FileStore:
    """The <data> layout: sync/, store/ (+ reserved archives, reports, tryback, failed),
    cache/ and state/, with the atomic moves and private writes that operate on it."""

    RESERVED = RESERVED

    def __init__(self, data_dir: Path, cache_dir: Path | None = None) -> None:
        """Describe the layout under ``data_dir`` (made absolute, symlinks kept); no I/O.

        ``cache_dir`` moves the cache elsewhere (systemd's CacheDirectory=).
        """
        self._data = Path(os.path.abspath(data_dir))
        self._cache = Path(os.path.abspath(cache_dir)) if cache_dir else self._data / "cache"
        # The sync->store rename; a test replaces it to force the cross-filesystem path.
        self._rename: Callable[[Path, Path], None] = os.rename

    @property
    def data_dir(self) -> Path:
        """``<data>`` itself."""
        return self._data

    @property
    def sync_dir(self) -> Path:
        """The drop folder the SFTP side writes into."""
        return self._data / "sync"

    @property
    def store_dir(self) -> Path:
        """The local file store."""
        return self._data / "store"

    @property
    def archives_dir(self) -> Path:
        """Processed command files."""
        return self.store_dir / "archives"

    @property
    def reports_dir(self) -> Path:
        """One report (text + JSON) per run."""
        return self.store_dir / "reports"

    @property
    def tryback_dir(self) -> Path:
        """Failed rows, ready to fix and drop again."""
        return self.store_dir / "tryback"

    @property
    def failed_dir(self) -> Path:
        """Files that could not be processed at all."""
        return self.store_dir / "failed"

    @property
    def cache_dir(self) -> Path:
        """Generated artefacts, purged by the cache-cleanup job."""
        return self._cache

    @property
    def state_dir(self) -> Path:
        """The ledger database and other private state."""
        return self._data / "state"

    def ensure_layout(self) -> None:
        """Create every folder of the layout that is missing; existing modes are left alone."""
        self._make_dirs(self._data, _DATA_DIR)
        self._make_dirs(self.sync_dir, _SYNC_DIR)
        private = [self.store_dir, self.cache_dir, self.state_dir]
        private += [self.store_dir / name for name in RESERVED]
        for folder in private:
            if folder.is_dir():
                self._warn_if_open(folder)
            self._make_dirs(folder, _PRIVATE_DIR)

    def store_path_for(self, rel: PurePosixPath) -> Path:
        """The free destination in store/ for the file that was at ``sync/<rel>``."""
        rel = PurePosixPath(rel)
        if rel.is_absolute():
            raise ValueError(f"refusing store path {str(rel)!r}: it is absolute")
        if not rel.parts or ".." in rel.parts:
            raise ValueError(f"refusing store path {str(rel)!r}: it must name a file below store/")
        if rel.parts[0] in RESERVED:
            raise ValueError(
                f"refusing store path {str(rel)!r}: {rel.parts[0]!r} is a folder reserved by syncd"
            )
        return free_path(self.store_dir.joinpath(*rel.parts))

    def move_in(self, src: Path, dest: Path) -> None:
        """Move ``src`` (in sync/) to ``dest`` (in store/) atomically; see :meth:`move_to`."""
        self._move(src, dest, self.store_dir)

    def move_to(self, src: Path, dest: Path) -> None:
        """Move ``src`` to ``dest`` inside <data> atomically, as a private (0600) file.

        Raises :class:`RejectFile` if ``src`` is a symlink or not a regular file,
        :class:`FileExistsError` if ``dest`` exists, :class:`ValueError` if ``dest`` is
        outside <data>. Parent folders are created 0700.
        """
        self._move(src, dest, self._data)

    def dated_name(self, directory: Path, name: str, when: datetime) -> Path:
        """``directory/YYYYmmdd-HHMMSS_<basename>``, with -2, -3… before the extension if taken."""
        base = name.replace("\\", "/").rsplit("/", 1)[-1]
        if base in ("", ".", ".."):
            raise ValueError(f"cannot make a dated name from {name!r}: no file name in it")
        return free_path(directory / f"{when:%Y%m%d-%H%M%S}_{base}")

    def write_private(self, path: Path, chunks: Iterable[bytes]) -> None:
        """Write ``path`` atomically (hidden temp, fsync, rename, fsync of the folder), 0600.

        An existing ``path`` is replaced in one step; pick a free name with
        :meth:`dated_name` when nothing may be overwritten. On error no temp file is left.
        """
        path = Path(os.path.abspath(path))
        self._make_dirs(path.parent, _PRIVATE_DIR)
        fd, tmp = _temp_in(path.parent, path.name)
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        _fsync_dir(path.parent)

    def open_private(self, path: Path) -> BinaryIO:
        """Create a new private (0600) file for a streamed write; refuses an existing ``path``."""
        path = Path(os.path.abspath(path))
        self._make_dirs(path.parent, _PRIVATE_DIR)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(path, flags, _PRIVATE_FILE)
        os.fchmod(fd, _PRIVATE_FILE)
        return os.fdopen(fd, "wb")

    # -- internals -------------------------------------------------------------------

    def _move(self, src: Path, dest: Path, within: Path) -> None:
        src, dest = Path(os.path.abspath(src)), Path(os.path.abspath(dest))
        if not dest.is_relative_to(within) or dest == within:
            raise ValueError(f"refusing to move {src} to {dest}: outside {within}")
        mode = os.lstat(src).st_mode
        if stat.S_ISLNK(mode):
            raise RejectFile(f"{src}: is a symbolic link; syncd never follows links")
        if not stat.S_ISREG(mode):
            raise RejectFile(f"{src}: is not a regular file")
        if os.path.lexists(dest):
            raise FileExistsError(errno.EEXIST, "refusing to overwrite", str(dest))
        self._make_dirs(dest.parent, _PRIVATE_DIR)
        try:
            self._rename(src, dest)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            self._copy_across(src, dest)
        # The file has moved: from here on a failure must not look like a failed move.
        try:
            os.chmod(dest, _PRIVATE_FILE)
            _fsync_dir(dest.parent)
            _fsync_dir(src.parent)
        except OSError as exc:
            _log().warning("move_not_sealed", path=str(dest), error=str(exc))

    def _copy_across(self, src: Path, dest: Path) -> None:
        """The cross-filesystem move: copy to a hidden temp, fsync, rename, unlink ``src``."""
        src_fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(src_fd, "rb") as fin:
            st = os.fstat(fin.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise RejectFile(f"{src}: is not a regular file")
            fd, tmp = _temp_in(dest.parent, dest.name)
            try:
                with os.fdopen(fd, "wb") as fout:
                    shutil.copyfileobj(fin, fout, _COPY_CHUNK)
                    fout.flush()
                    os.fsync(fout.fileno())
                os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))  # keep arrival order
                self._publish(tmp, dest)
            except BaseException:
                with contextlib.suppress(OSError):
                    tmp.unlink()
                raise
        _fsync_dir(dest.parent)
        try:
            os.unlink(src)
        except OSError:
            dest.unlink()  # keep the file in exactly one place, then report the failure
            raise

    @staticmethod
    def _publish(tmp: Path, dest: Path) -> None:
        """Give ``tmp`` its final name without ever replacing an existing ``dest``."""
        try:
            os.link(tmp, dest)  # fails with EEXIST instead of replacing: no race
        except FileExistsError:
            raise
        except OSError:  # no hard links on this filesystem: check, then rename
            if os.path.lexists(dest):
                raise FileExistsError(errno.EEXIST, "refusing to overwrite", str(dest)) from None
            os.rename(tmp, dest)
            return
        tmp.unlink()

    @staticmethod
    def _make_dirs(folder: Path, mode: int) -> None:
        """Create ``folder`` and missing parents with exactly ``mode``; existing ones untouched."""
        missing: list[Path] = []
        current = folder
        while not current.is_dir():
            missing.append(current)
            if current.parent == current:
                break
            current = current.parent
        for path in reversed(missing):
            try:
                os.mkdir(path, mode)
            except FileExistsError:
                if not path.is_dir():
                    raise
                continue
            os.chmod(path, mode)  # the umask may have taken bits we need (sync/ g+rwx)

    @staticmethod
    def _warn_if_open(folder: Path) -> None:
        mode = stat.S_IMODE(folder.stat().st_mode)
        if mode & 0o077:
            _log().warning(
                "folder_mode_kept", path=str(folder), mode=oct(mode),
                note="readable by others; syncd never loosens nor changes existing modes",
            )
