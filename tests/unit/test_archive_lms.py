"""read_chamilo and read_bitrix: Chamilo backups and 1C-Bitrix exports to the neutral model."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from syncd.archives.bitrix import read_bitrix
from syncd.archives.chamilo import read_chamilo
from syncd.archives.model import ArchiveActivity, ArchiveSection, CourseArchive, PathItem, Skipped
from syncd.archives.phpserial import PhpSerialError
from syncd.archives.safe import ArchiveError, Limits, open_archive
from tests.archive_builders import (
    BitrixChapter,
    BitrixLesson,
    ChamiloLp,
    ChamiloLpItem,
    PhpObj,
    build_bitrix,
    build_chamilo,
    php_serialize,
    write_tar,
    write_zip,
)


def chamilo(path: Path) -> CourseArchive:
    with open_archive(path, Limits()) as archive:
        return read_chamilo(archive, path.name)


def sample_chamilo(path: Path, legacy: bool = False, encoding: str = "UTF-8") -> Path:
    return build_chamilo(
        path, code="HIST1", title="Histoire de l'art — Ωμέγα" if encoding == "UTF-8" else "Histoire d'été",
        lang="french", description="<p>Présentation</p>", legacy=legacy, encoding=encoding,
        documents={"cours/chapitre 1.pdf": b"%PDF-1", "images/été.png": b"PNG"}, missing=["perdu.doc"],
        learnpaths=[ChamiloLp(4, "Parcours A", items=(
            ChamiloLpItem(10, "dir", "Partie 1"),
            ChamiloLpItem(11, "document", "Chapitre 1", ref="cours/chapitre 1.pdf", parent=10),
            ChamiloLpItem(12, "quiz", "Quiz", parent=10),
            ChamiloLpItem(13, "link", "Louvre", ref="7"),
            ChamiloLpItem(14, "document", "Lost", ref="perdu.doc"),
        ), description="Le parcours")],
        links=[(7, "Musée du Louvre", "https://www.louvre.fr/"), (8, "Orsay", "https://www.musee-orsay.fr/")],
        quizzes=[(1, "Examen final")], forums=[(2, "Forum des élèves")])


@pytest.mark.parametrize("legacy", [False, True])
def test_chamilo_course(tmp_path: Path, legacy: bool) -> None:
    """Names, summary, fields and documents, with 1.10+ namespaced or 1.9 bare class names."""
    course = chamilo(sample_chamilo(tmp_path / "backup.zip", legacy))
    assert (course.format, course.shortname) == ("chamilo", "HIST1")
    assert course.fullname == "Histoire de l'art — Ωμέγα"
    assert course.summary == "<p>Présentation</p>" and course.fields == {"lang": "french", "visible": "1"}
    assert [(d.path, d.member) for d in course.documents] == [
        ("cours/chapitre 1.pdf", "document/cours/chapitre 1.pdf"),
        ("images/été.png", "document/images/été.png")]


def test_chamilo_learning_path_and_activities(tmp_path: Path) -> None:
    """A learning path is a section with its item tree; links are url activities."""
    course = chamilo(sample_chamilo(tmp_path / "b.zip"))
    assert course.sections == [ArchiveSection(0, "", ""), ArchiveSection(1, "Parcours A", "Le parcours")]
    assert course.path == [
        PathItem("lp_4", "Parcours A", None, "folder", None, 0, 1),
        PathItem("lp_4/10", "Partie 1", "lp_4", "folder", None, 0, 1),
        PathItem("lp_4/11", "Chapitre 1", "lp_4/10", "document", "cours/chapitre 1.pdf", 0, 1),
        PathItem("lp_4/13", "Louvre", "lp_4", "link", "https://www.louvre.fr/", 1, 1),
        PathItem("lp_4/14", "Lost", "lp_4", "document", None, 2, 1),
    ]
    assert course.activities == [ArchiveActivity("link_7", 1, "url", "Musée du Louvre"),
                                 ArchiveActivity("link_8", 0, "url", "Orsay")]


def test_chamilo_skipped(tmp_path: Path) -> None:
    """Missing documents, unmodelled items, quizzes and forums are Skipped by title."""
    assert chamilo(sample_chamilo(tmp_path / "b.zip")).skipped == [
        Skipped("document perdu.doc", "listed in course_info.dat but missing from the zip"),
        Skipped("learning path item Quiz", "item type quiz is not modelled"),
        Skipped("learning path item Lost", "its document is not in the backup"),
        Skipped("quiz Examen final", "Chamilo quiz resources are not modelled"),
        Skipped("forum Forum des élèves", "Chamilo forum resources are not modelled"),
    ]


def test_chamilo_latin9_backup(tmp_path: Path) -> None:
    """Strings serialized in the course's ISO-8859-15 encoding are decoded with it."""
    assert chamilo(sample_chamilo(tmp_path / "l.zip", encoding="ISO-8859-15")).fullname == "Histoire d'été"


def test_chamilo_refuses_foreign_classes(tmp_path: Path) -> None:
    """A course_info.dat holding a class outside the allow-list is refused whole."""
    course = PhpObj("Course", {"code": "X", "resources": {"document": {1: PhpObj("Monolog\\Handler", {})}}})
    path = write_zip(tmp_path / "evil.zip", {"course_info.dat": base64.b64encode(php_serialize(course))})
    with pytest.raises(PhpSerialError, match=r"course_info\.dat: byte \d+: class 'Monolog\\\\Handler'"):
        chamilo(path)


@pytest.mark.parametrize(("content", "reason"), [
    (b"not base64 !!", "not base64"),
    (base64.b64encode(b"i:1;"), "does not hold a PHP-serialized Course"),
    (base64.b64encode(php_serialize(PhpObj("stdClass", {}))), "does not hold a Course object"),
])
def test_chamilo_bad_course_info(tmp_path: Path, content: bytes, reason: str) -> None:
    """course_info.dat that is not base64 of a serialized Course is refused."""
    with pytest.raises(ArchiveError, match=reason):
        chamilo(write_zip(tmp_path / "bad.zip", {"course_info.dat": content}))


def bitrix_sample(path: Path, charset: str = "windows-1251") -> Path:
    return build_bitrix(
        path, course_id=42, name="Охрана труда", code="OT-1", description="<p>Курс по охране труда</p>",
        active_from=1_788_220_800, charset=charset, tests=["Итоговый тест"],
        children=[
            BitrixLesson(100, "Вводный инструктаж", html="<p>Добро пожаловать</p>"),
            BitrixChapter(200, "Глава 1. Общие положения", preview="Кратко", children=(
                BitrixLesson(201, "Урок 1", html='<p>Схема:</p><img src="{res}/схема.png">',
                             files={"схема.png": b"\x89PNG"}, questions=("Вопрос 1", "Вопрос 2")),
                BitrixChapter(210, "Раздел 1.1", detail="<p>Текст раздела</p>", children=(
                    BitrixLesson(211, "Урок 2", html="Строка 1 < 2", text_type="text"),)),
            )),
        ])


def bitrix(path: Path) -> CourseArchive:
    with open_archive(path, Limits()) as archive:
        return read_bitrix(archive, path.name)


def test_bitrix_windows_1251_course(tmp_path: Path) -> None:
    """A windows-1251 export: Cyrillic names, summary, fields, sections (lessons at the top → 0)."""
    course = bitrix(bitrix_sample(tmp_path / "export.tar.gz"))
    assert (course.format, course.shortname, course.fullname) == ("bitrix", "OT-1", "Охрана труда")
    assert course.summary == "<p>Курс по охране труда</p>"
    assert course.fields == {"visible": "1", "startdate": "2026-09-01T00:00:00+00:00"}
    assert course.sections == [ArchiveSection(0, "", ""),
                               ArchiveSection(1, "Глава 1. Общие положения", "Кратко")]


def test_bitrix_lessons_are_generated_pages(tmp_path: Path) -> None:
    """Each lesson is a UTF-8 HTML page with cid: image links made relative; files kept."""
    course = bitrix(bitrix_sample(tmp_path / "e.tar.gz"))
    docs = {doc.path: doc for doc in course.documents}
    assert set(docs) == {"lessons/100.html", "lessons/201.html", "chapters/210.html", "lessons/211.html",
                         "resources/res4/схема.png"}
    page = (docs["lessons/201.html"].content or b"").decode("utf-8")
    assert '<img src="../resources/res4/схема.png">' in page and "<title>Урок 1</title>" in page
    assert "<pre>Строка 1 &lt; 2</pre>" in (docs["lessons/211.html"].content or b"").decode()
    assert docs["resources/res4/схема.png"].member == "resources/res4/схема.png"


def test_bitrix_path_activities_and_skipped(tmp_path: Path) -> None:
    """Chapters are folders, lessons document items + page activities; tests and questions Skipped."""
    course = bitrix(bitrix_sample(tmp_path / "e.tar.gz"))
    assert [(i.key, i.parent, i.kind, i.target, i.position, i.section) for i in course.path] == [
        ("section_0", None, "folder", None, 0, 0),
        ("LES2", "section_0", "document", "lessons/100.html", 0, 0),
        ("CHA3", None, "folder", None, 1, 1),
        ("LES4", "CHA3", "document", "lessons/201.html", 0, 1),
        ("CHA7", "CHA3", "folder", None, 1, 1),
        ("CHA7/text", "CHA7", "document", "chapters/210.html", 0, 1),
        ("LES8", "CHA7", "document", "lessons/211.html", 1, 1),
    ]
    assert course.activities == [ArchiveActivity("LES2", 0, "page", "Вводный инструктаж"),
                                 ArchiveActivity("LES4", 1, "page", "Урок 1"),
                                 ArchiveActivity("LES8", 1, "page", "Урок 2")]
    assert course.skipped == [Skipped("test Итоговый тест", "Bitrix tests are not modelled"),
                              Skipped("2 questions", "Bitrix questions are not modelled")]


def test_bitrix_utf8_export_with_cjk(tmp_path: Path) -> None:
    """A UTF-8 export keeps CJK and accented titles."""
    path = build_bitrix(tmp_path / "u.tar.gz", name="日本語コース — Café", charset="utf-8",
                        children=[BitrixLesson(1, "第一課", html="<p>こんにちは</p>")])
    course = bitrix(path)
    assert course.fullname == "日本語コース — Café" and course.shortname == "bitrix-7"
    assert course.activities == [ArchiveActivity("LES2", 0, "page", "第一課")]


def test_bitrix_hostile_record_id_never_shapes_a_path(tmp_path: Path) -> None:
    """A lesson record id like '../../x' is ignored: the generated page is named by the item."""
    path = build_bitrix(tmp_path / "h.tar.gz", children=[BitrixLesson(5, "Урок")])
    with open_archive(path, Limits()) as archive:
        members = {name: archive.read(name, 1 << 20) for name in archive.names()}
    members["res2.xml"] = members["res2.xml"].replace(b"<id>5</id>", b"<id>../../x</id>")
    course = bitrix(write_tar(tmp_path / "h2.tar.gz", members))
    assert [doc.path for doc in course.documents] == ["lessons/2.html"]
