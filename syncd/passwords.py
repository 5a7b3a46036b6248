"""Salted password hashes for imported users: scrypt from :mod:`hashlib`.

An encoded hash reads ``scrypt$<cost>$<r>$<p>$<salt b64>$<hash b64>`` where ``cost`` is
log2 of scrypt's N. The cost is a setting (``[passwords] cost``, 10..20, default 14);
hashes made with an older cost still verify. ``hashlib.scrypt`` releases the GIL, so
callers may hash on several threads at once. Plain passwords are never logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

#: The ``password`` value meaning "this user has no password" (Moodle's convention).
NOPASS = "*NOPASS*"

DEFAULT_COST = 14
MIN_COST = 10
MAX_COST = 20

_R = 8
_P = 1
_SALT_BYTES = 16
_HASH_BYTES = 32
_SCHEME = "scrypt"


def check_cost(cost: int) -> int:
    """Return ``cost`` if it is an allowed log2(N), else raise ValueError naming it."""
    if isinstance(cost, bool) or not isinstance(cost, int) or not MIN_COST <= cost <= MAX_COST:
        raise ValueError(f"password cost must be an integer {MIN_COST}..{MAX_COST} (got {cost!r})")
    return cost


def _scrypt(plain: str, salt: bytes, cost: int, r: int, p: int, dklen: int) -> bytes:
    n = 1 << cost
    maxmem = 2 * 128 * r * n * p + (1 << 20)  # scrypt needs 128·r·N·p bytes; leave headroom
    return hashlib.scrypt(plain.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=dklen)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(plain: str, cost: int = DEFAULT_COST) -> str:
    """Hash ``plain`` with a fresh 16-byte random salt at scrypt cost ``2**cost``."""
    check_cost(cost)
    salt = os.urandom(_SALT_BYTES)
    digest = _scrypt(plain, salt, cost, _R, _P, _HASH_BYTES)
    return f"{_SCHEME}${cost}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_password(plain: str, encoded: str) -> bool:
    """Tell whether ``plain`` matches ``encoded`` (constant-time); False for a malformed hash."""
    parts = encoded.split("$")
    if len(parts) != 6 or parts[0] != _SCHEME:
        return False
    try:
        cost, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt = base64.b64decode(parts[4], validate=True)
        expected = base64.b64decode(parts[5], validate=True)
    except ValueError:  # binascii.Error is a ValueError
        return False
    # Refuse parameters no hash of ours has, rather than spend unbounded memory on them.
    if not (1 <= cost <= MAX_COST and 1 <= r <= 16 and 1 <= p <= 4) or not expected:
        return False
    try:
        digest = _scrypt(plain, salt, cost, r, p, len(expected))
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(digest, expected)
