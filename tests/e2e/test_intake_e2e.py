"""Intake end to end: a real daemon takes only complete uploads, whatever the client does."""

from __future__ import annotations

import json
import math
import os
import stat
from typing import TYPE_CHECKING

import pytest

from tests.e2e.writers import (
    TEMP_STYLES,
    slow_write,
    temp_name,
    users_csv,
    write_file,
    write_then_rename,
    write_with_done_marker,
)

if TYPE_CHECKING:
    from tests.e2e.conftest import Cli, Layout, StartDaemon


def _usernames(layout: Layout, prefix: str) -> set[str]:
    return {u["username"] for u in layout.users() if u["username"].startswith(prefix)}


def test_slow_upload_with_pauses_is_processed_once_complete(
    start_daemon: StartDaemon, layout: Layout
) -> None:
    """An upload stalling 3 x 1.5 s (settle 0.5 s) is taken only after it is closed, whole."""
    daemon = start_daemon()
    data = users_csv(400, "slow")
    path = layout.sync / "users_slow.csv"

    def still_uploading(written: int) -> None:
        assert path.exists(), f"taken from sync/ after only {written} of {len(data)} bytes"
        assert not daemon.events("file_received"), f"received after {written} bytes"

    slow_write(path, data, chunk=math.ceil(len(data) / 4), pause=1.5, on_pause=still_uploading)
    entry = daemon.wait_file("users_slow.csv")

    assert entry["state"] == "done"
    report = layout.done_report("users_slow.csv", data)
    assert report["counts"] == {
        "created": 400, "updated": 0, "deleted": 0, "unchanged": 0, "skipped": 0, "error": 0,
    }
    assert len(_usernames(layout, "slow")) == 400
    assert len(layout.report_jsons()) == 1
    assert len(layout.ledger()) == 1
    layout.assert_no_partial_reports()
    assert layout.private_problems() == []
    events = [e["event"] for e in daemon.events(file="users_slow.csv")
              if e["event"].startswith("file_")]
    assert events == ["file_received", "file_started", "file_processed"]
    processed = daemon.events("file_processed", file="users_slow.csv")[0]
    assert (processed["created"], processed["error"], processed["processor"]) == (400, 0, "users")
    assert isinstance(processed["duration_ms"], int) and processed["run_id"]
    assert processed["level"] == "info" and processed["ts"].endswith("Z")
    assert daemon.stop() == 0


def test_file_dropped_while_down_is_taken_at_start(start_daemon: StartDaemon, layout: Layout) -> None:
    """A file already in sync/ when the daemon starts is found by the startup scan."""
    daemon = start_daemon(start=False)
    layout.sync.mkdir(parents=True)
    data = users_csv(10, "early")
    write_then_rename(layout.sync, "users_early.csv", data)

    daemon.start()
    entry = daemon.wait_file("users_early.csv")

    assert entry["state"] == "done"
    layout.done_report("users_early.csv", data)
    assert len(_usernames(layout, "early")) == 10


@pytest.mark.parametrize("style", list(TEMP_STYLES))
def test_upload_under_a_temp_name_is_taken_after_the_rename(
    start_daemon: StartDaemon, layout: Layout, style: str
) -> None:
    """A file written under a hidden or partial-upload name is left alone until renamed."""
    daemon = start_daemon()
    data = users_csv(50, "tmp")
    staging = write_file(layout.sync / temp_name("users_up.csv", style), data)

    daemon.assert_holds(
        lambda: staging.exists() and not daemon.events("file_received"),
        seconds=2.0, what=f"{staging.name} left in sync/ (settle is 0.5 s)",
    )
    os.rename(staging, layout.sync / "users_up.csv")
    entry = daemon.wait_file("users_up.csv")

    assert entry["state"] == "done"
    layout.done_report("users_up.csv", data)
    assert [e["original_path"] for e in layout.ledger()] == ["users_up.csv"]
    assert len(_usernames(layout, "tmp")) == 50
    layout.assert_no_partial_reports()


def test_done_marker_mode_takes_only_marked_files_and_removes_the_marker(
    start_daemon: StartDaemon, layout: Layout
) -> None:
    """With done_marker on, x.csv waits for x.csv.done; once taken, the marker is gone."""
    daemon = start_daemon({"intake": {"done_marker": True}}, name="marker")
    marked_data = users_csv(20, "mark")
    _, marker = write_with_done_marker(layout.sync, "users_mark.csv", marked_data)
    daemon.wait_file("users_mark.csv")
    layout.done_report("users_mark.csv", marked_data)
    assert not marker.exists(), "the done marker was not removed"

    unmarked_data = users_csv(20, "nomark")
    unmarked = write_file(layout.sync / "users_nomark.csv", unmarked_data)
    daemon.assert_holds(
        lambda: unmarked.exists() and not layout.entries("users_nomark.csv"),
        seconds=2.0, what="users_nomark.csv (no marker) left in sync/",
    )
    late_marker = write_file(layout.sync / "users_nomark.csv.done", b"")
    daemon.wait_file("users_nomark.csv")

    layout.done_report("users_nomark.csv", unmarked_data)
    assert not late_marker.exists(), "the done marker was not removed"
    assert layout.sync_files() == []
    assert len(_usernames(layout, "nomark")) == 20


def test_file_waiting_for_its_marker_does_not_hold_back_marked_files(
    start_daemon: StartDaemon, layout: Layout
) -> None:
    """A file still waiting for its done marker does not delay a marked one (no 60 s stall)."""
    daemon = start_daemon({"intake": {"done_marker": True}}, name="marker")
    write_file(layout.sync / "users_nomark.csv", users_csv(5, "nomark"))
    marked_data = users_csv(5, "mark")
    write_with_done_marker(layout.sync, "users_mark.csv", marked_data)

    daemon.wait_file("users_mark.csv", timeout=15)

    layout.done_report("users_mark.csv", marked_data)
    assert (layout.sync / "users_nomark.csv").exists()


def test_file_in_a_sub_folder_keeps_its_folder_in_the_store(
    start_daemon: StartDaemon, layout: Layout
) -> None:
    """sync/hr/users_a.csv is stored as store/hr/users_a.csv, processed, then archived;
    hidden names at any depth are left alone."""
    daemon = start_daemon()
    (layout.sync / "hr").mkdir()
    (layout.sync / "_staging").mkdir()
    hidden = [write_file(layout.sync / "_staging" / "users_s.csv", users_csv(3, "hid")),
              write_file(layout.sync / "hr" / ".users_h.csv", users_csv(3, "hid"))]
    data = users_csv(25, "hr")
    write_then_rename(layout.sync / "hr", "users_a.csv", data, temp=".name.tmp")

    entry = daemon.wait_file("hr/users_a.csv")

    received = daemon.events("file_received", file="hr/users_a.csv")
    assert [e["store_path"] for e in received] == [str(layout.store / "hr" / "users_a.csv")]
    assert entry["store_path"] == str(layout.store / "hr" / "users_a.csv")
    assert entry["state"] == "done"
    layout.done_report("users_a.csv", data)
    assert entry["final_path"] == str(layout.archived("users_a.csv")[0])
    assert stat.S_IMODE((layout.store / "hr").stat().st_mode) == 0o700
    assert layout.operator_files() == []
    assert len(_usernames(layout, "hr")) == 25
    assert layout.sync_files() == hidden, "a hidden file was taken"
    assert len(layout.ledger()) == 1 and not _usernames(layout, "hid")


def test_file_with_no_route_stays_in_the_store(
    start_daemon: StartDaemon, layout: Layout, cli: Cli
) -> None:
    """notes.txt matches no route: it is moved to store/, logged file_stored, status 'stored'."""
    daemon = start_daemon()
    data = b"call the ERP team on monday\n"
    write_then_rename(layout.sync, "notes.txt", data)

    event = daemon.wait_event("file_stored", file="notes.txt")

    stored = layout.store / "notes.txt"
    assert event["store_path"] == str(stored)
    assert stored.read_bytes() == data
    assert layout.sync_files() == []
    assert layout.report_jsons() == []
    status = cli("status", "--json")
    assert status.returncode == 0, status.stderr
    entries = [e for e in json.loads(status.stdout) if e["file"] == "notes.txt"]
    assert [(e["state"], e["processor"], e["final_path"]) for e in entries] == [("stored", None, None)]
    assert daemon.alive()


def test_unknown_csv_name_is_routed_by_its_header(start_daemon: StartDaemon, layout: Layout) -> None:
    """staff.csv matches no glob; its username,firstname,lastname header routes it to users."""
    daemon = start_daemon()
    data = users_csv(15, "staff")
    write_then_rename(layout.sync, "staff.csv", data)

    entry = daemon.wait_file("staff.csv")

    assert daemon.events("file_sniffed", file="staff.csv", processor="users")
    assert (entry["processor"], entry["routed_by"], entry["state"]) == ("users", "sniffed", "done")
    report = layout.done_report("staff.csv", data)
    assert report["counts"]["created"] == 15
    assert len(_usernames(layout, "staff")) == 15
