"""MoodlePictures and MoodleContent through MoodlePlatform over HTTP to the fake Moodle: the
user_pictures processor (upload + core_user_update_picture, pictures syncd sent found unchanged,
a picture set in Moodle treated as unknown) and course_import, whose content items end as
'not supported on moodle' lines while the course itself is created."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from syncd.domain import RowResult
from syncd.pipeline.apply import BatchApplier, Job
from syncd.platform.base import Platform
from syncd.processors.registry import REGISTRY
from tests.archive_builders import build_mbz, write_zip
from tests.moodle_support import moodle_platform
from tests.pictures import CTX, png
from tests.unit.moodle_miniplatform import outcomes

UPDATE_PICTURE = "core_user_update_picture"
_FILE_IDS = itertools.count(1000)


def run_items(platform: Platform, processor: str, path: Path, **options: Any) -> list[RowResult]:
    """Apply an item file (zip, archive) with the registry's processor as the runner does."""
    spec = REGISTRY[processor]
    built = spec.factory(options, CTX)
    assert spec.source is not None
    source = spec.source(path, built)
    source.check()
    header = source.resolve_header(built.schema)
    file_id = next(_FILE_IDS)
    BatchApplier(platform).apply_all(Job(file_id, source, header, built, 100))
    with platform.transaction() as tx:
        return [saved.result for saved in tx.saved_results(file_id)]


def test_user_pictures_are_uploaded_and_then_unchanged(tmp_path: Path) -> None:
    """Two pictures are uploaded and set (two calls each); the same zip again is unchanged (the
    revision Moodle gave is the one syncd remembers); an unknown user is the processor's error."""
    with moodle_platform(tmp_path) as (platform, fake):
        fake.site.add_user("alice", email="alice@univ.fr")
        fake.site.add_user("bob", email="bob@univ.fr")
        path = write_zip(tmp_path / "pictures.zip", {"alice.png": png(20, 20), "bob.png": png(30, 10, b"b"),
                                                    "nobody.png": png(5, 5)})
        first = [r.outcome.value for r in run_items(platform, "user_pictures", path)]
        assert first == ["created", "created", "error"]
        alice = fake.site.user_by_username("alice")
        assert alice is not None and alice.picture != 0
        assert fake.count(UPDATE_PICTURE) == 2
        again = [r.outcome.value for r in run_items(platform, "user_pictures", path)]
        assert again == ["unchanged", "unchanged", "error"]
        assert fake.count(UPDATE_PICTURE) == 2


def test_a_picture_set_in_moodle_is_not_known(tmp_path: Path) -> None:
    """A user who has a picture syncd did not send: with overwrite off it is kept (skipped), with
    overwrite on syncd's picture replaces it."""
    with moodle_platform(tmp_path) as (platform, fake):
        fake.site.add_user("carol", email="carol@univ.fr", picture=42)
        path = write_zip(tmp_path / "pictures.zip", {"carol.png": png(8, 8)})
        kept = run_items(platform, "user_pictures", path, overwrite=False)
        assert [r.outcome.value for r in kept] == ["skipped"]
        assert fake.count(UPDATE_PICTURE) == 0
        replaced = run_items(platform, "user_pictures", path)
        assert [r.outcome.value for r in replaced] == ["updated"]
        assert fake.count(UPDATE_PICTURE) == 1


def test_course_import_content_is_not_supported(tmp_path: Path) -> None:
    """course_import on Moodle: the course is created, each section with a name and each document is
    a 'not supported on moodle' line."""
    with moodle_platform(tmp_path) as (platform, fake):
        path = build_mbz(tmp_path / "backup.mbz", shortname="IMP1", fullname="Imported",
                         sections=[(0, "", ""), (1, "Unit 1", "Basics")], files={"notes.txt": b"hello"})
        lines = outcomes(run_items(platform, "course_import", path))
        assert lines[0].startswith("created: course 'IMP1'")
        assert fake.site.course_by_shortname("IMP1") is not None
        refused = [line for line in lines if "not supported on moodle" in line]
        assert refused and all(line.startswith("error: not supported on moodle") for line in refused)
