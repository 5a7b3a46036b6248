"""An account's jail: client paths mapped below one folder, never through a symlink.

Client paths are virtual: ``/`` is the account's folder (``sync/<folder>``), relative
paths are taken from ``/``. A path with ``..``, a NUL byte or an empty name is refused
outright (not clamped: a client writing ``../x`` is told no, and it is logged). Every
operation walks from a descriptor of the jail root with ``openat``-style calls and
``O_NOFOLLOW | O_DIRECTORY`` at each step, so a symlink anywhere on the way — even one
swapped in between a check and a use — is refused by the kernel, not by a racy check.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: the virtual folder that shows the account's reports and tryback files (read-only)
RESULTS = "_results"

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class JailError(Exception):
    """A request the jail refuses; ``code`` is "denied", "missing" or "failed"."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def split(path: str) -> tuple[str, ...]:
    """The components of a client path below the jail root; JailError for ``..``/NUL."""
    if "\0" in path:
        raise JailError("denied", "NUL byte in path")
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise JailError("denied", "path escapes the jail ('..')")
    return tuple(parts)


def canonical(path: str) -> str:
    """The absolute virtual form of ``path`` (``/`` for the root), for SSH_FXP_REALPATH."""
    joined = posixpath.normpath(posixpath.join("/", path.replace("\\", "/") or "."))
    return "/" + joined.lstrip("/")


def is_upload_temp(name: str) -> bool:
    """Whether ``name`` is an upload still being written (``.<name>.filepart``; never listed)."""
    return name.startswith(".") and name.endswith(".filepart")


class Jail:
    """File operations below ``root``, each walked from the root without following links."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @contextmanager
    def folder(self, parts: tuple[str, ...]) -> Iterator[int]:
        """A descriptor of the folder ``parts`` (closed on exit); JailError if not a real folder."""
        fd = os.open(self.root, _DIR_FLAGS)
        try:
            for part in parts:
                try:
                    nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    raise JailError("missing", "no such folder") from None
                except NotADirectoryError:  # O_NOFOLLOW|O_DIRECTORY on a symlink says ENOTDIR
                    link = stat.S_ISLNK(os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode)
                    raise JailError(*(("denied", "symlinks are not followed") if link
                                      else ("missing", "not a folder"))) from None
                except OSError as exc:  # ELOOP: a symlink on the way
                    raise JailError("denied", _why(exc)) from None
                os.close(fd)
                fd = nxt
            yield fd
        finally:
            os.close(fd)

    @contextmanager
    def parent(self, parts: tuple[str, ...]) -> Iterator[tuple[int, str]]:
        """(descriptor of the containing folder, last name) of a non-root path."""
        if not parts:
            raise JailError("denied", "not allowed on the root folder")
        with self.folder(parts[:-1]) as fd:
            yield fd, parts[-1]

    def lstat(self, parts: tuple[str, ...]) -> os.stat_result:
        """The entry's own status (a symlink is reported as one, never followed)."""
        if not parts:
            return os.stat(self.root)
        with self.parent(parts) as (fd, name):
            try:
                return os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                raise JailError("missing", "no such file") from None

    def open_file(self, parts: tuple[str, ...], flags: int, mode: int = 0o600) -> int:
        """A descriptor of a regular file; symlinks, FIFOs and devices are refused."""
        with self.parent(parts) as (fd, name):
            try:
                handle = os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, mode, dir_fd=fd)
            except FileNotFoundError:
                raise JailError("missing", "no such file") from None
            except FileExistsError:
                raise JailError("denied", "file exists") from None
            except OSError as exc:
                raise JailError("denied", _why(exc)) from None
        if not stat.S_ISREG(os.fstat(handle).st_mode):
            os.close(handle)
            raise JailError("denied", "not a regular file")
        os.set_blocking(handle, True)
        return handle

    def entries(self, parts: tuple[str, ...]) -> list[tuple[str, os.stat_result]]:
        """(name, lstat) of every entry of a folder except uploads in progress, sorted."""
        with self.folder(parts) as fd:
            found = []
            for name in sorted(os.listdir(fd)):
                if is_upload_temp(name):
                    continue
                try:
                    found.append((name, os.stat(name, dir_fd=fd, follow_symlinks=False)))
                except FileNotFoundError:
                    continue
            return found


def _why(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "symlinks are not followed"
    return exc.strerror or type(exc).__name__
