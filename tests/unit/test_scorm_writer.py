"""The SCORM 1.2 packages course_backup writes (syncd/archives/scorm_writer.py): they follow
the IMS Content Packaging 1.1.2 / ADL SCORM 1.2 CAM manifest rules (checked here by a small
checker written from those specifications, no schema files), and syncd's own SCORM
reader (read_scorm12) gets the same learning path and documents back."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from xml.etree.ElementTree import Element

import defusedxml.ElementTree
import pytest

from syncd.archives.model import CourseArchive
from syncd.archives.safe import Limits, open_archive
from syncd.archives.scorm import read_scorm12
from syncd.archives.scorm_writer import ADLCP, IMSCP, IMSMD, MAX_TITLE, write_scorm12
from syncd.platform.model import PathItemRecord
from syncd.processors.course_backup import read_content
from tests.backup_samples import DOCUMENTS, SHORTNAME, seed_sample_course
from tests.fakes import FakePlatform

CP = "{" + IMSCP + "}"
SCORMTYPE = "{" + ADLCP + "}scormtype"
#: an XML NCName, close enough: a letter or _ first, then letters, digits, . - _ (any script)
NCNAME = re.compile(r"[^\W\d][\w.-]*")
NOT_NCNAME_CHARS = re.compile(r"[\u00aa-\u00bf]")
ITEM_CHILDREN = {CP + "title", CP + "item", CP + "metadata"} | {
    "{" + ADLCP + "}" + name for name in ("prerequisites", "maxtimeallowed", "timelimitaction",
                                          "datafromlms", "masteryscore")}


# -- the checker ---------------------------------------------------------------------------------


def _is_id(value: str | None) -> bool:
    text = value or ""
    return NCNAME.fullmatch(text) is not None and not NOT_NCNAME_CHARS.search(text)


def _declared_namespaces(data: bytes) -> dict[str, str]:
    events = defusedxml.ElementTree.iterparse(io.BytesIO(data), ["start-ns"])
    return {prefix: uri for _, (prefix, uri) in events}


def _items(parent: Element) -> Iterator[Element]:
    for item in parent.findall(CP + "item"):
        yield item
        yield from _items(item)


def _member(href: str) -> str:
    return unquote(urlsplit(href).path)


def check_scorm12(path: Path) -> list[str]:
    """Every way the package breaks the IMS CP 1.1.2 / SCORM 1.2 manifest rules (none = valid)."""
    with zipfile.ZipFile(path) as package:
        names = set(package.namelist())
        if "imsmanifest.xml" not in names:
            return ["no imsmanifest.xml at the root of the package"]
        data = package.read("imsmanifest.xml")
    problems: list[str] = []
    declared = _declared_namespaces(data)
    for prefix, uri in (("", IMSCP), ("adlcp", ADLCP)):
        if declared.get(prefix) != uri:
            problems.append(f"namespace {prefix or '(default)'} is {declared.get(prefix)!r}, not {uri}")
    root = defusedxml.ElementTree.fromstring(data)
    if root.tag != CP + "manifest":
        return [*problems, f"root element {root.tag}, not manifest in the IMS CP namespace"]
    if not _is_id(root.get("identifier")):
        problems.append(f"manifest identifier {root.get('identifier')!r} is not an XML ID")
    order = [child.tag for child in root]
    if order != [CP + "metadata", CP + "organizations", CP + "resources"]:
        problems.append(f"manifest children {order}: want metadata, organizations, resources")
    metadata = root.find(CP + "metadata")
    if metadata is None or (metadata.findtext(CP + "schema"), metadata.findtext(CP + "schemaversion")) != (
            "ADL SCORM", "1.2"):
        problems.append("metadata must say schema 'ADL SCORM', schemaversion '1.2'")
    ids = [e.get("identifier") for e in root.iter() if e.tag in (
        CP + "manifest", CP + "organization", CP + "item", CP + "resource")]
    twice = sorted({i for i in ids if ids.count(i) > 1}, key=str)
    problems += [f"identifier {i!r} used twice" for i in twice]
    problems += [f"identifier {i!r} is not an XML ID" for i in ids if not _is_id(i)]
    problems += _check_resources(root, names)
    problems += _check_organizations(root)
    return problems


def _check_organizations(root: Element) -> list[str]:
    problems: list[str] = []
    organizations = root.find(CP + "organizations")
    resources = {r.get("identifier") for r in root.iter(CP + "resource")}
    orgs = [] if organizations is None else organizations.findall(CP + "organization")
    default = None if organizations is None else organizations.get("default")
    if orgs and default not in {o.get("identifier") for o in orgs}:
        problems.append(f"organizations default {default!r} names no organization")
    if default is not None and not orgs:
        problems.append(f"organizations default {default!r} with no organization")
    for org in orgs:
        if not len(org) or org[0].tag != CP + "title" or not (org[0].text or "").strip():
            problems.append(f"organization {org.get('identifier')!r} does not start with its title")
        if org.find(CP + "item") is None:
            problems.append(f"organization {org.get('identifier')!r} has no item")
        for item in _items(org):
            ident = item.get("identifier")
            if not len(item) or item[0].tag != CP + "title" or not (item[0].text or "").strip():
                problems.append(f"item {ident!r} does not start with a non-empty title")
            elif len(item[0].text or "") > MAX_TITLE:
                problems.append(f"item {ident!r}: title over {MAX_TITLE} characters")
            problems += [f"item {ident!r}: unexpected child {c.tag}"
                         for c in item if c.tag not in ITEM_CHILDREN]
            ref = item.get("identifierref")
            if ref is not None and ref not in resources:
                problems.append(f"item {ident!r}: identifierref {ref!r} names no resource")
    return problems


def _check_resources(root: Element, names: set[str]) -> list[str]:
    problems: list[str] = []
    listed: set[str] = set()
    for resource in root.iter(CP + "resource"):
        ident, href = resource.get("identifier"), resource.get("href")
        if resource.get("type") != "webcontent":
            problems.append(f"resource {ident!r}: type {resource.get('type')!r}, not webcontent")
        if resource.get(SCORMTYPE) not in ("sco", "asset"):
            problems.append(f"resource {ident!r}: adlcp:scormtype {resource.get(SCORMTYPE)!r}")
        if href is None:
            problems.append(f"resource {ident!r} has no href")
            continue
        files = [f.get("href") or "" for f in resource.findall(CP + "file")]
        if urlsplit(href).scheme:  # a web link: no file in the package
            problems += [f"resource {ident!r}: a URL with files"] if files else []
            continue
        if _member(href) not in names:
            problems.append(f"resource {ident!r}: href {href!r} is not in the package")
        if href not in files:
            problems.append(f"resource {ident!r}: its href {href!r} is not one of its files")
        for file in files:
            listed.add(_member(file))
            if _member(file) not in names:
                problems.append(f"resource {ident!r}: file {file!r} is not in the package")
    unlisted = sorted(names - listed - {"imsmanifest.xml"})
    problems += [f"member {n!r} is listed by no resource" for n in unlisted]
    return problems


# -- writing and reading back -------------------------------------------------------------------


def write(fake: FakePlatform, dest: Path, shortname: str = SHORTNAME) -> Path:
    """write_scorm12 of a course of the fake, read through the port as course_backup does."""
    with fake.transaction() as tx:
        [course] = tx.courses.find(shortnames=[shortname])
        c = read_content(tx, course, {x.id: x for x in tx.categories.all() if x.id is not None})
    write_scorm12(dest, c.course, c.sections, c.documents, c.path, c.activities, fake.direct.files.open)
    return dest


def reread(path: Path) -> tuple[CourseArchive, dict[str, bytes]]:
    """read_scorm12 on the package, and the bytes of each document it finds."""
    with open_archive(path, Limits()) as archive:
        course = read_scorm12(archive, path.name)
        return course, {d.path: archive.read(d.member, 1 << 20) for d in course.documents}


Tree = list[tuple[str, str, Any, "Tree"]]


def tree(items: list[tuple[str, str | None, str, str, str | None, int]]) -> Tree:
    """``(key, parent, title, kind, target, position)`` rows as nested
    ``(title, kind, target, children)``, siblings by position."""
    def children(parent: str | None) -> Tree:
        mine = sorted((i for i in items if i[1] == parent), key=lambda i: i[5])
        return [(title, kind, target, children(key)) for key, _, title, kind, target, _ in mine]
    return children(None)


def expected_tree(path: list[PathItemRecord]) -> Tree:
    """What a SCORM reader can get back of a learning path: activities have no resource in a
    package, so they come back as folders (no target)."""
    return tree([(i.key, i.parent_key, i.title, "folder" if i.kind == "activity" else i.kind,
                  None if i.kind == "activity" else i.target, i.position) for i in path])


@pytest.fixture
def fake() -> FakePlatform:
    platform = FakePlatform()
    seed_sample_course(platform)
    return platform


def test_the_checker_finds_what_breaks_the_rules(tmp_path: Path) -> None:
    """The checker itself: a package with a dangling identifierref, a duplicate id, a wrong
    default, no schemaversion, a missing file and a bad scormtype is reported on each count."""
    manifest = f"""<manifest xmlns="{IMSCP}" xmlns:adlcp="{ADLCP}" identifier="M" version="1">
      <metadata><schema>ADL SCORM</schema></metadata>
      <organizations default="NOPE"><organization identifier="O"><title>T</title>
        <item identifier="I" identifierref="R9"><title>a</title></item>
        <item identifier="I"><title>b</title></item></organization></organizations>
      <resources><resource identifier="R" type="webcontent" adlcp:scormtype="SCO" href="a.html">
        <file href="a.html"/></resource></resources></manifest>"""
    path = tmp_path / "bad.zip"
    with zipfile.ZipFile(path, "w") as package:
        package.writestr("imsmanifest.xml", manifest)
        package.writestr("stray.txt", b"x")
    problems = "\n".join(check_scorm12(path))
    for expected in ("schemaversion", "default 'NOPE'", "identifier 'I' used twice", "'R9' names no resource",
                     "adlcp:scormtype 'SCO'", "href 'a.html' is not in the package",
                     "'stray.txt' is listed by no resource"):
        assert expected in problems
    empty = manifest.replace('<item identifier="I" identifierref="R9"><title>a</title></item>', "").replace(
        '<item identifier="I"><title>b</title></item>', "")
    with zipfile.ZipFile(path, "w") as package:
        package.writestr("imsmanifest.xml", empty)
        package.writestr("a.html", b"a")
    assert "organization 'O' has no item" in check_scorm12(path)


def test_an_empty_course_makes_a_valid_package(tmp_path: Path) -> None:
    """A course with no document and no learning path: empty organizations (no default),
    still valid, and read back with the course's name."""
    fake = FakePlatform()
    fake.seed_course("VIDE", fullname="Cours vide")
    path = write(fake, tmp_path / "empty.zip", "VIDE")
    assert check_scorm12(path) == []
    assert zipfile.ZipFile(path).namelist() == ["imsmanifest.xml"]
    course, data = reread(path)
    assert (course.shortname, course.fullname, course.path, data) == ("VIDE", "Cours vide", [], {})


def test_the_sample_course_makes_a_valid_package(fake: FakePlatform, tmp_path: Path) -> None:
    """Namespaces, metadata, ids, the default organization, every identifierref and every
    file: the package of a course with non-ASCII names and XML specials breaks no rule."""
    path = write(fake, tmp_path / "sample.zip")
    assert check_scorm12(path) == []
    data = zipfile.ZipFile(path).read("imsmanifest.xml")
    assert data.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    root = defusedxml.ElementTree.fromstring(data)
    assert root.get("identifier") == "CHIM-ORG_1_été"
    md = "{" + IMSMD + "}"
    title = root.find(f"{CP}metadata/{md}lom/{md}general/{md}title/{md}langstring")
    assert title is not None and title.text == "Chimie organique — niveau 1"


def test_read_scorm12_gets_the_learning_path_and_documents_back(fake: FakePlatform, tmp_path: Path) -> None:
    """Re-read by syncd's SCORM reader: the same titles in the same tree (sco, document and
    link items with their targets, folders), the course's names, and every document byte
    for byte under its own path (non-ASCII, spaces and '#' included)."""
    path = write(fake, tmp_path / "sample.zip")
    course, data = reread(path)
    [stored] = fake.courses()
    assert (course.format, course.shortname, course.fullname, course.summary) == (
        "scorm12", "CHIM-ORG_1_été", stored.fullname, stored.summary)
    found = tree([(i.key, i.parent, i.title, i.kind, i.target, i.position) for i in course.path])
    assert found == expected_tree(fake.path_items())
    assert data == {p: content for p, (content, _) in DOCUMENTS.items()}
    assert course.skipped == []


def test_without_a_learning_path_documents_are_listed_by_folder(tmp_path: Path) -> None:
    """A course with documents and no learning path gets one item per document (its title,
    else its name) inside one folder item per directory, and stays valid."""
    fake = FakePlatform()
    course = fake.seed_course("DOCS", fullname="Docs & <Co>")
    assert course.id is not None
    fake.seed_document(course.id, "a/b/deep.txt", b"deep", title="Tout au fond")
    fake.seed_document(course.id, "a/top.txt", b"top")
    fake.seed_document(course.id, "racine.txt", b"root")
    path = write(fake, tmp_path / "docs.zip", "DOCS")
    assert check_scorm12(path) == []
    archive, data = reread(path)
    assert tree([(i.key, i.parent, i.title, i.kind, i.target, i.position) for i in archive.path]) == [
        ("a", "folder", None, [("b", "folder", None, [("Tout au fond", "document", "a/b/deep.txt", [])]),
                               ("top.txt", "document", "a/top.txt", [])]),
        ("racine.txt", "document", "racine.txt", []),
    ]
    assert data == {"a/b/deep.txt": b"deep", "a/top.txt": b"top", "racine.txt": b"root"}
    assert archive.fullname == "Docs & <Co>"


def test_a_document_called_imsmanifest_goes_under_content(tmp_path: Path) -> None:
    """A course document named imsmanifest.xml cannot replace the package's manifest: every
    document then lives under content/, and the package is still valid."""
    fake = FakePlatform()
    course = fake.seed_course("MAN")
    assert course.id is not None
    fake.seed_document(course.id, "IMSManifest.xml", b"<not-the-manifest/>")
    fake.seed_document(course.id, "x/y.txt", b"y")
    path = write(fake, tmp_path / "man.zip", "MAN")
    assert check_scorm12(path) == []
    assert set(zipfile.ZipFile(path).namelist()) == {"imsmanifest.xml", "content/IMSManifest.xml",
                                                     "content/x/y.txt"}
    assert reread(path)[1] == {"content/IMSManifest.xml": b"<not-the-manifest/>", "content/x/y.txt": b"y"}


@pytest.mark.parametrize(("shortname", "identifier"), [
    ("ITEM-1", "C-ITEM-1"), ("1ère année", "_1ère_année"), ("a²+b²", "a__b_"), ("", "course"),
    ("Физика 1", "Физика_1"),
])
def test_the_manifest_identifier_is_always_a_valid_xml_id(
    tmp_path: Path, shortname: str, identifier: str
) -> None:
    """Shortnames that are not XML IDs (a digit first, spaces, superscripts) or that look like
    a generated id are made into distinct valid IDs; the package stays valid."""
    fake = FakePlatform()
    course = fake.seed_course(shortname or "x")
    course.shortname = shortname
    fake.direct.courses.update([course])
    assert course.id is not None
    fake.seed_document(course.id, "f.txt", b"f")
    fake.direct.content.replace_path(course.id, [PathItemRecord(course.id, "k", "F", None, "document",
                                                                "f.txt", 0, None)])
    path = write(fake, tmp_path / "id.zip", shortname)
    assert check_scorm12(path) == []
    assert reread(path)[0].shortname == identifier


def test_titles_keep_xml_specials_and_lose_what_xml_cannot_carry(tmp_path: Path) -> None:
    """Titles with < > & quotes and ']]>' come back as they were; control characters are
    dropped and titles are cut to the 200 characters SCORM 1.2 allows."""
    fake = FakePlatform()
    course = fake.seed_course("XML", fullname="Cours \"spécial\" ]]> & 'co'")
    assert course.id is not None
    fake.seed_document(course.id, "d.html", b"<p>d</p>")
    long = "é" * 250
    items = [("a", "<b>Gras</b> & \"guillemets\" ]]>", "folder", None),
             ("b", "bip\x07\x1b fin", "document", "d.html"), ("c", long, "link", "https://example.org/?a=1&b=<2>")]
    fake.direct.content.replace_path(course.id, [PathItemRecord(course.id, k, t, None, kind, target, n, None)
                                                 for n, (k, t, kind, target) in enumerate(items)])
    path = write(fake, tmp_path / "xml.zip", "XML")
    assert check_scorm12(path) == []
    archive, _ = reread(path)
    assert archive.fullname == "Cours \"spécial\" ]]> & 'co'"
    assert [(i.title, i.kind, i.target) for i in archive.path] == [
        ("<b>Gras</b> & \"guillemets\" ]]>", "folder", None), ("bip fin", "document", "d.html"),
        ("é" * MAX_TITLE, "link", "https://example.org/?a=1&b=<2>")]
