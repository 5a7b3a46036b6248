"""The remote side of a pull: client key, ``known_hosts``, the SSH session and remote file operations.

The host key is checked against the configured ``known_hosts`` file only (never the
system's or the user's files, never added automatically): a host with no entry, or
with a different key, is refused before any authentication. Only the configured client
key is offered (no agent, no ``~/.ssh`` keys).
"""

from __future__ import annotations

import posixpath
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import NoReturn

import paramiko
from paramiko.hostkeys import HostKeyEntry

from syncd.domain import ConfigError, SyncdError
from syncd.sftp.settings import SftpPullSettings

#: created remote folders (the archive): the outbox may hold passwords
_PRIVATE_DIR = 0o700
_MAX_ARCHIVE_TRIES = 1000
#: read requests in flight per download (x 32 KiB): fast on long links, bounded memory
_PREFETCH_REQUESTS = 128


class HostKeyRefused(paramiko.SSHException):
    """The server's host key is not in ``known_hosts`` for this host, or differs from it."""


class _RefuseUnknown(paramiko.RejectPolicy):
    """paramiko's RejectPolicy, raising a typed error that names the offered key's fingerprint."""

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> NoReturn:
        raise HostKeyRefused(
            f"{hostname} offered host key {key.get_name()} {key.fingerprint}, which known_hosts does not list"
        )


def host_key_name(host: str, port: int) -> str:
    """How ``known_hosts`` names ``host:port`` (``[host]:port`` unless the port is 22)."""
    return host if port == 22 else f"[{host}]:{port}"


def load_client_key(path: Path, where: str) -> paramiko.PKey:
    """The private key at ``path`` (Ed25519, ECDSA or RSA, no passphrase); ConfigError naming ``where``."""
    try:
        return paramiko.PKey.from_path(path)
    except (TypeError, paramiko.PasswordRequiredException):
        raise ConfigError(
            f"{where}: {path} is protected by a passphrase; syncd needs a key without one "
            "(make a dedicated key: ssh-keygen -t ed25519 -N '' -f FILE)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {path}: {exc.strerror or exc}") from None
    except Exception:  # cryptography/paramiko parse errors; their text is not repeated
        raise ConfigError(
            f"{where}: {path} is not an Ed25519, ECDSA or RSA private key in OpenSSH or PEM format"
        ) from None


def read_known_hosts(path: Path, where: str) -> list[HostKeyEntry]:
    """The entries of an OpenSSH ``known_hosts`` file; ConfigError on a bad file or line.

    Lines with key types paramiko cannot use are passed over; ``@cert-authority`` and
    ``@revoked`` markers are refused, since paramiko would silently ignore a revocation.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: {path} is not a text file") from None
    entries: list[HostKeyEntry] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("@"):
            raise ConfigError(f"{where}: {path} line {lineno}: markers (@revoked, @cert-authority) "
                              "are not supported")
        if len(line.split()) < 3:
            raise ConfigError(f"{where}: {path} line {lineno}: '<hosts> <key type> <base64 key>' expected")
        try:
            entry = HostKeyEntry.from_line(line, lineno)
        except Exception:
            raise ConfigError(f"{where}: {path} line {lineno}: not a valid known_hosts entry") from None
        if entry is not None:
            entries.append(entry)
    return entries


def host_keys(entries: list[HostKeyEntry], keys: paramiko.HostKeys | None = None) -> paramiko.HostKeys:
    """``keys`` (default: a new, empty ``HostKeys``) with ``entries`` added (hashed host names too)."""
    keys = keys if keys is not None else paramiko.HostKeys()
    for entry in entries:
        for name in entry.hostnames:
            keys.add(name, entry.key.get_name(), entry.key)
    return keys


def require_host(entries: list[HostKeyEntry], host: str, port: int, path: Path, where: str) -> None:
    """ConfigError unless ``entries`` hold at least one key for ``host:port``."""
    name = host_key_name(host, port)
    if host_keys(entries).lookup(name) is None:
        raise ConfigError(
            f"{where}: {path} has no key for {name} (add one, after checking its fingerprint "
            f"with the remote's admin: ssh-keyscan -p {port} {host})"
        )


def archive_names(name: str, when: datetime) -> Iterator[str]:
    """Names to try for ``name`` in the remote archive: as is, then ``stem-YYYYmmdd-HHMMSS[-N].ext``."""
    yield name
    stem, ext = _split(name)
    stamp = when.strftime("%Y%m%d-%H%M%S")
    yield f"{stem}-{stamp}{ext}"
    for n in range(2, _MAX_ARCHIVE_TRIES):
        yield f"{stem}-{stamp}-{n}{ext}"


def _split(name: str) -> tuple[str, str]:
    dot = name.rfind(".")
    return (name, "") if dot <= 0 else (name[:dot], name[dot:])


@dataclass(frozen=True, slots=True)
class RemoteFile:
    """One entry of the remote folder, as listed (lstat: links are not followed)."""

    name: str
    size: int | None
    mtime: int | None
    mode: int

    @property
    def is_file(self) -> bool:
        """A regular file (not a folder, link, device...)."""
        return stat.S_ISREG(self.mode)

    @property
    def is_dir(self) -> bool:
        """A folder."""
        return stat.S_ISDIR(self.mode)

    @classmethod
    def of(cls, name: str, attr: paramiko.SFTPAttributes) -> RemoteFile:
        """From the attributes the server sent (any may be missing)."""
        return cls(name, attr.st_size, attr.st_mtime, attr.st_mode or 0)


class RemoteFolder:
    """One SFTP session on the remote outbox; close it (or use ``with``)."""

    def __init__(self, client: paramiko.SSHClient, sftp: paramiko.SFTPClient, folder: str) -> None:
        self._client, self._sftp, self._folder = client, sftp, folder

    @classmethod
    def connect(cls, spec: SftpPullSettings, key: paramiko.PKey, known: list[HostKeyEntry]) -> RemoteFolder:
        """Connect, check the host key, log in with ``key`` and open the SFTP channel."""
        client = paramiko.SSHClient()
        try:
            host_keys(known, client.get_host_keys())  # no load_system_host_keys(): known_hosts only
            client.set_missing_host_key_policy(_RefuseUnknown())
            client.connect(
                spec.host, port=spec.port, username=spec.user, pkey=key, look_for_keys=False,
                allow_agent=False, timeout=spec.timeout, banner_timeout=spec.timeout,
                auth_timeout=spec.timeout, channel_timeout=spec.timeout,
            )
            sftp = client.open_sftp()
            channel = sftp.get_channel()
            if channel is not None:
                channel.settimeout(spec.timeout)  # a stalled server raises instead of hanging the run
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise HostKeyRefused(
                f"the host key of {exc.hostname} changed: it offered {exc.key.get_name()} "
                f"{exc.key.fingerprint}, known_hosts has {exc.expected_key.fingerprint}"
            ) from None
        except BaseException:
            client.close()
            raise
        return cls(client, sftp, spec.remote_dir)

    def __enter__(self) -> RemoteFolder:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close the SFTP channel and the connection."""
        self._client.close()

    def alive(self) -> bool:
        """Whether the connection is still up (a failed file on a dead link ends the session)."""
        transport = self._client.get_transport()
        return transport is not None and transport.is_active()

    def path(self, name: str) -> str:
        """The remote path of ``name`` in the outbox."""
        return posixpath.join(self._folder, name)

    def listing(self) -> dict[str, RemoteFile]:
        """Every entry of the outbox by name."""
        return {a.filename: RemoteFile.of(a.filename, a) for a in self._sftp.listdir_attr(self._folder)}

    def lstat(self, name: str) -> RemoteFile:
        """The outbox entry ``name`` as it is now."""
        return RemoteFile.of(name, self._sftp.lstat(self.path(name)))

    def open(self, name: str, size: int) -> paramiko.SFTPFile:
        """``name`` opened for reading, ``size`` bytes requested ahead (pipelined download)."""
        handle = self._sftp.open(self.path(name), "rb")
        handle.prefetch(size, max_concurrent_requests=_PREFETCH_REQUESTS)
        return handle

    def remove(self, name: str) -> str:
        """Delete ``name`` from the outbox; returns what was done, for the log."""
        self._sftp.remove(self.path(name))
        return "deleted"

    def move(self, name: str, archive_dir: str, when: datetime) -> str:
        """Rename ``name`` into ``archive_dir`` (made 0700 if missing), never replacing a file there."""
        self._makedirs(archive_dir)
        for candidate in archive_names(name, when):
            dest = posixpath.join(archive_dir, candidate)
            if self._exists(dest):
                continue
            self._sftp.rename(self.path(name), dest)  # SFTP v3 rename fails if dest exists
            return f"moved to {dest}"
        raise SyncdError(f"no free name for {name!r} in the remote archive {archive_dir!r}")

    def _exists(self, path: str) -> bool:
        try:
            self._sftp.lstat(path)
        except FileNotFoundError:
            return False
        return True

    def _makedirs(self, folder: str) -> None:
        path = PurePosixPath(folder)
        for depth in range(1, len(path.parts) + 1):
            part = str(PurePosixPath(*path.parts[:depth]))
            if not self._exists(part):
                self._sftp.mkdir(part, _PRIVATE_DIR)
