"""read_mbz: Moodle backups (zip and tar.gz) to the neutral course model."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.archives.mbz import read_mbz
from syncd.archives.model import ArchiveActivity, ArchiveSection, CourseArchive, PathItem, Skipped
from syncd.archives.readers import open_document
from syncd.archives.safe import ArchiveError, Limits, open_archive
from tests.archive_builders import MbzActivity, build_mbz, write_zip

SEPT_1 = 1_788_220_800  # 2026-09-01T00:00:00Z


def read(path: Path) -> CourseArchive:
    with open_archive(path, Limits()) as archive:
        course = read_mbz(archive, path.name)
        for doc in course.documents:  # every document can be read back
            with open_document(archive, doc) as stream:
                assert len(stream.read()) == doc.size
        return course


def sample(path: Path, tar: bool = False) -> Path:
    return build_mbz(
        path, fullname="Алгебра и геометрия — 代数", shortname="ALG-101", summary="<p>Résumé</p>",
        sections=[(0, "", "Général"), (1, "Тема 1: Введение", "<p>intro</p>"), (2, "Week 2", "")],
        activities=[
            MbzActivity("resource", 5, 1, "Конспект лекции", files={"notes.pdf": b"%PDF-notes"}),
            MbzActivity("quiz", 6, 1, "Контрольная работа"),
            MbzActivity("page", 7, 0, "Bienvenue", content="<p>Bonjour à tous</p>"),
            MbzActivity("url", 8, 2, "Wikipedia", url="https://ru.wikipedia.org/wiki/Алгебра"),
            MbzActivity("folder", 9, 2, "Материалы", files={"a.txt": b"A", "sub/b.txt": b"B"}),
            MbzActivity("forum", 10, 0, "Announcements"),
            MbzActivity("label", 11, 2, "Note"),
        ],
        files={"syllabus.txt": b"syllabus"}, startdate=SEPT_1, idnumber="ERP-7", tar=tar)


@pytest.mark.parametrize("tar", [False, True])
def test_course_fields_and_sections(tmp_path: Path, tar: bool) -> None:
    """Names (non-ASCII kept), summary, fields (ISO start date) and sections, zip or tar.gz."""
    course = read(sample(tmp_path / "backup.mbz", tar))
    assert (course.format, course.shortname) == ("mbz", "ALG-101")
    assert course.fullname == "Алгебра и геометрия — 代数"
    assert course.summary == "<p>Résumé</p>"
    assert course.fields == {"format": "topics", "idnumber": "ERP-7",
                             "startdate": "2026-09-01T00:00:00+00:00", "visible": "1"}
    assert course.sections == [ArchiveSection(0, "", "Général"),
                               ArchiveSection(1, "Тема 1: Введение", "<p>intro</p>"),
                               ArchiveSection(2, "Week 2", "")]


def test_activities_and_skipped(tmp_path: Path) -> None:
    """Modelled activities keep their section and title; quiz and forum are Skipped by name."""
    course = read(sample(tmp_path / "b.mbz"))
    assert course.activities == [
        ArchiveActivity("resource_5", 1, "resource", "Конспект лекции"),
        ArchiveActivity("page_7", 0, "page", "Bienvenue"),
        ArchiveActivity("url_8", 2, "url", "Wikipedia"),
        ArchiveActivity("folder_9", 2, "folder", "Материалы"),
        ArchiveActivity("label_11", 2, "label", "Note"),
    ]
    assert course.skipped == [Skipped("activity Контрольная работа", "activity type quiz is not modelled"),
                              Skipped("activity Announcements", "activity type forum is not modelled")]


def test_documents(tmp_path: Path) -> None:
    """Resource, folder and course files become documents read from files/<hash>; a page
    becomes a generated HTML document."""
    course = read(sample(tmp_path / "b.mbz"))
    docs = {doc.path: doc for doc in course.documents}
    assert set(docs) == {"resource_5/notes.pdf", "folder_9/a.txt", "folder_9/sub/b.txt",
                         "course/legacy/syllabus.txt", "page_7/index.html"}
    notes = docs["resource_5/notes.pdf"]
    assert notes.member.startswith("files/") and notes.size == 10
    page = docs["page_7/index.html"]
    assert page.member == "" and page.content is not None and "Bonjour à tous" in page.content.decode()


def test_learning_path(tmp_path: Path) -> None:
    """A folder per section, then its activities in sequence order, each by kind."""
    course = read(sample(tmp_path / "b.mbz"))
    assert course.path == [
        PathItem("section_0", "Section 0", None, "folder", None, 0, 0),
        PathItem("page_7", "Bienvenue", "section_0", "document", "page_7/index.html", 0, 0),
        PathItem("section_1", "Тема 1: Введение", None, "folder", None, 1, 1),
        PathItem("resource_5", "Конспект лекции", "section_1", "document", "resource_5/notes.pdf", 0, 1),
        PathItem("section_2", "Week 2", None, "folder", None, 2, 2),
        PathItem("url_8", "Wikipedia", "section_2", "link", "https://ru.wikipedia.org/wiki/Алгебра", 0, 2),
        PathItem("folder_9", "Материалы", "section_2", "folder", None, 1, 2),
        PathItem("folder_9/a.txt", "a.txt", "folder_9", "document", "folder_9/a.txt", 0, 2),
        PathItem("folder_9/sub/b.txt", "b.txt", "folder_9", "document", "folder_9/sub/b.txt", 1, 2),
        PathItem("label_11", "Note", "section_2", "activity", "label_11", 2, 2),
    ]


def test_documents_deduplicated_by_contenthash(tmp_path: Path) -> None:
    """The same file in two resources is one document; both items point at it."""
    same = b"%PDF same bytes"
    course = read(build_mbz(tmp_path / "d.mbz", sections=[(0, "", "")], activities=[
        MbzActivity("resource", 1, 0, "First", files={"a.pdf": same}),
        MbzActivity("resource", 2, 0, "Second", files={"copy.pdf": same}),
    ]))
    assert [doc.path for doc in course.documents] == ["resource_1/a.pdf"]
    assert [item.target for item in course.path if item.kind == "document"] == ["resource_1/a.pdf"] * 2


def test_missing_file_is_skipped(tmp_path: Path) -> None:
    """A files.xml record whose files/<hash> member is absent is Skipped, the rest imported."""
    resource = MbzActivity("resource", 1, 0, "R", files={"x.pdf": b"x"})
    path = build_mbz(tmp_path / "m.mbz", activities=[resource])
    with open_archive(path, Limits()) as archive:
        members = {name: archive.read(name, 1 << 20) for name in archive.names()
                   if not name.startswith("files/")}
    course = read(write_zip(tmp_path / "m2.mbz", members))
    assert course.documents == []
    assert course.skipped == [Skipped("file resource_1/x.pdf",
                                      "listed in files.xml but missing from the backup")]
    assert course.path[1] == PathItem("resource_1", "R", "section_0", "activity", "resource_1", 0, 0)


def test_names_fall_back_to_course_xml(tmp_path: Path) -> None:
    """Without original_course_* in moodle_backup.xml, course/course.xml gives the names."""
    path = build_mbz(tmp_path / "f.mbz", fullname="Physique", shortname="PHY")
    with open_archive(path, Limits()) as archive:
        members = {name: archive.read(name, 1 << 20) for name in archive.names()}
    backup = members["moodle_backup.xml"]
    for tag, value in ((b"original_course_fullname", b"Physique"), (b"original_course_shortname", b"PHY")):
        backup = backup.replace(b"<%s>%s</%s>" % (tag, value, tag), b"")
    members["moodle_backup.xml"] = backup
    course = read(write_zip(tmp_path / "f2.mbz", members))
    assert (course.fullname, course.shortname) == ("Physique", "PHY")


def test_backup_without_information_is_refused(tmp_path: Path) -> None:
    """A moodle_backup.xml without <information> is an ArchiveError naming the archive."""
    path = write_zip(tmp_path / "x.mbz", {"moodle_backup.xml": b"<moodle_backup/>"})
    with open_archive(path, Limits()) as archive, pytest.raises(ArchiveError, match="no <information>"):
        read_mbz(archive, "x.mbz")
