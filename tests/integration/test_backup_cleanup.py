"""Course backups in <cache>/backups are removed by the cache cleanup job (syncd/jobs.py)
once older than ``cache_days``, newer ones stay, and course_backup still writes after
the job has removed the emptied backups folder."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from syncd.domain import RowResult
from syncd.intake.store import FileStore
from syncd.jobs import Cleanup
from syncd.processors import course_backup
from syncd.processors.base import Row, RunContext
from syncd.schedule import Job, parse_cron
from tests.backup_samples import SHORTNAME, seed_sample_course
from tests.fakes import FakePlatform

NOW = datetime(2026, 11, 22, 3, 17, tzinfo=UTC)


def backup(platform: FakePlatform, store: FileStore, days_ago: float, fmt: str = "syncd") -> Path:
    """A backup written by course_backup ``days_ago`` days before NOW (name and mtime)."""
    when = NOW - timedelta(days=days_ago)
    processor = course_backup.build({}, RunContext(timezone=UTC, now=lambda: when, cache_dir=store.cache_dir))
    with platform.transaction() as tx:
        [result] = processor.apply([Row(1, {"shortname": SHORTNAME, "format": fmt})], tx)
    path = store.cache_dir / "backups" / backup_name(result)
    os.utime(path, (when.timestamp(), when.timestamp()))
    return path


def backup_name(result: RowResult) -> str:
    assert result.outcome.value == "created", result.reason
    return result.reason.removeprefix("backup ").split(" (")[0]


def clean(store: FileStore, cache_days: float = 7) -> str:
    """Run the cleanup job once at NOW."""
    cleanup = Cleanup(store, lambda: NOW, cache_days=cache_days, retention_days=90)
    return cleanup(Job("cleanup", "17 3 * * *", parse_cron("17 3 * * *", ZoneInfo("UTC"), "x"), cleanup), NOW)


def test_old_backups_go_and_recent_ones_stay(tmp_path: Path) -> None:
    """Backups (native and SCORM) older than cache_days are removed; younger ones are kept."""
    store = FileStore(tmp_path / "data")
    store.ensure_layout()
    platform = FakePlatform()
    seed_sample_course(platform)
    old = [backup(platform, store, 30), backup(platform, store, 7.5, "scorm12")]
    recent = [backup(platform, store, 6.5), backup(platform, store, 0.1, "scorm12")]
    two = "removed 2 cache file(s) and 0 archived/report/tryback/failed file(s)"
    assert clean(store) == two
    assert [p.exists() for p in old + recent] == [False, False, True, True]
    assert clean(store, cache_days=0.05) == two
    assert not (store.cache_dir / "backups").exists()  # the emptied folder goes too


def test_a_backup_after_the_folder_was_purged_recreates_it(tmp_path: Path) -> None:
    """Once the job has removed the emptied backups folder, the next backup recreates it (0700)."""
    store = FileStore(tmp_path / "data")
    store.ensure_layout()
    platform = FakePlatform()
    seed_sample_course(platform)
    backup(platform, store, 10)
    clean(store)
    assert not (store.cache_dir / "backups").exists()
    path = backup(platform, store, 0)
    assert path.is_file() and (path.parent.stat().st_mode & 0o777) == 0o700
