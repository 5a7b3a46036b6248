"""Course content (documents, learning paths, activities) and user pictures in the embedded store.

Batch calls only: one SELECT per :data:`~._sql.CHUNK` keys; documents and pictures are
written with one multi-row upsert per chunk (:func:`~._sql.upsert_ids`); a learning path or
an activity list is replaced whole (one DELETE, one multi-row INSERT … RETURNING per chunk).
Records are checked with the model's ``check_*`` rules before anything is written. The
bytes of documents and pictures are blobs in the file store (``blobs.py``); rows hold
their sha256.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from operator import attrgetter
from typing import Any

from sqlalchemy import Connection, Table, delete, select

from syncd.platform.model import (
    ActivityRecord,
    DocumentRecord,
    PathItemRecord,
    PictureRecord,
    check_activities,
    check_document,
    check_path,
    check_picture,
)
from syncd.platform.sqlstore._sql import among, chunks, delete_among, insert_ids, upsert_ids
from syncd.platform.sqlstore.schema import (
    course_activities,
    course_documents,
    course_path_items,
    user_pictures,
)

_DOCUMENT_VALUES = ("sha256", "size", "title", "mimetype")
_PATH_FIELDS = ("course_id", "key", "title", "parent_key", "kind", "target", "position", "section")
_ACTIVITY_FIELDS = ("course_id", "key", "section", "kind", "title", "position")
_PICTURE_VALUES = ("sha256", "mimetype", "width", "height")


class SqlContent:
    """ContentRepository over ``course_documents``, ``course_path_items`` and ``course_activities``."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def documents(self, course_ids: Collection[int]) -> list[DocumentRecord]:
        """The documents of these courses, by course then path."""
        rows = _select(self._conn, course_documents, ("course_id", "path", *_DOCUMENT_VALUES), course_ids)
        return sorted((DocumentRecord(*row) for row in rows), key=lambda d: (d.course_id, d.path))

    def put_documents(self, records: Sequence[DocumentRecord]) -> None:
        """Insert or update by (course_id, path), one upsert per chunk; set ids (the last
        record of one (course_id, path) wins)."""
        for record in records:
            check_document(record)
        last = {(d.course_id, d.path): d for d in records}
        rows = [(*key, d.sha256, d.size, d.title, d.mimetype) for key, d in last.items()]
        ids = upsert_ids(self._conn, course_documents, ("course_id", "path"), _DOCUMENT_VALUES, rows)
        for record in records:
            record.id = ids[(record.course_id, record.path)]

    def delete_documents(self, document_ids: Collection[int]) -> None:
        """Delete documents by id (absent ids are ignored; the blobs stay)."""
        delete_among(self._conn, course_documents, "id", document_ids)

    def path(self, course_ids: Collection[int]) -> list[PathItemRecord]:
        """The learning path items of these courses, by course, position then key."""
        rows = _select(self._conn, course_path_items, _PATH_FIELDS, course_ids)
        return sorted((PathItemRecord(*row) for row in rows), key=lambda i: (i.course_id, i.position, i.key))

    def replace_path(self, course_id: int, items: Sequence[PathItemRecord]) -> None:
        """Check the tree, delete the course's path and insert ``items``; set their ids."""
        check_path(course_id, items)
        self._replace(course_path_items, _PATH_FIELDS, course_id, items)

    def activities(self, course_ids: Collection[int]) -> list[ActivityRecord]:
        """The activities of these courses, by course, section, position then key."""
        rows = _select(self._conn, course_activities, _ACTIVITY_FIELDS, course_ids)
        found = (ActivityRecord(*row) for row in rows)
        return sorted(found, key=lambda a: (a.course_id, a.section, a.position, a.key))

    def replace_activities(self, course_id: int, items: Sequence[ActivityRecord]) -> None:
        """Check the list, delete the course's activities and insert ``items``; set their ids."""
        check_activities(course_id, items)
        self._replace(course_activities, _ACTIVITY_FIELDS, course_id, items)

    def _replace(
        self,
        table: Table,
        columns: Sequence[str],
        course_id: int,
        items: Sequence[PathItemRecord | ActivityRecord],
    ) -> None:
        values = attrgetter(*columns)
        rows = [values(item) for item in items]
        self._conn.execute(delete(table).where(table.c.course_id == course_id))
        for item, id_ in zip(items, insert_ids(self._conn, table, columns, rows), strict=True):
            item.id = id_

    def hashes(self) -> set[str]:
        """Every blob hash a document refers to."""
        return set(self._conn.execute(select(course_documents.c.sha256).distinct()).scalars())


class SqlPictures:
    """PictureRepository over ``user_pictures`` (one row per user)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def find(self, user_ids: Collection[int]) -> dict[int, PictureRecord]:
        """User id -> picture, for those of these users that have one."""
        rows = _select(self._conn, user_pictures, ("user_id", *_PICTURE_VALUES), user_ids)
        return {row[0]: PictureRecord(*row) for row in rows}

    def put(self, records: Sequence[PictureRecord]) -> None:
        """Insert or replace each user's picture, one upsert per chunk; set ids (the last
        picture of one user wins; a replaced picture keeps its id)."""
        for record in records:
            check_picture(record)
        last = {p.user_id: p for p in records}
        rows = [(user_id, p.sha256, p.mimetype, p.width, p.height) for user_id, p in last.items()]
        ids = upsert_ids(self._conn, user_pictures, ("user_id",), _PICTURE_VALUES, rows)
        for record in records:
            record.id = ids[(record.user_id,)]

    def delete(self, user_ids: Collection[int]) -> None:
        """Remove the pictures of these users (the blobs stay)."""
        delete_among(self._conn, user_pictures, "user_id", user_ids)

    def hashes(self) -> set[str]:
        """Every blob hash a picture refers to."""
        return set(self._conn.execute(select(user_pictures.c.sha256).distinct()).scalars())


def _select(conn: Connection, table: Table, columns: Sequence[str], keys: Collection[int]) -> list[Any]:
    """The ``columns`` then the id of the rows of ``table`` whose first column is one of
    ``keys`` (one query per chunk)."""
    found: list[Any] = []
    query = select(*(table.c[c] for c in columns), table.c.id).where(among(conn, table.c[columns[0]]))
    for chunk in chunks(keys):
        found.extend(conn.execute(query, {"keys": chunk}))
    return found
