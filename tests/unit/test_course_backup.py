"""course_backup on the in-memory platform: one backup file per line in <cache>/backups."""

from __future__ import annotations

import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from syncd.archives.detect import detect
from syncd.archives.safe import Limits, open_archive
from syncd.csvfile import CsvFile, CsvOptions, row_values
from syncd.domain import RejectFile, RowResult
from syncd.platform.model import DocumentRecord
from syncd.processors.base import Row, RunContext
from syncd.processors.course_backup import build, safe_name
from tests.backup_samples import SHORTNAME, seed_sample_course
from tests.fakes import FakePlatform

NOW = datetime(2026, 11, 22, 10, 30, 5, tzinfo=UTC)
STEM = "CHIM-ORG_1_été_20261122-103005"


def ctx(cache: Path | None, dry_run: bool = False) -> RunContext:
    return RunContext(timezone=UTC, now=lambda: NOW, cache_dir=cache, dry_run=dry_run)


def backup(platform: FakePlatform, cache: Path | None, *rows: dict[str, str],
           dry_run: bool = False) -> list[RowResult]:
    """Apply the rows in one batch."""
    processor = build({}, ctx(cache, dry_run))
    with platform.transaction() as tx:
        return processor.apply([Row(n, values) for n, values in enumerate(rows, 1)], tx)


def files(cache: Path) -> list[str]:
    """Every file name under <cache>/backups (hidden ones too)."""
    folder = cache / "backups"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


@pytest.fixture
def fake() -> FakePlatform:
    platform = FakePlatform()
    seed_sample_course(platform)
    return platform


def test_a_native_backup_is_written_with_its_counts(fake: FakePlatform, tmp_path: Path) -> None:
    """Default format: <shortname>_<time>.zip (0600) with the manifest; the line gives counts and size."""
    [result] = backup(fake, tmp_path, {"shortname": SHORTNAME})
    dest = tmp_path / "backups" / f"{STEM}.zip"
    assert (result.outcome.value, result.reason) == (
        "created", f"backup {dest.name} (5 documents, {dest.stat().st_size} bytes)")
    assert dest.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "backups").stat().st_mode & 0o777 == 0o700
    assert files(tmp_path) == [dest.name]  # no temp file left
    with open_archive(dest, Limits()) as archive:
        assert detect(archive) == "syncd"
        assert len([n for n in archive.names() if n.startswith("files/")]) == 4  # one shared content


def test_the_scorm12_format_writes_a_scorm_package(fake: FakePlatform, tmp_path: Path) -> None:
    """format=scorm12 writes <shortname>_<time>_scorm12.zip, detected as SCORM 1.2."""
    [result] = backup(fake, tmp_path, {"shortname": SHORTNAME, "format": " SCORM12 "})
    assert result.outcome.value == "created"
    dest = tmp_path / "backups" / f"{STEM}_scorm12.zip"
    with open_archive(dest, Limits()) as archive:
        assert detect(archive) == "scorm12"


def test_a_taken_name_gets_the_next_free_one(fake: FakePlatform, tmp_path: Path) -> None:
    """Two backups in the same second, and a file already there: -2, -3; nothing is replaced."""
    (tmp_path / "backups").mkdir()
    (tmp_path / "backups" / f"{STEM}.zip").write_bytes(b"an older file")
    results = backup(fake, tmp_path, {"shortname": SHORTNAME}, {"shortname": SHORTNAME, "format": "syncd"})
    assert [r.reason.split(" (")[0] for r in results] == [f"backup {STEM}-2.zip", f"backup {STEM}-3.zip"]
    assert (tmp_path / "backups" / f"{STEM}.zip").read_bytes() == b"an older file"


def test_unknown_courses_and_formats_are_row_errors(fake: FakePlatform, tmp_path: Path) -> None:
    """An unknown course, an unknown format or an empty shortname is an error; nothing is written."""
    results = backup(fake, tmp_path, {"shortname": "NOPE"}, {"shortname": SHORTNAME, "format": "mbz"},
                     {"shortname": "  "})
    assert [(r.outcome.value, r.reason) for r in results] == [
        ("error", "unknown course 'NOPE' (shortname)"),
        ("error", "unknown format 'mbz' (format: syncd | scorm12)"),
        ("error", "empty shortname (shortname)"),
    ]
    assert files(tmp_path) == []


def test_a_missing_blob_is_an_error_and_leaves_no_file(fake: FakePlatform, tmp_path: Path) -> None:
    """A document whose content is not in the file store fails its line, naming it; no file, no temp."""
    course = fake.course(SHORTNAME)
    assert course is not None and course.id is not None
    fake.direct.content.put_documents([DocumentRecord(course.id, "perdu.pdf", "ab" * 32, 10)])
    for fmt in ("syncd", "scorm12"):
        [result] = backup(fake, tmp_path, {"shortname": SHORTNAME, "format": fmt})
        assert (result.outcome.value, result.reason) == (
            "error", f"document 'perdu.pdf': its content {'ab' * 32} is missing from the file store")
    assert files(tmp_path) == []


def test_a_dry_run_writes_nothing(fake: FakePlatform, tmp_path: Path) -> None:
    """In a dry run the line says what would be written, and nothing is."""
    [result] = backup(fake, tmp_path, {"shortname": SHORTNAME}, dry_run=True)
    assert result.outcome.value == "created" and "would be written" in result.reason
    assert files(tmp_path) == []


def test_without_a_cache_folder_the_file_is_refused(fake: FakePlatform) -> None:
    """A run context without cache_dir refuses the file rather than writing somewhere else."""
    with pytest.raises(RejectFile, match="no cache folder"):
        backup(fake, None, {"shortname": SHORTNAME})


def test_a_header_less_file_is_read_as_shortname_format(fake: FakePlatform, tmp_path: Path) -> None:
    """``shortname[,format]`` lines without a header are data."""
    path = tmp_path / "coursebackup.csv"
    path.write_text(f"{SHORTNAME},scorm12\n{SHORTNAME}\n", encoding="utf-8")
    processor = build({}, ctx(tmp_path / "cache"))
    csv = CsvFile(path, CsvOptions())
    header = csv.resolve_header(processor.schema)
    rows = [Row(r.line, row_values(header, r)) for r in csv.records()]
    with fake.transaction() as tx:
        results = processor.apply(rows, tx)
    assert [r.outcome.value for r in results] == ["created", "created"]
    assert files(tmp_path / "cache") == [f"{STEM}.zip", f"{STEM}_scorm12.zip"]


def test_an_empty_course_backs_up(tmp_path: Path) -> None:
    """A course with no content gives a backup with the manifest alone."""
    platform = FakePlatform()
    platform.seed_course("EMPTY")
    [result] = backup(platform, tmp_path, {"shortname": "EMPTY"})
    assert result.reason.startswith("backup EMPTY_20261122-103005.zip (0 documents,")
    with zipfile.ZipFile(tmp_path / "backups" / "EMPTY_20261122-103005.zip") as archive:
        assert archive.namelist() == ["syncd-course.json"]


@pytest.mark.parametrize(("shortname", "name"), [
    ("MATH 101/A", "MATH_101_A"), (".hidden", "_hidden"), ("Физика-1", "Физика-1"), ("", "course"),
    ("../../etc", "_._.._etc"),
])
def test_shortnames_become_safe_file_names(shortname: str, name: str) -> None:
    """Separators, spaces and leading dots never reach the file name; letters of any script do."""
    assert safe_name(shortname) == name
