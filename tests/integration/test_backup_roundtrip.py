"""A native backup re-imports without loss (issue 6): the sample course, seeded in a store,
backed up by course_backup and imported by course_import into an EMPTY store of the same
kind, reads back the same — on the in-memory fake and on the SQL store (SQLite) with its
real file store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from syncd.platform.base import Platform
from syncd.platform.sqlstore import SqlPlatform, create_schema
from syncd.processors import course_backup, course_import
from syncd.processors.base import Row, RunContext
from syncd.sqlutil import make_engine
from tests.backup_samples import DOCUMENTS, SHORTNAME, seed_sample_course, stored_course
from tests.fakes import FakePlatform
from tests.pictures import apply_items

CTX = RunContext(timezone=UTC, now=lambda: datetime(2026, 11, 22, 10, 30, tzinfo=UTC))

NewPlatform = Callable[[str], Platform]


@pytest.fixture(params=["fake", "sqlite"])
def new_platform(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NewPlatform]:
    """Makes empty platforms of one kind, each with its own database and file store."""
    engines: list[Engine] = []

    def make(name: str) -> Platform:
        if request.param == "fake":
            return FakePlatform()
        engine = make_engine(f"sqlite:///{tmp_path / f'{name}.db'}")
        engines.append(engine)
        create_schema(engine)
        return SqlPlatform(engine, tmp_path / f"{name}-files")

    yield make
    for engine in engines:
        engine.dispose()


def write_backup(platform: Platform, cache: Path, fmt: str = "syncd") -> Path:
    """Run course_backup on the sample course; the path of the one backup it wrote."""
    processor = course_backup.build({}, RunContext(timezone=UTC, now=CTX.now, cache_dir=cache))
    with platform.transaction() as tx:
        [result] = processor.apply([Row(1, {"shortname": SHORTNAME, "format": fmt})], tx)
    assert result.outcome.value == "created", result.reason
    [path] = (cache / "backups").iterdir()
    return path


def blobs(platform: Platform, course: dict[str, Any]) -> dict[str, bytes]:
    """Document path -> its bytes, read from the platform's file store."""
    found = {}
    with platform.transaction() as tx:
        for path, sha256, *_ in course["documents"]:
            with tx.files.open(sha256) as stream:
                found[path] = stream.read()
    return found


def round_trip(new_platform: NewPlatform, tmp_path: Path) -> tuple[dict[str, Any], dict[str, Any], Platform]:
    """Seed, back up, import into an empty store: (stored before, stored after, the new store)."""
    source = new_platform("source")
    seed_sample_course(source)
    backup = write_backup(source, tmp_path / "cache")
    target = new_platform("target")
    results = apply_items(target, course_import.SPEC, backup, batch=4, ctx=CTX)
    assert {r.outcome.value for r in results} <= {"created", "unchanged"}, [r.reason for r in results]
    return stored_course(source), stored_course(target), target


def test_a_backup_imports_into_an_empty_store_as_the_same_course(
    new_platform: NewPlatform, tmp_path: Path
) -> None:
    """Course fields (groupmode and maxbytes too), category path (created on the empty store:
    a route without ``category`` uses the archive's), sections, documents (hash, size, title,
    mimetype and bytes), learning path and activities of the imported copy equal the original's."""
    before, after, target = round_trip(new_platform, tmp_path)
    for name in ("course", "category", "sections", "documents", "path", "activities"):
        assert after[name] == before[name], name
    assert blobs(target, after) == {path: data for path, (data, _) in DOCUMENTS.items()}


def test_a_backup_imported_over_its_own_course_changes_nothing(
    new_platform: NewPlatform, tmp_path: Path
) -> None:
    """Dropping a course's backup on the store it came from is all 'unchanged': nothing is
    lost or rewritten, and a later backup reads the same."""
    source = new_platform("source")
    seed_sample_course(source)
    before = stored_course(source)
    backup = write_backup(source, tmp_path / "cache")
    results = apply_items(source, course_import.SPEC, backup, batch=4, ctx=CTX)
    assert {r.outcome.value for r in results} == {"unchanged"}, [r.reason for r in results]
    assert stored_course(source) == before


def test_a_backup_imported_under_another_shortname_is_a_copy(
    new_platform: NewPlatform, tmp_path: Path
) -> None:
    """With the route option ``shortname``, the backup makes a second course with the same
    content (idnumber left to the original, which it belongs to); the original is untouched."""
    source = new_platform("source")
    seed_sample_course(source)
    before = stored_course(source)
    backup = write_backup(source, tmp_path / "cache")
    results = apply_items(source, course_import.SPEC, backup, batch=4, ctx=CTX, shortname="CHIM-COPIE")
    assert results[0].reason == ("course 'CHIM-COPIE' (syncd); idnumber 'C-42' belongs to another course, "
                                 "not set")
    copy = stored_course(source, "CHIM-COPIE")
    assert stored_course(source) == before
    for name in ("sections", "documents", "path", "activities"):
        assert copy[name] == before[name], name
    assert (copy["course"]["fullname"], copy["course"]["idnumber"]) == (before["course"]["fullname"], None)
