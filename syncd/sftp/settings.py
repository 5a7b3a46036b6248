"""The ``[sftp.server]``, ``[[sftp.account]]`` and ``[[sftp.pull]]`` settings (SPEC §8).

Only shapes and values are checked here (no paramiko import): key *lines* must look like
``authorized_keys`` entries, folders must be usable jails under ``sync/``. Key files,
``known_hosts`` and the host key are opened when the daemon starts.

Decisions (README "SFTP"): an account's folder may not start with ``.`` or ``_`` at any
depth (intake would ignore what it receives), may not be a reserved store name, and no
account's folder may contain another's — a jail never sees a neighbour's uploads.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from syncd.confparse import names, section
from syncd.domain import ConfigError

#: what an account may do; "upload" includes renaming its own uploads (WinSCP's .filepart)
PERMISSIONS = ("upload", "list", "read", "delete", "mkdir", "overwrite", "results")
DEFAULT_PERMISSIONS = ("upload", "list")
RESERVED = ("archives", "reports", "tryback", "failed")
KEY_TYPES = (
    "ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
)
_ACCOUNT_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}")
GIB = 1 << 30


@dataclass(frozen=True, slots=True)
class SftpServerSettings:
    """The embedded SFTP server (off by default)."""

    enabled: bool = False
    address: str = "0.0.0.0"
    port: int = field(default=2222, metadata={"min": 1, "max": 65535})
    #: empty = <data>/state/sftp_host_ed25519_key, made on first start (0600), never replaced
    host_key: str = ""
    #: failed logins from one address within ``failure_window`` seconds before it is banned
    max_auth_failures: int = field(default=5, metadata={"min": 1})
    failure_window: float = field(default=600.0, metadata={"min": 1})
    ban_time: float = field(default=900.0, metadata={"min": 0})
    #: seconds a connection gets to authenticate
    login_timeout: float = field(default=30.0, metadata={"min": 1})
    max_connections: int = field(default=32, metadata={"min": 1})


@dataclass(frozen=True, slots=True)
class SftpAccountSettings:
    """One account of the embedded server, jailed in ``sync/<folder>``."""

    name: str
    folder: str
    #: ``authorized_keys`` lines (type, base64, optional comment; no options)
    keys: tuple[str, ...] = ()
    #: from ``syncd hash-password``; empty = no password login
    password_hash: str = ""
    permissions: tuple[str, ...] = DEFAULT_PERMISSIONS
    max_file_size: int = field(default=GIB, metadata={"min": 1})


@dataclass(frozen=True, slots=True)
class SftpPullSettings:
    """A remote SFTP outbox fetched into ``sync/<target>`` on a schedule."""

    name: str
    host: str
    user: str
    key_file: str
    known_hosts: str
    port: int = field(default=22, metadata={"min": 1, "max": 65535})
    remote_dir: str = "."
    glob: str = "*"
    cron: str = "*/5 * * * *"
    timezone: str = ""
    #: sub-folder of sync/ the files land in ("" = sync/ itself)
    target: str = ""
    #: what happens to a remote file once it is safely here
    after: str = field(default="delete", metadata={"choices": ("delete", "move")})
    archive_dir: str = ""
    #: remote files modified more recently than this (seconds) are left for the next run
    min_age: float = field(default=60.0, metadata={"min": 0})
    timeout: float = field(default=30.0, metadata={"min": 1})
    #: attempts after a failure in one run, waiting retry_delay, then 2x, 4x...
    retries: int = field(default=3, metadata={"min": 0})
    retry_delay: float = field(default=10.0, metadata={"min": 0})
    max_file_size: int = field(default=GIB, metadata={"min": 1})


@dataclass(frozen=True, slots=True)
class SftpSettings:
    """Everything under ``[sftp]``."""

    server: SftpServerSettings = SftpServerSettings()
    accounts: tuple[SftpAccountSettings, ...] = ()
    pulls: tuple[SftpPullSettings, ...] = ()


def parse_sftp(raw: Any) -> SftpSettings:
    """The ``[sftp]`` table, validated; ConfigError names the bad key."""
    if not isinstance(raw, dict):
        raise ConfigError("sftp: must be a table")
    unknown = sorted(set(raw) - {"server", "account", "pull"})
    if unknown:
        raise ConfigError(f"sftp.{unknown[0]}: unknown key (allowed: account, pull, server)")
    server = section("sftp.server", SftpServerSettings, _table(raw.get("server", {}), "sftp.server"))
    accounts = tuple(_account(i, t) for i, t in enumerate(_tables(raw.get("account", []), "sftp.account")))
    pulls = tuple(_pull(i, t) for i, t in enumerate(_tables(raw.get("pull", []), "sftp.pull")))
    _unique("sftp.account", [a.name for a in accounts], "name")
    _unique("sftp.pull", [p.name for p in pulls], "name")
    _no_nesting(accounts)
    if server.enabled and not accounts:
        raise ConfigError("sftp.server.enabled: the server needs at least one [[sftp.account]]")
    return SftpSettings(server=server, accounts=accounts, pulls=pulls)


def _table(raw: Any, key: str) -> Mapping[str, Any]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{key}: must be a table")
    return raw


def _tables(raw: Any, key: str) -> list[Mapping[str, Any]]:
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        raise ConfigError(f"{key}: must be an array of tables ([[{key}]])")
    return raw


def _required(key: str, table: Mapping[str, Any], names_: Sequence[str]) -> None:
    for name in names_:
        value = table.get(name)
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{key}.{name}: required, a non-empty string")


def _account(index: int, table: Mapping[str, Any]) -> SftpAccountSettings:
    key = f"sftp.account[{index}]"
    _required(key, table, ("name", "folder"))
    account: SftpAccountSettings = section(key, SftpAccountSettings, table)
    if not _ACCOUNT_NAME.fullmatch(account.name):
        raise ConfigError(f"{key}.name: letters, digits and _ . @ - only (got {account.name!r})")
    jail_folder(f"{key}.folder", account.folder, allow_root=False)
    for line in account.keys:
        check_key_line(f"{key}.keys", line)
    if account.password_hash and not _looks_like_hash(account.password_hash):
        raise ConfigError(f"{key}.password_hash: not a syncd hash (make one with `syncd hash-password`)")
    if not account.keys and not account.password_hash:
        raise ConfigError(f"{key}: give keys or password_hash (or both); the account could never log in")
    bad = sorted(set(account.permissions) - set(PERMISSIONS))
    if bad:
        raise ConfigError(f"{key}.permissions: unknown '{bad[0]}' (allowed: {names(PERMISSIONS)})")
    return account


def _pull(index: int, table: Mapping[str, Any]) -> SftpPullSettings:
    key = f"sftp.pull[{index}]"
    _required(key, table, ("name", "host", "user", "key_file", "known_hosts"))
    pull: SftpPullSettings = section(key, SftpPullSettings, table)
    if not _ACCOUNT_NAME.fullmatch(pull.name):
        raise ConfigError(f"{key}.name: letters, digits and _ . @ - only (got {pull.name!r})")
    jail_folder(f"{key}.target", pull.target, allow_root=True)
    if pull.after == "move" and not pull.archive_dir.strip():
        raise ConfigError(f"{key}.archive_dir: required when after = 'move'")
    if "/" in pull.glob:
        raise ConfigError(f"{key}.glob: a file-name pattern without '/' (got {pull.glob!r})")
    return pull


def jail_folder(key: str, value: str, *, allow_root: bool) -> PurePosixPath:
    """``value`` as a folder relative to sync/ that intake watches; ConfigError otherwise."""
    rel = PurePosixPath(value.strip().strip("/")) if value.strip() else PurePosixPath()
    if value.startswith("/") or ".." in rel.parts:
        raise ConfigError(f"{key}: a folder relative to sync/, without '..' (got {value!r})")
    if not rel.parts and not allow_root:
        raise ConfigError(f"{key}: required, a folder under sync/ (e.g. 'erp')")
    if any(part.startswith((".", "_")) for part in rel.parts):
        raise ConfigError(f"{key}: no part may start with '.' or '_' (intake ignores those) (got {value!r})")
    if rel.parts and rel.parts[0] in RESERVED:
        raise ConfigError(f"{key}: '{rel.parts[0]}' is reserved (got {value!r})")
    return rel


def check_key_line(key: str, line: str) -> tuple[str, bytes]:
    """(type, key blob) of an ``authorized_keys`` line; ConfigError naming the problem."""
    fields = line.split()
    if len(fields) < 2:
        raise ConfigError(f"{key}: '<type> <base64> [comment]' expected (got {line[:40]!r}...)")
    kind, data = fields[0], fields[1]
    if kind not in KEY_TYPES:
        raise ConfigError(
            f"{key}: key type {kind[:40]!r} not supported (allowed: {', '.join(KEY_TYPES)}; "
            "authorized_keys options are not supported)"
        )
    try:
        blob = base64.b64decode(data, validate=True)
        (length,) = struct.unpack(">I", blob[:4])
        embedded = blob[4 : 4 + length].decode("ascii")
    except (binascii.Error, struct.error, UnicodeDecodeError):
        raise ConfigError(f"{key}: the {kind} key is not valid base64 key data") from None
    if embedded != kind:
        raise ConfigError(f"{key}: the key data is a {embedded[:40]!r} key, the line says {kind}")
    return kind, blob


def _looks_like_hash(value: str) -> bool:
    parts = value.split("$")
    return len(parts) == 6 and parts[0] == "scrypt"


def _unique(key: str, values: Sequence[str], what: str) -> None:
    seen: set[str] = set()
    for i, value in enumerate(values):
        if value in seen:
            raise ConfigError(f"{key}[{i}].{what}: '{value}' is used twice")
        seen.add(value)


def _no_nesting(accounts: Sequence[SftpAccountSettings]) -> None:
    folders = [(a.name, jail_folder("", a.folder, allow_root=False)) for a in accounts]
    for name, folder in folders:
        for other, theirs in folders:
            if other != name and (folder == theirs or theirs.is_relative_to(folder)):
                raise ConfigError(
                    f"sftp.account: the folder of '{other}' ({theirs}) is inside the folder of "
                    f"'{name}' ({folder}); every account needs its own jail"
                )
