"""The embedded SQL adapter of the platform port (SQLite or PostgreSQL, SQLAlchemy Core).

Every repository call works on whole batches: one SELECT per key kind (IN lists of at most
:data:`CHUNK` values), executemany for writes. A transaction is one connection and one
database transaction; the runner saves the file checkpoint inside it, with the rows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import OperationalError

from syncd.domain import Outcome, RetryLater, RowResult
from syncd.platform.base import Checkpoint, PlatformTx, SavedResult, UserRecord
from syncd.platform.sqlstore.schema import (
    syncd_checkpoint,
    syncd_row_result,
    user_profile,
    users,
)

#: Most values in one IN list.
CHUNK = 500
#: Saved results read per query when streaming them back.
RESULT_PAGE = 5000

#: UserRecord fields stored as columns of ``users`` (``id`` and ``profile`` are not).
USER_FIELDS: tuple[str, ...] = tuple(
    f.name for f in dataclasses.fields(UserRecord) if f.name not in ("id", "profile")
)
_USER_COLUMNS = [users.c.id, *(users.c[name] for name in USER_FIELDS)]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _chunks(values: Iterable[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    ordered = sorted(set(values))
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]


class _SqlUsers:
    """UserRepository over the ``users`` and ``user_profile`` tables."""

    def __init__(self, conn: Connection, now: Callable[[], datetime]) -> None:
        self._conn = conn
        self._now = now

    def find(
        self,
        *,
        usernames: Collection[str] = (),
        idnumbers: Collection[str] = (),
        emails: Collection[str] = (),
    ) -> list[UserRecord]:
        """Every user matching any key: one query per key kind, one for the profiles.

        Idnumbers of users already found by username are not asked for again (they are
        unique, so they cannot match anyone else); emails are, since they may repeat.
        """
        found: dict[int, UserRecord] = {}
        self._select(users.c.username, usernames, found)
        known = {u.idnumber for u in found.values()}
        self._select(users.c.idnumber, [i for i in idnumbers if i not in known], found)
        self._select(func.lower(users.c.email), [e.lower() for e in emails], found)
        for chunk in _chunks(found):
            query = select(user_profile).where(user_profile.c.user_id.in_(chunk))
            for user_id, name, value in self._conn.execute(query):
                found[user_id].profile[name] = value
        return list(found.values())

    def _select(
        self, column: ColumnElement[Any], values: Iterable[str], found: dict[int, UserRecord]
    ) -> None:
        for chunk in _chunks(v for v in values if v):
            for row in self._conn.execute(select(*_USER_COLUMNS).where(column.in_(chunk))):
                if row[0] not in found:
                    record = UserRecord(**dict(zip(USER_FIELDS, row[1:], strict=True)))
                    record.id = row[0]
                    found[row[0]] = record

    def add(self, records: Sequence[UserRecord]) -> None:
        """Insert new users with one executemany and set their ids.

        Ids come back with their usernames (unique), not by position: SQLite cannot
        batch an INSERT … RETURNING whose rows must come back in parameter order.
        """
        if not records:
            return
        now = self._now()
        params = [_columns(r, created_at=now, updated_at=now) for r in records]
        stmt = insert(users).returning(users.c.username, users.c.id)
        ids: dict[str, int] = {name: id_ for name, id_ in self._conn.execute(stmt, params)}
        for record in records:
            record.id = ids[record.username]
        self._insert_profiles(records)

    def update(self, records: Sequence[UserRecord]) -> None:
        """Write every field of these users by id (executemany); replace their profiles."""
        if not records:
            return
        if any(r.id is None for r in records):
            raise ValueError("update() needs users that have an id; add() new ones")
        now = self._now()
        params = [dict(zip(_UPDATE_PARAMS, (*_row(r), now, r.id), strict=True)) for r in records]
        self._conn.execute(_UPDATE_USER, params)
        for chunk in _chunks(r.id for r in records):
            self._conn.execute(delete(user_profile).where(user_profile.c.user_id.in_(chunk)))
        self._insert_profiles(records)

    def _insert_profiles(self, records: Sequence[UserRecord]) -> None:
        rows = [
            {"user_id": r.id, "field": name, "value": value}
            for r in records
            for name, value in r.profile.items()
        ]
        if rows:
            self._conn.execute(insert(user_profile), rows)


_row_values = attrgetter(*USER_FIELDS)
_IDNUMBER = USER_FIELDS.index("idnumber")
_EMAIL = USER_FIELDS.index("email")
# Bind names must differ from column names in an UPDATE … SET.
_UPDATE_PARAMS = (*(f"p_{name}" for name in USER_FIELDS), "p_updated_at", "p_id")
_UPDATE_USER = (
    update(users)
    .where(users.c.id == bindparam("p_id"))
    .values({name: bindparam(f"p_{name}") for name in (*USER_FIELDS, "updated_at")})
)


def _row(record: UserRecord) -> list[Any]:
    """The column values of ``record`` in USER_FIELDS order; empty keys become NULL."""
    values = list(_row_values(record))
    values[_IDNUMBER] = values[_IDNUMBER] or None
    values[_EMAIL] = values[_EMAIL] or None
    return values


def _columns(record: UserRecord, **extra: Any) -> dict[str, Any]:
    return {**dict(zip(USER_FIELDS, _row(record), strict=True)), **extra}


class _SqlTx:
    """One platform transaction on one connection (implements PlatformTx)."""

    def __init__(self, conn: Connection, now: Callable[[], datetime]) -> None:
        self._conn = conn
        self._now = now
        self._users = _SqlUsers(conn, now)

    @property
    def users(self) -> _SqlUsers:
        """The users of the platform."""
        return self._users

    def load_checkpoint(self, file_id: int) -> Checkpoint | None:
        """The checkpoint saved for this ledger file, or None when it has not started."""
        query = select(syncd_checkpoint.c.records_done).where(syncd_checkpoint.c.file_id == file_id)
        done = self._conn.execute(query).scalar_one_or_none()
        return None if done is None else Checkpoint(records_done=done)

    def save_checkpoint(self, file_id: int, checkpoint: Checkpoint, results: Sequence[SavedResult]) -> None:
        """Upsert the checkpoint row and insert the results (executemany)."""
        values = {"records_done": checkpoint.records_done, "updated_at": self._now()}
        changed = self._conn.execute(
            update(syncd_checkpoint).where(syncd_checkpoint.c.file_id == file_id).values(values)
        )
        if changed.rowcount == 0:
            self._conn.execute(insert(syncd_checkpoint).values(file_id=file_id, **values))
        rows = [
            {
                "file_id": file_id,
                "record": s.record,
                "line": s.line,
                "outcome": s.result.outcome.value,
                "reason": s.result.reason,
            }
            for s in results
        ]
        if rows:
            self._conn.execute(insert(syncd_row_result), rows)

    def saved_results(self, file_id: int) -> Iterator[SavedResult]:
        """Every saved result of this file in record order, read in pages (keyset)."""
        t = syncd_row_result
        after = -1
        while True:
            query = (
                select(t.c.record, t.c.line, t.c.outcome, t.c.reason)
                .where(t.c.file_id == file_id, t.c.record > after)
                .order_by(t.c.record)
                .limit(RESULT_PAGE)
            )
            page = self._conn.execute(query).all()
            for record, line, outcome, reason in page:
                yield SavedResult(record, line, RowResult(Outcome(outcome), reason))
            if len(page) < RESULT_PAGE:
                return
            after = page[-1][0]

    def clear_checkpoint(self, file_id: int) -> None:
        """Forget the checkpoint and the saved results of this file."""
        self._conn.execute(delete(syncd_row_result).where(syncd_row_result.c.file_id == file_id))
        self._conn.execute(delete(syncd_checkpoint).where(syncd_checkpoint.c.file_id == file_id))


def _transient(exc: OperationalError) -> bool:
    """A lost connection, a PostgreSQL operational error or a locked SQLite file."""
    if exc.connection_invalidated:
        return True
    if type(exc.orig).__module__.startswith("sqlite3"):
        text = str(exc.orig).lower()
        return "locked" in text or "busy" in text
    return True


class SqlPlatform:
    """The embedded platform store on an engine built elsewhere (implements Platform).

    ``now`` is the clock for ``created_at``/``updated_at`` (UTC); tests pass a fixed one.
    """

    def __init__(self, engine: Engine, *, now: Callable[[], datetime] = _utcnow) -> None:
        self._engine = engine
        self._now = now

    @contextmanager
    def transaction(self, *, rollback: bool = False) -> Iterator[PlatformTx]:
        """One connection and transaction: commit on normal exit unless ``rollback``.

        A database that is locked or unreachable raises :class:`RetryLater`; other
        database errors propagate unchanged.
        """
        try:
            with self._engine.connect() as conn:
                trans = conn.begin()
                try:
                    yield _SqlTx(conn, self._now)
                except BaseException:
                    trans.rollback()
                    raise
                if rollback:
                    trans.rollback()
                else:
                    trans.commit()
        except OperationalError as exc:
            if _transient(exc):
                raise RetryLater(f"platform database unavailable: {exc.orig}") from exc
            raise

    def close(self) -> None:
        """Release pooled connections."""
        self._engine.dispose()
