"""Course archives end to end: a real daemon imports what an ERP or an LMS export drops.

A Moodle backup (.mbz) renamed into sync/ becomes a course with its documents stored in
``<data>/files``; an archive that tries to escape (zip-slip) fails whole with a report
naming the member, and the daemon goes on with the next file.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from tests.archive_builders import MbzActivity, build_mbz, write_zip
from tests.e2e.writers import users_csv, write_then_rename

if TYPE_CHECKING:
    from tests.e2e.conftest import Layout, StartDaemon


def test_a_moodle_backup_dropped_in_sync_becomes_a_course(
    start_daemon: StartDaemon, layout: Layout, tmp_path: Path
) -> None:
    """The .mbz is routed to course_import by name, read by content, and fully imported once."""
    daemon = start_daemon()
    pdf = b"%PDF-1.4 " + bytes(range(256)) * 40
    mbz = build_mbz(
        tmp_path / "bio.mbz", fullname="Biologie générale", shortname="BIO1",
        sections=[(0, "", ""), (1, "Cellules", "")],
        activities=[MbzActivity("resource", 5, 1, "Chapitre 1", files={"ch1.pdf": pdf}),
                    MbzActivity("forum", 6, 1, "Forum")],
    )
    data = mbz.read_bytes()
    write_then_rename(layout.sync, "bio.mbz", data)
    entry = daemon.wait_file("bio.mbz")
    assert entry["state"] == "done", entry["error"]
    assert entry["processor"] == "course_import"
    (archived,) = layout.archived("bio.mbz")
    assert archived.read_bytes() == data and layout.places("bio.mbz") == ["archives"]
    report = layout.report_of(archived)
    assert report["status"] == "done" and report["total"] == len(report["rows"]) > 5
    results = {r["result"] for r in report["rows"]}
    assert "error" not in results and {"created", "skipped"} <= results
    courses = layout.query("SELECT id, fullname FROM courses WHERE shortname = 'BIO1'")
    assert courses == [{"id": courses[0]["id"], "fullname": "Biologie générale"}]
    docs = layout.query("SELECT path, sha256 FROM course_documents WHERE course_id = ?", (courses[0]["id"],))
    digest = hashlib.sha256(pdf).hexdigest()
    assert any(d["sha256"] == digest and d["path"].endswith("ch1.pdf") for d in docs)
    assert (layout.root / "files" / digest[:2] / digest).read_bytes() == pdf
    assert daemon.errors() == []


def test_an_archive_that_escapes_fails_whole_and_the_daemon_goes_on(
    start_daemon: StartDaemon, layout: Layout, tmp_path: Path
) -> None:
    """A zip-slip member fails the file with a report naming it; nothing is imported or written."""
    daemon = start_daemon()
    evil = write_zip(tmp_path / "course.zip", {
        "imsmanifest.xml": b"<manifest/>", "../../../../tmp/syncd-escaped.txt": b"gotcha",
    })
    write_then_rename(layout.sync, "course.zip", evil.read_bytes())
    entry = daemon.wait_file("course.zip")
    assert entry["state"] == "failed"
    assert "syncd-escaped.txt" in entry["error"] and "course.zip" in entry["error"]
    (failed,) = layout.failed_copies("course.zip")
    report = json.loads(Path(str(failed) + ".report.json").read_text())
    assert report["status"] == "failed" and "member" in report["error"]
    assert not Path("/tmp/syncd-escaped.txt").exists()
    assert layout.query("SELECT count(*) AS n FROM courses WHERE shortname != ''")[0]["n"] == 0
    assert layout.places("course.zip") == ["failed"]
    with zipfile.ZipFile(failed) as kept:  # the file is kept as received, for the operator
        assert "../../../../tmp/syncd-escaped.txt" in kept.namelist()
    data = users_csv(5, "after")
    write_then_rename(layout.sync, "users.csv", data)
    assert daemon.wait_file("users.csv")["state"] == "done"
    assert daemon.alive()
