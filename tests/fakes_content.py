"""In-memory course content, user pictures and blobs of the fake platform, for unit tests.

The same rules as ``tests/fakes_model.py``: copies in and out, foreign keys checked
(:class:`FakeIntegrityError`), and the model's ``check_*`` rules applied before any write,
as the SQL store does (same ValueError). Blobs live in the state's :class:`SharedBlobs`,
which a rollback does not undo (the real file store is not transactional either).

:class:`ContentTx` gives :class:`tests.fakes.FakeTx` its ``files``, ``content`` and
``pictures``; :class:`ContentViews` gives :class:`tests.fakes.FakePlatform` its test
helpers: ``seed_document(course_id, path, data)``, ``seed_picture(user_id, data)``, and the
reads ``documents()``, ``path_items()``, ``activities()``, ``pictures()``, ``blobs()``.
"""

from __future__ import annotations

import copy
import hashlib
import io
from collections.abc import Collection, Iterable, Sequence
from typing import Any, BinaryIO

from syncd.platform.model import (
    ActivityRecord,
    DocumentRecord,
    PathItemRecord,
    PictureRecord,
    check_activities,
    check_document,
    check_path,
    check_picture,
    check_sha256,
)
from tests.fakes_model import FakeState, _copies, _need


class FakeFiles:
    """FileRepository over the state's blobs (a dict of bytes by sha256)."""

    def __init__(self, state: FakeState) -> None:
        self._s = state

    def put(self, chunks: Iterable[bytes]) -> tuple[str, int]:
        """Store the content unless present; return (sha256, size)."""
        data = b"".join(chunks)
        sha256 = hashlib.sha256(data).hexdigest()
        self._s.blobs.setdefault(sha256, data)
        return sha256, len(data)

    def open(self, sha256: str) -> BinaryIO:
        """The blob as a byte stream; FileNotFoundError when absent."""
        if not self.exists(sha256):
            raise FileNotFoundError(f"no blob {sha256}")
        return io.BytesIO(self._s.blobs[sha256])

    def exists(self, sha256: str) -> bool:
        """Whether the blob is stored (ValueError for a malformed hash)."""
        return check_sha256(sha256) in self._s.blobs


class FakeContent:
    """ContentRepository over dicts of documents, path items and activities."""

    def __init__(self, state: FakeState) -> None:
        self._s = state

    def documents(self, course_ids: Collection[int]) -> list[DocumentRecord]:
        """Copies of the documents of these courses, by course then path."""
        wanted = set(course_ids)
        found = [d for d in self._s.documents.values() if d.course_id in wanted]
        return _copies(sorted(found, key=lambda d: (d.course_id, d.path)))

    def put_documents(self, documents: Sequence[DocumentRecord]) -> None:
        """Insert or update by (course_id, path), keeping ids; the last of one key wins."""
        for document in documents:
            check_document(document)
        by_key = {(d.course_id, d.path): d.id for d in self._s.documents.values()}
        last = {(d.course_id, d.path): d for d in documents}
        for key, document in last.items():
            _need(document.course_id in self._s.courses, "course", document.course_id)
            document_id = by_key.get(key) or self._s.new_id("documents")
            self._s.documents[document_id] = copy.copy(document)
            self._s.documents[document_id].id = by_key[key] = document_id
        for document in documents:
            document.id = by_key[(document.course_id, document.path)]

    def delete_documents(self, document_ids: Collection[int]) -> None:
        """Delete documents by id (absent ids are ignored)."""
        for document_id in set(document_ids):
            self._s.documents.pop(document_id, None)

    def path(self, course_ids: Collection[int]) -> list[PathItemRecord]:
        """Copies of the path items of these courses, by course, position then key."""
        wanted = set(course_ids)
        found = [i for i in self._s.path_items.values() if i.course_id in wanted]
        return _copies(sorted(found, key=lambda i: (i.course_id, i.position, i.key)))

    def replace_path(self, course_id: int, items: Sequence[PathItemRecord]) -> None:
        """Check the tree, drop the course's path, store ``items`` with new ids."""
        check_path(course_id, items)
        self._s.path_items = {k: v for k, v in self._s.path_items.items() if v.course_id != course_id}
        self._store(self._s.path_items, items, "path_items")

    def activities(self, course_ids: Collection[int]) -> list[ActivityRecord]:
        """Copies of the activities of these courses, by course, section, position then key."""
        wanted = set(course_ids)
        found = [a for a in self._s.activities.values() if a.course_id in wanted]
        return _copies(sorted(found, key=lambda a: (a.course_id, a.section, a.position, a.key)))

    def replace_activities(self, course_id: int, items: Sequence[ActivityRecord]) -> None:
        """Check the list, drop the course's activities, store ``items`` with new ids."""
        check_activities(course_id, items)
        self._s.activities = {k: v for k, v in self._s.activities.items() if v.course_id != course_id}
        self._store(self._s.activities, items, "activities")

    def _store(self, table: dict[int, Any], items: Sequence[Any], name: str) -> None:
        for item in items:
            _need(item.course_id in self._s.courses, "course", item.course_id)
            item.id = self._s.new_id(name)
            table[item.id] = copy.copy(item)

    def hashes(self) -> set[str]:
        """Every blob hash a document refers to."""
        return {d.sha256 for d in self._s.documents.values()}


class FakePictures:
    """PictureRepository over a dict of pictures by id (one per user)."""

    def __init__(self, state: FakeState) -> None:
        self._s = state

    def find(self, user_ids: Collection[int]) -> dict[int, PictureRecord]:
        """User id -> copy of the picture, for those of these users that have one."""
        wanted = set(user_ids)
        return {p.user_id: copy.copy(p) for p in self._s.pictures.values() if p.user_id in wanted}

    def put(self, pictures: Sequence[PictureRecord]) -> None:
        """Insert or replace each user's picture, keeping its id; the last of a user wins."""
        for picture in pictures:
            check_picture(picture)
        by_user = {p.user_id: p.id for p in self._s.pictures.values()}
        for user_id, picture in {p.user_id: p for p in pictures}.items():
            _need(user_id in self._s.users, "user", user_id)
            picture_id = by_user.get(user_id) or self._s.new_id("pictures")
            self._s.pictures[picture_id] = copy.copy(picture)
            self._s.pictures[picture_id].id = by_user[user_id] = picture_id
        for picture in pictures:
            picture.id = by_user[picture.user_id]

    def delete(self, user_ids: Collection[int]) -> None:
        """Remove the pictures of these users."""
        gone = set(user_ids)
        self._s.pictures = {k: p for k, p in self._s.pictures.items() if p.user_id not in gone}

    def hashes(self) -> set[str]:
        """Every blob hash a picture refers to."""
        return {p.sha256 for p in self._s.pictures.values()}


class ContentTx:
    """The ``files``, ``content`` and ``pictures`` of a fake transaction (a mixin of FakeTx)."""

    _state: FakeState

    @property
    def files(self) -> FakeFiles:
        """The blobs (not transactional)."""
        return FakeFiles(self._state)

    @property
    def content(self) -> FakeContent:
        """Course documents, learning paths, activities."""
        return FakeContent(self._state)

    @property
    def pictures(self) -> FakePictures:
        """User pictures."""
        return FakePictures(self._state)


class ContentViews:
    """Seeding and reads of content for tests (a mixin of FakePlatform; not the port)."""

    _state: FakeState

    def seed_document(self, course_id: int, path: str, data: bytes = b"", *, title: str = "",
                      mimetype: str = "") -> DocumentRecord:
        """Store ``data`` as a blob and a document of the course; return it with its id."""
        sha256, size = FakeFiles(self._state).put([data])
        document = DocumentRecord(course_id, path, sha256, size, title, mimetype)
        FakeContent(self._state).put_documents([document])
        return document

    def seed_picture(self, user_id: int, data: bytes = b"\x89PNG", *, mimetype: str = "image/png",
                     width: int = 1, height: int = 1) -> PictureRecord:
        """Store ``data`` as a blob and the user's picture; return it with its id."""
        sha256, _ = FakeFiles(self._state).put([data])
        picture = PictureRecord(user_id, sha256, mimetype, width, height)
        FakePictures(self._state).put([picture])
        return picture

    def documents(self) -> list[DocumentRecord]:
        """Every document, by course then path."""
        return FakeContent(self._state).documents({d.course_id for d in self._state.documents.values()})

    def path_items(self) -> list[PathItemRecord]:
        """Every learning path item, by course, position then key."""
        return FakeContent(self._state).path({i.course_id for i in self._state.path_items.values()})

    def activities(self) -> list[ActivityRecord]:
        """Every activity, by course, section, position then key."""
        return FakeContent(self._state).activities({a.course_id for a in self._state.activities.values()})

    def pictures(self) -> dict[int, PictureRecord]:
        """User id -> picture, for every user that has one."""
        return {p.user_id: copy.copy(p) for p in self._state.pictures.values()}

    def blobs(self) -> dict[str, bytes]:
        """Every stored blob by sha256 (referenced or not)."""
        return dict(self._state.blobs)
