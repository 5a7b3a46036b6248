"""Writing a course's content — sections, documents, learning path, activities — from an
imported archive or from another course (shared by course_import and the courses
processor's ``template``).

Rules (README "course_import"):

- Sections of the archive are created or updated by number; other sections are kept.
- A document is stored once per content (blob by sha256) and upserted by its path in
  the course: same bytes = unchanged. Documents of the course that the archive no
  longer has are removed by :meth:`ContentWriter.prune` (their blobs stay for the
  cleanup job).
- The learning path and the activities are each replaced as a whole.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Callable, Iterable, Sequence
from typing import BinaryIO

from syncd.archives.model import ArchiveActivity, ArchiveDocument, ArchiveSection, PathItem
from syncd.domain import Outcome, RowResult
from syncd.platform.base import PlatformTx
from syncd.platform.model import ActivityRecord, DocumentRecord, PathItemRecord, SectionRecord

CHUNK = 1 << 20


def chunks_of(stream: BinaryIO) -> Iterable[bytes]:
    """The stream's bytes in 1 MiB chunks (closes it at the end)."""
    with stream:
        while chunk := stream.read(CHUNK):
            yield chunk


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    return f"{n / 1024:.1f} KB" if n < 1024 * 1024 else f"{n / (1024 * 1024):.1f} MB"


class ContentWriter:
    """Writes one course's content inside a platform transaction."""

    def __init__(self, tx: PlatformTx, course_id: int) -> None:
        self._tx = tx
        self._course = course_id
        self._documents: dict[str, DocumentRecord] | None = None

    def _docs(self) -> dict[str, DocumentRecord]:
        if self._documents is None:
            found = self._tx.content.documents([self._course])
            self._documents = {d.path: d for d in found}
        return self._documents

    def section(self, section: ArchiveSection) -> RowResult:
        """Create or update one section by number."""
        current = {s.number: s for s in self._tx.courses.sections([self._course])}.get(section.number)
        label = f"section {section.number} {section.name!r}".rstrip()
        if current is not None and (current.name, current.summary) == (section.name, section.summary):
            return RowResult(Outcome.UNCHANGED, label)
        record = SectionRecord(self._course, section.number, section.name, section.summary,
                               current.id if current else None)
        self._tx.courses.put_sections([record])
        return RowResult(Outcome.UPDATED if current else Outcome.CREATED, label)

    def document(self, doc: ArchiveDocument, read: Callable[[], BinaryIO], title: str = "") -> RowResult:
        """Store the document's bytes (deduplicated) and upsert it by path."""
        sha256, size = self._tx.files.put(chunks_of(read()))
        current = self._docs().get(doc.path)
        label = f"document {doc.path!r} ({_size(size)})"
        if current is not None and current.sha256 == sha256 and (not title or current.title == title):
            return RowResult(Outcome.UNCHANGED, label)
        mimetype = mimetypes.guess_type(doc.path)[0] or "application/octet-stream"
        title = title or (current.title if current else "")
        record = DocumentRecord(self._course, doc.path, sha256, size, title, mimetype,
                                current.id if current else None)
        self._tx.content.put_documents([record])
        self._docs()[doc.path] = record
        return RowResult(Outcome.UPDATED if current else Outcome.CREATED, label)

    def path(self, items: Sequence[PathItem]) -> RowResult:
        """Replace the learning path."""
        new = [
            PathItemRecord(self._course, i.key, i.title, i.parent, i.kind, i.target, i.position, i.section)
            for i in items
        ]
        old = self._tx.content.path([self._course])
        label = f"learning path ({len(new)} items)"
        if _path_key(old) == _path_key(new):
            return RowResult(Outcome.UNCHANGED, label)
        self._tx.content.replace_path(self._course, new)
        return RowResult(Outcome.UPDATED if old else Outcome.CREATED, label)

    def activities(self, items: Sequence[ArchiveActivity]) -> RowResult:
        """Replace the activity list."""
        new = [ActivityRecord(self._course, a.key, a.section, a.kind, a.title, n)
               for n, a in enumerate(items)]
        old = self._tx.content.activities([self._course])
        kinds = sorted({a.kind for a in items})
        label = f"activities ({len(new)}: {', '.join(kinds) or 'none'})"
        if _activity_key(old) == _activity_key(new):
            return RowResult(Outcome.UNCHANGED, label)
        self._tx.content.replace_activities(self._course, new)
        return RowResult(Outcome.UPDATED if old else Outcome.CREATED, label)

    def prune(self, keep: Iterable[str]) -> RowResult:
        """Remove the course's documents whose paths are not in ``keep``."""
        wanted = set(keep)
        stale = [d for path, d in self._docs().items() if path not in wanted and d.id is not None]
        if not stale:
            return RowResult(Outcome.UNCHANGED, "no document to remove")
        self._tx.content.delete_documents([d.id for d in stale if d.id is not None])
        for doc in stale:
            self._docs().pop(doc.path, None)
        shown = ", ".join(repr(d.path) for d in stale[:5]) + (" ..." if len(stale) > 5 else "")
        return RowResult(Outcome.DELETED, f"{len(stale)} document(s) no longer in the archive: {shown}")


def _path_key(items: Iterable[PathItemRecord]) -> list[tuple[object, ...]]:
    return sorted((i.key, i.title, i.parent_key, i.kind, i.target, i.position, i.section) for i in items)


def _activity_key(items: Iterable[ActivityRecord]) -> list[tuple[object, ...]]:
    return sorted((a.key, a.section, a.kind, a.title, a.position) for a in items)
