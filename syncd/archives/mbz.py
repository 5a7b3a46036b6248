"""Reader of Moodle course backups (``.mbz``, zip or tar.gz).

Public surface::

    read_mbz(archive: Archive, where: str) -> CourseArchive   (format "mbz")

What is read:

- ``moodle_backup.xml``: ``information/original_course_fullname|shortname`` (fullname and
  shortname; ``course/course.xml`` fills them in when empty), the section and activity
  lists of ``information/contents`` (activity ``modulename``, ``moduleid``, ``title``,
  ``sectionid``, ``directory``);
- ``course/course.xml``: ``summary`` and the fields ``format``, ``idnumber``, ``lang``,
  ``visible``, ``startdate``/``enddate`` (epoch → ISO 8601 UTC). ``$@NULL@$`` reads as "";
- ``sections/section_<id>/section.xml``: ``number``, ``name``, ``summary``, ``sequence``
  (the activity order within the section);
- ``activities/<mod>_<id>/<mod>.xml``: the activity's ``name`` (preferred to the title of
  moodle_backup.xml), its ``contextid``, a page's ``content``, a url's ``externalurl``;
- ``files.xml`` + ``files/<hash[:2]>/<hash>``: the files of ``mod_resource`` and
  ``mod_folder`` (area ``content``) and of the course itself (areas ``legacy``,
  ``summary``, ``section``, ``overviewfiles``). Directory records (``.``) are ignored.

Documents are deduplicated by contenthash: the first record of a hash gives the document
its path (``<mod>_<moduleid>/<filepath>/<filename>`` for activity files,
``course/<filearea>/<filepath>/<filename>`` for course files) and every later reference
to that hash points at that document.

The learning path has one folder per section (``section_<number>``), then the section's
activities in ``sequence`` order, keyed ``<mod>_<moduleid>``: a resource is a document
item (its main file: highest ``sortorder``), a folder a folder item with one document item
per file, a page a document item for a generated ``<mod>_<id>/index.html`` holding its
content, a url a link item, a label an activity item. Other activity types (quiz, forum,
assign…) are not modelled: ``Skipped("activity <title>", "activity type quiz is not modelled")``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

from syncd.archives._base import Archive, ArchiveError, member_name
from syncd.archives._common import Documents, LearningPath, html_page, iso_from_epoch, read_xml, web_url
from syncd.archives.model import (
    MODELLED_ACTIVITIES,
    ArchiveActivity,
    ArchiveSection,
    CourseArchive,
    PathItem,
    Skipped,
)
from syncd.archives.xmlsafe import attr, find_local, findall_local, text_of

_NULL = "$@NULL@$"
_HASH = re.compile(r"^[0-9a-f]{40}$")
_MODULE = re.compile(r"^[a-z][a-z0-9_]*$")
_COURSE_AREAS = frozenset({"legacy", "summary", "section", "overviewfiles"})
_ACTIVITY_FILES = frozenset({"mod_resource", "mod_folder"})


@dataclass(slots=True)
class _Section:
    number: int
    name: str
    summary: str
    sequence: list[str]


@dataclass(slots=True)
class _Activity:
    key: str
    moduleid: str
    modulename: str
    title: str
    section: int
    contextid: str | None = None
    content: str = ""
    url: str = ""
    files: list[tuple[int, str]] = field(default_factory=list)  # (sortorder, document path)


def _text(element: Element | None, *path: str) -> str:
    value = text_of(element, *path)
    return "" if value == _NULL else value


def read_mbz(archive: Archive, where: str) -> CourseArchive:
    """The course in the Moodle backup ``archive`` (see the module docstring)."""
    root = read_xml(archive, "moodle_backup.xml", where)
    info = find_local(root, "information")
    if info is None:
        raise ArchiveError(f"{where}: moodle_backup.xml: no <information> element")
    course = read_xml(archive, "course/course.xml", where) if "course/course.xml" in archive else None
    skipped: list[Skipped] = []
    sections, section_ids = _sections(archive, info, where, skipped)
    activities = _activities(archive, info, where, section_ids)
    documents = _files(archive, where, activities, skipped)
    fields = _fields(course)
    if "format" not in fields and (fmt := text_of(info, "original_course_format")):
        fields["format"] = fmt
    path = _learning_path(sections, activities, documents)  # adds the generated page documents
    return CourseArchive(
        format="mbz",
        shortname=text_of(info, "original_course_shortname") or _text(course, "shortname"),
        fullname=text_of(info, "original_course_fullname") or _text(course, "fullname"),
        summary=_text(course, "summary"),
        fields=fields,
        sections=[ArchiveSection(s.number, s.name, s.summary) for s in sections],
        documents=documents.items(),
        path=path,
        activities=[ArchiveActivity(a.key, a.section, a.modulename, a.title)
                    for a in activities if a.modulename in MODELLED_ACTIVITIES],
        skipped=skipped + [Skipped(f"activity {a.title}", f"activity type {a.modulename} is not modelled")
                           for a in activities if a.modulename not in MODELLED_ACTIVITIES],
    )


def _fields(course: Element | None) -> dict[str, str]:
    fields: dict[str, str] = {}
    for key in ("format", "idnumber", "lang"):
        if value := _text(course, key):
            fields[key] = value
    for key in ("startdate", "enddate"):
        if iso := iso_from_epoch(_text(course, key)):
            fields[key] = iso
    if (visible := _text(course, "visible")) in ("0", "1"):
        fields["visible"] = visible
    return fields


def _contents(info: Element, kind: str, item: str) -> list[Element]:
    folder = find_local(info, "contents", kind)
    return findall_local(folder, item) if folder is not None else []


def _sections(archive: Archive, info: Element, where: str,
              skipped: list[Skipped]) -> tuple[list[_Section], dict[str, int]]:
    """The sections in number order, and section id → number."""
    sections: list[_Section] = []
    ids: dict[str, int] = {}
    for listed in _contents(info, "sections", "section"):
        name = f"{text_of(listed, 'directory')}/section.xml"
        if name not in archive:
            skipped.append(Skipped(f"section {text_of(listed, 'title')}", f"{name} is missing"))
            continue
        xml = read_xml(archive, name, where)
        try:
            number = int(_text(xml, "number"))
        except ValueError:
            skipped.append(Skipped(f"section {text_of(listed, 'title')}", f"{name}: no section number"))
            continue
        sequence = [part.strip() for part in _text(xml, "sequence").split(",") if part.strip()]
        sections.append(_Section(number, _text(xml, "name"), _text(xml, "summary"), sequence))
        ids[text_of(listed, "sectionid") or attr(xml, "id") or ""] = number
    sections.sort(key=lambda s: s.number)
    return sections, ids


def _activities(archive: Archive, info: Element, where: str, section_ids: dict[str, int]) -> list[_Activity]:
    activities: list[_Activity] = []
    for listed in _contents(info, "activities", "activity"):
        modulename, moduleid = text_of(listed, "modulename"), text_of(listed, "moduleid")
        if not _MODULE.match(modulename) or not moduleid.isdigit():
            raise ArchiveError(f"{where}: moodle_backup.xml: bad activity {modulename!r} id {moduleid!r}")
        activity = _Activity(f"{modulename}_{moduleid}", moduleid, modulename, text_of(listed, "title"),
                             section_ids.get(text_of(listed, "sectionid"), 0))
        directory = text_of(listed, "directory") or f"activities/{activity.key}"
        name = f"{directory}/{modulename}.xml"
        if name in archive:
            xml = read_xml(archive, name, where)
            body = find_local(xml, modulename)
            activity.contextid = attr(xml, "contextid")
            activity.title = _text(body, "name") or activity.title
            activity.content = _text(body, "content")
            activity.url = _text(body, "externalurl")
        activities.append(activity)
    return activities


def _owner(component: str, area: str, contextid: str, by_context: dict[str, _Activity]) -> str | None:
    """The folder a file's document goes under, or None when the file is not imported."""
    if component == "course" and area in _COURSE_AREAS:
        return f"course/{area}"
    if component in _ACTIVITY_FILES and area == "content":
        activity = by_context.get(contextid)
        return activity.key if activity else f"{component}_{contextid}"
    return None


def _files(archive: Archive, where: str, activities: list[_Activity], skipped: list[Skipped]) -> Documents:
    """The documents of files.xml, deduplicated by contenthash; activity files are noted
    on their activity."""
    documents = Documents()
    if "files.xml" not in archive:
        return documents
    by_context = {a.contextid: a for a in activities if a.contextid}
    by_hash: dict[str, str | None] = {}
    for record in findall_local(read_xml(archive, "files.xml", where), "file"):
        filename = _text(record, "filename")
        owner = _owner(text_of(record, "component"), text_of(record, "filearea"),
                       text_of(record, "contextid"), by_context)
        if filename in ("", ".") or owner is None:
            continue
        digest = text_of(record, "contenthash").lower()
        try:
            path = member_name(f"{owner}/{_text(record, 'filepath')}/{filename}")
        except ValueError as exc:
            skipped.append(Skipped(f"file {filename}", f"bad path in files.xml ({exc})"))
            continue
        if digest not in by_hash:
            by_hash[digest] = _document(archive, documents, digest, path, skipped)
        activity = by_context.get(text_of(record, "contextid"))
        if by_hash[digest] is not None and activity is not None:
            order = int(sort) if (sort := _text(record, "sortorder")).isdigit() else 0
            activity.files.append((order, by_hash[digest] or ""))
    return documents


def _document(archive: Archive, documents: Documents, digest: str, path: str,
              skipped: list[Skipped]) -> str | None:
    """Add the document of ``digest`` at ``path``; its path, or None when unavailable."""
    member = f"files/{digest[:2]}/{digest}"
    if not _HASH.match(digest):
        skipped.append(Skipped(f"file {path}", f"bad contenthash {digest!r} in files.xml"))
        return None
    if member not in archive:
        skipped.append(Skipped(f"file {path}", "listed in files.xml but missing from the backup"))
        return None
    documents.add_member(path, archive, member)
    return path


def _learning_path(sections: list[_Section], activities: list[_Activity],
                   documents: Documents) -> list[PathItem]:
    path = LearningPath()
    modelled = [a for a in activities if a.modulename in MODELLED_ACTIVITIES]
    placed: set[str] = set()
    for section in sections:
        folder = path.add(f"section_{section.number}", section.name or f"Section {section.number}",
                          None, "folder", None, section.number)
        members = [a for a in modelled if a.section == section.number]
        order = {moduleid: i for i, moduleid in enumerate(section.sequence)}
        members.sort(key=lambda a: order.get(a.moduleid, len(order)))
        for activity in members:
            _add_activity(path, documents, activity, folder)
            placed.add(activity.key)
    for activity in modelled:
        if activity.key not in placed:
            _add_activity(path, documents, activity, None)
    return path.items()


def _add_activity(path: LearningPath, documents: Documents, activity: _Activity, parent: str | None) -> None:
    key, title, section = activity.key, activity.title, activity.section
    files = [doc for _, doc in sorted(activity.files, key=lambda f: -f[0])]
    if activity.modulename == "resource" and files:
        path.add(key, title, parent, "document", files[0], section)
    elif activity.modulename == "folder":
        folder = path.add(key, title, parent, "folder", None, section)
        for doc in sorted(set(files)):
            path.add(f"{key}/{doc.removeprefix(key + '/')}", doc.rpartition("/")[2], folder, "document",
                     doc, section)
    elif activity.modulename == "page":
        page = f"{key}/index.html"
        documents.add_generated(page, html_page(title, activity.content))
        path.add(key, title, parent, "document", page, section)
    elif activity.modulename == "url" and (url := web_url(activity.url)):
        path.add(key, title, parent, "link", url, section)
    else:
        path.add(key, title, parent, "activity", key, section)
