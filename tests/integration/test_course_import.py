"""course_import on archives built from the formats' documented structure (tests/archive_builders).

Each archive goes through the real archive layer and the processor's item source, then
its items are applied in batches on the fake platform (and on SQLite with a real file
store): the course, sections, documents (bytes in the blob store), activities, learning
path, and the skipped things, each with its report line.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from syncd.archives.safe import ArchiveError
from syncd.domain import Outcome, RejectFile, RowResult
from syncd.platform.base import Platform
from syncd.platform.sqlstore import SqlPlatform, create_schema
from syncd.processors.base import RunContext
from syncd.processors.course_import import SPEC
from tests.archive_builders import (
    BitrixChapter,
    BitrixLesson,
    CcItem,
    MbzActivity,
    ScormItem,
    build_bitrix,
    build_imscc,
    build_mbz,
    build_scorm12,
    write_zip,
)
from tests.fakes import FakePlatform
from tests.pictures import apply_items

CTX = RunContext(timezone=UTC, now=lambda: datetime(2026, 11, 22, tzinfo=UTC))


def import_archive(platform: Platform, path: Path, batch: int = 3, **options: Any) -> list[RowResult]:
    """Run course_import on ``path`` as the runner does: check, header, records in batches."""
    return apply_items(platform, SPEC, path, batch, CTX, **options)


def by_outcome(results: Sequence[RowResult]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for r in results:
        grouped.setdefault(r.outcome.value, []).append(r.reason)
    return grouped


def sample_mbz(path: Path, **overrides: Any) -> Path:
    """A Moodle backup with two sections, a file resource, a page, a quiz and a course file."""
    values: dict[str, Any] = dict(
        fullname="Введение в химию", shortname="CHEM101", summary="<p>Atoms</p>",
        sections=[(0, "", ""), (1, "Atomes et molécules", "<p>Semaine 1</p>")],
        activities=[
            MbzActivity("resource", 11, 1, "Cours 1 (PDF)", files={"cours1.pdf": b"%PDF-1.4 one"}),
            MbzActivity("page", 12, 1, "Bienvenue", content="<p>Hello</p>"),
            MbzActivity("quiz", 13, 1, "Quiz 1"),
        ],
        files={"syllabus.txt": b"syllabus"}, startdate=1_767_225_600,
    )
    values.update(overrides)
    return build_mbz(path, **values)


@pytest.fixture
def fake() -> FakePlatform:
    return FakePlatform()


def test_a_moodle_backup_becomes_a_course_with_its_content(fake: FakePlatform, tmp_path: Path) -> None:
    """Course, sections, documents with their bytes, activities and a skipped quiz, each reported."""
    results = import_archive(fake, sample_mbz(tmp_path / "chem.mbz"))
    course = fake.course("CHEM101")
    assert course is not None and course.fullname == "Введение в химию"
    assert course.startdate == datetime(2026, 1, 1, tzinfo=UTC)
    assert {s.number: s.name for s in fake.sections("CHEM101")} == {0: "", 1: "Atomes et molécules"}
    docs = {d.path: d for d in fake.documents()}
    assert docs, "no document imported"
    pdf = next(d for p, d in docs.items() if p.endswith("cours1.pdf"))
    assert pdf.sha256 == hashlib.sha256(b"%PDF-1.4 one").hexdigest()
    with fake.direct.files.open(pdf.sha256) as blob:
        assert blob.read() == b"%PDF-1.4 one"
    assert {a.kind for a in fake.activities()} >= {"resource", "page"}
    grouped = by_outcome(results)
    assert any("quiz" in reason.lower() for reason in grouped["skipped"])
    assert "error" not in grouped
    assert grouped["created"][0].startswith("course 'CHEM101' (mbz)")


def test_importing_the_same_archive_again_changes_nothing(fake: FakePlatform, tmp_path: Path) -> None:
    """A second import of the same archive reports every item unchanged (or skipped)."""
    path = sample_mbz(tmp_path / "chem.mbz")
    import_archive(fake, path)
    again = by_outcome(import_archive(fake, path, batch=100))
    assert set(again) == {"unchanged", "skipped"}
    assert len(fake.courses()) == 1


def test_a_newer_archive_updates_and_prunes(fake: FakePlatform, tmp_path: Path) -> None:
    """Changed files are updated, files no longer in the archive are removed, the course renamed."""
    import_archive(fake, sample_mbz(tmp_path / "v1.mbz"))
    before = {d.path for d in fake.documents()}
    v2 = sample_mbz(tmp_path / "v2.mbz", fullname="Chemistry", files={"syllabus.txt": b"syllabus v2"},
                    activities=[MbzActivity("page", 12, 1, "Bienvenue", content="<p>Hello</p>")])
    grouped = by_outcome(import_archive(fake, v2))
    course = fake.course("CHEM101")
    assert course is not None and course.fullname == "Chemistry"
    after = {d.path for d in fake.documents()}
    assert not any(p.endswith("cours1.pdf") for p in after) and any(p.endswith("cours1.pdf") for p in before)
    assert any("no longer in the archive" in r for r in grouped["deleted"])
    assert any("syllabus.txt" in r for r in grouped["updated"])


def test_a_tar_gz_backup_imports_like_a_zip(fake: FakePlatform, tmp_path: Path) -> None:
    """The format is found by content: a tar.gz .mbz gives the same course."""
    import_archive(fake, sample_mbz(tmp_path / "chem.mbz", tar=True))
    assert fake.course("CHEM101") is not None
    assert any(d.path.endswith("syllabus.txt") for d in fake.documents())


def test_scorm_package_gives_a_learning_path_and_a_route_shortname(
    fake: FakePlatform, tmp_path: Path
) -> None:
    """A SCORM 1.2 tree becomes the learning path; the route option shortname wins."""
    items = [ScormItem("M1", "Module 1", children=(
        ScormItem("L1", "Leçon 1", href="l1/index.html", files=("l1/img.png",)),
        ScormItem("L2", "Leçon 2", href="l2/index.html"),
    ))]
    files = {"l1/index.html": b"<html>1</html>", "l1/img.png": b"\x89PNG", "l2/index.html": b"<html>2</html>"}
    path = build_scorm12(tmp_path / "pkg.zip", title="Sécurité", items=items, files=files)
    import_archive(fake, path, shortname="SEC-2026")
    assert fake.course("SEC-2026") is not None
    tree = {i.key: i for i in fake.path_items()}
    assert len(tree) == 3
    lessons = [i for i in tree.values() if i.kind in ("sco", "document")]
    assert {i.title for i in lessons} == {"Leçon 1", "Leçon 2"}
    assert all(i.parent_key is not None and tree[i.parent_key].title == "Module 1" for i in lessons)
    assert {d.path for d in fake.documents()} >= {"l1/index.html", "l1/img.png", "l2/index.html"}


def test_common_cartridge_and_bitrix_keep_non_ascii_titles(fake: FakePlatform, tmp_path: Path) -> None:
    """IMS CC web content and a windows-1251 Bitrix export import with their titles intact."""
    cc = build_imscc(tmp_path / "cc.imscc", identifier="CC-1", title="日本語コース", modules=[
        CcItem("W1", "第1週", children=(CcItem("P1", "ページ", kind="webcontent", href="p1.html"),)),
    ], files={"p1.html": b"<html>p</html>"})
    import_archive(fake, cc, shortname="JP1")
    assert fake.course("JP1") is not None and fake.course("JP1").fullname == "日本語コース"  # type: ignore[union-attr]
    bitrix = build_bitrix(tmp_path / "bx.tar.gz", name="Охрана труда", code="OT1", children=[
        BitrixChapter(1, "Глава 1", children=(BitrixLesson(2, "Урок 1", html="<p>Текст</p>"),)),
    ])
    results = import_archive(fake, bitrix)
    assert "error" not in by_outcome(results)
    titles = {i.title for i in fake.path_items()}
    assert {"Глава 1", "Урок 1"} <= titles


def test_an_unsafe_archive_fails_whole_before_anything_is_written(fake: FakePlatform, tmp_path: Path) -> None:
    """A zip-slip member refuses the file at check time: no course, no document."""
    path = write_zip(tmp_path / "evil.zip", {"moodle_backup.xml": b"<moodle_backup/>", "../../x": b"x"})
    with pytest.raises(ArchiveError, match=r"\.\./\.\./x"):
        import_archive(fake, path)
    assert fake.courses() == [] and fake.documents() == []


def test_something_that_is_not_a_course_archive_is_refused(fake: FakePlatform, tmp_path: Path) -> None:
    """A zip with no known manifest is refused, saying what was looked for."""
    path = write_zip(tmp_path / "photos.zip", {"a.jpg": b"\xff\xd8"})
    with pytest.raises(RejectFile, match="not a course archive"):
        import_archive(fake, path)


def test_import_on_sql_stores_blobs_in_the_files_folder(tmp_path: Path, db_engine: Engine) -> None:
    """Through the real SQL store (SQLite, PostgreSQL), documents land once per content in files/."""
    create_schema(db_engine)
    platform = SqlPlatform(db_engine, tmp_path / "files")
    shared = b"same bytes in two courses"
    path = sample_mbz(tmp_path / "chem.mbz", files={"a.txt": shared})
    results = import_archive(platform, path) + import_archive(platform, path, shortname="CHEM102")
    assert "error" not in by_outcome(results)
    digest = hashlib.sha256(shared).hexdigest()
    blob = tmp_path / "files" / digest[:2] / digest
    assert blob.read_bytes() == shared
    assert blob.stat().st_mode & 0o777 == 0o600
    with platform.transaction() as tx:
        courses = tx.courses.find(shortnames=["CHEM101", "CHEM102"])
        docs = tx.content.documents([c.id for c in courses if c.id is not None])
    assert len(courses) == 2
    assert sum(d.sha256 == digest for d in docs) == 2
    blobs = [p for p in (tmp_path / "files").rglob("*") if p.is_file()]
    assert len(blobs) == len({d.sha256 for d in docs}) < len(docs)
    assert Outcome.CREATED in {r.outcome for r in results}
