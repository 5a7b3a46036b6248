"""Job actions on a real store and ledger: preselected files queued once, cleanup boundaries."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from syncd.domain import FileState
from syncd.intake.ledger import Ledger
from syncd.intake.store import FileStore
from syncd.jobs import Cleanup, PreselectedFile
from syncd.processors.registry import REGISTRY
from syncd.schedule import Job, parse_cron
from syncd.sqlutil import make_engine

NOW = datetime(2026, 11, 22, 3, 17, tzinfo=UTC)


class Rig:
    def __init__(self, tmp_path: Path) -> None:
        self.store = FileStore(tmp_path / "data")
        self.store.ensure_layout()
        self.ledger = Ledger(make_engine(f"sqlite:///{tmp_path / 'l.db'}"), lambda: NOW)
        self.ledger.create_schema()
        self.wakes = 0
        self.action = PreselectedFile(store=self.store, ledger=self.ledger, spec=REGISTRY["users"],
                                      file="preselected/users.csv", options={"mode": "update_only"},
                                      wake=self.wake)
        self.job = Job("nightly", "30 2 * * *", parse_cron("30 2 * * *", ZoneInfo("UTC"), "x"), self.action)

    def wake(self) -> None:
        self.wakes += 1

    def run(self) -> str:
        return self.action(self.job, NOW)


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(tmp_path)


def test_absent_file_is_nothing_to_do(rig: Rig) -> None:
    """At a tick with no preselected file the job reports 'nothing to do', not an error."""
    assert rig.run() == "nothing to do: file absent"
    assert rig.ledger.recent() == [] and rig.wakes == 0


def test_present_file_is_queued_once(rig: Rig) -> None:
    """A present file is queued for the worker with the job's processor and options; not twice."""
    path = rig.store.store_dir / "preselected" / "users.csv"
    path.parent.mkdir()
    path.write_bytes(b"username,firstname,lastname\n")
    assert rig.run().startswith("queued file")
    (entry,) = rig.ledger.recent()
    assert entry.state is FileState.RECEIVED and entry.processor == "users"
    assert entry.options == {"mode": "update_only"} and entry.routed_by == "job"
    assert rig.wakes == 1
    assert rig.run() == "skipped: previous run still in progress"
    assert len(rig.ledger.recent()) == 1


def test_stored_arrival_is_taken_over(rig: Rig) -> None:
    """A file that arrived with no route (state stored) is queued through its own ledger entry."""
    path = rig.store.store_dir / "preselected" / "users.csv"
    path.parent.mkdir()
    path.write_bytes(b"username,firstname,lastname\n")
    file_id = rig.ledger.record_pending("preselected/users.csv", str(path), 1, 1.0)
    rig.ledger.transition(file_id, FileState.PENDING, FileState.STORED, sha256="0" * 64)
    rig.run()
    assert [(e.id, e.state) for e in rig.ledger.recent()] == [(file_id, FileState.RECEIVED)]


def test_symlink_is_refused(rig: Rig, tmp_path: Path) -> None:
    """A preselected path that is a symlink is never followed."""
    (rig.store.store_dir / "preselected").mkdir()
    target = tmp_path / "outside.csv"
    target.write_text("x")
    (rig.store.store_dir / "preselected" / "users.csv").symlink_to(target)
    assert rig.run() == "refused: not a regular file"


def aged(path: Path, days: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text("x")
    when = (NOW - timedelta(days=days)).timestamp()
    os.utime(path, (when, when), follow_symlinks=False)
    return path


def test_cleanup_boundaries_and_scope(rig: Rig, tmp_path: Path) -> None:
    """Cache older than 7 days and results older than 90 go; newer, exact-boundary and pending files stay."""
    s = rig.store
    old_cache = aged(s.cache_dir / "backups" / "old.mbz", 7.01)
    at_boundary = aged(s.cache_dir / "edge.mbz", 7)
    new_cache = aged(s.cache_dir / "new.mbz", 6.9)
    old_archive = aged(s.archives_dir / "20260801-000000_users.csv", 91)
    old_report = aged(s.reports_dir / "20260801-000000_users.csv.report.txt", 91)
    old_tryback = aged(s.tryback_dir / "users_tryback_20260801-000000.csv", 91)
    old_failed = aged(s.failed_dir / "20260801-000000_bad.csv", 91)
    young_report = aged(s.reports_dir / "20261101-000000_users.csv.report.txt", 21)
    pending = aged(s.store_dir / "preselected" / "users.csv", 400)
    outside = aged(tmp_path / "keep.txt", 400)
    link = s.cache_dir / "link"
    link.symlink_to(outside)
    aged(link, 30)
    cleanup = Cleanup(s, lambda: NOW, cache_days=7, retention_days=90)
    outcome = cleanup(Job("cleanup", "", parse_cron("17 3 * * *", ZoneInfo("UTC"), "x"), cleanup), NOW)
    assert outcome == "removed 2 cache file(s) and 4 archived/report/tryback/failed file(s)"
    for gone in (old_cache, old_archive, old_report, old_tryback, old_failed, link):
        assert not os.path.lexists(gone), gone
    for kept in (at_boundary, new_cache, young_report, pending, outside):
        assert kept.exists(), kept
    assert not (s.cache_dir / "backups").exists()  # emptied folder removed
    assert s.cache_dir.is_dir() and s.archives_dir.is_dir()  # roots kept
