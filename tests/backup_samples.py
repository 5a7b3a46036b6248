"""A sample course holding every kind of content, for the backup tests (and the import of
a backup into an empty store, which can reuse :func:`seed_sample_course` and
:func:`stored_course`).

- :func:`seed_sample_course` creates it through the platform port (fake or SQL): a
  nested category, every course field set, three sections, five documents (non-ASCII
  paths and titles, one content shared by two documents), a nested learning path with
  every item kind, three activities. Titles and mimetypes are what course_import would
  store for them (a document's title is its path item's title), so an import of the
  backup into an empty store can be compared with :func:`stored_course` as it is.
- :func:`stored_course` reads a course back as plain values (no ids), for comparing two
  stores; :func:`expected_archive` gives the CourseArchive ``read_syncd`` must return.
"""

from __future__ import annotations

import mimetypes
from datetime import UTC, datetime
from typing import Any

from syncd.archives.model import ArchiveActivity, ArchiveDocument, ArchiveSection, CourseArchive, PathItem
from syncd.archives.native import FILES
from syncd.platform.base import Platform
from syncd.platform.model import (
    ActivityRecord,
    CategoryRecord,
    CourseRecord,
    DocumentRecord,
    PathItemRecord,
    SectionRecord,
)

SHORTNAME = "CHIM-ORG 1/été"
SHARED = "même contenu, deux documents\n".encode()
#: path -> (bytes, title)
DOCUMENTS: dict[str, tuple[bytes, str]] = {
    "cours/Introduction.pdf": (b"%PDF-1.4 introduction", "Introduction"),
    "cours/Résumé été.txt": (SHARED, "Résumé"),
    "annexes/日本語/copie.txt": (SHARED, ""),
    "sco/lisez-moi.html": (b"<html><body>SCO</body></html>", "Leçon interactive"),
    "images/schéma #1.png": (b"\x89PNG\r\n\x1a\n not really", ""),
}
#: key, title, parent, kind, target, position, section
PATH = [
    ("m1", "Module 1 : Atomes & <liaisons>", None, "folder", None, 0, 1),
    ("l1", "Introduction", "m1", "document", "cours/Introduction.pdf", 1, 1),
    ("m1.1", "Sous-module « pratique »", "m1", "folder", None, 2, 1),
    ("l2", "Leçon interactive", "m1.1", "sco", "sco/lisez-moi.html", 3, 1),
    ("w", "Site de référence", "m1.1", "link", "https://example.org/chimie?x=1&y=2", 4, None),
    ("a", "Bienvenue", "m1", "activity", "act-1", 5, 1),
    ("l3", "Résumé", None, "document", "cours/Résumé été.txt", 6, 2),
]
#: key, section, kind, title (positions follow the list, as course_import numbers them)
ACTIVITIES = [("act-1", 1, "page", "Bienvenue"), ("act-3", 1, "resource", "Cours 1 (PDF)"),
              ("act-2", 2, "url", "Lien utile")]


def seed_sample_course(platform: Platform, shortname: str = SHORTNAME) -> int:
    """Create the sample course with its content; return its id."""
    with platform.transaction() as tx:
        top = CategoryRecord("Sciences")
        tx.categories.add([top])
        sub = CategoryRecord("Chimie organique", parent_id=top.id)
        tx.categories.add([sub])
        assert sub.id is not None
        course = CourseRecord(
            shortname=shortname, fullname="Chimie organique — niveau 1", category_id=sub.id,
            idnumber="C-42", summary="<p>Été 2026 & après</p>", format="weeks", visible=False,
            startdate=datetime(2026, 9, 1, 8, 0, tzinfo=UTC), enddate=datetime(2027, 1, 31, tzinfo=UTC),
            lang="fr", groupmode=1, maxbytes=1 << 20)
        tx.courses.add([course])
        assert course.id is not None
        cid = course.id
        tx.courses.put_sections([SectionRecord(cid, 0), SectionRecord(cid, 1, "Atomes", "<p>semaine 1</p>"),
                                 SectionRecord(cid, 2, "Molécules", "")])
        docs = []
        for path, (data, title) in DOCUMENTS.items():
            sha256, size = tx.files.put([data])
            mimetype = mimetypes.guess_type(path)[0] or "application/octet-stream"
            docs.append(DocumentRecord(cid, path, sha256, size, title, mimetype))
        tx.content.put_documents(docs)
        tx.content.replace_path(cid, [PathItemRecord(cid, *item) for item in PATH])
        tx.content.replace_activities(cid, [ActivityRecord(cid, k, s, kind, t, n)
                                            for n, (k, s, kind, t) in enumerate(ACTIVITIES)])
    return cid


def stored_course(platform: Platform, shortname: str = SHORTNAME) -> dict[str, Any]:
    """The course and its content as plain values, without ids (to compare two stores)."""
    with platform.transaction() as tx:
        found = tx.courses.find(shortnames=[shortname])
        assert len(found) == 1, f"course {shortname!r} not found"
        course = found[0]
        assert course.id is not None
        ids = [course.id]
        categories = {c.id: c for c in tx.categories.all()}
        names: list[str] = []
        at: int | None = course.category_id
        while at is not None:
            names.insert(0, categories[at].name)
            at = categories[at].parent_id
        fields = {k: getattr(course, k) for k in CourseRecord.__dataclass_fields__
                  if k not in ("id", "category_id")}
        return {
            "course": fields, "category": names,
            "sections": [(s.number, s.name, s.summary) for s in tx.courses.sections(ids)],
            "documents": [(d.path, d.sha256, d.size, d.title, d.mimetype) for d in tx.content.documents(ids)],
            "path": [(i.key, i.title, i.parent_key, i.kind, i.target, i.position, i.section)
                     for i in tx.content.path(ids)],
            "activities": [(a.key, a.section, a.kind, a.title, a.position)
                           for a in tx.content.activities(ids)],
        }


def expected_archive(platform: Platform, shortname: str = SHORTNAME) -> CourseArchive:
    """What ``read_syncd`` must give for a native backup of the course as stored."""
    stored = stored_course(platform, shortname)
    course = stored["course"]
    fields = {"format": course["format"], "lang": course["lang"],
              "visible": "1" if course["visible"] else "0",
              "groupmode": str(course["groupmode"]), "maxbytes": str(course["maxbytes"])}
    if course["idnumber"]:
        fields["idnumber"] = course["idnumber"]
    for name in ("startdate", "enddate"):
        if course[name] is not None:
            fields[name] = course[name].astimezone(UTC).isoformat()
    if stored["category"]:
        fields["category"] = "/".join(stored["category"])
    return CourseArchive(
        format="syncd", shortname=course["shortname"], fullname=course["fullname"], summary=course["summary"],
        fields=fields,
        sections=[ArchiveSection(*s) for s in stored["sections"]],
        documents=[ArchiveDocument(path, size, FILES + sha256)
                   for path, sha256, size, _, _ in stored["documents"]],
        path=[PathItem(*item) for item in stored["path"]],
        activities=[ArchiveActivity(key, section, kind, title)
                    for key, section, kind, title, _ in stored["activities"]],
    )
