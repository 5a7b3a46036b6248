"""Reader of 1C-Bitrix learning-module exports (``.tar.gz`` from ``CCoursePackage``).

Public surface::

    read_bitrix(archive: Archive, where: str) -> CourseArchive   (format "bitrix")

The export is an IMS content package without SCORM markers, its XML usually declared
``windows-1251``: ``imsmanifest.xml`` holds one organization whose top item ``COR<n>``
is the course, with nested ``CHA<n>`` (chapter), ``LES<n>`` (lesson), ``QUE<n>``
(question), ``TES<n>``/``TMK<n>`` (test, test mark) items; each item's resource has
``href="res<n>.xml"`` holding the record (``<coursetoc>`` for the course, ``<content
type="…">`` otherwise, one lower-case element per field) and lists the record's files
(``resources/res<n>/…``, ``dbresources/…``).

- fullname / shortname / summary: the course record's ``name`` (else the item title) /
  ``code`` (else ``bitrix-<id>``) / ``description`` (else ``preview_text``);
  fields: ``visible`` from ``active`` (Y/N), ``startdate``/``enddate`` from
  ``active_from``/``active_to`` (epoch → ISO 8601 UTC).
- sections: the top-level chapters, numbered from 1 (name, ``preview_text`` as summary);
  lessons directly under the course go to a section 0 ("General") created for them.
- learning path: a folder per chapter (nested chapters nest), keyed by item identifier;
  a chapter with ``detail_text`` gets a first document item for a generated
  ``chapters/<id>.html``. Each lesson is a ``document`` item for a generated
  ``lessons/<id>.html`` — its ``detail_text`` as a UTF-8 HTML page (plain-text lessons
  escaped in ``<pre>``), with Bitrix's ``cid:resources/…`` image links rewritten to
  ``../resources/…`` — and an activity of kind ``page``.
- documents: the generated pages plus every file the resources list that the archive
  holds, at their archive paths (a ``Skipped`` line for each one it lacks).
- tests are ``Skipped`` one by one; questions are counted into one ``Skipped`` line.
"""

from __future__ import annotations

import html
import re
from xml.etree.ElementTree import Element

from syncd.archives._base import Archive, ArchiveError
from syncd.archives._common import Documents, LearningPath, html_page, iso_from_epoch, read_xml
from syncd.archives._imscp import Resource, default_organization, item_title, items, manifest_resources
from syncd.archives.model import ArchiveActivity, ArchiveSection, CourseArchive, Skipped
from syncd.archives.xmlsafe import attr, text_of

_TYPE = re.compile(r"^([A-Z]{3})(\d+)$")
_CID = re.compile(r"cid:(resources/res\d+/)")


def _item_type(item: Element) -> tuple[str, str]:
    """("LES", "12") for an item identified ``LES12``; ("", "") for anything else."""
    match = _TYPE.match(attr(item, "identifier") or "")
    return (match.group(1), match.group(2)) if match else ("", "")


def _record_id(record: Element | None, item: Element) -> str:
    """The record's numeric id (``id``, else ``lesson_id``), else the item's number."""
    for name in ("id", "lesson_id"):
        if (value := text_of(record, name)).isdigit():
            return value
    return _item_type(item)[1]


def _page(title: str, body: str, body_type: str) -> bytes:
    if body_type.lower() == "text":
        body = f"<pre>{html.escape(body)}</pre>"
    return html_page(title, _CID.sub(r"../\1", body))


class _Reader:
    def __init__(self, archive: Archive, where: str, resources: dict[str, Resource]) -> None:
        self.archive = archive
        self.where = where
        self.resources = resources
        self.documents = Documents()
        self.path = LearningPath()
        self.sections: list[ArchiveSection] = []
        self.activities: list[ArchiveActivity] = []
        self.skipped: list[Skipped] = []
        self.questions = 0

    def record(self, item: Element) -> Element | None:
        """The parsed res<n>.xml of an item, None when it has none in the archive."""
        resource = self.resources.get(attr(item, "identifierref") or "")
        if resource is None or resource.href is None or resource.href not in self.archive:
            return None
        return read_xml(self.archive, resource.href, self.where)

    def course(self, course_item: Element) -> None:
        children = items(course_item, 1, self.where)
        general = ""
        if any(_item_type(child)[0] == "LES" for child in children):
            self.sections.append(ArchiveSection(0, "", ""))
            general = self.path.add("section_0", "General", None, "folder", None, 0)
        number = 0
        for child in children:
            kind = _item_type(child)[0]
            if kind == "CHA":
                number += 1
                self.chapter(child, None, number, 2)
            elif kind == "LES":
                self.lesson(child, general, 0, 2)
            else:
                self.other(child)

    def chapter(self, item: Element, parent: str | None, section: int, depth: int) -> None:
        record = self.record(item)
        title = text_of(record, "name") or item_title(item)
        if parent is None:
            self.sections.append(ArchiveSection(section, title, text_of(record, "preview_text")))
        key = self.path.add(attr(item, "identifier") or title, title, parent, "folder", None, section)
        if detail := text_of(record, "detail_text"):
            doc = f"chapters/{_record_id(record, item)}.html"
            self.documents.add_generated(doc, _page(title, detail, text_of(record, "detail_text_type")))
            self.path.add(f"{key}/text", title, key, "document", doc, section)
        for child in items(item, depth, self.where):
            kind = _item_type(child)[0]
            if kind == "CHA":
                self.chapter(child, key, section, depth + 1)
            elif kind == "LES":
                self.lesson(child, key, section, depth + 1)
            else:
                self.other(child)

    def lesson(self, item: Element, parent: str, section: int, depth: int) -> None:
        record = self.record(item)
        title = text_of(record, "name") or item_title(item)
        doc = f"lessons/{_record_id(record, item)}.html"
        self.documents.add_generated(
            doc, _page(title, text_of(record, "detail_text"), text_of(record, "detail_text_type")))
        key = self.path.add(attr(item, "identifier") or title, title, parent, "document", doc, section)
        self.activities.append(ArchiveActivity(key, section, "page", title))
        for child in items(item, depth, self.where):
            self.other(child)

    def other(self, item: Element) -> None:
        kind = _item_type(item)[0]
        if kind == "QUE":
            self.questions += 1
        elif kind == "TES":
            self.skipped.append(Skipped(f"test {item_title(item)}", "Bitrix tests are not modelled"))
        elif kind != "TMK":  # test marks belong to their (skipped) test
            self.skipped.append(Skipped(f"item {item_title(item)}", f"Bitrix item type {kind or '?'} "
                                                                   "is not modelled"))

    def files(self) -> None:
        for resource in self.resources.values():
            for path in resource.files:
                if path in self.archive:
                    self.documents.add_member(path, self.archive, path)
                else:
                    self.skipped.append(Skipped(f"file {path}", "listed in imsmanifest.xml but missing "
                                                                "from the export"))


def _fields(course: Element | None) -> dict[str, str]:
    fields: dict[str, str] = {}
    if (active := text_of(course, "active")) in ("Y", "N"):
        fields["visible"] = "1" if active == "Y" else "0"
    for key, name in (("startdate", "active_from"), ("enddate", "active_to")):
        if iso := iso_from_epoch(text_of(course, name)):
            fields[key] = iso
    return fields


def read_bitrix(archive: Archive, where: str) -> CourseArchive:
    """The course in the Bitrix export ``archive`` (see the module docstring)."""
    manifest = read_xml(archive, "imsmanifest.xml", where)
    organization = default_organization(manifest)
    top = items(organization, 0, where) if organization is not None else []
    course_item = next((item for item in top if _item_type(item)[0] == "COR"), None)
    if course_item is None:
        raise ArchiveError(f"{where}: imsmanifest.xml: no course item (COR<n>)")
    reader = _Reader(archive, where, manifest_resources(manifest))
    course = reader.record(course_item)
    reader.course(course_item)
    reader.files()
    if reader.questions:
        reader.skipped.append(Skipped(f"{reader.questions} questions", "Bitrix questions are not modelled"))
    course_id = text_of(course, "id")
    return CourseArchive(
        format="bitrix",
        shortname=text_of(course, "code") or (f"bitrix-{course_id}" if course_id else ""),
        fullname=text_of(course, "name") or item_title(course_item),
        summary=text_of(course, "description") or text_of(course, "preview_text"),
        fields=_fields(course),
        sections=reader.sections,
        documents=reader.documents.items(),
        path=reader.path.items(),
        activities=reader.activities,
        skipped=list(dict.fromkeys(reader.skipped)),
    )
