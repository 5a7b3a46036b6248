"""Batch look-ups shared by processors: one query per key kind per batch, never per row.

A processor collects the keys its batch refers to, resolves them here once, then applies
its rows in order against the result (and against what earlier rows of the batch made).
Errors follow SPEC §5: ``unknown course 'MATH-101' (cid)``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from syncd.domain import ConfigError, RowError
from syncd.platform.base import PlatformTx, UserRecord
from syncd.platform.model import CohortRecord, CourseRecord

USER_KEYS = ("idnumber", "username", "email", "id")
COURSE_KEYS = ("shortname", "idnumber", "id")
COHORT_KEYS = ("idnumber", "name", "id")


def option(options: Mapping[str, Any], name: str, allowed: tuple[str, ...], processor: str) -> str:
    """A string option that must be one of ``allowed`` (the first is the default)."""
    value = options.get(name, allowed[0])
    if value not in allowed:
        raise ConfigError(
            f"{processor}: option {name} must be one of {', '.join(allowed)} (got {value!r})"
        )
    return str(value)


def flag(options: Mapping[str, Any], name: str, default: bool, processor: str) -> bool:
    """A boolean option."""
    value = options.get(name, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{processor}: option {name} must be true or false (got {value!r})")
    return value


def unknown(what: str, value: str, column: str) -> RowError:
    """The row error for a reference that resolves to nothing."""
    return RowError(f"unknown {what} {value!r} ({column})")


def _ids(values: Collection[str]) -> list[int]:
    ids = []
    for value in values:
        if value.isdigit():
            ids.append(int(value))
    return ids


def users_by(tx: PlatformTx, field: str, values: Collection[str]) -> dict[str, UserRecord]:
    """Users keyed by the string value of ``field`` (idnumber, username, email or id).

    Deleted users are left out: a row cannot enrol a soft-deleted user. Usernames are
    matched lowercased, emails case-insensitively (keys are then lowercased too).
    """
    wanted = {v for v in values if v}
    if not wanted:
        return {}
    if field == "username":
        found = tx.users.find(usernames=[v.lower() for v in wanted])
        return {u.username: u for u in found if not u.deleted}
    if field == "idnumber":
        found = tx.users.find(idnumbers=wanted)
        return {u.idnumber: u for u in found if u.idnumber and not u.deleted}
    if field == "email":
        found = tx.users.find(emails=wanted)
        by: dict[str, UserRecord] = {}
        for user in found:
            if user.email and not user.deleted:
                by.setdefault(user.email.lower(), user)
        return by
    if field == "id":
        raise ConfigError("users cannot be looked up by id in command files (use idnumber or username)")
    raise ConfigError(f"unknown user key {field!r} (allowed: {', '.join(USER_KEYS[:3])})")


def user_key(field: str, value: str) -> str:
    """The key :func:`users_by` files ``value`` under."""
    return value.lower() if field in ("username", "email") else value


def courses_by(tx: PlatformTx, field: str, values: Collection[str]) -> dict[str, CourseRecord]:
    """Courses keyed by the string value of ``field`` (shortname, idnumber or id)."""
    wanted = {v for v in values if v}
    if not wanted:
        return {}
    if field == "shortname":
        return {c.shortname: c for c in tx.courses.find(shortnames=wanted)}
    if field == "idnumber":
        return {c.idnumber: c for c in tx.courses.find(idnumbers=wanted) if c.idnumber}
    if field == "id":
        return {str(c.id): c for c in tx.courses.find(ids=_ids(wanted))}
    raise ConfigError(f"unknown course key {field!r} (allowed: {', '.join(COURSE_KEYS)})")


def cohorts_by(tx: PlatformTx, field: str, values: Collection[str]) -> dict[str, CohortRecord]:
    """Cohorts keyed by the string value of ``field`` (idnumber, name or id)."""
    wanted = {v for v in values if v}
    if not wanted:
        return {}
    if field == "idnumber":
        return {c.idnumber: c for c in tx.cohorts.find(idnumbers=wanted) if c.idnumber}
    if field == "name":
        return {c.name: c for c in tx.cohorts.find(names=wanted)}
    if field == "id":
        return {str(c.id): c for c in tx.cohorts.find(ids=_ids(wanted))}
    raise ConfigError(f"unknown cohort key {field!r} (allowed: {', '.join(COHORT_KEYS)})")


def role_id(roles: Mapping[str, int], name: str, column: str) -> int:
    """The id of role ``name`` (a shortname), or the row error naming it."""
    found = roles.get(name.strip().lower())
    if found is None:
        raise unknown("role", name, column)
    return found
