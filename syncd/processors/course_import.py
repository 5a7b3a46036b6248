"""course_import: a course archive dropped into sync/ becomes a course with its content.

The archive (Moodle .mbz, SCORM 1.2, IMS Common Cartridge 1.1, Chamilo backup, 1C-Bitrix
export, or syncd's own backup) is recognised by its content and read whole, safely
(syncd/archives), before anything is applied: a refused or unreadable archive fails as
a file with the reason, and nothing is written. Then it is applied item by item, each
item a row of the report:

1. ``course`` — created, or updated when a course of that shortname exists (fullname,
   summary, format, lang, dates, visibility; idnumber if no other course has it; the
   category of an existing course is kept). The shortname comes from the archive unless
   the route gives ``shortname``; a new course goes into the route's ``category`` (a
   path), else the category path the archive gives (syncd's own backups do), else
   ``Miscellaneous``, and gets the manual enrolment method, as the courses processor does.
2. one ``section`` per section, 3. one ``document`` per file, 4. ``activities``,
5. ``path`` (the learning path), 6. ``prune`` (documents of an earlier import that the
   archive no longer has), 7. one ``skipped`` row per thing syncd does not model
   (quizzes, forums…), with the reason.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from syncd.archives.model import CourseArchive
from syncd.archives.readers import in_archive_order, open_document, read_course
from syncd.archives.safe import Archive, Limits, open_archive
from syncd.csvfile import Schema
from syncd.domain import ConfigError, Outcome, RejectFile, RowError, RowResult
from syncd.platform.base import PlatformTx
from syncd.platform.model import CourseRecord, EnrolMethod, SectionRecord
from syncd.processors._coursecontent import ContentWriter
from syncd.processors._coursework import CategoryTree, TempIds
from syncd.processors._items import ITEM_SCHEMA, Item, ItemSource
from syncd.processors.base import Processor, ProcessorSpec, Row, RunContext

DEFAULT_CATEGORY = ("Miscellaneous",)


def course_values(course: CourseArchive) -> dict[str, Any]:
    """The CourseRecord fields an archive gives (typed), besides shortname and category."""
    values: dict[str, Any] = {"fullname": course.fullname or course.shortname, "summary": course.summary}
    fields = course.fields
    if fields.get("format"):
        values["format"] = fields["format"]
    if fields.get("lang"):
        values["lang"] = fields["lang"]
    if fields.get("visible") in ("0", "1"):
        values["visible"] = fields["visible"] == "1"
    for name in ("groupmode", "maxbytes"):
        if fields.get(name, "").isdigit():
            values[name] = int(fields[name])
    for name in ("startdate", "enddate"):
        if fields.get(name):
            with contextlib.suppress(ValueError):  # a date the reader could not make sense of
                values[name] = datetime.fromisoformat(fields[name])
    return values


class CourseImportProcessor:
    """Applies the items of one course archive."""

    def __init__(self, shortname: str | None, category: tuple[str, ...] | None, limits: Limits) -> None:
        self.shortname = shortname
        self.category = category
        self.limits = limits
        self._path: Path | None = None
        self._course: CourseArchive | None = None
        self._archive: Archive | None = None

    @property
    def schema(self) -> Schema:
        """The synthetic item columns."""
        return ITEM_SCHEMA

    def describe(self) -> str:
        """The options in force."""
        name = f"shortname={self.shortname} " if self.shortname else ""
        return f"{name}category={'/'.join(self.category) if self.category else '(from the archive)'}"

    def source(self, path: Path) -> ItemSource:
        """The archive at ``path`` as items (read and checked whole when listed)."""
        self._path = path
        return ItemSource(path, self._items)

    def _items(self) -> list[Item]:
        assert self._path is not None
        with open_archive(self._path, self.limits) as archive:
            course = read_course(archive, self._path.name)
            # documents in member order: a tar.gz is then read forward, never rewound
            course = replace(course, documents=in_archive_order(archive, course.documents))
        if self.shortname:
            course = replace(course, shortname=self.shortname)
        if not course.shortname.strip():
            raise RejectFile(f"{self._path.name}: the archive gives no course shortname; "
                             "set the route option shortname")
        self._course = course
        items = [Item("course", course.shortname, f"{course.format}: {course.fullname}")]
        items += [Item("section", str(s.number), s.name) for s in course.sections]
        items += [Item("document", d.path, str(d.size)) for d in course.documents]
        items.append(Item("activities", "", str(len(course.activities))))
        items.append(Item("path", "", str(len(course.path))))
        items.append(Item("prune", "", "documents no longer in the archive"))
        items += [Item("skipped", s.what, s.reason) for s in course.skipped]
        return items

    def _open(self) -> Archive:
        if self._archive is None:
            assert self._path is not None
            self._archive = open_archive(self._path, self.limits)
        return self._archive

    def apply(self, rows: Sequence[Row], tx: PlatformTx) -> list[RowResult]:
        """Apply the items in order; the course item first creates what the others fill."""
        results = []
        writers: dict[str, ContentWriter] = {}  # one per batch: documents are read once
        try:
            for row in rows:
                try:
                    results.append(self._apply_one(row.values, tx, writers))
                except RowError as exc:
                    results.append(RowResult(Outcome.ERROR, str(exc)))
        finally:
            if self._archive is not None:  # reopened by the next batch if it needs documents
                self._archive.close()
                self._archive = None
        return results

    def _writer(self, tx: PlatformTx, writers: dict[str, ContentWriter]) -> ContentWriter:
        assert self._course is not None
        shortname = self._course.shortname
        if shortname not in writers:
            found = tx.courses.find(shortnames=[shortname])
            if not found or found[0].id is None:
                raise RowError(f"course {shortname!r} was not imported (see its row)")
            writers[shortname] = ContentWriter(tx, found[0].id)
        return writers[shortname]

    def _apply_one(
        self, values: Mapping[str, str], tx: PlatformTx, writers: dict[str, ContentWriter]
    ) -> RowResult:
        course = self._course
        assert course is not None, "records are listed before rows are applied"
        kind, key = values["item"], values["key"]
        if kind == "skipped":
            return RowResult(Outcome.SKIPPED, f"{key}: {values['detail']}")
        if kind == "course":
            return put_course(tx, course, self.category)
        writer = self._writer(tx, writers)
        if kind == "section":
            return writer.section(next(s for s in course.sections if str(s.number) == key))
        if kind == "document":
            doc = next(d for d in course.documents if d.path == key)
            titles = {i.target: i.title for i in course.path if i.kind in ("document", "sco")}
            return writer.document(doc, lambda: open_document(self._open(), doc), titles.get(doc.path, ""))
        if kind == "activities":
            return writer.activities(course.activities)
        if kind == "path":
            return writer.path(course.path)
        if kind == "prune":
            return writer.prune(d.path for d in course.documents)
        raise RowError(f"unknown item {kind!r}")


def put_course(tx: PlatformTx, course: CourseArchive, category: tuple[str, ...] | None) -> RowResult:
    """Create the archive's course, or update the one with its shortname. A new course goes
    into ``category``; None means the archive's own category path, else the default."""
    values = course_values(course)
    idnumber = course.fields.get("idnumber") or None
    found = tx.courses.find(shortnames=[course.shortname], idnumbers=[idnumber] if idnumber else [])
    mine = next((c for c in found if c.shortname == course.shortname), None)
    note = ""
    if idnumber and any(c.idnumber == idnumber and c is not mine for c in found):
        note = f"; idnumber {idnumber!r} belongs to another course, not set"
    elif idnumber:
        values["idnumber"] = idnumber
    label = f"course {course.shortname!r} ({course.format})"
    if mine is None:
        temp = TempIds()
        tree = CategoryTree(tx.categories.all(), temp)
        category_id = tree.resolve(category or archive_category(course))
        tree.flush(tx)
        record = CourseRecord(shortname=course.shortname, category_id=temp.real(category_id), **values)
        tx.courses.add([record])
        assert record.id is not None
        tx.courses.put_sections([SectionRecord(record.id, 0)])
        tx.enrolments.add_methods([EnrolMethod(course_id=record.id, method="manual")])
        return RowResult(Outcome.CREATED, label + note)
    changed = [k for k, v in values.items() if getattr(mine, k) != v]
    if not changed:
        return RowResult(Outcome.UNCHANGED, label + note)
    for name in changed:
        setattr(mine, name, values[name])
    tx.courses.update([mine])
    return RowResult(Outcome.UPDATED, f"{label}: {', '.join(changed)}{note}")


def archive_category(course: CourseArchive) -> tuple[str, ...]:
    """The category path the archive names ("Top/Sub"), or the default one."""
    names = tuple(n for n in course.fields.get("category", "").split("/") if n.strip())
    return names or DEFAULT_CATEGORY


def _category(options: Mapping[str, Any]) -> tuple[str, ...] | None:
    if "category" not in options:
        return None
    value = options["category"]
    names = tuple(p.strip() for p in value.split("/")) if isinstance(value, str) else ()
    if not names or any(not n for n in names):
        raise ConfigError(f"course_import: option category must be a path like 'A/B' (got {value!r})")
    return names


def build(options: Mapping[str, Any], ctx: RunContext) -> CourseImportProcessor:
    """Build the processor from route options; ConfigError names a bad one."""
    shortname = options.get("shortname")
    if shortname is not None and (not isinstance(shortname, str) or not shortname.strip()):
        raise ConfigError(f"course_import: option shortname must be a non-empty string (got {shortname!r})")
    return CourseImportProcessor(shortname.strip() if shortname else None, _category(options), Limits())


def _source(path: Path, processor: Processor) -> ItemSource:
    assert isinstance(processor, CourseImportProcessor)
    return processor.source(path)


SPEC = ProcessorSpec(
    name="course_import",
    priority=15,
    factory=build,
    options=frozenset({"shortname", "category"}),
    source=_source,
)
