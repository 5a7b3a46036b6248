"""Crash end to end: kill -9 the daemon again and again mid-file; every row lands exactly once."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from tests.e2e.writers import users_csv, write_then_rename

if TYPE_CHECKING:
    from tests.e2e.conftest import Daemon, Layout, StartDaemon

ROWS = 60_000
NAME = "users_crash.csv"


def _records_done(layout: Layout) -> int:
    """Rows committed so far: the platform users (this file only creates)."""
    return layout.user_count()


def _kill_mid_file(daemon: Daemon, layout: Layout, when: Callable[[], object], what: str) -> int:
    """Wait for ``when``, kill -9, check the file was still unfinished; return rows committed."""
    daemon.wait_for(when, timeout=60, what=what)
    daemon.kill9()
    states = [e["state"] for e in layout.entries(NAME)]
    assert states and states[-1] not in ("done", "failed"), f"killed too late ({what}): {states}"
    return _records_done(layout)


@pytest.mark.slow
def test_repeated_kill_9_mid_file_applies_every_row_exactly_once(
    start_daemon: StartDaemon, layout: Layout
) -> None:
    """Four SIGKILLs at different points of a 60k-row file (batch 200), then a clean finish:
    each row created once, one complete report, archived, ledger done, nothing left over."""
    data = users_csv(ROWS, "crash")
    daemon = start_daemon({"processing": {"batch_size": 200}})
    write_then_rename(layout.sync, NAME, data, temp=".name.tmp")

    done = [_kill_mid_file(daemon, layout, lambda: daemon.events("file_started", file=NAME),
                           "the file to start")]
    daemon.start()
    done.append(_kill_mid_file(daemon, layout, lambda: _records_done(layout) >= 8_000,
                               "8000 rows committed"))
    daemon.start()
    done.append(_kill_mid_file(daemon, layout, lambda: _records_done(layout) >= done[-1] + 6_000,
                               "6000 more rows committed"))
    daemon.start()
    starts = daemon.starts
    done.append(_kill_mid_file(daemon, layout,
                               lambda: daemon.events("file_resumed", file=NAME, start=starts),
                               "the file to resume"))
    assert done == sorted(done) and done[-1] < ROWS, f"rows committed at each kill: {done}"
    assert done[2] > done[1] > 0, f"no progress between kills: {done}"

    daemon.start()
    _assert_finished_once(daemon, layout, data, ROWS)
    assert daemon.stop() == 0


def _assert_finished_once(daemon: Daemon, layout: Layout, data: bytes, rows: int) -> None:
    """Every row created once, one complete report, archived, ledger done, nothing left."""
    entry = daemon.wait_file(NAME, timeout=120)
    assert entry["state"] == "done"
    report = layout.done_report(NAME, data)
    assert report["counts"] == {
        "created": rows, "updated": 0, "deleted": 0, "unchanged": 0, "skipped": 0, "error": 0,
    }
    assert sorted(r["line"] for r in report["rows"]) == list(range(2, rows + 2))
    assert {r["result"] for r in report["rows"]} == {"created"}
    assert report["sha256"] == hashlib.sha256(data).hexdigest()
    text = report["_path"].with_suffix(".txt").read_text(encoding="utf-8")
    assert sum(1 for line in text.splitlines() if line.startswith("line ")) == rows
    users = [u["username"] for u in layout.users()]
    assert len(users) == len(set(users)) == rows
    assert len(layout.files(layout.reports)) == 2, layout.files(layout.reports)
    assert [(e["original_path"], e["state"]) for e in layout.ledger()] == [(NAME, "done")]
    assert layout.operator_files() == [] and layout.sync_files() == []
    assert layout.files(layout.tryback) == []


def test_sigterm_mid_file_exits_0_and_the_restart_finishes_it(
    start_daemon: StartDaemon, layout: Layout
) -> None:
    """SIGTERM while a file is applied: exit 0 after the current batch; a restart finishes it once."""
    rows = 30_000
    data = users_csv(rows, "term")
    daemon = start_daemon({"processing": {"batch_size": 200}})
    write_then_rename(layout.sync, NAME, data, temp=".name.tmp")
    daemon.wait_for(lambda: layout.user_count() >= 2_000, timeout=60, what="2000 rows committed")

    assert daemon.stop() == 0
    assert [e["state"] for e in layout.entries(NAME)] == ["processing"], "stopped too late"
    assert daemon.events("file_interrupted", file=NAME)
    daemon.start()
    _assert_finished_once(daemon, layout, data, rows)
    assert daemon.stop() == 0

