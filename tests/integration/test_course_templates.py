"""A courses row's ``template``: another course's whole content, or a course archive in store/.

Runs the courses processor on the fake platform with a real store folder and real
archives (tests/archive_builders), so the archive path goes through the safe reader.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from syncd.domain import Outcome, RowResult
from syncd.processors.base import Row, RunContext
from syncd.processors.courses import build
from tests.archive_builders import MbzActivity, build_mbz, write_zip
from tests.fakes import FakePlatform
from tests.integration.test_course_import import import_archive


def run(platform: FakePlatform, store: Path, rows: Sequence[Row], **options: Any) -> list[RowResult]:
    ctx = RunContext(timezone=UTC, now=lambda: datetime(2026, 11, 22, tzinfo=UTC), store_dir=store)
    processor = build(options, ctx)
    with platform.transaction() as tx:
        return processor.apply(rows, tx)


def row(shortname: str, template: str, line: int = 2) -> Row:
    return Row(line, {"shortname": shortname, "fullname": f"{shortname} course", "template": template})


@pytest.fixture
def store(tmp_path: Path) -> Path:
    folder = tmp_path / "store"
    (folder / "templates").mkdir(parents=True)
    return folder


def template_mbz(path: Path) -> Path:
    return build_mbz(
        path, fullname="Modèle", shortname="TPL",
        sections=[(0, "", ""), (1, "Semaine 1", "<p>Début</p>"), (2, "Semaine 2", "")],
        activities=[MbzActivity("resource", 3, 1, "Guide", files={"guide.pdf": b"%PDF guide"}),
                    MbzActivity("quiz", 4, 2, "Test")],
    )


def test_a_template_archive_in_the_store_gives_its_content_to_a_new_course(
    store: Path, tmp_path: Path
) -> None:
    """The row's names and the archive's sections, documents, activities and path make the course."""
    platform = FakePlatform()
    template_mbz(store / "templates" / "base.mbz")
    (result,) = run(platform, store, [row("BIO-2027", "templates/base.mbz")])
    assert result.outcome is Outcome.CREATED, result.reason
    assert "from template archive 'templates/base.mbz' (mbz" in result.reason
    course = platform.course("BIO-2027")
    assert course is not None and course.fullname == "BIO-2027 course"
    names = {s.number: s.name for s in platform.sections("BIO-2027")}
    assert names == {0: "", 1: "Semaine 1", 2: "Semaine 2"}
    docs = [d for d in platform.documents() if d.course_id == course.id]
    assert any(d.path.endswith("guide.pdf") for d in docs)
    assert {a.kind for a in platform.activities() if a.course_id == course.id} == {"resource"}
    assert platform.course("TPL") is None, "the template's own shortname is not created"


def test_a_template_course_passes_on_documents_path_and_activities(store: Path, tmp_path: Path) -> None:
    """template = <shortname> copies every content record (the same blobs) into the new course."""
    platform = FakePlatform()
    import_archive(platform, template_mbz(tmp_path / "tpl.mbz"))
    source = platform.course("TPL")
    assert source is not None
    (result,) = run(platform, store, [row("C2", "TPL")])
    assert result.outcome is Outcome.CREATED and "from template 'TPL'" in result.reason
    target = platform.course("C2")
    assert target is not None

    def content(course_id: int | None) -> tuple[list[tuple[str, str]], list[str], list[str]]:
        docs = sorted((d.path, d.sha256) for d in platform.documents() if d.course_id == course_id)
        path = sorted(i.key for i in platform.path_items() if i.course_id == course_id)
        acts = sorted(a.key for a in platform.activities() if a.course_id == course_id)
        return docs, path, acts
    assert content(target.id) == content(source.id)
    assert content(target.id)[0], "the template had documents to copy"


@pytest.mark.parametrize(("template", "reason"), [
    ("../outside.mbz", "a course archive path inside store/"),
    ("templates/missing.mbz", "no course archive at store/templates/missing.mbz"),
    ("templates/evil.zip", "member '../x'"),
])
def test_a_bad_template_archive_fails_the_row_and_creates_nothing(
    store: Path, template: str, reason: str
) -> None:
    """Escaping paths, missing files and unsafe archives are row errors; no course is created."""
    write_zip(store / "templates" / "evil.zip", {"moodle_backup.xml": b"<moodle_backup/>", "../x": b"x"})
    platform = FakePlatform()
    (result,) = run(platform, store, [row("C3", template)])
    assert result.outcome is Outcome.ERROR and reason in result.reason, result.reason
    assert platform.courses() == []
