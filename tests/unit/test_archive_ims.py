"""read_scorm12 and read_imscc: IMS content packages to the neutral course model."""

from __future__ import annotations

from pathlib import Path

from syncd.archives.imscc import read_imscc
from syncd.archives.model import ArchiveActivity, ArchiveDocument, ArchiveSection, PathItem, Skipped
from syncd.archives.safe import Limits, open_archive
from syncd.archives.scorm import read_scorm12
from tests.archive_builders import CcItem, ScormItem, build_imscc, build_scorm12, write_zip


def test_scorm_course_documents_and_path(tmp_path: Path) -> None:
    """Organization title → fullname, identifier → shortname, item tree → path (sco,
    document, folder), listed files present → documents; non-ASCII titles kept."""
    path = build_scorm12(
        tmp_path / "pkg.zip", identifier="org.example.éco", title="Économie — 経済学",
        items=[ScormItem("M1", "Module 1 — введение", children=(
                   ScormItem("L1", "Leçon 1", href="l1/index.html", files=("l1/app.js", "shared/style.css")),
                   ScormItem("L2", "Leçon 2", href="l2/index.html?page=1"))),
               ScormItem("PDF", "Handout", href="docs/hand%20out.pdf", scormtype="asset")],
        files={"l1/index.html": b"<html>1</html>", "l1/app.js": b"js", "shared/style.css": b"css",
               "l2/index.html": b"<html>2</html>", "docs/hand out.pdf": b"%PDF", "unlisted.txt": b"x"})
    with open_archive(path, Limits()) as archive:
        course = read_scorm12(archive, "pkg.zip")
    assert (course.format, course.shortname) == ("scorm12", "org.example.éco")
    assert course.fullname == "Économie — 経済学"
    assert [doc.path for doc in course.documents] == [
        "l1/index.html", "l1/app.js", "shared/style.css", "l2/index.html", "docs/hand out.pdf"]
    assert course.path == [
        PathItem("M1", "Module 1 — введение", None, "folder", None, 0, None),
        PathItem("L1", "Leçon 1", "M1", "sco", "l1/index.html", 0, None),
        PathItem("L2", "Leçon 2", "M1", "sco", "l2/index.html", 1, None),
        PathItem("PDF", "Handout", None, "document", "docs/hand out.pdf", 1, None),
    ]
    assert course.sections == [] and course.activities == [] and course.skipped == []


def test_scorm_missing_files_are_skipped(tmp_path: Path) -> None:
    """A listed file the package lacks is Skipped; a missing launch file leaves target None."""
    items = [ScormItem("A", "Present", href="a.html", files=("gone.css",)),
             ScormItem("B", "Absent", href="b.html")]
    path = build_scorm12(tmp_path / "p.zip", items=items, files={"a.html": b"a"})
    with open_archive(path, Limits()) as archive:
        course = read_scorm12(archive, "p.zip")
    assert course.documents == [ArchiveDocument("a.html", 1, "a.html")]
    assert course.path[1] == PathItem("B", "Absent", None, "sco", None, 1, None)
    assert course.skipped == [
        Skipped("file gone.css", "listed in imsmanifest.xml but missing from the package"),
        Skipped("file b.html", "listed in imsmanifest.xml but missing from the package"),
        Skipped("item Absent", "its launch file is missing from the package"),
    ]


def test_scorm_xml_base_and_escaping_hrefs(tmp_path: Path) -> None:
    """xml:base prefixes resource files; an href leaving the package is never a document."""
    manifest = b"""<?xml version="1.0"?>
<manifest identifier="B" xmlns="http://www.imsproject.org/xsd/imscp_rootv1p1p2"
  xmlns:adlcp="http://www.adlnet.org/xsd/adlcp_rootv1p2">
 <organizations default="O"><organization identifier="O"><title>Based</title>
  <item identifier="I" identifierref="R"><title>Lesson</title></item></organization></organizations>
 <resources xml:base="content/"><resource identifier="R" type="webcontent" adlcp:scormtype="sco"
   xml:base="unit1/" href="index.html"><file href="index.html"/><file href="../../../etc/passwd"/>
 </resource></resources></manifest>"""
    path = write_zip(tmp_path / "b.zip", {"imsmanifest.xml": manifest, "content/unit1/index.html": b"i"})
    with open_archive(path, Limits()) as archive:
        course = read_scorm12(archive, "b.zip")
    assert [doc.path for doc in course.documents] == ["content/unit1/index.html"]
    assert course.path == [PathItem("I", "Lesson", None, "sco", "content/unit1/index.html", 0, None)]


def cartridge(path: Path) -> Path:
    return build_imscc(
        path, identifier="cc-ελληνικά", title="Ιστορία — 歴史", description="<p>Course</p>",
        modules=[
            CcItem("M1", "Неделя 1", children=(
                CcItem("W1", "Введение", "webcontent", href="web/intro.html"),
                CcItem("SUB", "Reading", children=(
                    CcItem("W2", "Chapter", "webcontent", href="web/ch 1.pdf"),)),
                CcItem("L1", "Britannica", "weblink", url="https://www.britannica.com/"),
            )),
            CcItem("M2", "Week 2", children=(
                CcItem("D1", "Discuss", "discussion"), CcItem("A1", "Final exam", "assessment"),
                CcItem("W3", "Missing", "webcontent", href="web/missing.html"),
            )),
        ],
        files={"web/intro.html": b"<p>intro</p>", "web/ch 1.pdf": b"%PDF"})


def test_imscc_sections_and_documents(tmp_path: Path) -> None:
    """LOM title/description, identifier, top-level modules → sections, web content → documents."""
    with open_archive(cartridge(tmp_path / "c.imscc"), Limits()) as archive:
        course = read_imscc(archive, "c.imscc")
    assert (course.format, course.shortname, course.fullname, course.summary) == (
        "imscc", "cc-ελληνικά", "Ιστορία — 歴史", "<p>Course</p>")
    assert course.sections == [ArchiveSection(1, "Неделя 1", ""), ArchiveSection(2, "Week 2", "")]
    assert [doc.path for doc in course.documents] == ["web/intro.html", "web/ch 1.pdf"]


def test_imscc_path_activities_and_skipped(tmp_path: Path) -> None:
    """Web content → document items + resource activities, web links → link items + url
    activities; discussions, assessments and missing files → Skipped."""
    with open_archive(cartridge(tmp_path / "c.imscc"), Limits()) as archive:
        course = read_imscc(archive, "c.imscc")
    assert course.path == [
        PathItem("M1", "Неделя 1", None, "folder", None, 0, 1),
        PathItem("W1", "Введение", "M1", "document", "web/intro.html", 0, 1),
        PathItem("SUB", "Reading", "M1", "folder", None, 1, 1),
        PathItem("W2", "Chapter", "SUB", "document", "web/ch 1.pdf", 0, 1),
        PathItem("L1", "Britannica", "M1", "link", "https://www.britannica.com/", 2, 1),
        PathItem("M2", "Week 2", None, "folder", None, 1, 2),
    ]
    assert course.activities == [ArchiveActivity("W1", 1, "resource", "Введение"),
                                  ArchiveActivity("W2", 1, "resource", "Chapter"),
                                  ArchiveActivity("L1", 1, "url", "Britannica")]
    assert course.skipped == [
        Skipped("file web/missing.html", "listed in imsmanifest.xml but missing from the package"),
        Skipped("discussion Discuss", "resource type imsdt_xmlv1p1 is not modelled"),
        Skipped("assessment Final exam",
                "resource type imsqti_xmlv1p2/imscc_xmlv1p1/assessment is not modelled"),
        Skipped("item Missing", "its file is missing from the package"),
    ]


def test_imscc_top_level_leaves_go_to_section_0(tmp_path: Path) -> None:
    """Items with a resource directly under the root land in a section 0 ("General")."""
    path = build_imscc(tmp_path / "g.imscc", modules=[
        CcItem("W0", "Syllabus", "webcontent", href="s.html"), CcItem("M1", "Unit", children=())],
        files={"s.html": b"s"})
    with open_archive(path, Limits()) as archive:
        course = read_imscc(archive, "g.imscc")
    assert course.sections == [ArchiveSection(0, "", ""), ArchiveSection(1, "Unit", "")]
    assert course.path[:2] == [PathItem("section_0", "General", None, "folder", None, 0, 0),
                               PathItem("W0", "Syllabus", "section_0", "document", "s.html", 0, 0)]
