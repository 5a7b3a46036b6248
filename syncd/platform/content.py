"""The platform port, continued: course content (documents, learning path, activities),
the blob files they point to, and user pictures (issue 6: course archives, pictures).

:class:`~syncd.platform.base.PlatformTx` offers them as ``tx.files``, ``tx.content``
and ``tx.pictures``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, BinaryIO, Protocol

from syncd.platform.model import ActivityRecord, DocumentRecord, PathItemRecord, PictureRecord

if TYPE_CHECKING:
    from syncd.platform.base import CourseRepository


class FileRepository(Protocol):
    """Content-addressed blobs (documents, pictures): one file per distinct content.

    Not transactional: a blob is written at once and stays when the transaction that
    put it rolls back (an orphan is harmless; a cleanup job may sweep it). Rows that
    refer to blobs are transactional. Hashes are sha256 in lowercase hex; a malformed one
    is a ValueError.
    """

    def put(self, chunks: Iterable[bytes]) -> tuple[str, int]:
        """Store this content (read chunk by chunk) unless present; return (sha256, size)."""
        ...

    def open(self, sha256: str) -> BinaryIO:
        """The blob for reading (the caller closes it); FileNotFoundError when absent."""
        ...

    def exists(self, sha256: str) -> bool:
        """Whether the blob is stored."""
        ...


class ContentRepository(Protocol):
    """Course content: documents, the learning path and activities, per course.

    Keys and paths are checked by ``model.check_document`` / ``check_path`` /
    ``check_activities`` (ValueError, before anything is written); a course that does not
    exist breaks a foreign key.
    """

    def documents(self, course_ids: Collection[int]) -> list[DocumentRecord]:
        """The documents of these courses, by course then path."""
        ...

    def put_documents(self, documents: Sequence[DocumentRecord]) -> None:
        """Insert or update documents by (course_id, path) and set their ``id`` (the last
        of one (course_id, path) wins). Put their blob first: nothing checks it is there."""
        ...

    def delete_documents(self, document_ids: Collection[int]) -> None:
        """Delete documents (absent ids are ignored; the blobs stay)."""
        ...

    def path(self, course_ids: Collection[int]) -> list[PathItemRecord]:
        """The learning path items of these courses, by course, position then key."""
        ...

    def replace_path(self, course_id: int, items: Sequence[PathItemRecord]) -> None:
        """Make ``items`` the whole learning path of this course; set their ``id``."""
        ...

    def activities(self, course_ids: Collection[int]) -> list[ActivityRecord]:
        """The activities of these courses, by course, section, position then key."""
        ...

    def replace_activities(self, course_id: int, items: Sequence[ActivityRecord]) -> None:
        """Make ``items`` the whole list of activities of this course; set their ``id``."""
        ...

    def hashes(self) -> set[str]:
        """Every blob hash a document refers to (for a cleanup job)."""
        ...


class PictureRepository(Protocol):
    """User pictures: at most one per user, its content a blob of the file store."""

    def find(self, user_ids: Collection[int]) -> dict[int, PictureRecord]:
        """User id -> picture, for those of these users that have one."""
        ...

    def put(self, pictures: Sequence[PictureRecord]) -> None:
        """Insert or replace each user's picture (the last one of a user wins); set ``id``."""
        ...

    def delete(self, user_ids: Collection[int]) -> None:
        """Remove the pictures of these users (none is fine; the blobs stay)."""
        ...

    def hashes(self) -> set[str]:
        """Every blob hash a picture refers to (for a cleanup job)."""
        ...


def copy_by_parts(
    courses: CourseRepository, content: ContentRepository, source_id: int, target_id: int
) -> None:
    """``PlatformTx.copy_course`` for a platform without a native copy: sections (a name or
    summary the target section has of its own is kept, an empty one filled), then
    documents (the same blobs), learning path and activities, each read from the source
    and written for the target."""
    own = {s.number: s for s in courses.sections([target_id])}
    sections = []
    for section in courses.sections([source_id]):
        mine = own.get(section.number)
        name, summary = (mine.name, mine.summary) if mine else ("", "")
        wanted = (name or section.name, summary or section.summary)
        if mine is None or wanted != (name, summary):
            sections.append(replace(section, course_id=target_id, id=None, name=wanted[0], summary=wanted[1]))
    if sections:
        courses.put_sections(sections)
    docs = [replace(d, course_id=target_id, id=None) for d in content.documents([source_id])]
    if docs:
        content.put_documents(docs)
    path = [replace(i, course_id=target_id, id=None) for i in content.path([source_id])]
    if path:
        content.replace_path(target_id, path)
    activities = [replace(a, course_id=target_id, id=None) for a in content.activities([source_id])]
    if activities:
        content.replace_activities(target_id, activities)
