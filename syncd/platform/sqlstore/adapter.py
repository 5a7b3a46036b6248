"""The embedded SQL adapter of the platform port (SQLite or PostgreSQL, SQLAlchemy Core).

Every repository call works on whole batches: one SELECT per key kind (IN lists of at most
``CHUNK`` values), one executemany per kind of write (helpers in ``_sql``). This module
holds the transaction, the users and the checkpoints; the course model's repositories
live in ``courses``, ``enrolments``, ``groups``, ``cohorts`` and ``content`` (documents,
learning paths, activities, pictures). A transaction is one connection and one database
transaction; the runner saves the file checkpoint inside it, with the rows. The blobs of
documents and pictures are files under ``files_root`` (``blobs``), outside transactions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from operator import attrgetter
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    String,
    delete,
    func,
    insert,
    select,
    update,
)

from syncd.domain import Outcome, RowResult
from syncd.platform.base import Checkpoint, PlatformTx, SavedResult, UserRecord
from syncd.platform.content import copy_by_parts
from syncd.platform.sqlstore._sql import (
    among,
    bind,
    chunks,
    executemany,
    insert_sql,
    update_sql,
    utcnow,
)
from syncd.platform.sqlstore.blobs import BlobStore
from syncd.platform.sqlstore.cohorts import SqlCohorts
from syncd.platform.sqlstore.content import SqlContent, SqlPictures
from syncd.platform.sqlstore.courses import SqlCategories, SqlCourses, SqlRoles
from syncd.platform.sqlstore.enrolments import SqlEnrolments
from syncd.platform.sqlstore.groups import SqlGroups
from syncd.platform.sqlstore.schema import (
    syncd_checkpoint,
    syncd_row_result,
    user_profile,
    users,
)

#: Saved results read per query when streaming them back.
RESULT_PAGE = 5000

#: UserRecord fields stored as columns of ``users``. Not stored: ``id`` (its own
#: column), ``profile`` (a table of its own) and ``password`` (the plain password
#: passed through for platforms that hash themselves; this store keeps the hash).
USER_FIELDS: tuple[str, ...] = tuple(
    f.name
    for f in dataclasses.fields(UserRecord)
    if f.name not in ("id", "profile", "password")
)
_USER_COLUMNS = [users.c.id, *(users.c[name] for name in USER_FIELDS)]


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
        for chunk in chunks(found):
            query = select(user_profile).where(among(self._conn, user_profile.c.user_id))
            for user_id, name, value in self._conn.execute(query, {"keys": chunk}):
                found[user_id].profile[name] = value
        return list(found.values())

    def _select(
        self, column: ColumnElement[Any], values: Iterable[str], found: dict[int, UserRecord]
    ) -> None:
        for chunk in chunks(v for v in values if v):
            query = select(*_USER_COLUMNS).where(among(self._conn, column))
            for row in self._conn.execute(query, {"keys": chunk}):
                if row[0] not in found:
                    record = UserRecord(**dict(zip(USER_FIELDS, row[1:], strict=True)))
                    record.id = row[0]
                    found[row[0]] = record

    def deleted(self, user_ids: Collection[int]) -> set[int]:
        """Those of these user ids that belong to soft-deleted users (ids only, no profiles)."""
        found: set[int] = set()
        for chunk in chunks(user_ids):
            query = select(users.c.id).where(among(self._conn, users.c.id), users.c.deleted.is_(True))
            found.update(row[0] for row in self._conn.execute(query, {"keys": chunk}))
        return found

    def add(self, records: Sequence[UserRecord]) -> None:
        """Insert new users with one executemany, then read their ids back by username.

        (SQLAlchemy's ordered INSERT … RETURNING runs one statement per row on SQLite.)
        """
        if not records:
            return
        stamp = bind(self._conn, users.c.created_at, self._now())
        executemany(
            self._conn,
            insert_sql(self._conn, users, (*USER_FIELDS, "created_at", "updated_at")),
            [(*_row(r), stamp, stamp) for r in records],
        )
        ids: dict[str, int] = {}
        for chunk in chunks(r.username for r in records):
            query = select(users.c.username, users.c.id).where(among(self._conn, users.c.username))
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
        stamp = bind(self._conn, users.c.updated_at, self._now())
        executemany(
            self._conn,
            update_sql(self._conn, users, (*USER_FIELDS, "updated_at"), "id"),
            [(*_row(r), stamp, r.id) for r in records],
        )
        for chunk in chunks(r.id for r in records):
            query = delete(user_profile).where(among(self._conn, user_profile.c.user_id))
            self._conn.execute(query, {"keys": chunk})
        self._insert_profiles(records)

    def _insert_profiles(self, records: Sequence[UserRecord]) -> None:
        executemany(
            self._conn,
            insert_sql(self._conn, user_profile, ("user_id", "field", "value")),
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


class NoFilesRootError(RuntimeError):
    """The platform store was built without a files folder, so it has no blob store."""


class _SqlTx:
    """One platform transaction on one connection (implements PlatformTx)."""

    def __init__(self, conn: Connection, now: Callable[[], datetime], files: BlobStore | None) -> None:
        self._conn = conn
        self._now = now
        self._users = _SqlUsers(conn, now)
        self._categories = SqlCategories(conn)
        self._courses = SqlCourses(conn, now)
        self._roles = SqlRoles(conn)
        self._enrolments = SqlEnrolments(conn)
        self._groups = SqlGroups(conn)
        self._cohorts = SqlCohorts(conn)
        self._files = files
        self._content = SqlContent(conn)
        self._pictures = SqlPictures(conn)

    @property
    def users(self) -> _SqlUsers:
        """The users of the platform."""
        return self._users

    @property
    def categories(self) -> SqlCategories:
        """Course categories."""
        return self._categories

    @property
    def courses(self) -> SqlCourses:
        """Courses and sections."""
        return self._courses

    @property
    def roles(self) -> SqlRoles:
        """Roles."""
        return self._roles

    @property
    def enrolments(self) -> SqlEnrolments:
        """Enrolment methods, user enrolments, role assignments."""
        return self._enrolments

    @property
    def groups(self) -> SqlGroups:
        """Groups, groupings, members."""
        return self._groups

    @property
    def cohorts(self) -> SqlCohorts:
        """Cohorts and members."""
        return self._cohorts

    @property
    def files(self) -> BlobStore:
        """The blob store (not transactional); NoFilesRootError when there is none."""
        if self._files is None:
            raise NoFilesRootError(
                "this platform store has no files folder for documents and pictures:"
                " build it with SqlPlatform(engine, files_root=<data>/files)"
            )
        return self._files

    @property
    def content(self) -> SqlContent:
        """Course documents, learning paths, activities."""
        return self._content

    @property
    def pictures(self) -> SqlPictures:
        """User pictures."""
        return self._pictures

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
        executemany(
            self._conn,
            insert_sql(self._conn, syncd_row_result, ("file_id", "record", "line", "outcome", "reason")),
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

    def copy_course(self, source_id: int, target_id: int) -> None:
        """A template's content, part by part (sections, documents, path, activities)."""
        copy_by_parts(self._courses, self._content, source_id, target_id)

    def clear_checkpoint(self, file_id: int) -> None:
        """Forget the checkpoint and the saved results of this file."""
        self._conn.execute(delete(syncd_row_result).where(syncd_row_result.c.file_id == file_id))
        self._conn.execute(delete(syncd_checkpoint).where(syncd_checkpoint.c.file_id == file_id))


class SqlPlatform:
    """The embedded platform store on an engine built elsewhere (implements Platform).

    ``files_root`` is the folder of the blob store (``<data>/files``; created on the first
    put); without one, ``tx.files`` raises :class:`NoFilesRootError`. ``now`` is the clock
    for ``created_at``/``updated_at`` (UTC); tests pass a fixed one.
    """

    def __init__(
        self, engine: Engine, files_root: Path | None = None, *, now: Callable[[], datetime] = utcnow
    ) -> None:
        self._engine = engine
        self._files = None if files_root is None else BlobStore(files_root)
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
                yield _SqlTx(conn, self._now, self._files)
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
