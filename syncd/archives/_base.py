"""What the zip and tar back-ends of :mod:`syncd.archives.safe` share: the limits, the
error type, member-name rules, and the :class:`Archive` base with its bounded reads."""

from __future__ import annotations

import contextlib
import hashlib
import io
import lzma
import os
import re
import tarfile
import tempfile
import unicodedata
import zipfile
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, BinaryIO

from syncd.domain import RejectFile

MiB = 1 << 20
GiB = 1 << 30
CHUNK = 1 << 16
_PRIVATE_FILE = 0o600
_PRIVATE_DIR = 0o700
_DRIVE = re.compile(r"^[A-Za-z]:")

#: The default cap on one XML document (manifest, record) read from an archive.
MAX_XML_BYTES = 32 * MiB

#: Exceptions the decompressors and archive modules raise on bad data.
DATA_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile, tarfile.TarError, zlib.error, lzma.LZMAError, EOFError, OSError,
    NotImplementedError, ValueError,
)


class ArchiveError(RejectFile):
    """The archive, or one member of it, is refused; the message names both and the reason."""


@dataclass(frozen=True, slots=True)
class Limits:
    """What an archive may hold. Ratios (uncompressed / compressed) are checked per zip
    entry and for the whole archive, but only once the uncompressed size passes
    ``ratio_floor``: tiny files compress wildly (a page of spaces) and are harmless."""

    max_entries: int = 10_000
    max_total_bytes: int = 2 * GiB
    max_entry_bytes: int = 512 * MiB
    max_ratio: int = 200
    max_xml_bytes: int = MAX_XML_BYTES
    ratio_floor: int = 1 * MiB

    def ratio_exceeded(self, uncompressed: int, compressed: int) -> bool:
        """Tell whether ``uncompressed`` bytes from ``compressed`` is over the ratio limit."""
        return uncompressed > self.ratio_floor and uncompressed > self.max_ratio * max(compressed, 1)


def member_name(raw: str, *, directory: bool = False) -> str:
    """The normalised POSIX name of an archive member (NFC, no ``.`` or empty parts).

    Raises :class:`ValueError` with the reason for names that could point outside a
    destination folder or are ambiguous: absolute paths, ``..``, drive letters,
    backslashes, NUL and control characters, undecodable bytes. ``directory`` allows the
    empty name (a ``./`` entry).
    """
    if "\x00" in raw:
        raise ValueError("NUL byte in the name")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in raw):
        raise ValueError("control character in the name")
    if "\\" in raw:
        raise ValueError("backslash in the name (a Windows path?)")
    if _DRIVE.match(raw):
        raise ValueError("drive letter in the name")
    if raw.startswith("/"):
        raise ValueError("absolute path")
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("name is not valid UTF-8") from None
    parts = [part for part in raw.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ValueError("'..' in the path (zip-slip)")
    if not parts and not directory:
        raise ValueError("empty name")
    return unicodedata.normalize("NFC", "/".join(parts))


@dataclass(frozen=True, slots=True)
class Entry:
    """A regular-file member: its normalised name, declared size, and back-end handle."""

    name: str
    size: int
    ref: object


class Archive(ABC):
    """An opened, checked archive: named members can be read or copied, never extracted
    wholesale. Use as a context manager; every refusal raises :class:`ArchiveError`."""

    def __init__(self, path: Path, limits: Limits) -> None:
        self._path = path
        self._limits = limits
        self._entries: dict[str, Entry] = {}

    @property
    def label(self) -> str:
        """The archive's file name, as error messages show it."""
        return self._path.name

    @property
    def limits(self) -> Limits:
        """The limits this archive was opened with."""
        return self._limits

    def names(self) -> list[str]:
        """The normalised POSIX names of the regular-file members, in archive order."""
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def size(self, name: str) -> int:
        """The declared (and, on read, enforced) uncompressed size of member ``name``."""
        return self._entry(name).size

    def read(self, name: str, max_bytes: int) -> bytes:
        """The whole content of ``name``; refused when it declares more than ``max_bytes``."""
        entry = self._entry(name)
        if entry.size > max_bytes:
            raise self.error(name, f"{entry.size} bytes, over the limit of {max_bytes} for this member")
        with self.open(name) as stream:
            return stream.read()

    def open(self, name: str) -> BinaryIO:
        """A stream of ``name`` that fails (ArchiveError) on corrupt data, a CRC mismatch,
        or more or fewer bytes than the header declared."""
        entry = self._entry(name)
        try:
            inner = self._open_member(entry)
        except ArchiveError:
            raise
        except DATA_ERRORS as exc:
            raise self.error(name, f"cannot be read: {exc}") from None
        return io.BufferedReader(_MemberStream(inner, entry.size, self, name), CHUNK)

    def copy_to(self, name: str, dest: Path) -> str:
        """Write member ``name`` to ``dest`` (0600; hidden temp, fsync, rename) and return its
        sha256. Missing parent folders are created 0700. On any error nothing is left."""
        with self.open(name) as stream:
            return write_private(dest, iter_chunks(stream))

    def close(self) -> None:
        """Release the archive file."""
        self._close()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def error(self, member: str, reason: str) -> ArchiveError:
        """The ArchiveError for ``member`` of this archive."""
        return ArchiveError(f"{self.label}: member {member!r}: {reason}")

    # -- for the back-ends -----------------------------------------------------------

    def _add(self, raw: str, name: str, size: int, ref: object) -> None:
        if name in self._entries:
            raise self.error(raw, f"duplicate entry: {name!r} appears more than once")
        self._entries[name] = Entry(name, size, ref)

    def _check_size(self, raw: str, size: int, total: int) -> None:
        if size > self._limits.max_entry_bytes:
            raise self.error(raw, f"{size} bytes, over the entry limit of {self._limits.max_entry_bytes}")
        if total > self._limits.max_total_bytes:
            raise self.error(raw, f"the archive passes {self._limits.max_total_bytes} bytes in total "
                                  "(zip bomb?)")

    def _entry(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            raise self.error(name, "no such member") from None

    @abstractmethod
    def _open_member(self, entry: Entry) -> IO[bytes]:
        """A raw stream of ``entry``'s data (bounded by the caller)."""

    @abstractmethod
    def _close(self) -> None:
        """Release the back-end's resources."""


class _MemberStream(io.RawIOBase):
    """Counts the bytes of one member: more than declared, fewer at EOF, or a decoder
    error all raise ArchiveError naming the member."""

    def __init__(self, inner: IO[bytes], declared: int, archive: Archive, name: str) -> None:
        super().__init__()
        self._inner = inner
        self._declared = declared
        self._count = 0
        self._archive = archive
        self._name = name

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        try:
            data = self._inner.read(min(len(view), CHUNK))
        except ArchiveError:
            raise
        except DATA_ERRORS as exc:
            raise self._archive.error(self._name, f"corrupt or truncated data ({exc})") from None
        if not data:
            if self._count != self._declared:
                raise self._archive.error(
                    self._name, f"truncated: {self._count} of {self._declared} declared bytes")
            return 0
        self._count += len(data)
        if self._count > self._declared:
            raise self._archive.error(self._name, f"more data than the {self._declared} bytes declared")
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(*DATA_ERRORS):
                self._inner.close()
        super().close()


def _make_private_dirs(folder: Path) -> None:
    """Create ``folder`` and its missing parents with mode 0700."""
    missing: list[Path] = []
    current = folder
    while not current.is_dir():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, _PRIVATE_DIR)


def iter_chunks(stream: BinaryIO) -> Iterator[bytes]:
    """The chunks of ``stream`` until EOF."""
    return iter(lambda: stream.read(CHUNK), b"")


def write_private(dest: Path, chunks: Iterable[bytes]) -> str:
    """Write ``chunks`` to ``dest`` as a 0600 file (hidden temp in the same folder, fsync,
    rename; missing parents created 0700) and return their sha256. On any error, including
    one raised by ``chunks``, no file is left behind."""
    dest = Path(os.path.abspath(dest))
    _make_private_dirs(dest.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name[:100]}.", suffix=".tmp", dir=dest.parent)
    digest = hashlib.sha256()
    try:
        os.fchmod(fd, _PRIVATE_FILE)
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return digest.hexdigest()
