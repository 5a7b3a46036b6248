"""Bad input end to end: every broken file gets a clear verdict, nothing is lost, the daemon lives.

Each test drops something awkward into sync/ of a real daemon, checks the report or log
event that explains it, checks that the file is in exactly one place, then drops a good
file and checks that it is processed and that SIGTERM still stops the daemon cleanly.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.e2e.writers import (
    USERS_HEADER,
    csv_bytes,
    user_rows,
    users_csv,
    write_file,
    write_then_rename,
)

if TYPE_CHECKING:
    from tests.e2e.conftest import Daemon, Layout, StartDaemon

HEADER_LINE = (",".join(USERS_HEADER) + "\n").encode()


def _drop(daemon: Daemon, layout: Layout, name: str, data: bytes, timeout: float = 30) -> dict[str, Any]:
    """Upload ``name`` (temp name + rename) and wait until it is processed or failed."""
    write_then_rename(layout.sync, name, data, temp=".name.tmp")
    return daemon.wait_file(name, timeout=timeout)


def _still_works(daemon: Daemon, layout: Layout) -> None:
    """The daemon is alive, processes a good file dropped now, logged no unexpected error,
    and exits 0 on SIGTERM."""
    assert daemon.alive()
    data = users_csv(3, "after")
    _drop(daemon, layout, "users_after.csv", data)
    layout.done_report("users_after.csv", data)
    assert daemon.errors() == []
    assert layout.private_problems() == []
    assert daemon.stop() == 0


def _failed_report(daemon: Daemon, layout: Layout, name: str, data: bytes) -> dict[str, Any]:
    """Check ``name`` failed whole: in failed/ byte for byte with its report; return the report."""
    copies = layout.failed_copies(name)
    assert len(copies) == 1, f"{name!r}: expected one copy in failed/, found {copies}"
    assert copies[0].read_bytes() == data
    report = layout.report_of(copies[0])
    assert report["_path"].with_suffix(".txt").is_file()
    assert report["status"] == "failed"
    assert report["error"]
    assert layout.places(name) == ["failed"], layout.places(name)
    events = daemon.events("file_failed", file=name)
    assert [e["error"] for e in events] == [report["error"]]
    assert layout.user_count() == 0, "a failed file must apply no row"
    return report


def test_binary_file_fails_naming_the_nul_byte(start_daemon: StartDaemon, layout: Layout) -> None:
    """A users file holding NUL bytes fails whole, the error naming the offset of the first."""
    daemon = start_daemon()
    data = HEADER_LINE + b"u1,Ann,Lee,a@x.org,1\nu2,B\x00\x00\x00b,Lee,b@x.org,2\n"

    entry = _drop(daemon, layout, "users_bin.csv", data)

    assert entry["state"] == "failed"
    report = _failed_report(daemon, layout, "users_bin.csv", data)
    offset = data.index(b"\0")
    assert f"offset {offset}" in report["error"]
    assert "binary" in report["error"].lower() or "nul" in report["error"].lower()
    _still_works(daemon, layout)


def test_undecodable_byte_fails_naming_its_offset(start_daemon: StartDaemon, layout: Layout) -> None:
    """A latin-1 byte in a UTF-8 file fails the file; the error gives the byte's offset."""
    daemon = start_daemon()
    data = HEADER_LINE + b"u1,Ann,Lee,a@x.org,1\nu2,Jos\xe9,Lee,b@x.org,2\n"

    entry = _drop(daemon, layout, "users_latin.csv", data)

    assert entry["state"] == "failed"
    report = _failed_report(daemon, layout, "users_latin.csv", data)
    offset = data.index(b"\xe9")
    assert f"offset {offset}" in report["error"]
    _still_works(daemon, layout)


def test_utf8_bom_header_works(start_daemon: StartDaemon, layout: Layout) -> None:
    """A UTF-8 BOM before the header is not part of the first column name."""
    daemon = start_daemon()
    data = users_csv(10, "bom", bom=True)

    entry = _drop(daemon, layout, "users_bom.csv", data)

    assert entry["state"] == "done"
    report = layout.done_report("users_bom.csv", data)
    assert report["counts"]["created"] == 10
    assert sorted(u["username"] for u in layout.users())[0] == "bom000000"
    _still_works(daemon, layout)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ((*USERS_HEADER, "shoesize"), "unknown column 'shoesize'"),
        ((*USERS_HEADER, "email"), "duplicate column 'email'"),
        (("username", "firstname", "email", "idnumber"), "missing required column 'lastname'"),
    ],
    ids=["unknown", "duplicate", "missing"],
)
def test_bad_header_fails_the_whole_file_naming_the_column(
    start_daemon: StartDaemon, layout: Layout, header: tuple[str, ...], message: str
) -> None:
    """Unknown, duplicate or missing columns fail the file before any row, naming the column."""
    daemon = start_daemon()
    rows = [[*r, *[""] * (len(header) - len(r))][: len(header)] for r in user_rows(4, "hdr")]
    data = csv_bytes(rows, header)

    entry = _drop(daemon, layout, "users_hdr.csv", data)

    assert entry["state"] == "failed"
    report = _failed_report(daemon, layout, "users_hdr.csv", data)
    assert message in report["error"]
    assert "users_hdr.csv" in report["error"]
    _still_works(daemon, layout)


def test_ragged_rows_are_row_errors_and_go_to_the_tryback(
    start_daemon: StartDaemon, layout: Layout
) -> None:
    """Rows with too few or too many fields fail alone; the tryback holds them byte for byte."""
    daemon = start_daemon()
    bad_short = b"rag2,Bo,Lee\n"
    bad_long = b"rag4,Di,Lee,d@x.org,4,extra,more\r\n"
    data = (HEADER_LINE + b"rag1,Al,Lee,a@x.org,1\n" + bad_short + b"rag3,Cy,Lee,c@x.org,3\n"
            + bad_long + b"rag5,Ed,Lee,e@x.org,5\n")

    entry = _drop(daemon, layout, "users_rag.csv", data)

    assert entry["state"] == "done"
    report = layout.done_report("users_rag.csv", data)
    assert report["counts"]["created"] == 3
    assert report["counts"]["error"] == 2
    assert [r["line"] for r in report["rows"] if r["result"] == "error"] == [3, 5]
    assert sorted(u["username"] for u in layout.users()) == ["rag1", "rag3", "rag5"]
    assert [e["line"] for e in daemon.events("row_failed", file="users_rag.csv")] == [3, 5]
    tryback = Path(entry["tryback_path"])
    assert tryback.parent == layout.tryback
    assert re.fullmatch(r"users_rag_tryback_[0-9]{8}-[0-9]{6}\.csv", tryback.name), tryback.name
    assert tryback.read_bytes() == HEADER_LINE + bad_short + bad_long
    _still_works(daemon, layout)


def test_quoted_newlines_in_a_field_work_and_the_tryback_is_exact(
    start_daemon: StartDaemon, layout: Layout
) -> None:
    """A quoted field spanning lines is one value; a failed multi-line row is kept whole."""
    daemon = start_daemon()
    header = b"username,firstname,lastname,email,idnumber,description\n"
    good = b'nl1,Al,Lee,a@x.org,1,"first line\nsecond, line"\n'
    bad = b'nl2,Bo,Lee,not-an-email,2,"broken\r\nacross lines"\n'
    after = b"nl3,Cy,Lee,c@x.org,3,plain\n"
    data = header + good + bad + after

    entry = _drop(daemon, layout, "users_nl.csv", data)

    assert entry["state"] == "done"
    report = layout.done_report("users_nl.csv", data)
    assert [(r["line"], r["result"]) for r in report["rows"]] == [
        (2, "created"), (4, "error"), (6, "created"),
    ]
    users = {u["username"]: u for u in layout.users()}
    assert users["nl1"]["description"] == "first line\nsecond, line"
    assert set(users) == {"nl1", "nl3"}
    with open(entry["tryback_path"], "rb") as f:
        assert f.read() == header + bad
    _still_works(daemon, layout)


def test_passwords_stay_out_of_logs_and_reports_but_the_tryback_keeps_them(
    start_daemon: StartDaemon, layout: Layout
) -> None:
    """Plain passwords reach neither the log nor the report nor the DB; the 0600 tryback
    keeps a failed row's password as received."""
    daemon = start_daemon()
    header = b"username,firstname,lastname,email,idnumber,password\n"
    bad = b"pw2,Bo,Lee,not-an-email,2,Bad-Row-Secret-42\n"
    data = header + b"pw1,Al,Lee,a@x.org,1,Good-Row-Secret-17\n" + bad

    entry = _drop(daemon, layout, "users_pw.csv", data)

    assert entry["state"] == "done"
    report = layout.done_report("users_pw.csv", data)
    assert report["counts"]["created"] == 1 and report["counts"]["error"] == 1
    secrets = ("Good-Row-Secret-17", "Bad-Row-Secret-42")
    texts = [report["_path"].read_text(encoding="utf-8"),
             report["_path"].with_suffix(".txt").read_text(encoding="utf-8"), daemon.tail(500)]
    assert not [s for s in secrets for t in texts if s in t]
    (user,) = layout.users()
    assert user["password_hash"] and secrets[0] not in user["password_hash"]
    assert not user["password_to_generate"]
    assert Path(entry["tryback_path"]).read_bytes() == header + bad
    _still_works(daemon, layout)


@pytest.mark.slow
def test_fifty_megabyte_file_is_processed(start_daemon: StartDaemon, layout: Layout) -> None:
    """A valid 50 MB users file is processed completely, every row created."""
    daemon = start_daemon({"processing": {"batch_size": 500}})
    filler = "x" * 2000
    count = 25_000
    rows = [[*row, filler] for row in user_rows(count, "big")]
    data = csv_bytes(rows, (*USERS_HEADER, "description"))
    assert len(data) >= 50_000_000

    entry = _drop(daemon, layout, "users_big.csv", data, timeout=180)

    assert entry["state"] == "done"
    report = layout.done_report("users_big.csv", data)
    assert report["counts"]["created"] == count
    assert report["sha256"] == hashlib.sha256(data).hexdigest()
    assert layout.user_count() == count
    _still_works(daemon, layout)


def test_empty_file_fails_with_a_clear_error(start_daemon: StartDaemon, layout: Layout) -> None:
    """A zero-byte users file fails whole: the report says it is empty."""
    daemon = start_daemon()

    entry = _drop(daemon, layout, "users_empty.csv", b"")

    assert entry["state"] == "failed"
    report = _failed_report(daemon, layout, "users_empty.csv", b"")
    assert "empty" in report["error"]
    _still_works(daemon, layout)


def test_header_only_file_is_done_with_no_rows(start_daemon: StartDaemon, layout: Layout) -> None:
    """A file with a header and no rows is done, 0 rows, no tryback."""
    daemon = start_daemon()

    entry = _drop(daemon, layout, "users_head.csv", HEADER_LINE)

    assert entry["state"] == "done"
    report = layout.done_report("users_head.csv", HEADER_LINE)
    assert report["rows"] == []
    assert set(report["counts"].values()) == {0}
    assert entry["tryback_path"] is None
    assert layout.files(layout.tryback) == []
    _still_works(daemon, layout)


def test_symlink_is_ignored_never_followed_nor_moved(
    start_daemon: StartDaemon, layout: Layout
) -> None:
    """A symlink in sync/ to a file outside is logged file_ignored and left as it is."""
    daemon = start_daemon()
    target = write_file(layout.root.parent / "outside_users.csv", users_csv(5, "link"))
    before = (target.read_bytes(), target.stat().st_mtime_ns)
    link = layout.sync / "users_link.csv"
    os.symlink(target, link)

    event = daemon.wait_event("file_ignored", path=str(link))

    assert event["reason"] == "symlink"
    _still_works(daemon, layout)
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert (target.read_bytes(), target.stat().st_mtime_ns) == before
    assert layout.entries("users_link.csv") == []
    assert not [u for u in layout.users() if u["username"].startswith("link")]


def test_fifo_is_ignored_and_does_not_block(start_daemon: StartDaemon, layout: Layout) -> None:
    """A FIFO in sync/ is logged file_ignored; the daemon never opens it and goes on."""
    daemon = start_daemon()
    fifo = layout.sync / "users_fifo.csv"
    os.mkfifo(fifo)

    event = daemon.wait_event("file_ignored", path=str(fifo))

    assert event["reason"] == "fifo"
    _still_works(daemon, layout)
    assert fifo.exists() and layout.entries("users_fifo.csv") == []


@pytest.mark.parametrize(
    ("name", "routed_by"),
    [
        ("users with spaces.csv", "glob"),
        ("usérs façon.csv", "sniffed"),
        ("users ü.csv", "glob"),
        ("users\nnewline.csv", "glob"),
    ],
    ids=["spaces", "unicode-sniffed", "unicode-glob", "newline"],
)
def test_awkward_names_are_processed(
    start_daemon: StartDaemon, layout: Layout, name: str, routed_by: str
) -> None:
    """Spaces, non-ASCII letters and a newline in a name survive intake, routing and archiving."""
    daemon = start_daemon()
    data = users_csv(5, "name")

    entry = _drop(daemon, layout, name, data)

    assert (entry["state"], entry["processor"], entry["routed_by"]) == ("done", "users", routed_by)
    report = layout.done_report(name, data)
    assert report["file"] == name
    assert report["counts"]["created"] == 5
    _still_works(daemon, layout)


def test_file_replaced_while_being_processed_gives_two_clean_runs(
    start_daemon: StartDaemon, layout: Layout
) -> None:
    """Renaming a new users_r.csv over the old name while the old one is applied: each
    version is processed exactly once, with its own rows, report and archive."""
    daemon = start_daemon()
    first = users_csv(40_000, "r1_")
    second = users_csv(300, "r2_")

    write_then_rename(layout.sync, "users_r.csv", first, temp=".name.tmp")
    daemon.wait_event("file_started", file="users_r.csv")
    write_then_rename(layout.sync, "users_r.csv", second, temp=".name.tmp")
    daemon.wait_for(
        lambda: len(daemon.events("file_processed", file="users_r.csv")) == 2,
        timeout=90, what="both versions of users_r.csv processed",
    )

    received = daemon.events("file_received", file="users_r.csv")
    first_done = daemon.events("file_processed", file="users_r.csv")[0]
    assert len(received) == 2 and received[1]["ts"] < first_done["ts"], "not replaced mid-run"
    entries = layout.entries("users_r.csv")
    assert [e["state"] for e in entries] == ["done", "done"]
    archives = layout.archived("users_r.csv")
    assert sorted(a.read_bytes() for a in archives) == sorted([first, second])
    for archive in archives:
        report = layout.report_of(archive)
        data = archive.read_bytes()
        assert report["sha256"] == hashlib.sha256(data).hexdigest()
        assert report["counts"]["created"] == len(report["rows"]) == data.count(b"\n") - 1
    users = [u["username"] for u in layout.users()]
    assert len(users) == len(set(users)) == 40_300
    assert layout.places("users_r.csv") == ["archives", "archives"]
    assert layout.operator_files() == [] and layout.sync_files() == []
    _still_works(daemon, layout)
