"""The users processor: create, update, rename, suspend and (soft) delete platform users.

A batch is applied against an in-memory working set: one ``find`` for every key of the
batch, rows applied in order (a later row sees what an earlier one did), then one
``update`` and one ``add``. Passwords are hashed on a thread pool (scrypt releases the
GIL). See SPEC §4 "users" for the rules; ``_userrows`` validates each row first.
The per-course (``course<N>``…) and ``cohort<N>`` columns are applied after the batch's
users are written, by ``_usercourses`` (with the enrolments processor's logic).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, tzinfo
from typing import Any

from syncd.csvfile import Schema, parse_bool
from syncd.domain import ConfigError, Outcome, RowError, RowResult
from syncd.passwords import check_cost, hash_password, verify_password
from syncd.platform.base import PlatformTx, UserRecord
from syncd.processors._usercourses import (
    SLOT_COLUMNS,
    Slots,
    Subject,
    apply_slots,
    has_slots,
    parse_slots,
)
from syncd.processors._userrows import (
    IDENTITIES,
    MODES,
    OPTIONAL,
    PROFILE_PATTERN,
    PROFILE_PREFIX,
    UserChange,
    WorkingSet,
    keys_of,
    parse_row,
)
from syncd.processors.base import ProcessorSpec, Row, RunContext

_NAMES = frozenset({"firstname", "lastname"})
#: user results after which a row's course<N>/cohort<N> columns are applied
_SUBJECT_OUTCOMES = frozenset({Outcome.CREATED, Outcome.UPDATED, Outcome.UNCHANGED})
#: Memory the parallel password hashing of a batch may use (cost 14: 16 MiB per hash).
_KDF_MEMORY = 512 * 1024 * 1024


class _Passwords:
    """The KDF work of one batch: computed ahead on threads, looked up row by row.

    Ahead of the rows, each password row is verified against the hash its user has
    before the batch (and hashed anew when it does not match). Rows whose user changed
    earlier in the batch miss the cache and are computed on the spot: always correct.
    """

    def __init__(self, cost: int) -> None:
        self._cost = cost
        self._hashes: dict[int, str] = {}
        self._verified: dict[tuple[int, str], bool] = {}

    def prepare(self, jobs: list[tuple[int, str, str | None]]) -> None:
        """Run ``(row index, plain, current hash)`` jobs in parallel when there are several."""
        if len(jobs) < 2:
            return
        # scrypt takes 128·r·N bytes per hash: stay within a memory budget at high costs.
        per_hash = 128 * 8 * (1 << self._cost)
        workers = max(1, min(len(jobs), os.cpu_count() or 1, _KDF_MEMORY // per_hash))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kdf") as pool:
            for (index, _plain, current), (ok, hashed) in zip(jobs, pool.map(self._work, jobs), strict=True):
                if current is not None:
                    self._verified[(index, current)] = ok
                if hashed is not None:
                    self._hashes[index] = hashed

    def _work(self, job: tuple[int, str, str | None]) -> tuple[bool, str | None]:
        _index, plain, current = job
        if current is not None and verify_password(plain, current):
            return True, None
        return False, hash_password(plain, self._cost)

    def matches(self, index: int, plain: str, current: str) -> bool:
        """Whether row ``index``'s password is the one ``current`` hashes."""
        known = self._verified.get((index, current))
        return verify_password(plain, current) if known is None else known

    def hash(self, index: int, plain: str) -> str:
        """A fresh salted hash of row ``index``'s password."""
        return self._hashes.pop(index, None) or hash_password(plain, self._cost)


class UsersProcessor:
    """Applies users rows (implements Processor)."""

    def __init__(
        self,
        *,
        identity: str,
        mode: str,
        update_password: bool,
        password_cost: int,
        timezone: tzinfo = UTC,
        cohort_autocreate: bool = False,
    ) -> None:
        self.identity = identity
        self.mode = mode
        self.update_password = update_password
        self.cohort_autocreate = cohort_autocreate
        self._cost = password_cost
        self._tz = timezone

    @property
    def schema(self) -> Schema:
        """username always; firstname and lastname unless update_only; email for identity email."""
        required = {"username"} if self.mode == "update_only" else {"username", *_NAMES}
        if self.identity == "email":
            required.add("email")
        optional = (OPTIONAL | _NAMES | SLOT_COLUMNS) - required
        return Schema(frozenset(required), frozenset(optional), (PROFILE_PATTERN,))

    def describe(self) -> str:
        """The effective options, for the report."""
        password = "yes" if self.update_password else "no"
        text = f"identity={self.identity} mode={self.mode} update_password={password}"
        return text + (" cohort_autocreate=yes" if self.cohort_autocreate else "")

    def apply(self, rows: Sequence[Row], tx: PlatformTx) -> list[RowResult]:
        """Apply ``rows`` in order: one find for the batch, one update and one add at the end;
        then the course<N>/cohort<N> columns of the rows whose user part succeeded."""
        parsed, slots = self._parse(rows)
        changes = [p for p in parsed if isinstance(p, UserChange)]
        if not changes:
            return [RowResult(Outcome.ERROR, str(p)) for p in parsed]
        users = WorkingSet(tx.users.find(**keys_of(changes, self.identity)))
        passwords = _Passwords(self._cost)
        passwords.prepare(self._password_jobs(parsed, users))
        results: list[RowResult] = []
        subjects: list[Subject] = []
        for i, p in enumerate(parsed):
            if not isinstance(p, UserChange):
                results.append(RowResult(Outcome.ERROR, str(p)))
                continue
            results.append(self._apply_one(i, p, users, passwords))
            if i in slots and results[i].outcome in _SUBJECT_OUTCOMES and not p.deleted:
                subjects.append(Subject(i, users.by_username[p.username], slots[i], results[i]))
        users.flush(tx.users)  # new users get their ids before they are enrolled
        if subjects:
            done = apply_slots(tx, subjects, cohort_autocreate=self.cohort_autocreate)
            for subject, result in zip(subjects, done, strict=True):
                results[subject.index] = result
        return results

    def _parse(self, rows: Sequence[Row]) -> tuple[list[UserChange | RowError], dict[int, Slots]]:
        """Every row validated, its per-course/cohort columns included (nothing applied yet)."""
        parsed: list[UserChange | RowError] = []
        slots: dict[int, Slots] = {}
        # rows of a file share its header: without course/cohort columns, skip the slot parse
        with_slots = bool(rows) and has_slots(rows[0].values)
        for index, row in enumerate(rows):
            try:
                change = parse_row(row, self.identity)
                row_slots = parse_slots(row.values, self._tz) if with_slots else None
            except RowError as exc:
                parsed.append(exc)
                continue
            parsed.append(change)
            if row_slots is not None:
                slots[index] = row_slots
        return parsed, slots

    def _password_jobs(
        self, parsed: list[UserChange | RowError], users: WorkingSet
    ) -> list[tuple[int, str, str | None]]:
        jobs: list[tuple[int, str, str | None]] = []
        for index, change in enumerate(parsed):
            if not isinstance(change, UserChange) or change.password is None or change.nopass:
                continue
            if change.deleted:
                continue
            try:
                user = self._find(change, users)
            except RowError:
                continue
            if user is None and self.mode != "update_only":
                jobs.append((index, change.password, None))
            elif user is not None and self.mode != "create_only" and self.update_password:
                jobs.append((index, change.password, user.password_hash))
        return jobs

    def _apply_one(
        self, index: int, change: UserChange, users: WorkingSet, passwords: _Passwords
    ) -> RowResult:
        try:
            user = self._find(change, users)
            if user is None:
                if change.deleted:
                    return RowResult(Outcome.SKIPPED, "no such user to delete")
                if self.mode == "update_only":
                    return RowResult(Outcome.SKIPPED, "no such user; mode update_only")
                return self._create(index, change, users, passwords)
            if self.mode == "create_only":
                return RowResult(Outcome.SKIPPED, "exists; mode create_only")
            if change.deleted:
                return _delete(user, users)
            return self._update(index, change, user, users, passwords)
        except RowError as exc:
            return RowResult(Outcome.ERROR, str(exc))

    def _find(self, change: UserChange, users: WorkingSet) -> UserRecord | None:
        """The user this row is about, by oldusername or by the identity; None if new."""
        if change.oldusername is not None:
            user = users.by_username.get(change.oldusername)
            if user is None:
                raise RowError(f"oldusername: no such user {change.oldusername!r}")
            return user
        if self.identity == "email":
            assert change.email is not None  # parse_row insists on it
            matches = users.with_email(change.email)
            if len(matches) > 1:
                raise RowError(f"email: {change.email!r} matches {len(matches)} users")
            return matches[0] if matches else None
        if self.identity == "idnumber" and change.idnumber:
            user = users.by_idnumber.get(change.idnumber)
            if user is not None:
                return user
            # A user known by username alone may take on its first idnumber; one with
            # another idnumber is someone else (_check_keys reports the collision).
            user = users.by_username.get(change.username)
            return user if user is not None and user.idnumber is None else None
        return users.by_username.get(change.username)

    def _create(self, index: int, change: UserChange, users: WorkingSet, passwords: _Passwords) -> RowResult:
        for column in ("firstname", "lastname"):
            if not change.fields.get(column):
                raise RowError(f"{column}: required to create a user")
        _check_keys(change, None, users)
        user = UserRecord(username=change.username, **change.fields)
        user.profile = {k: v for k, v in change.profile.items() if v is not None}
        if change.password is None:
            user.password_to_generate = user.must_change_password = True
        elif not change.nopass:
            user.password_hash = passwords.hash(index, change.password)
            user.password = change.password
        users.add(user)
        return RowResult(Outcome.CREATED, f"user {user.username!r}")

    def _update(
        self,
        index: int,
        change: UserChange,
        user: UserRecord,
        users: WorkingSet,
        passwords: _Passwords,
    ) -> RowResult:
        _check_keys(change, user, users)
        values = {k: v for k, v in change.fields.items() if getattr(user, k) != v}
        if change.username != user.username:
            values = {"username": change.username, **values}
        names = list(values)
        if user.deleted:
            values["deleted"] = False
            names.insert(0, "revived")
        if self.update_password:
            secret = self._password_values(index, change, user, passwords)
            if secret:
                values.update(secret)
                names.append("password")
        profile, touched = _merge_profile(user.profile, change.profile)
        names += touched
        if not names:
            return RowResult(Outcome.UNCHANGED, f"user {user.username!r}")
        users.change(user, values, profile)
        return RowResult(Outcome.UPDATED, f"user {change.username!r}: {', '.join(names)}")

    @staticmethod
    def _password_values(
        index: int, change: UserChange, user: UserRecord, passwords: _Passwords
    ) -> dict[str, Any]:
        """The password columns that change (empty: keep). The plain value goes only to
        ``UserRecord.password`` (a transient field for platforms that hash themselves)."""
        if change.password is None:
            return {}
        if change.nopass:
            target: dict[str, Any] = {
                "password_hash": None,
                "password_to_generate": False,
                "must_change_password": False,
            }
            return {k: v for k, v in target.items() if getattr(user, k) != v}
        if user.password_hash and passwords.matches(index, change.password, user.password_hash):
            return {}
        return {
            "password_hash": passwords.hash(index, change.password),
            "password": change.password,
            "password_to_generate": False,
            "must_change_password": False,
        }


def _delete(user: UserRecord, users: WorkingSet) -> RowResult:
    if user.deleted:
        return RowResult(Outcome.UNCHANGED, f"user {user.username!r}: already deleted")
    users.change(user, {"deleted": True}, user.profile)
    return RowResult(Outcome.DELETED, f"user {user.username!r}")


def _check_keys(change: UserChange, user: UserRecord | None, users: WorkingSet) -> None:
    """Refuse a username or idnumber that belongs to another user than ``user``."""
    owner = users.by_username.get(change.username)
    if owner is not None and owner is not user:
        raise RowError(f"username: {change.username!r} already belongs to another user ({_who(owner)})")
    idnumber = change.fields.get("idnumber")
    owner = users.by_idnumber.get(idnumber) if idnumber else None
    if owner is not None and owner is not user:
        raise RowError(
            f"idnumber: {idnumber!r} already belongs to another user (username {owner.username!r})"
        )


def _who(user: UserRecord) -> str:
    if user.idnumber:
        return f"idnumber {user.idnumber!r}"
    return f"id {user.id}" if user.id is not None else "created by an earlier row"


def _merge_profile(
    current: dict[str, str], wanted: Mapping[str, str | None]
) -> tuple[dict[str, str], list[str]]:
    """The profile after ``wanted`` (None removes a field) and the columns that changed."""
    profile = dict(current)
    touched: list[str] = []
    for name, value in wanted.items():
        if value is None:
            if profile.pop(name, None) is not None:
                touched.append(PROFILE_PREFIX + name)
        elif profile.get(name) != value:
            profile[name] = value
            touched.append(PROFILE_PREFIX + name)
    return profile, touched


def _option(options: Mapping[str, Any], name: str, allowed: tuple[str, ...]) -> str:
    value = options.get(name, allowed[0])
    if value not in allowed:
        raise ConfigError(f"users: option {name} must be one of {', '.join(allowed)} (got {value!r})")
    return str(value)


def _flag(options: Mapping[str, Any], name: str, default: bool) -> bool:
    """A boolean option: true/false, or a string parse_bool reads ("yes", "0"...)."""
    value = options.get(name, default)
    if isinstance(value, str):
        try:
            value = parse_bool(value, name)
        except RowError as exc:
            raise ConfigError(f"users: option {exc}") from exc
    if not isinstance(value, bool):
        raise ConfigError(f"users: option {name} must be true or false (got {value!r})")
    return value


def build(options: Mapping[str, Any], ctx: RunContext) -> UsersProcessor:
    """Build the processor from route options; raise ConfigError naming a bad one."""
    try:
        cost = check_cost(ctx.password_cost)
    except ValueError as exc:
        raise ConfigError(f"users: {exc}") from exc
    return UsersProcessor(
        identity=_option(options, "identity", IDENTITIES),
        mode=_option(options, "mode", MODES),
        update_password=_flag(options, "update_password", True),
        password_cost=cost,
        timezone=ctx.timezone,
        cohort_autocreate=_flag(options, "cohort_autocreate", False),
    )


SPEC = ProcessorSpec(
    name="users",
    priority=10,
    factory=build,
    sniff=frozenset({"username", "firstname", "lastname"}),
    options=frozenset({"identity", "mode", "update_password", "cohort_autocreate"}),
)
