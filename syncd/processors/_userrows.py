"""Helpers of the users processor: rows → typed changes, and the batch's working set.

:func:`parse_row` turns one row into a fully validated :class:`UserChange` (no platform
access). Values are trimmed (the password excepted); a present column with an empty value
means "clear it" on update. Every error names the column and the value, never a password.

:class:`WorkingSet` holds the users a batch has loaded or created, indexed by key, and
writes them back in one ``update`` and one ``add``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from syncd.csvfile import parse_bool
from syncd.domain import RowError
from syncd.passwords import NOPASS
from syncd.platform.base import UserRecord, UserRepository
from syncd.processors.base import Row

IDENTITIES = ("idnumber", "username", "email")
MODES = ("create_or_update", "create_only", "update_only")

PROFILE_PREFIX = "profile_field_"
PROFILE_PATTERN = r"profile_field_[a-z0-9_]+"
#: Longest value of a short text column (the store's VARCHAR(255)); usernames: Moodle's 100.
MAX_TEXT = 255
MAX_USERNAME = 100

_USERNAME = re.compile(r"[a-z0-9_.@-]+")
_COUNTRY = re.compile(r"[A-Za-z]{2}")
_EMAIL = re.compile(r"[^@\s]+@([^@\s]+)")

#: Optional columns copied onto the user record after trimming.
PLAIN_TEXT = (
    "institution",
    "department",
    "city",
    "timezone",
    "phone1",
    "phone2",
    "address",
)
OPTIONAL = frozenset(
    {
        "idnumber",
        "email",
        "password",
        "auth",
        "country",
        "lang",
        "description",
        "suspended",
        "deleted",
        "oldusername",
        *PLAIN_TEXT,
    }
)


@dataclass(slots=True)
class UserChange:
    """What one valid row asks for.

    ``fields`` holds the new value of every UserRecord attribute whose column is present
    (username, password and deleted aside); ``profile`` maps a field to its new value,
    None meaning "remove it". ``password`` is None when absent or empty.
    """

    line: int
    username: str
    oldusername: str | None = None
    idnumber: str | None = None
    email: str | None = None
    password: str | None = None
    deleted: bool = False
    fields: dict[str, Any] = field(default_factory=dict)
    profile: dict[str, str | None] = field(default_factory=dict)

    @property
    def nopass(self) -> bool:
        """The row says the user has no password at all."""
        return self.password == NOPASS


def normalise_username(value: str, column: str = "username") -> str:
    """Trim and lowercase a username, or raise RowError naming the column and value."""
    name = value.strip().lower()
    if not _USERNAME.fullmatch(name) or len(name) > MAX_USERNAME:
        raise RowError(f"{column}: invalid username {value!r}")
    return name


def valid_email(value: str) -> bool:
    """One '@', a non-empty local part, a dotted domain, no whitespace."""
    match = _EMAIL.fullmatch(value)
    return match is not None and "." in match.group(1).strip(".")


def _too_long(column: str, value: str) -> RowError:
    return RowError(f"{column}: value longer than {MAX_TEXT} characters {value[:40]!r}…")


def _short(column: str, value: str) -> str:
    if len(value) > MAX_TEXT:
        raise _too_long(column, value)
    return value


def _email(value: str) -> str | None:
    if not value:
        return None
    if not valid_email(value):
        raise RowError(f"email: invalid email {value!r}")
    return _short("email", value)


def _country(value: str) -> str:
    if value and not _COUNTRY.fullmatch(value):
        raise RowError(f"country: invalid country {value!r} (two letters expected)")
    return value.upper()


def _bool(column: str) -> Callable[[str], bool]:
    return lambda value: parse_bool(value, column) if value else False


_deleted = _bool("deleted")

#: column → converter of its trimmed value, for the columns stored as they are.
_CONVERTERS: dict[str, Callable[[str], Any]] = {
    "email": _email,
    "auth": lambda v: _short("auth", v) or "manual",
    "country": _country,
    "lang": lambda v: _short("lang", v.lower()),
    "description": lambda v: v,
    "suspended": _bool("suspended"),
}
_NAMES = frozenset({"firstname", "lastname"})
#: short text columns stored as they are (the hot path: no call per value)
_PLAIN = frozenset(PLAIN_TEXT) | _NAMES


def parse_row(row: Row, identity: str) -> UserChange:
    """Validate ``row`` into a :class:`UserChange`; raise RowError on the first bad value."""
    values = row.values
    change = UserChange(line=row.line, username=normalise_username(values["username"]))
    change.deleted = _deleted(values.get("deleted", "").strip())
    fields = change.fields
    for column, raw in values.items():
        value = raw.strip()
        if column in _PLAIN:
            if len(value) > MAX_TEXT:
                raise _too_long(column, value)
            if value or column not in _NAMES:
                fields[column] = value
            elif not change.deleted:  # a deletion row needs no names
                raise RowError(f"{column}: empty value; a user must have a {column}")
        elif (convert := _CONVERTERS.get(column)) is not None:
            fields[column] = convert(value)
        elif column.startswith(PROFILE_PREFIX):
            change.profile[column.removeprefix(PROFILE_PREFIX)] = value or None
        elif column == "idnumber":
            _idnumber(change, value, identity)
        elif column == "oldusername" and value:
            change.oldusername = normalise_username(raw, "oldusername")
        elif column == "password" and raw.strip():
            change.password = raw
    change.email = change.fields.get("email")
    if identity == "email" and change.email is None:
        raise RowError(f"email: empty value {values.get('email', '')!r}; identity is email")
    return change


def _idnumber(change: UserChange, value: str, identity: str) -> None:
    change.idnumber = _short("idnumber", value) or None
    # With identity=idnumber an empty idnumber only means "find by username": keep the old one.
    if value or identity != "idnumber":
        change.fields["idnumber"] = change.idnumber


def keys_of(changes: list[UserChange], identity: str) -> Mapping[str, set[str]]:
    """Every key a batch may look up: usernames, idnumbers, and emails (identity email)."""
    usernames: set[str] = set()
    idnumbers: set[str] = set()
    emails: set[str] = set()
    for change in changes:
        usernames.add(change.username)
        if change.oldusername:
            usernames.add(change.oldusername)
        if change.idnumber:
            idnumbers.add(change.idnumber)
        if identity == "email" and change.email:
            emails.add(change.email)
    return {"usernames": usernames, "idnumbers": idnumbers, "emails": emails}


class WorkingSet:
    """The users one batch knows, indexed by username, idnumber and email (lowercased).

    Rows mutate records only through :meth:`add` and :meth:`change`, which keep the
    indexes true; :meth:`flush` writes changed existing users, then new ones.
    """

    def __init__(self, found: Iterable[UserRecord]) -> None:
        self.by_username: dict[str, UserRecord] = {}
        self.by_idnumber: dict[str, UserRecord] = {}
        self._by_email: dict[str, list[UserRecord]] = {}
        self._loaded: dict[int, tuple[str, str | None]] = {}  # id -> keys as stored
        self._new: list[UserRecord] = []
        self._changed: dict[int, UserRecord] = {}
        for user in found:
            assert user.id is not None
            self._loaded[user.id] = (user.username, user.idnumber)
            self._index(user)

    def with_email(self, email: str) -> list[UserRecord]:
        """Every known user with this email, compared case-insensitively."""
        return list(self._by_email.get(email.lower(), ()))

    def add(self, user: UserRecord) -> None:
        """Take in a new user (written by :meth:`flush`)."""
        self._new.append(user)
        self._index(user)

    def change(self, user: UserRecord, values: Mapping[str, Any], profile: dict[str, str]) -> None:
        """Set ``values`` and ``profile`` on a known user and re-index it."""
        self._unindex(user)
        for name, value in values.items():
            setattr(user, name, value)
        user.profile = profile
        self._index(user)
        if user.id is not None:
            self._changed[user.id] = user

    def flush(self, repo: UserRepository) -> None:
        """Write the batch: one update of changed users, then one add of new ones.

        Updating first frees the keys renamed away for new users. When a changed user
        takes a key another changed user held (a chain or a swap of usernames or
        idnumbers), the holders are first moved to placeholder keys, so that no write
        ever meets a unique constraint with a key on its way out.
        """
        vacating = self._vacating()
        if vacating:
            repo.update(vacating)
        if self._changed:
            repo.update(list(self._changed.values()))
        if self._new:
            repo.add(self._new)

    def _vacating(self) -> list[UserRecord]:
        """Placeholder copies of changed users whose stored key another existing user now takes."""
        placeholders: list[UserRecord] = []
        for user_id, user in self._changed.items():
            old_name, old_idnumber = self._loaded[user_id]
            holders = (
                self.by_username.get(old_name) if old_name != user.username else None,
                self.by_idnumber.get(old_idnumber) if old_idnumber not in (None, user.idnumber) else None,
            )
            if any(h is not None and h.id is not None for h in holders):
                placeholder = dataclasses.replace(user, username=f"#{user_id}#", idnumber=None)
                placeholder.profile = dict(user.profile)
                placeholders.append(placeholder)
        return placeholders

    def _index(self, user: UserRecord) -> None:
        self.by_username[user.username] = user
        if user.idnumber:
            self.by_idnumber[user.idnumber] = user
        if user.email:
            self._by_email.setdefault(user.email.lower(), []).append(user)

    def _unindex(self, user: UserRecord) -> None:
        if self.by_username.get(user.username) is user:
            del self.by_username[user.username]
        if user.idnumber and self.by_idnumber.get(user.idnumber) is user:
            del self.by_idnumber[user.idnumber]
        if user.email:
            key = user.email.lower()
            others = [u for u in self._by_email.get(key, ()) if u is not user]
            if others:
                self._by_email[key] = others
            else:
                self._by_email.pop(key, None)
