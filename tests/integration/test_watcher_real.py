"""The watcher on a real folder: real inotify (and polling) observers and the intake thread."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from syncd.intake.store import RESERVED
from syncd.intake.watcher import IntakeOptions, Watcher

DEADLINE = 10.0


def wait_for(condition: Callable[[], bool], timeout: float = DEADLINE) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


class Taker:
    """Plays the service: records each hand-over and moves the file out of sync/."""

    def __init__(self, sync: Path, out: Path) -> None:
        self.sync, self.out = sync, out
        self.out.mkdir()
        self.taken: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, path: Path) -> None:
        rel = path.relative_to(self.sync).as_posix()
        path.rename(self.out / rel.replace("/", "__"))
        with self._lock:
            self.taken.append(rel)

    def got(self, *rels: str) -> Callable[[], bool]:
        return lambda: sorted(self.taken) == sorted(rels)


@contextmanager
def running(tmp_path: Path, **options: Any) -> Iterator[tuple[Watcher, Taker, Path]]:
    """A started watcher on tmp_path/sync, stopped at the end whatever happens."""
    sync = tmp_path / "sync"
    sync.mkdir(exist_ok=True)
    taker = Taker(sync, tmp_path / "taken")
    opts = IntakeOptions(settle=0.2, scan_settle=2.0, reserved=RESERVED, **options)
    watcher = Watcher(sync, opts, taker)
    watcher.start()
    try:
        yield watcher, taker, sync
    finally:
        watcher.stop()


def test_slow_open_upload_taken_only_after_close(tmp_path: Path) -> None:
    """A writer pausing longer than settle while the file is open is not cut; taken once closed."""
    with running(tmp_path) as (watcher, taker, sync):
        with (sync / "users.csv").open("wb") as upload:
            upload.write(b"username;firstname\n")
            upload.flush()
            assert wait_for(lambda: watcher.pending() == 1)
            time.sleep(0.6)  # the writer pauses: 3x settle, well under scan_settle
            assert taker.taken == []
            upload.write(b"jdoe;John\n")
        assert wait_for(taker.got("users.csv"))
        assert (taker.out / "users.csv").read_bytes() == b"username;firstname\njdoe;John\n"
        assert wait_for(lambda: watcher.pending() == 0)
        assert taker.taken == ["users.csv"]


def test_hidden_upload_renamed_into_place_taken_once(tmp_path: Path) -> None:
    """An upload to _x then renamed to x.csv is taken once, under the final name."""
    with running(tmp_path) as (watcher, taker, sync):
        (sync / "_x").write_bytes(b"data\n")
        (sync / "_x").rename(sync / "x.csv")
        (sync / "y.csv.filepart").write_bytes(b"data\n")
        (sync / "y.csv.filepart").rename(sync / "y.csv")
        assert wait_for(taker.got("x.csv", "y.csv"))
        assert wait_for(lambda: watcher.pending() == 0)
        assert sorted(taker.taken) == ["x.csv", "y.csv"]


# watchdog itself may warn that it re-registers the watch of a just-created nested folder.
@pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")
def test_file_in_new_subfolder_taken(tmp_path: Path) -> None:
    """A file written into a freshly created sub-folder is taken with its relative path."""
    with running(tmp_path) as (_watcher, taker, sync):
        (sync / "erp" / "batch").mkdir(parents=True)
        (sync / "erp" / "batch" / "courses.csv").write_bytes(b"shortname\n")
        assert wait_for(taker.got("erp/batch/courses.csv"))


def test_startup_scan_takes_files_present_before_start(tmp_path: Path) -> None:
    """Files that arrived while syncd was down are taken by the startup scan."""
    old = tmp_path / "sync" / "sub" / "enrol.csv"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"rolename;cid;uid\n")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    (tmp_path / "sync" / "archives").mkdir()
    (tmp_path / "sync" / "archives" / "x.csv").write_bytes(b"reserved\n")
    with running(tmp_path) as (watcher, taker, _sync):
        assert watcher.healthy()
        assert wait_for(taker.got("sub/enrol.csv"))
    assert not watcher.healthy()


def test_polling_mode_picks_up_file(tmp_path: Path) -> None:
    """The polling observer (NFS/CIFS) finds and hands over a new file."""
    with running(tmp_path, mode="polling", poll_interval=0.2) as (watcher, taker, sync):
        (sync / "groups.csv").write_bytes(b"courseid;name\n")
        assert wait_for(taker.got("groups.csv"))
        assert watcher.healthy()
