"""The embedded SQL adapter of the platform port (SQLite or PostgreSQL, SQLAlchemy Core).

Every repository call works on whole batches: one SELECT per key kind (IN lists of at most
:data:`CHUNK` values), one executemany per kind of write. Bulk writes hand plain tuples to
the driver's executemany (SQLAlchemy's per-row parameter handling cost more than the
database work). A transaction is one connection and one database transaction; the runner
saves the file checkpoint inside it, with the rows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

from sqlalchemy import (
    ARRAY,
    Column,
    ColumnElement,
    Connection,
    Engine,
    String,
    Table,
    any_,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)

from syncd.domain import Outcome, RowResult
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


def _among(conn: Connection, column: ColumnElement[Any]) -> ColumnElement[bool]:
    """``column`` is one of the ``keys`` bound at execution (at most :data:`CHUNK` of them).

    PostgreSQL gets ``column = ANY(:keys)``, one array parameter: psycopg prepares repeated
    statements, and the generic plan of an IN list of 500 parameters planned while the table
    was still small compares every row with every key (seconds per query at 100k users).
    """
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam("keys", type_=ARRAY(column.type)))
    return column.in_(bindparam("keys", expanding=True))


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
        self._select(func.lower(users.c.email, type_=String), [e.lower() for e in emails], found)
        for chunk in _chunks(found):
            query = select(user_profile).where(_among(self._conn, user_profile.c.user_id))
            for user_id, name, value in self._conn.execute(query, {"keys": chunk}):
                found[user_id].profile[name] = value
        return list(found.values())

    def _select(
        self, column: ColumnElement[Any], values: Iterable[str], found: dict[int, UserRecord]
    ) -> None:
        for chunk in _chunks(v for v in values if v):
            query = select(*_USER_COLUMNS).where(_among(self._conn, column))
            for row in self._conn.execute(query, {"keys": chunk}):
                if row[0] not in found:
                    record = UserRecord(**dict(zip(USER_FIELDS, row[1:], strict=True)))
                    record.id = row[0]
                    found[row[0]] = record

    def add(self, records: Sequence[UserRecord]) -> None:
        """Insert new users with one executemany, then read their ids back by username.

        (SQLAlchemy's ordered INSERT … RETURNING runs one statement per row on SQLite.)
        """
        if not records:
            return
        stamp = _bind(self._conn, users.c.created_at, self._now())
        _executemany(
            self._conn,
            _insert_sql(self._conn, users, (*USER_FIELDS, "created_at", "updated_at")),
            [(*_row(r), stamp, stamp) for r in records],
        )
        ids: dict[str, int] = {}
        for chunk in _chunks(r.username for r in records):
            query = select(users.c.username, users.c.id).where(_among(self._conn, users.c.username))
            ids.update((name, id_) for name, id_ in self._conn.execute(query, {"keys": chunk}))
        for record in records:
            record.id = ids[record.username]
        self._insert_profiles(records)

    def update(self, records: Sequence[UserRecord]) -> None:
        """Write every field of these users by id (executemany); replace their profiles."""
        if not records:
            return
        if any(r.id is None for r in records):
            raise ValueError("update() needs users that have an id; add() new ones")
        stamp = _bind(self._conn, users.c.updated_at, self._now())
        _executemany(
            self._conn,
            _update_sql(self._conn, users, (*USER_FIELDS, "updated_at"), "id"),
            [(*_row(r), stamp, r.id) for r in records],
        )
        for chunk in _chunks(r.id for r in records):
            query = delete(user_profile).where(_among(self._conn, user_profile.c.user_id))
            self._conn.execute(query, {"keys": chunk})
        self._insert_profiles(records)

    def _insert_profiles(self, records: Sequence[UserRecord]) -> None:
        _executemany(
            self._conn,
            _insert_sql(self._conn, user_profile, ("user_id", "field", "value")),
            [(r.id, name, value) for r in records for name, value in r.profile.items()],
        )


_row_values = attrgetter(*USER_FIELDS)
_IDNUMBER = USER_FIELDS.index("idnumber")
_EMAIL = USER_FIELDS.index("email")


def _row(record: UserRecord) -> list[Any]:
    """The column values of ``record`` in USER_FIELDS order; empty keys become NULL."""
    values = list(_row_values(record))
    values[_IDNUMBER] = values[_IDNUMBER] or None
    values[_EMAIL] = values[_EMAIL] or None
    return values


# Bulk writes: SQL text built from the table metadata, the driver's own placeholder, and
# values of native DBAPI types (str, int, bool, None); datetimes go through the column
# type's bind processor once per batch.


def _placeholder(conn: Connection) -> str:
    style = conn.dialect.paramstyle
    if style == "qmark":
        return "?"
    if style in ("format", "pyformat"):
        return "%s"
    raise ValueError(f"unsupported DBAPI paramstyle {style!r}")


def _insert_sql(conn: Connection, table: Table, columns: Sequence[str]) -> str:
    quote = conn.dialect.identifier_preparer
    names = ", ".join(quote.quote(c) for c in columns)
    marks = ", ".join([_placeholder(conn)] * len(columns))
    return f"INSERT INTO {quote.format_table(table)} ({names}) VALUES ({marks})"


def _update_sql(conn: Connection, table: Table, columns: Sequence[str], key: str) -> str:
    quote = conn.dialect.identifier_preparer
    mark = _placeholder(conn)
    sets = ", ".join(f"{quote.quote(c)} = {mark}" for c in columns)
    return f"UPDATE {quote.format_table(table)} SET {sets} WHERE {quote.quote(key)} = {mark}"


def _executemany(conn: Connection, sql: str, rows: list[tuple[Any, ...]]) -> None:
    if rows:
        conn.exec_driver_sql(sql, rows)


def _bind(conn: Connection, column: Column[Any], value: Any) -> Any:
    """``value`` as the driver takes it for ``column`` (e.g. a datetime on SQLite)."""
    process = column.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    return value if process is None else process(value)


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
        _executemany(
            self._conn,
            _insert_sql(self._conn, syncd_row_result, ("file_id", "record", "line", "outcome", "reason")),
            [(file_id, s.record, s.line, s.result.outcome.value, s.result.reason) for s in results],
        )

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

        Database errors propagate unchanged (SQLAlchemy's); the runner decides which
        ones mean "retry later".
        """
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

    def close(self) -> None:
        """Release pooled connections."""
        self._engine.dispose()
