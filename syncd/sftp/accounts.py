"""Accounts of the embedded SFTP server, and failed-login throttling per source address.

Keys are compared as their public key blobs; passwords against the scrypt hash made by
``syncd hash-password`` (constant-time). Neither is ever logged: events carry the
account name, the address, the method and, on success, the key's SHA256 fingerprint.

Throttling: every failed password, and every connection that leaves unauthenticated
after a key was refused, counts one failure for its address. ``max_failures`` within
``window`` seconds bans the address for ``ban_time`` seconds: its connections are closed
at once and its login attempts on open connections fail without being checked.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from syncd.passwords import verify_password
from syncd.sftp.settings import SftpAccountSettings, check_key_line, jail_folder


@dataclass(frozen=True, slots=True)
class Account:
    """An account as the server uses it."""

    name: str
    folder: str
    root: Path
    keys: frozenset[bytes]
    password_hash: str
    permissions: frozenset[str]
    max_file_size: int

    def may(self, permission: str) -> bool:
        """Whether the account has ``permission``."""
        return permission in self.permissions

    def key_allowed(self, blob: bytes) -> bool:
        """Whether the public key ``blob`` is one of the account's."""
        return blob in self.keys

    def password_ok(self, plain: str) -> bool:
        """Whether ``plain`` matches the account's password hash (False if it has none)."""
        return bool(self.password_hash) and verify_password(plain, self.password_hash)


def build_accounts(specs: Iterable[SftpAccountSettings], sync_dir: Path) -> dict[str, Account]:
    """The configured accounts by name, each jailed in ``sync/<folder>``."""
    accounts = {}
    for spec in specs:
        folder = jail_folder(f"sftp.account[{spec.name}].folder", spec.folder, allow_root=False)
        keys = frozenset(check_key_line(f"sftp.account[{spec.name}].keys", line)[1] for line in spec.keys)
        accounts[spec.name] = Account(
            name=spec.name, folder=str(folder), root=sync_dir / folder, keys=keys,
            password_hash=spec.password_hash, permissions=frozenset(spec.permissions),
            max_file_size=spec.max_file_size,
        )
    return accounts


class AuthThrottle:
    """Counts failed logins per address and bans an address that fails too often."""

    def __init__(
        self, max_failures: int, window: float, ban_time: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max = max_failures
        self._window = window
        self._ban_time = ban_time
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._banned: dict[str, float] = {}
        self._lock = threading.Lock()

    def banned(self, address: str) -> bool:
        """Whether ``address`` is banned right now."""
        with self._lock:
            until = self._banned.get(address)
            if until is None:
                return False
            if self._clock() >= until:
                del self._banned[address]
                return False
            return True

    def failed(self, address: str) -> bool:
        """Count one failure for ``address``; True if this failure got it banned."""
        now = self._clock()
        with self._lock:
            recent = self._failures.setdefault(address, deque())
            recent.append(now)
            while recent and recent[0] <= now - self._window:
                recent.popleft()
            if len(recent) < self._max or self._ban_time <= 0:
                return False
            self._banned[address] = now + self._ban_time
            del self._failures[address]
            return True

    def succeeded(self, address: str) -> None:
        """A successful login clears the address's failures."""
        with self._lock:
            self._failures.pop(address, None)
