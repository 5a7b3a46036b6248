"""A new course's ``template``: another course's content, or a course archive in store/.

``template = <shortname>`` copies that course's sections, documents (the same blobs),
activities and learning path, through ``PlatformTx.copy_course`` once the new course
exists (the platform's own copy when it has one: Moodle's course import).
``template = <path>`` (a value with ``/`` or an archive
suffix) names a course archive inside ``store/`` — e.g. ``templates/base.mbz`` dropped
with a route that stores it, or put there by an operator — read safely like a dropped
archive (syncd/archives); its sections, documents, activities and learning path go
into the new course, whose names and fields still come from the row.

An archive's sections are set while the row is applied (through the batch's SectionSet);
the rest needs the new course's real id, so it is written after the batch's courses are.
A row's own ``topicN`` sections are kept either way (copy_course keeps a target section
that has a name or summary).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path, PurePosixPath

from syncd.archives.model import CourseArchive
from syncd.archives.readers import in_archive_order, open_document, read_course
from syncd.archives.safe import Limits, open_archive
from syncd.domain import RejectFile, RowError
from syncd.platform.base import PlatformTx
from syncd.platform.model import CourseRecord
from syncd.processors._coursecontent import ContentWriter
from syncd.processors._courserows import looks_like_archive
from syncd.processors._coursework import CourseSet, SectionSet, TempIds
from syncd.processors._lookup import unknown


@dataclass(slots=True)
class TemplateCopy:
    """What one new course takes from its template (planned, then attached to the course)."""

    name: str
    from_course: int | None = None
    archive: Path | None = None
    content: CourseArchive | None = None
    course: CourseRecord | None = None


class Templates:
    """The template copies a batch plans, written after its courses exist."""

    def __init__(self, store_dir: Path | None, temp: TempIds, limits: Limits | None = None) -> None:
        self._store = store_dir
        self._temp = temp
        self._limits = limits or Limits()
        self._copies: list[TemplateCopy] = []

    def plan(self, template: str, courses: CourseSet) -> TemplateCopy:
        """What ``template`` gives a new course (an archive is read and checked now); RowError."""
        source = courses.by_shortname.get(template)
        if source is not None and source.id is not None:
            return TemplateCopy(template, from_course=source.id)
        if not looks_like_archive(template):
            raise unknown("course", template, "template")
        path = self._archive_path(template)
        try:
            with open_archive(path, self._limits) as archive:
                content = read_course(archive, template)
                content = replace(content, documents=in_archive_order(archive, content.documents))
        except RejectFile as exc:
            raise RowError(f"template: {exc}") from None
        return TemplateCopy(template, archive=path, content=content)

    def attach(self, copy: TemplateCopy, course: CourseRecord, sections: SectionSet) -> str:
        """Give the (added) new course its template's sections now and the rest at :meth:`write`."""
        assert course.id is not None
        if copy.from_course is not None:
            described = f" from template {copy.name!r}"  # sections too: copy_course at write()
        else:
            assert copy.content is not None
            for part in copy.content.sections:
                sections.put(course.id, part.number, part.name, part.summary)
            described = (f" from template archive {copy.name!r} "
                         f"({copy.content.format}, {len(copy.content.documents)} documents)")
        copy.course = course
        self._copies.append(copy)
        return described

    def _archive_path(self, value: str) -> Path:
        rel = PurePosixPath(value.replace("\\", "/"))
        if self._store is None:
            raise RowError("template: archives are looked up in store/, which this run does not know")
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise RowError(f"template: a course archive path inside store/ (got {value!r})")
        path = self._store.joinpath(*rel.parts)
        if path.is_symlink() or not path.is_file():
            raise RowError(f"template: no course archive at store/{rel}")
        return path

    def write(self, tx: PlatformTx) -> None:
        """Copy documents, activities and learning path into the (now real) new courses."""
        for copy in self._copies:
            course_id = self._temp.real(copy.course.id) if copy.course and copy.course.id else None
            if course_id is None or course_id <= 0:
                continue
            if copy.from_course is not None:
                source = self._temp.real(copy.from_course)
                if source > 0:  # else created by this batch in a dry run: nothing to copy
                    tx.copy_course(source, course_id)
            elif copy.archive is not None and copy.content is not None:
                _copy_archive(tx, copy.archive, copy.content, course_id, self._limits)
        self._copies.clear()


def _copy_archive(tx: PlatformTx, path: Path, content: CourseArchive, target: int, limits: Limits) -> None:
    writer = ContentWriter(tx, target)
    titles = {i.target: i.title for i in content.path if i.kind in ("document", "sco")}
    with open_archive(path, limits) as archive:
        for doc in content.documents:
            writer.document(doc, partial(open_document, archive, doc), titles.get(doc.path, ""))
    writer.activities(content.activities)
    writer.path(content.path)
