"""Reader of Chamilo course backups (a zip with ``course_info.dat`` and a ``document/`` tree).

Public surface::

    read_chamilo(archive: Archive, where: str) -> CourseArchive   (format "chamilo")
    ALLOWED_CLASSES: frozenset[str]   the PHP classes course_info.dat may contain

``course_info.dat`` is base64 of ``serialize($course)`` (raw-deflated first by some
versions; igbinary is refused). It is read with :mod:`syncd.archives.phpserial`, allowing
only data classes: ``Course``, the CourseCopy resource classes (``Document``,
``CourseCopyLearnpath``, ``Link``, ``Forum``, ``Quiz``… with their 1.10+ namespaces
``Chamilo\\CourseBundle\\Component\\CourseCopy[\\Resources]\\`` and their bare 1.9 names)
and ``stdClass`` (resources keep database rows in ``obj``). Strings are decoded with the
course's ``encoding`` property (UTF-8 when absent).

- fullname: ``info['title']`` (else ``info['name']``); shortname: ``info['official_code']``,
  else the course ``code``; summary: the first course description's content;
  fields: ``lang`` (``course_language``), ``visible`` (visibility 0 closed / 4 hidden → "0").
- documents: every file of the ``document/`` tree, path without the ``document/`` prefix;
  a ``Document`` resource whose file is missing gives a ``Skipped`` line.
- sections and learning path: one section per learning path (number from 1, in display
  order), a folder item ``lp_<id>`` holding its items by ``parent_item_id`` and
  ``display_order``: ``dir`` → folder, ``document`` → document (its ``path`` is the
  document's id), ``link`` → link to the Link resource's URL; other item types (quiz,
  forum, student_publication…) → ``Skipped``.
- activities: each Link resource, kind ``url``, in the section of the learning path that
  uses it (else section 0, created for them).
- forums, quizzes, surveys, assignments, wiki pages, glossary terms, announcements,
  events, attendances, thematics, SCORM packages → a ``Skipped`` line each.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import zlib

from syncd.archives._base import Archive, ArchiveError, member_name
from syncd.archives._chamilo_lp import PathContext, add_learnpath, as_dict, prop, text
from syncd.archives._common import Documents, LearningPath
from syncd.archives.model import ArchiveActivity, ArchiveSection, CourseArchive, Skipped
from syncd.archives.phpserial import PhpObject, PhpValue, unserialize

_NS = "Chamilo\\CourseBundle\\Component\\CourseCopy\\"
_RESOURCES = (
    "Resource", "Document", "CourseCopyLearnpath", "LearnPathCategory", "Link", "LinkCategory",
    "Forum", "ForumCategory", "ForumTopic", "ForumPost", "Quiz", "QuizQuestion", "QuizQuestionOption",
    "CourseCopyTestCategory", "ToolIntro", "CourseDescription", "Announcement", "CalendarEvent", "Event",
    "Glossary", "Wiki", "Survey", "SurveyQuestion", "SurveyInvitation", "Thematic", "Attendance", "Work",
    "ScormDocument", "Asset", "GradeBookBackup", "CourseSession",
)
ALLOWED_CLASSES = frozenset(
    {"Course", f"{_NS}Course", "stdClass"} | set(_RESOURCES)
    | {f"{_NS}Resources\\{name}" for name in _RESOURCES}
)
_SKIPPED = {
    "forum": "forum", "quiz": "quiz", "survey": "survey", "work": "assignment", "wiki": "wiki page",
    "glossary": "glossary term", "announcement": "announcement", "calendar_event": "event",
    "attendance": "attendance", "thematic": "thematic", "Scorm": "SCORM package", "gradebook": "gradebook",
}
_PARTS = frozenset({  # read elsewhere, or parts of a skipped resource
    "document", "learnpath", "link", "course_description", "Forum_Category", "thread", "post",
    "Exercise_Question", "Link_Category", "Tool introduction", "survey_question", "survey_invitation",
    "test_category", "learnpath_category", "asset",
})
_ENCODING = re.compile(rb's:8:"encoding";s:\d{1,3}:"([A-Za-z0-9_.-]{1,40})";')


def _serialized(raw: bytes, where: str, cap: int) -> bytes:
    """The PHP serialization inside course_info.dat (base64, maybe raw-deflated)."""
    try:
        data = base64.b64decode(b"".join(raw.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ArchiveError(f"{where}: course_info.dat is not base64") from None
    if data.startswith(b"O:"):
        return data
    try:
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        data = inflater.decompress(data, cap)
    except zlib.error:
        data = b""
    if not data.startswith(b"O:") or inflater.unconsumed_tail:
        raise ArchiveError(f"{where}: course_info.dat does not hold a PHP-serialized Course "
                           "(igbinary backups are not supported)")
    return data


def _charset(data: bytes) -> str:
    match = _ENCODING.search(data)
    if match is None:
        return "utf-8"
    try:
        return codecs.lookup(match.group(1).decode("ascii")).name
    except LookupError:
        return "utf-8"


def read_chamilo(archive: Archive, where: str) -> CourseArchive:
    """The course in the Chamilo backup ``archive`` (see the module docstring)."""
    cap = archive.limits.max_xml_bytes
    data = _serialized(archive.read("course_info.dat", cap), where, cap)
    course = unserialize(data, allowed_classes=ALLOWED_CLASSES, charset=_charset(data),
                         where=f"{where}: course_info.dat")
    if not isinstance(course, PhpObject) or course.cls.rpartition("\\")[2] != "Course":
        raise ArchiveError(f"{where}: course_info.dat does not hold a Course object")
    info, resources = as_dict(prop(course, "info")), as_dict(prop(course, "resources"))
    skipped: list[Skipped] = []
    documents, doc_ids = _documents(archive, as_dict(resources.get("document")), skipped)
    links = _objects(resources.get("link"))
    ctx = PathContext(LearningPath(), doc_ids, {k: text(prop(r, "url")) for k, r in links.items()},
                      skipped, where)
    sections = [add_learnpath(ctx, number, lp)
                for number, lp in enumerate(_ordered(_objects(resources.get("learnpath"))), 1)]
    activities = [ArchiveActivity(f"link_{key}", ctx.link_sections.get(key, 0), "url",
                                  text(prop(res, "title")) or text(prop(res, "url")))
                  for key, res in links.items()]
    if any(activity.section == 0 for activity in activities):
        sections.insert(0, ArchiveSection(0, "", ""))
    return CourseArchive(
        format="chamilo",
        shortname=text(info.get("official_code")) or text(prop(course, "code")) or text(info.get("code")),
        fullname=text(info.get("title")) or text(info.get("name")) or text(prop(course, "code")),
        summary=_summary(resources),
        fields=_fields(info),
        sections=sections,
        documents=documents.items(),
        path=ctx.path.items(),
        activities=activities,
        skipped=list(dict.fromkeys(skipped + _skipped_resources(resources))),
    )


def _objects(value: PhpValue) -> dict[str, PhpObject]:
    """The PhpObject values of a PHP array, keyed by their source id (else array key)."""
    return {text(prop(obj, "source_id")) or str(key): obj
            for key, obj in as_dict(value).items() if isinstance(obj, PhpObject)}


def _ordered(learnpaths: dict[str, PhpObject]) -> list[tuple[str, PhpObject]]:
    def order(entry: tuple[str, PhpObject]) -> tuple[int, str]:
        shown = text(prop(entry[1], "display_order"))
        return (int(shown) if shown.lstrip("-").isdigit() else 0, entry[0])
    return sorted(learnpaths.items(), key=order)


def _documents(archive: Archive, listed: dict[int | str, PhpValue],
               skipped: list[Skipped]) -> tuple[Documents, dict[str, str]]:
    """Every file under document/, and document id → document path for the listed ones."""
    documents = Documents()
    ids: dict[str, str] = {}
    for key, resource in listed.items():
        if not isinstance(resource, PhpObject) or text(prop(resource, "file_type")) != "file":
            continue
        raw = text(prop(resource, "path"))
        try:
            member = member_name(raw)
        except ValueError as exc:
            skipped.append(Skipped(f"document {raw}", f"bad path in course_info.dat ({exc})"))
            continue
        path, title = member.removeprefix("document/"), text(prop(resource, "title")) or raw
        if path == member:
            skipped.append(Skipped(f"document {title}", "its path is not under document/"))
            continue
        if member not in archive:
            skipped.append(Skipped(f"document {title}", "listed in course_info.dat but missing from the zip"))
            continue
        ids[text(prop(resource, "source_id")) or str(key)] = path
    for name in archive.names():
        if name.startswith("document/"):
            documents.add_member(name.removeprefix("document/"), archive, name)
    return documents, ids


def _fields(info: dict[int | str, PhpValue]) -> dict[str, str]:
    fields: dict[str, str] = {}
    if lang := text(info.get("course_language")) or text(info.get("language")):
        fields["lang"] = lang
    if visibility := text(info.get("visibility")):
        fields["visible"] = "0" if visibility in ("0", "4") else "1"
    return fields


def _summary(resources: dict[int | str, PhpValue]) -> str:
    for description in _objects(resources.get("course_description")).values():
        if content := text(prop(description, "content")):
            return content
    return ""


def _title(resource: PhpObject, fallback: str) -> str:
    obj = prop(resource, "obj")
    for source in (resource, obj):
        for name in ("title", "name", "forum_title", "question"):
            if value := text(prop(source, name)):
                return value
    return f"#{fallback}"


def _skipped_resources(resources: dict[int | str, PhpValue]) -> list[Skipped]:
    skipped: list[Skipped] = []
    for kind, group in resources.items():
        kind = str(kind)
        if kind in _PARTS:
            continue
        objects = _objects(group)
        if kind not in _SKIPPED:
            skipped.append(Skipped(f"{len(objects)} {kind} resources", f"Chamilo {kind} is not modelled"))
            continue
        for key, resource in objects.items():
            skipped.append(Skipped(f"{_SKIPPED[kind]} {_title(resource, key)}",
                                   f"Chamilo {kind} resources are not modelled"))
    return skipped
