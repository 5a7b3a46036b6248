"""The neutral in-memory model every course-archive reader produces (no I/O here).

One :class:`CourseArchive` per archive: the course's names and fields, its sections, the
documents to copy out of the archive, the learning path (a tree through ``parent`` keys),
the activities syncd models, and what was *not* imported and why (:class:`Skipped`), so
the course_import report can list both.

Conventions shared by every reader:

- ``ArchiveDocument.path`` is the document's place inside the course: POSIX, normalised,
  no leading ``/``, unique within one ``CourseArchive``. ``member`` names the archive
  member holding its bytes. A *generated* document (a Bitrix lesson's or a Moodle page's
  HTML, built by the reader) has ``member == ""`` and carries its bytes in ``content``;
  :func:`syncd.archives.readers.open_document` reads either kind.
- ``PathItem.target`` is a document ``path`` for kind ``"document"`` and ``"sco"``, an
  activity ``key`` for ``"activity"``, a URL for ``"link"`` and ``None`` for ``"folder"``
  (or when the referenced file is missing; a :class:`Skipped` line then says so).
  ``position`` counts from 0 among the siblings of one parent.
- ``fields`` values are strings: ``startdate``/``enddate`` ISO 8601 in UTC, ``visible``
  ``"1"``/``"0"``; other keys as found (``format``, ``lang``, ``idnumber``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

#: The archive formats :func:`syncd.archives.detect.detect` tells apart.
ArchiveFormat = Literal["mbz", "scorm12", "imscc", "chamilo", "bitrix", "syncd"]

#: The kinds of learning-path items.
PATH_KINDS = frozenset({"folder", "document", "activity", "sco", "link"})

#: The activity kinds syncd models; every other kind becomes a :class:`Skipped` line.
MODELLED_ACTIVITIES = frozenset({"resource", "folder", "page", "url", "label"})


@dataclass(frozen=True, slots=True)
class ArchiveSection:
    """A course section (topic/week/chapter): its number, name and summary (HTML)."""

    number: int
    name: str
    summary: str


@dataclass(frozen=True, slots=True)
class ArchiveDocument:
    """A file of the course: where it goes (``path``), its size, and where to read it."""

    path: str
    size: int
    member: str
    content: bytes | None = None  # only for generated documents (member == "")


@dataclass(frozen=True, slots=True)
class PathItem:
    """One node of the learning path; ``parent`` is another item's ``key`` or None."""

    key: str
    title: str
    parent: str | None
    kind: str
    target: str | None
    position: int
    section: int | None


@dataclass(frozen=True, slots=True)
class ArchiveActivity:
    """A modelled activity (resource, folder, page, url, label) in a section."""

    key: str
    section: int
    kind: str
    title: str


@dataclass(frozen=True, slots=True)
class Skipped:
    """Something the archive holds that syncd did not import, and why."""

    what: str
    reason: str


@dataclass(frozen=True, slots=True)
class CourseArchive:
    """A course read from an archive, ready for the course_import processor."""

    format: ArchiveFormat
    shortname: str
    fullname: str
    summary: str
    fields: dict[str, str] = field(default_factory=dict)
    sections: list[ArchiveSection] = field(default_factory=list)
    documents: list[ArchiveDocument] = field(default_factory=list)
    path: list[PathItem] = field(default_factory=list)
    activities: list[ArchiveActivity] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
