"""syncd's own course backup format: a zip that re-imports without loss.

Public surface::

    write_native(dest, course, sections, documents, path, activities, open_blob, *,
                 category=(), when=None, limits=Limits()) -> None
    read_syncd(archive: Archive, where: str) -> CourseArchive      (format "syncd")
    BackupZip, BackupError, check_importable    (from syncd.archives.backupzip)
    MANIFEST = "syncd-course.json", FORMAT_VERSION = 1

The zip holds ``syncd-course.json`` and ``files/<sha256>``, each distinct content once
(two documents with the same bytes share one member). The manifest, UTF-8 JSON::

    {"syncd_course": 1,
     "course": {"shortname", "fullname", "idnumber" (or null), "summary", "format",
                "visible" (bool), "startdate"/"enddate" (ISO 8601 UTC or null), "lang",
                "groupmode", "maxbytes", "category": ["Top", "Sub"]},
     "sections":   [{"number", "name", "summary"}],
     "documents":  [{"path", "sha256", "size", "title", "mimetype"}],
     "path":       [{"key", "title", "parent", "kind", "target", "position", "section"}],
     "activities": [{"key", "section", "kind", "title", "position"}]}

Writing (:func:`write_native`) goes through
:class:`~syncd.archives.backupzip.BackupZip`: a hidden 0600 temp file published with a
hard link (an existing ``dest`` is never replaced), every blob's sha256 and size checked,
very compressible members stored rather than deflated so the import's zip-bomb check
accepts them. A course over the import limits (:class:`~syncd.archives.safe.Limits`:
entries, bytes per entry, bytes in total, manifest size) is refused with
:class:`BackupError` before anything is written: a backup must re-import.

Reading (:func:`read_syncd`): the manifest is checked field by field (types, version,
section numbers unique and not negative, document paths unique, relative and in NFC,
hashes, learning-path tree, activity keys) and every ``files/<sha256>`` member the
documents use is streamed and its sha256 and size verified, all before the course is
handed over: any mismatch is an ArchiveError naming the member or the field. Course
fields go into ``CourseArchive.fields`` as strings (``idnumber``, ``format``, ``lang``,
``visible`` ``"1"``/``"0"``, ``startdate``/``enddate`` ISO UTC, ``groupmode``,
``maxbytes``, ``category`` ``"Top/Sub"``); what course_import does with them is its own
decision. Document titles and mimetypes are in the manifest, but
:class:`~syncd.archives.model.ArchiveDocument` has no field for them yet (course_import
takes a document's title from the path item that opens it and guesses its mimetype
from its name). Activity positions are not read back either: the order of the list
is the order of the course.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from syncd.archives._base import Archive, ArchiveError, Limits, iter_chunks, member_name
from syncd.archives.backupzip import BackupError, BackupZip, check_importable
from syncd.archives.model import ArchiveActivity, ArchiveDocument, ArchiveSection, CourseArchive, PathItem
from syncd.platform.model import (
    ActivityRecord,
    CourseRecord,
    DocumentRecord,
    PathItemRecord,
    SectionRecord,
    check_activities,
    check_document_path,
    check_path,
    check_sha256,
)

__all__ = ["FILES", "FORMAT_VERSION", "MANIFEST", "BackupError", "BackupZip", "check_importable",
           "distinct_blobs", "manifest", "read_syncd", "write_native"]

MANIFEST = "syncd-course.json"
FORMAT_VERSION = 1
FILES = "files/"
_SHA256 = re.compile(r"[0-9a-f]{64}")


# -- writing --------------------------------------------------------------------------------

def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return (value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def manifest(course: CourseRecord, sections: Sequence[SectionRecord], documents: Sequence[DocumentRecord],
             path: Sequence[PathItemRecord], activities: Sequence[ActivityRecord],
             category: Sequence[str] = ()) -> dict[str, Any]:
    """The ``syncd-course.json`` content for these records (ids and course ids left out)."""
    return {
        "syncd_course": FORMAT_VERSION,
        "course": {
            "shortname": course.shortname, "fullname": course.fullname, "idnumber": course.idnumber,
            "summary": course.summary, "format": course.format, "visible": course.visible,
            "startdate": _iso(course.startdate), "enddate": _iso(course.enddate), "lang": course.lang,
            "groupmode": course.groupmode, "maxbytes": course.maxbytes, "category": list(category),
        },
        "sections": [{"number": s.number, "name": s.name, "summary": s.summary} for s in sections],
        "documents": [{"path": d.path, "sha256": d.sha256, "size": d.size, "title": d.title,
                       "mimetype": d.mimetype} for d in documents],
        "path": [{"key": i.key, "title": i.title, "parent": i.parent_key, "kind": i.kind,
                  "target": i.target, "position": i.position, "section": i.section} for i in path],
        "activities": [{"key": a.key, "section": a.section, "kind": a.kind, "title": a.title,
                        "position": a.position} for a in activities],
    }


def distinct_blobs(documents: Iterable[DocumentRecord]) -> list[DocumentRecord]:
    """The first document of each distinct content (sha256), in order."""
    first: dict[str, DocumentRecord] = {}
    for doc in documents:
        first.setdefault(doc.sha256, doc)
    return list(first.values())


def write_native(dest: Path, course: CourseRecord, sections: Sequence[SectionRecord],
                 documents: Sequence[DocumentRecord], path: Sequence[PathItemRecord],
                 activities: Sequence[ActivityRecord], open_blob: Callable[[str], BinaryIO], *,
                 category: Sequence[str] = (), when: datetime | None = None,
                 limits: Limits | None = None) -> None:
    """Write the native backup of one course to ``dest`` (see the module docstring)."""
    data = json.dumps(manifest(course, sections, documents, path, activities, category),
                      ensure_ascii=False, indent=1).encode("utf-8")
    blobs = distinct_blobs(documents)
    check_importable({d.path: d.size for d in blobs}, len(data), limits or Limits())
    with BackupZip(dest, when) as out:
        out.add_bytes(MANIFEST, data)
        for doc in blobs:
            opener = functools.partial(open_blob, check_sha256(doc.sha256))
            out.add_stream(FILES + doc.sha256, opener, doc.size, doc.sha256)


# -- reading --------------------------------------------------------------------------------

_JSON_NAMES = {dict: "an object", list: "a list", str: "a string", int: "a whole number",
               bool: "true or false"}


def _json_name(kind: type | tuple[type, ...]) -> str:
    """How the manifest's reader calls a JSON type in its messages."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(_JSON_NAMES.get(k, k.__name__) for k in kinds)


class _Obj:
    """Typed access to one JSON object of the manifest; ArchiveError names the field."""

    def __init__(self, value: object, at: str, where: str) -> None:
        if not isinstance(value, dict):
            raise ArchiveError(f"{where}: {MANIFEST}: {at} must be an object")
        self._value: dict[str, Any] = value
        self._at = at
        self._where = where

    def fail(self, name: str, reason: str) -> ArchiveError:
        """The error for field ``name`` of this object."""
        return ArchiveError(f"{self._where}: {MANIFEST}: {self._at}.{name}: {reason}")

    def get(self, name: str, kind: type | tuple[type, ...], *, optional: bool = False) -> Any:
        """Field ``name``, which must be of ``kind`` (or null when ``optional``)."""
        if name not in self._value:
            raise self.fail(name, "missing")
        value = self._value[name]
        if value is None and optional:
            return None
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
            raise self.fail(name, f"must be {_json_name(kind)}, not {value!r}"[:200])
        return value

    def text(self, name: str) -> str:
        """A string field."""
        return str(self.get(name, str))

    def objects(self, name: str) -> list[_Obj]:
        """A list of objects."""
        return [_Obj(v, f"{name}[{n}]", self._where) for n, v in enumerate(self.get(name, list))]


def _course_fields(course: _Obj) -> dict[str, str]:
    fields = {"format": course.text("format"), "lang": course.text("lang"),
              "visible": "1" if course.get("visible", bool) else "0",
              "groupmode": str(course.get("groupmode", int)), "maxbytes": str(course.get("maxbytes", int))}
    idnumber = course.get("idnumber", str, optional=True)
    if idnumber:
        fields["idnumber"] = idnumber
    for name in ("startdate", "enddate"):
        value = course.get(name, str, optional=True)
        if value:
            try:
                stamp = datetime.fromisoformat(value)
            except ValueError:
                raise course.fail(name, f"not an ISO 8601 date: {value!r}") from None
            fields[name] = (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).astimezone(UTC).isoformat()
    category = course.get("category", list)
    if not all(isinstance(part, str) and part and "/" not in part for part in category):
        raise course.fail("category", "must be a list of non-empty names without '/'")
    if category:
        fields["category"] = "/".join(category)
    return fields


def _section(section: _Obj) -> ArchiveSection:
    number = section.get("number", int)
    if number < 0:
        raise section.fail("number", f"must be 0 or more, not {number}")
    return ArchiveSection(number, section.text("name"), section.text("summary"))


def _document(doc: _Obj, archive: Archive) -> ArchiveDocument:
    path, sha256, size = doc.text("path"), doc.text("sha256"), doc.get("size", int)
    try:
        if member_name(check_document_path(path)) != path:
            raise ValueError(f"not in normal form (NFC): {path!r}")
    except ValueError as exc:
        raise doc.fail("path", str(exc)) from None
    if not _SHA256.fullmatch(sha256):
        raise doc.fail("sha256", f"not a lowercase hex sha256: {sha256!r}"[:200])
    member = FILES + sha256
    if member not in archive:
        raise doc.fail("sha256", f"its content {member} is missing from the archive")
    if archive.size(member) != size:
        raise doc.fail("size", f"{size} bytes, but {member} holds {archive.size(member)}")
    doc.text("title")
    doc.text("mimetype")
    return ArchiveDocument(path, size, member)


def _path_item(item: _Obj) -> PathItem:
    return PathItem(item.text("key"), item.text("title"), item.get("parent", str, optional=True),
                    item.text("kind"), item.get("target", str, optional=True), item.get("position", int),
                    item.get("section", int, optional=True))


def _activity(item: _Obj) -> ArchiveActivity:
    item.get("position", int)  # the order of the list is the order of the course
    return ArchiveActivity(item.text("key"), item.get("section", int), item.text("kind"), item.text("title"))


def _check_tree(path: list[PathItem], activities: list[ArchiveActivity], where: str) -> None:
    records = [PathItemRecord(0, i.key, i.title, i.parent, i.kind, i.target, i.position, i.section)
               for i in path]
    acts = [ActivityRecord(0, a.key, a.section, a.kind, a.title, n) for n, a in enumerate(activities)]
    try:
        check_path(0, records)
        check_activities(0, acts)
    except ValueError as exc:
        raise ArchiveError(f"{where}: {MANIFEST}: {str(exc).replace(' in course 0', '')}") from None


def _verify_blobs(archive: Archive, documents: list[ArchiveDocument]) -> None:
    """Stream every content member once and compare its sha256 with its name."""
    for member in dict.fromkeys(d.member for d in documents):
        digest = hashlib.sha256()
        with archive.open(member) as stream:
            for chunk in iter_chunks(stream):
                digest.update(chunk)
        if FILES + digest.hexdigest() != member:
            raise archive.error(member, f"content does not match its name (sha256 {digest.hexdigest()})")


def read_syncd(archive: Archive, where: str) -> CourseArchive:
    """The course in a syncd backup (see the module docstring); ArchiveError if damaged."""
    try:
        data = json.loads(archive.read(MANIFEST, archive.limits.max_xml_bytes).decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # bad UTF-8 or JSON, a huge number, deep nesting
        raise ArchiveError(f"{where}: {MANIFEST}: not valid UTF-8 JSON ({str(exc)[:200]})") from None
    root = _Obj(data, "(top)", where)
    version = root.get("syncd_course", int)
    if version != FORMAT_VERSION:
        raise root.fail("syncd_course", f"format version {version}; this syncd reads {FORMAT_VERSION}")
    course = _Obj(root.get("course", dict), "course", where)
    sections = [_section(s) for s in root.objects("sections")]
    if len({s.number for s in sections}) != len(sections):
        raise root.fail("sections", "a section number appears twice")
    documents = [_document(d, archive) for d in root.objects("documents")]
    if len({d.path for d in documents}) != len(documents):
        raise root.fail("documents", "a path appears twice")
    path = [_path_item(i) for i in root.objects("path")]
    activities = [_activity(a) for a in root.objects("activities")]
    _check_tree(path, activities, where)
    _verify_blobs(archive, documents)
    return CourseArchive(
        format="syncd", shortname=course.text("shortname"), fullname=course.text("fullname"),
        summary=course.text("summary"), fields=_course_fields(course), sections=sections,
        documents=documents, path=path, activities=activities,
    )
