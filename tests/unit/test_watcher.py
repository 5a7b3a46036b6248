"""Unit tests of the intake watcher: no threads, fake clocks, real files in tmp_path."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from structlog.testing import capture_logs
from watchdog.events import (
    DirCreatedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)

from syncd.domain import ConfigError
from syncd.intake.store import RESERVED
from syncd.intake.watcher import IntakeOptions, Watcher, ignore_reason

MTIME = 1_700_000_000.0  # the wall time the test files are written at
T0 = 100.0  # the monotonic clock at the first tick


class Clock:
    """A settable clock."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Rig:
    """A watcher on tmp_path/sync, driven by hand."""

    def __init__(
        self, tmp_path: Path, on_complete: Callable[[Path], None] | None = None, **options: Any
    ) -> None:
        self.sync = tmp_path / "sync"
        self.sync.mkdir()
        self.taken: list[Path] = []
        self.clock = Clock(T0)
        self.wall = Clock(MTIME + 0.5)  # files look freshly written
        options.setdefault("reserved", RESERVED)
        self.watcher = Watcher(
            self.sync, IntakeOptions(**options), on_complete or self.taken.append,
            clock=self.clock, wall=self.wall,
        )

    def write(self, rel: str, data: bytes = b"id;name\n1;a\n", mtime: float = MTIME) -> Path:
        path = self.sync / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (mtime, mtime))
        return path

    def event(self, event: FileSystemEvent) -> None:
        self.watcher._handler.dispatch(event)

    def uploaded(self, path: Path) -> None:
        """The events of a write that ends with a close."""
        for cls in (FileCreatedEvent, FileModifiedEvent, FileClosedEvent):
            self.event(cls(str(path)))

    def tick(self, at: float) -> list[Path]:
        self.clock.now = at
        self.watcher.tick()
        return self.taken


def test_closed_file_taken_after_settle(tmp_path: Path) -> None:
    """A file closed after writing is handed over once it stayed unchanged for `settle`."""
    rig = Rig(tmp_path)
    path = rig.write("users.csv")
    rig.uploaded(path)
    assert rig.tick(T0) == []
    assert rig.tick(T0 + 0.5) == []
    assert rig.watcher.pending() == 1
    assert rig.tick(T0 + 1.0) == [path]
    assert rig.watcher.pending() == 0
    assert rig.tick(T0 + 5.0) == [path]  # handed over once


def test_change_during_settle_restarts_timer(tmp_path: Path) -> None:
    """A size/mtime change while settling restarts the settle timer."""
    rig = Rig(tmp_path)
    path = rig.write("users.csv")
    rig.uploaded(path)
    rig.tick(T0)
    rig.write("users.csv", b"id;name\n1;a\n2;b\n", mtime=MTIME + 0.6)
    assert rig.tick(T0 + 0.6) == []
    assert rig.tick(T0 + 1.2) == []
    assert rig.tick(T0 + 1.6) == [path]


def test_paused_open_upload_not_taken_until_scan_settle(tmp_path: Path) -> None:
    """A file with no close event (writer pausing) waits until its mtime is scan_settle old."""
    rig = Rig(tmp_path, settle=1.0, scan_settle=10.0)
    path = rig.write("users.csv")
    rig.event(FileCreatedEvent(str(path)))
    rig.event(FileModifiedEvent(str(path)))
    for at in (T0, T0 + 2, T0 + 5):  # far past settle, but the writer may come back
        assert rig.tick(at) == []
    rig.wall.now = MTIME + 9.9
    assert rig.tick(T0 + 5.5) == []
    rig.wall.now = MTIME + 10.0
    assert rig.tick(T0 + 6) == [path]


def test_unchanged_for_scan_settle_taken_despite_future_mtime(tmp_path: Path) -> None:
    """A file whose mtime is ahead of our clock is taken once seen unchanged for scan_settle."""
    rig = Rig(tmp_path, scan_settle=10.0)
    path = rig.write("users.csv", mtime=MTIME + 3600)
    rig.watcher.rescan()
    assert rig.tick(T0) == []
    assert rig.tick(T0 + 9) == []
    assert rig.tick(T0 + 10) == [path]


def test_modified_after_close_needs_scan_settle_again(tmp_path: Path) -> None:
    """A modified event after the close (writer reopened) makes the file dirty again."""
    rig = Rig(tmp_path)
    path = rig.write("users.csv")
    rig.uploaded(path)
    rig.tick(T0)
    rig.event(FileModifiedEvent(str(path)))
    assert rig.tick(T0 + 1) == []
    assert rig.tick(T0 + 3) == []
    rig.wall.now = MTIME + 60
    assert rig.tick(T0 + 4) == [path]


def test_rename_into_place_taken_with_final_name(tmp_path: Path) -> None:
    """A hidden upload renamed into place is taken once, under its final name."""
    rig = Rig(tmp_path)
    hidden = rig.write("_users.csv")
    rig.uploaded(hidden)
    final = rig.sync / "users.csv"
    hidden.rename(final)
    rig.event(FileMovedEvent(str(hidden), str(final)))
    rig.tick(T0)
    assert rig.tick(T0 + 1) == [final]
    assert rig.tick(T0 + 10) == [final]


def test_move_from_outside_counts_as_arrival(tmp_path: Path) -> None:
    """A file renamed in from outside sync/ (empty move source) needs only `settle`."""
    rig = Rig(tmp_path)
    path = rig.write("courses.csv")
    rig.event(FileMovedEvent("", str(path)))
    rig.tick(T0)
    assert rig.tick(T0 + 1) == [path]


def test_moved_away_candidate_dropped(tmp_path: Path) -> None:
    """A file renamed away to an ignored name is no longer a candidate."""
    rig = Rig(tmp_path)
    path = rig.write("users.csv")
    rig.uploaded(path)
    rig.event(FileMovedEvent(str(path), str(rig.sync / ".users.csv")))
    assert rig.watcher.pending() == 0


@pytest.mark.parametrize(
    "rel",
    [".x.csv", "_x.csv", "sub/_tmp/x.csv", "sub/.git/x.csv", "x.filepart", "X.PART",
     "a/b.partial", "y.crdownload", "z.csv.tmp", "archives/x.csv", "failed/sub/x.csv"],
)
def test_ignored_names_never_taken(tmp_path: Path, rel: str) -> None:
    """Hidden, partial-upload and reserved-folder names are ignored at any depth."""
    rig = Rig(tmp_path)
    path = rig.write(rel, mtime=MTIME - 3600)
    rig.uploaded(path)
    rig.watcher.rescan()
    rig.tick(T0)
    assert rig.tick(T0 + 100) == []
    assert rig.watcher.pending() == 0


def test_reserved_name_below_top_level_is_taken(tmp_path: Path) -> None:
    """Only top-level sub-folders of sync/ are reserved; sub/archives/ is an ordinary folder."""
    rig = Rig(tmp_path)
    path = rig.write("sub/archives/x.csv")
    rig.uploaded(path)
    rig.tick(T0)
    assert rig.tick(T0 + 1) == [path]


def test_ignore_reason_names_why() -> None:
    """ignore_reason says why a path is ignored, and None for an ordinary command file."""
    opts = IntakeOptions(reserved=RESERVED, done_marker=True)
    assert ignore_reason(PurePosixPath("a/.b/c.csv"), opts) == "hidden"
    assert ignore_reason(PurePosixPath("a/_c.csv"), opts) == "hidden"
    assert ignore_reason(PurePosixPath("c.CrDownload"), opts) == "partial upload"
    assert ignore_reason(PurePosixPath("reports/c.csv"), opts) == "reserved folder"
    assert ignore_reason(PurePosixPath("c.csv.done"), opts) == "done marker"
    assert ignore_reason(PurePosixPath("sub/users.csv"), opts) is None
    assert ignore_reason(PurePosixPath("c.csv.done"), IntakeOptions()) is None


def test_symlink_and_fifo_logged_once_never_taken(tmp_path: Path) -> None:
    """Symlinks and FIFOs are logged once each as file_ignored and never handed over."""
    rig = Rig(tmp_path)
    secret = tmp_path / "secret.csv"
    secret.write_bytes(b"top secret")
    link, fifo = rig.sync / "link.csv", rig.sync / "pipe.csv"
    link.symlink_to(secret)
    os.mkfifo(fifo)
    with capture_logs() as logs:
        rig.watcher.rescan()
        rig.watcher.rescan()
        rig.event(FileCreatedEvent(str(link)))
        rig.event(FileClosedEvent(str(fifo)))
        rig.tick(T0)
        rig.tick(T0 + 100)
    ignored = {(e["path"], e["reason"]) for e in logs if e["event"] == "file_ignored"}
    assert ignored == {(str(link), "symlink"), (str(fifo), "fifo")}
    assert len([e for e in logs if e["event"] == "file_ignored"]) == 2
    assert rig.taken == []
    assert secret.read_bytes() == b"top secret"


def test_done_marker_mode_waits_for_marker_then_removes_it(tmp_path: Path) -> None:
    """In done-marker mode x.csv is taken only once x.csv.done exists; the marker is removed."""
    rig = Rig(tmp_path, done_marker=True)
    path = rig.write("users.csv")
    rig.uploaded(path)
    rig.tick(T0)
    assert rig.tick(T0 + 5) == []
    marker = rig.write("users.csv.done", b"")
    rig.event(FileCreatedEvent(str(marker)))
    assert rig.tick(T0 + 5.2) == [path]
    assert not marker.exists()


def test_done_marker_without_data_logged_once(tmp_path: Path) -> None:
    """A done marker whose data file is missing is ignored and logged once."""
    rig = Rig(tmp_path, done_marker=True, done_suffix=".ok")
    marker = rig.write("users.csv.ok", b"")
    with capture_logs() as logs:
        rig.watcher.rescan()
        rig.event(FileClosedEvent(str(marker)))
        rig.watcher.rescan()
        rig.tick(T0)
        rig.tick(T0 + 100)
    assert [e["path"] for e in logs if e["event"] == "marker_ignored"] == [str(marker)]
    assert rig.taken == []
    assert rig.watcher.pending() == 0
    assert marker.exists()


def test_failed_hand_over_retried_with_backoff(tmp_path: Path) -> None:
    """A raising on_complete is logged and retried after 1 s, then 2 s; the file is not lost."""
    calls: list[Path] = []

    def flaky(path: Path) -> None:
        calls.append(path)
        if len(calls) < 3:
            raise RuntimeError("database is locked")

    rig = Rig(tmp_path, on_complete=flaky)
    path = rig.write("users.csv")
    rig.uploaded(path)
    rig.tick(T0)
    with capture_logs() as logs:
        rig.tick(T0 + 1)
    assert [(e["event"], e["error"], e["retry_in"]) for e in logs] == [
        ("intake_failed", "database is locked", 1.0)
    ]
    rig.tick(T0 + 1.9)
    assert len(calls) == 1
    rig.tick(T0 + 2)
    assert len(calls) == 2
    rig.tick(T0 + 3.9)
    assert len(calls) == 2
    rig.tick(T0 + 4)
    assert calls == [path, path, path]
    assert rig.watcher.pending() == 0


def test_event_during_hand_over_keeps_candidate(tmp_path: Path) -> None:
    """An event for the same path during on_complete (a new upload) keeps it a candidate."""
    rig = Rig(tmp_path)
    path = rig.write("users.csv")

    def take(p: Path) -> None:
        rig.taken.append(p)
        rig.event(FileModifiedEvent(str(p)))

    rig.watcher._on_complete = take
    rig.uploaded(path)
    rig.tick(T0)
    rig.tick(T0 + 1)
    assert rig.taken == [path]
    assert rig.watcher.pending() == 1


def test_vanished_candidate_dropped_silently(tmp_path: Path) -> None:
    """A candidate deleted before it settled is dropped without a warning."""
    rig = Rig(tmp_path)
    path = rig.write("users.csv")
    rig.uploaded(path)
    rig.tick(T0)
    path.unlink()
    with capture_logs() as logs:
        rig.tick(T0 + 1)
    assert rig.watcher.pending() == 0
    assert [e["event"] for e in logs if e["log_level"] != "debug"] == []
    assert rig.taken == []


def test_deleted_event_drops_candidate(tmp_path: Path) -> None:
    """A deleted event removes the candidate at once."""
    rig = Rig(tmp_path)
    path = rig.write("users.csv")
    rig.uploaded(path)
    rig.event(FileDeletedEvent(str(path)))
    assert rig.watcher.pending() == 0


def test_rescan_finds_subfolder_files_oldest_first(tmp_path: Path) -> None:
    """A rescan nominates files at any depth and they are handed over oldest first."""
    rig = Rig(tmp_path)
    rig.wall.now = MTIME
    newest = rig.write("top.csv", mtime=MTIME - 50)
    middle = rig.write("a/b/c.csv", mtime=MTIME - 100)
    oldest = rig.write("a/z.csv", mtime=MTIME - 200)
    rig.watcher.rescan()
    assert rig.watcher.pending() == 3
    rig.tick(T0)
    assert rig.tick(T0 + 1) == [oldest, middle, newest]


def test_directory_created_or_moved_in_is_scanned(tmp_path: Path) -> None:
    """Files brought in with a directory (no per-file events) are found by scanning it."""
    rig = Rig(tmp_path)
    moved = rig.write("batch/users.csv", mtime=MTIME - 60)
    made = rig.write("new/courses.csv", mtime=MTIME - 60)
    rig.event(DirMovedEvent("", str(rig.sync / "batch")))
    rig.event(DirCreatedEvent(str(rig.sync / "new")))
    rig.event(DirCreatedEvent(str(rig.sync / "_hidden")))
    rig.tick(T0)
    assert rig.watcher.pending() == 2
    assert sorted(rig.tick(T0 + 1)) == sorted([moved, made])


def test_polling_mode_judges_every_file_by_scan_settle(tmp_path: Path) -> None:
    """In polling mode even a move needs the mtime to be scan_settle old (no close events)."""
    rig = Rig(tmp_path, mode="polling")
    path = rig.write("users.csv")
    rig.event(FileMovedEvent("", str(path)))
    rig.tick(T0)
    assert rig.tick(T0 + 2) == []
    rig.wall.now = MTIME + 10
    assert rig.tick(T0 + 3) == [path]


class FakeObserver:
    """Stands in for a watchdog observer; `alive` is set by the test."""

    def __init__(self) -> None:
        self.alive = False
        self.stopped = False
        self.scheduled: list[str] = []

    @property
    def emitters(self) -> list[FakeObserver]:
        return []

    def schedule(
        self, event_handler: FileSystemEventHandler, path: str, *, recursive: bool = False
    ) -> object:
        self.scheduled.append(path)
        return object()

    def start(self) -> None:
        self.alive = True

    def stop(self) -> None:
        self.stopped = True

    def join(self, timeout: float | None = None) -> None:
        pass

    def is_alive(self) -> bool:
        return self.alive


def test_dead_observer_restarted_then_rescanned(tmp_path: Path) -> None:
    """A dead observer is replaced by a fresh one, logged, and sync/ is rescanned."""
    observers: list[FakeObserver] = []

    def factory() -> FakeObserver:
        observers.append(FakeObserver())
        return observers[-1]

    sync = tmp_path / "sync"
    sync.mkdir()
    watcher = Watcher(sync, IntakeOptions(), lambda p: None, observer_factory=factory)
    watcher._observer.start()
    (sync / "missed.csv").write_bytes(b"x")  # arrives while the observer is dead
    observers[0].alive = False
    with capture_logs() as logs:
        watcher.tick()
    assert len(observers) == 2
    assert observers[0].stopped and observers[1].alive
    assert observers[1].scheduled == [str(sync)]
    assert "observer_restarted" in [e["event"] for e in logs]
    assert watcher.pending() == 1


def test_observer_restart_failure_backs_off(tmp_path: Path) -> None:
    """A failing observer restart is logged and not retried before its backoff delay."""
    attempts: list[float] = []
    first = FakeObserver()
    clock = Clock(T0)

    def factory() -> FakeObserver:
        attempts.append(clock.now)
        if len(attempts) > 1:
            raise OSError(24, "Too many open files")
        return first

    watcher = Watcher(tmp_path, IntakeOptions(), lambda p: None, clock=clock,
                      observer_factory=factory)
    watcher._observer.start()
    first.alive = False
    with capture_logs() as logs:
        watcher.tick()
        clock.now = T0 + 0.5
        watcher.tick()
        clock.now = T0 + 1.0
        watcher.tick()
    assert attempts == [T0, T0, T0 + 1.0]
    assert [e["event"] for e in logs] == ["observer_restart_failed"] * 2


def test_intake_step_logs_errors_and_goes_on(tmp_path: Path) -> None:
    """An exception in one intake step is logged and does not escape the intake loop."""
    watcher = Watcher(tmp_path, IntakeOptions(), lambda p: None)

    def broken() -> None:
        raise ValueError("bad state")

    with capture_logs() as logs:
        watcher._step(broken)
    assert [(e["event"], e["error"]) for e in logs] == [("intake_step_failed", "bad state")]


def test_not_healthy_before_start(tmp_path: Path) -> None:
    """A watcher that was never started does not report healthy."""
    assert not Watcher(tmp_path, IntakeOptions(), lambda p: None).healthy()


def test_bad_mode_rejected() -> None:
    """An unknown intake mode is a ConfigError naming the value."""
    with pytest.raises(ConfigError, match="'fanotify'"):
        IntakeOptions(mode="fanotify")


def test_temporary_uploads_count_under_their_final_name(tmp_path: Path) -> None:
    """A `_x`, `.x.tmp` or `x.filepart` upload seen by events is pending as `x` for the gather rule."""
    from syncd.intake.watcher import final_name

    opts = IntakeOptions()
    assert final_name(Path("/s/users.csv.filepart"), opts) == Path("/s/users.csv")
    assert final_name(Path("/s/_users.csv"), opts) == Path("/s/users.csv")
    assert final_name(Path("/s/.users.csv.tmp"), opts) == Path("/s/users.csv")
    watcher = Watcher(tmp_path, opts, lambda p: None)
    watcher._nominate(str(tmp_path / "hr" / "users.csv.filepart"), "dirty")
    assert [p.as_posix() for p in watcher.pending_paths()] == ["hr/users.csv"]
    watcher._nominate(str(tmp_path / "hr" / "users.csv.filepart"), "gone")
    assert watcher.pending_paths() == []
