"""The SFTP requests of one session, answered inside the account's jail.

Uploads: an open for writing creates a hidden ``.<name>.filepart`` next to the target
(intake ignores it; ``O_EXCL``, 0600) and writes land there. Only when the client
*closes* the file is it fsynced and renamed to its name; a connection that drops with
the file open leaves nothing visible (paramiko closes the handles of a dropped session
after ``session_ended``, which marks them aborted). A name that is taken is refused at
open unless the account may ``overwrite``; if another upload took it meanwhile, the file
is published as ``name-2.ext`` rather than lost.

Refused: writes past ``max_file_size`` (the upload is then discarded), resuming a partial
file, symlinks (creating or following), ``..``, the uploads in progress, and every
operation the account's permissions do not list. Each refusal is logged.
"""

from __future__ import annotations

import os
import secrets
import stat
import struct
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from paramiko import Message, SFTPAttributes, SFTPError, SFTPHandle, SFTPServer, SFTPServerInterface
from paramiko.sftp import (
    CMD_EXTENDED,
    CMD_EXTENDED_REPLY,
    CMD_INIT,
    CMD_VERSION,
    SFTP_FAILURE,
    SFTP_NO_SUCH_FILE,
    SFTP_OK,
    SFTP_OP_UNSUPPORTED,
    SFTP_PERMISSION_DENIED,
    int64,
)

from syncd.sftp.accounts import Account
from syncd.sftp.jail import RESULTS, Jail, JailError, canonical, is_upload_temp, split
from syncd.sftp.session import Session

if TYPE_CHECKING:
    from typing_extensions import Buffer

T = TypeVar("T")
_CODES = {"denied": SFTP_PERMISSION_DENIED, "missing": SFTP_NO_SUCH_FILE, "failed": SFTP_FAILURE}
#: the largest SFTP request we announce (OpenSSH's own sftp-server uses 256 KiB too)
MAX_REQUEST = 256 * 1024
LIMITS_EXTENSION = "limits@openssh.com"
SFTP_VERSION = 3
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def temp_names(name: str) -> list[str]:
    """Hidden names an upload of ``name`` is written under, first choice first."""
    return [f".{name}.filepart", f".{name}.{secrets.token_hex(4)}.filepart"]


def free_name(taken: Callable[[str], bool], name: str) -> str:
    """``name``, or ``stem-2.ext``, ``stem-3.ext``… the first one not taken."""
    stem, dot, ext = name.rpartition(".")
    if not stem:
        stem, dot, ext = name, "", ""
    candidate, n = name, 1
    while taken(candidate):
        n += 1
        candidate = f"{stem}-{n}{dot}{ext}"
    return candidate


class UploadHandle(SFTPHandle):
    """A file being uploaded: written under a hidden name, published on a clean close."""

    def __init__(self, sftp: JailedSftp, vpath: str, dir_fd: int, name: str, temp: str, fd: int) -> None:
        super().__init__(os.O_WRONLY)
        self._sftp, self._vpath, self._dir, self._fd = sftp, vpath, dir_fd, fd
        self._name, self._temp = name, temp
        self._size = 0
        self._too_big = False
        self._closed = False

    def write(self, offset: int, data: Buffer) -> int:
        """Write at ``offset``; refused (and the upload discarded) past the size limit."""
        end = offset + len(memoryview(data))
        limit = self._sftp.account.max_file_size
        if end > limit:
            if not self._too_big:
                self._sftp.session.refuse("write", self._vpath, f"file larger than max_file_size {limit}")
            self._too_big = True
            return SFTP_FAILURE
        os.pwrite(self._fd, data, offset)
        self._size = max(self._size, end)
        return SFTP_OK

    def stat(self) -> SFTPAttributes | int:
        """The upload's attributes so far."""
        return SFTPAttributes.from_stat(os.fstat(self._fd))

    def chattr(self, attr: SFTPAttributes) -> int:
        """Only times are applied (modes and owners stay syncd's)."""
        if attr.st_atime is not None and attr.st_mtime is not None:
            os.utime(self._fd, (attr.st_atime, attr.st_mtime))
        return SFTP_OK

    def close(self) -> None:
        """Publish the file if the client closed it cleanly, else discard it."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._sftp.ending or self._too_big:
                os.unlink(self._temp, dir_fd=self._dir)
                reason = "too large" if self._too_big else "connection dropped before close"
                self._sftp.session.file_done(self._vpath, self._size, "aborted", reason=reason)
                return
            os.fsync(self._fd)
            final = self._name
            if not self._sftp.account.may("overwrite"):
                final = free_name(lambda n: _exists(self._dir, n), self._name)
            os.rename(self._temp, final, src_dir_fd=self._dir, dst_dir_fd=self._dir)
            renamed = {"published_as": final} if final != self._name else {}
            self._sftp.session.file_done(self._vpath, self._size, "complete", **renamed)
        except OSError as exc:
            self._sftp.session.file_done(self._vpath, self._size, "failed", error=str(exc))
        finally:
            os.close(self._fd)
            os.close(self._dir)


class ReadHandle(SFTPHandle):
    """A file opened for reading (``read`` or ``results`` permission)."""

    def __init__(self, sftp: JailedSftp, vpath: str, fd: int) -> None:
        super().__init__(os.O_RDONLY)
        self._sftp, self._vpath, self._fd = sftp, vpath, fd
        self._sent = 0
        self._closed = False

    def read(self, offset: int, length: int) -> bytes | int:
        """Up to ``length`` bytes at ``offset`` (empty at the end: EOF)."""
        data = os.pread(self._fd, length, offset)
        self._sent += len(data)
        return data

    def stat(self) -> SFTPAttributes | int:
        """The file's attributes."""
        return SFTPAttributes.from_stat(os.fstat(self._fd))

    def close(self) -> None:
        """Close the file and log what was sent."""
        if not self._closed:
            self._closed = True
            os.close(self._fd)
            self._sftp.session.file_done(self._vpath, self._sent, "read")


def _exists(dir_fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


class JailedSftp(SFTPServerInterface):
    """paramiko's SFTP request interface, answered inside the logged-in account's jail."""

    def __init__(self, server: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(server, *args, **kwargs)
        self.session: Session = server.session
        account = self.session.account
        if account is None:  # paramiko starts subsystems only after authentication
            raise RuntimeError("SFTP subsystem without an authenticated account")
        self.account: Account = account
        self.jail = Jail(account.root)
        self.ending = False
        self.session.subsystem_started()

    def session_ended(self) -> None:
        """The channel closed: handles still open now belong to a dropped upload."""
        self.ending = True

    def _guard(self, op: str, path: str, work: Callable[[], T]) -> T | int:
        try:
            return work()
        except JailError as exc:
            self.session.refuse(op, path, exc.reason, quiet=exc.code == "missing")
            return _CODES[exc.code]
        except OSError as exc:
            self.session.refuse(op, path, exc.strerror or str(exc))
            return SFTP_FAILURE

    def _need(self, permission: str) -> None:
        if not self.account.may(permission):
            raise JailError("denied", f"account may not {permission}")

    def _local(self, path: str, permission: str) -> tuple[str, ...]:
        """The parts of a path in the account's own folder (not _results/, not an upload)."""
        parts = split(path)
        if parts and parts[0] == RESULTS:
            raise JailError("denied", "_results/ is read-only")
        if parts and is_upload_temp(parts[-1]):
            raise JailError("denied", "an upload in progress")
        self._need(permission)
        return parts

    def canonicalize(self, path: str) -> str:
        """The absolute virtual path (``/`` is the jail)."""
        return canonical(path)

    def open(self, path: str, flags: int, attr: SFTPAttributes) -> SFTPHandle | int:
        """Open for upload (hidden temp, published on close) or for reading."""
        if flags & _WRITE_FLAGS:
            return self._guard("put", path, lambda: self._open_upload(path, flags))
        return self._guard("get", path, lambda: self._open_read(path))

    def _open_upload(self, path: str, flags: int) -> SFTPHandle:
        parts = self._local(path, "upload")
        try:
            existing = self.jail.lstat(parts)
        except JailError:
            existing = None
        if existing is not None:
            if not self.account.may("overwrite") or not stat.S_ISREG(existing.st_mode):
                raise JailError("denied", "file exists (the account may not overwrite)")
            if not flags & os.O_TRUNC:
                raise JailError("denied", "resuming a partial upload is not supported; send the whole file")
        with self.jail.parent(parts) as (parent_fd, name):
            dir_fd = os.dup(parent_fd)
        try:
            for temp in temp_names(name):
                try:
                    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                                 0o600, dir_fd=dir_fd)
                    return UploadHandle(self, canonical(path), dir_fd, name, temp, fd)
                except FileExistsError:
                    continue
            raise JailError("failed", "another upload of this name is in progress")
        except BaseException:
            os.close(dir_fd)
            raise

    def _open_read(self, path: str) -> SFTPHandle:
        parts = split(path)
        if parts[:1] == (RESULTS,):
            fd = os.open(self._result(parts), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            return ReadHandle(self, canonical(path), fd)
        parts = self._local(path, "read")
        return ReadHandle(self, canonical(path), self.jail.open_file(parts, os.O_RDONLY))

    def _result(self, parts: tuple[str, ...]) -> Path:
        self._need("results")
        found = self.session.results(self.account.folder)
        if len(parts) != 2 or parts[1] not in found:
            raise JailError("missing", "no such report")
        return found[parts[1]]

    def list_folder(self, path: str) -> list[SFTPAttributes] | int:
        """The folder's entries (uploads in progress hidden; _results/ for its accounts)."""
        return self._guard("ls", path, lambda: self._list(path))

    def _list(self, path: str) -> list[SFTPAttributes]:
        parts = split(path)
        if parts[:1] == (RESULTS,):
            self._need("results")
            if len(parts) > 1:
                raise JailError("missing", "no such folder")
            found = self.session.results(self.account.folder)
            return [SFTPAttributes.from_stat(os.stat(p), n) for n, p in sorted(found.items()) if p.is_file()]
        parts = self._local(path, "list")
        listing = [SFTPAttributes.from_stat(st, name) for name, st in self.jail.entries(parts)]
        if not parts and self.account.may("results"):
            listing.append(SFTPAttributes.from_stat(os.stat(self.account.root), RESULTS))
        return listing

    def stat(self, path: str) -> SFTPAttributes | int:
        """An entry's attributes (symlinks are not followed)."""
        return self.lstat(path)

    def lstat(self, path: str) -> SFTPAttributes | int:
        """An entry's own attributes."""
        return self._guard("stat", path, lambda: self._stat(path))

    def _stat(self, path: str) -> SFTPAttributes:
        parts = split(path)
        if parts[:1] == (RESULTS,):
            target = self.account.root if len(parts) == 1 else self._result(parts)
            self._need("results")
            return SFTPAttributes.from_stat(os.stat(target))
        if parts and is_upload_temp(parts[-1]):
            raise JailError("missing", "no such file")
        return SFTPAttributes.from_stat(self.jail.lstat(parts))

    def remove(self, path: str) -> int:
        """Delete a file (``delete`` permission)."""
        return self._guard("rm", path, lambda: self._remove(path))

    def _remove(self, path: str) -> int:
        parts = self._local(path, "delete")
        if not stat.S_ISREG(self.jail.lstat(parts).st_mode):
            raise JailError("denied", "not a regular file")
        with self.jail.parent(parts) as (fd, name):
            os.unlink(name, dir_fd=fd)
        return SFTP_OK

    def rename(self, oldpath: str, newpath: str) -> int:
        """Rename one of the account's files (``upload``; onto a taken name only with ``overwrite``)."""
        return self._guard("rename", f"{oldpath} -> {newpath}", lambda: self._rename(oldpath, newpath))

    def posix_rename(self, oldpath: str, newpath: str) -> int:
        """As :meth:`rename` (the same overwrite rule)."""
        return self.rename(oldpath, newpath)

    def _rename(self, oldpath: str, newpath: str) -> int:
        src, dest = self._local(oldpath, "upload"), self._local(newpath, "upload")
        if not stat.S_ISREG(self.jail.lstat(src).st_mode):
            raise JailError("denied", "only files can be renamed")
        with self.jail.parent(src) as (src_fd, src_name), self.jail.parent(dest) as (dest_fd, dest_name):
            if _exists(dest_fd, dest_name) and not self.account.may("overwrite"):
                raise JailError("denied", "target exists (the account may not overwrite)")
            os.rename(src_name, dest_name, src_dir_fd=src_fd, dst_dir_fd=dest_fd)
        return SFTP_OK

    def mkdir(self, path: str, attr: SFTPAttributes) -> int:
        """Make a folder (``mkdir`` permission; mode 0700 whatever the client asks)."""
        def work() -> int:
            with self.jail.parent(self._local(path, "mkdir")) as (fd, name):
                os.mkdir(name, 0o700, dir_fd=fd)
            return SFTP_OK
        return self._guard("mkdir", path, work)

    def rmdir(self, path: str) -> int:
        """Remove an empty folder (``delete`` permission)."""
        def work() -> int:
            with self.jail.parent(self._local(path, "delete")) as (fd, name):
                os.rmdir(name, dir_fd=fd)
            return SFTP_OK
        return self._guard("rmdir", path, work)

    def chattr(self, path: str, attr: SFTPAttributes) -> int:
        """Set a file's times (``upload``); modes and owners are never changed."""
        def work() -> int:
            parts = self._local(path, "upload")
            if attr.st_atime is not None and attr.st_mtime is not None:
                fd = self.jail.open_file(parts, os.O_RDONLY)
                try:
                    os.utime(fd, (attr.st_atime, attr.st_mtime))
                finally:
                    os.close(fd)
            return SFTP_OK
        return self._guard("setstat", path, work)

    def symlink(self, target_path: str, path: str) -> int:
        """Always refused: no symlinks in a jail."""
        self.session.refuse("symlink", f"{path} -> {target_path}", "symlinks are not allowed")
        return SFTP_PERMISSION_DENIED

    def readlink(self, path: str) -> str | int:
        """Always refused: symlinks are never followed or shown."""
        self.session.refuse("readlink", path, "symlinks are not followed")
        return SFTP_OP_UNSUPPORTED


class AuditedSftpServer(SFTPServer):
    """paramiko's SFTP subsystem, telling the session when its files are all closed.

    It also answers OpenSSH's ``limits@openssh.com`` extension (and advertises only
    that): OpenSSH clients then write 255 KiB per request instead of 32 KiB, which made
    uploads about 1.8x faster (bench/bench_sftp.py). paramiko has no public hook for
    extensions, so this overrides two of its private methods; the OpenSSH-client tests
    exercise both. ``check-file`` is no longer advertised (still answered, read handles only).
    """

    def _send_server_version(self) -> int:
        kind, data = self._read_packet()  # type: ignore[attr-defined]
        if kind != CMD_INIT:
            raise SFTPError("Incompatible sftp protocol")
        version: int = struct.unpack(">I", data[:4])[0]
        msg = Message()
        msg.add_int(SFTP_VERSION)
        msg.add_string(LIMITS_EXTENSION)
        msg.add_string("1")
        self._send_packet(CMD_VERSION, msg)  # type: ignore[attr-defined]
        return version

    def _process(self, t: int, request_number: int, msg: Message) -> None:
        if t == CMD_EXTENDED:
            start = msg.packet.tell()
            if msg.get_text() == LIMITS_EXTENSION:
                length = int64(MAX_REQUEST - 1024)  # room for the request's own header
                self._response(  # type: ignore[attr-defined]
                    request_number, CMD_EXTENDED_REPLY, int64(MAX_REQUEST), length, length, int64(0),
                )
                return
            msg.packet.seek(start)
        super()._process(t, request_number, msg)  # type: ignore[misc]

    def finish_subsystem(self) -> None:
        """Close the subsystem (paramiko closes the open handles), then tell the session."""
        try:
            super().finish_subsystem()
        finally:
            sftp = self.server
            if isinstance(sftp, JailedSftp):
                sftp.session.subsystem_finished()
