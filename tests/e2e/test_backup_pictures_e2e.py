"""User pictures and course backups end to end: a real ``syncd run`` fed through sync/ the way
SFTP clients upload (temp name, then rename).

- users, then a zip of their pictures: one report line per entry, pictures stored in the
  platform; a second zip with a zip-slip entry fails whole and changes nothing.
- a Moodle backup imported, a coursebackup file writing a native and a SCORM backup into
  ``<data>/cache/backups``, the course deleted, and its native backup dropped back in:
  the course comes back with the same content.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.archive_builders import MbzActivity, build_mbz, write_zip
from tests.e2e.writers import csv_bytes, write_then_rename
from tests.pictures import gif, jpeg, png

if TYPE_CHECKING:
    from tests.e2e.conftest import Layout, StartDaemon


def rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    """(result, reason) of each row of a JSON report."""
    return [(r["result"], r["reason"]) for r in report["rows"]]


def pictures(layout: Layout) -> dict[str, tuple[str, int, int, str]]:
    """username -> (mimetype, width, height, sha256) of every stored picture."""
    found = layout.query("SELECT u.username, p.mimetype, p.width, p.height, p.sha256 FROM user_pictures p "
                         "JOIN users u ON u.id = p.user_id")
    return {r["username"]: (r["mimetype"], r["width"], r["height"], r["sha256"]) for r in found}


def test_pictures_of_known_users_are_stored_and_an_unsafe_zip_fails_whole(
    start_daemon: StartDaemon, layout: Layout, tmp_path: Path
) -> None:
    """After a users file, a picture zip stores each good picture and reports the unknown user
    and the file that is not an image; a zip with a zip-slip entry fails whole, naming it."""
    daemon = start_daemon()
    users = csv_bytes([["alice", "Alice", "A", "alice@example.org", "S-1"],
                       ["bob", "Bob", "B", "bob@example.org", "S-2"],
                       ["chloe", "Chloé", "C", "chloe@example.org", "S-3"]])
    write_then_rename(layout.sync, "users.csv", users)
    assert daemon.wait_file("users.csv")["state"] == "done"

    good = write_zip(tmp_path / "p1.zip", {"alice.jpg": jpeg(120, 160), "chloe.png": png(64, 64),
                                           "zoe.gif": gif(8, 8), "bob.png": b"PNG? no, a text file"})
    write_then_rename(layout.sync, "userpictures_2026.zip", good.read_bytes(), ".name.tmp")
    entry = daemon.wait_file("userpictures_2026.zip")
    assert (entry["state"], entry["processor"]) == ("done", "user_pictures")
    (archived,) = layout.archived("userpictures_2026.zip")
    report = layout.report_of(archived)
    assert rows(report) == [
        ("created", f"alice.jpg: picture of user 'alice' (jpeg 120x160, {len(jpeg(120, 160))} bytes)"),
        ("created", f"chloe.png: picture of user 'chloe' (png 64x64, {len(png(64, 64))} bytes)"),
        ("error", "zoe.gif: unknown user 'zoe' (username)"),
        ("error", "bob.png: not an image: not a PNG, JPEG or GIF picture (by its content)"),
    ]
    stored = pictures(layout)
    assert {name: p[:3] for name, p in stored.items()} == {
        "alice": ("image/jpeg", 120, 160), "chloe": ("image/png", 64, 64)}
    sha = stored["alice"][3]
    assert (layout.root / "files" / sha[:2] / sha).read_bytes() == jpeg(120, 160)
    assert len(layout.files(layout.tryback)) == 1  # the failed entries, ready to fix

    evil = write_zip(tmp_path / "p2.zip", {"alice.png": png(10, 10), "../../outside.png": png(5, 5)})
    write_then_rename(layout.sync, "userpictures_evil.zip", evil.read_bytes(), "name.filepart")
    entry = daemon.wait_file("userpictures_evil.zip")
    assert entry["state"] == "failed"
    assert "'../../outside.png'" in entry["error"] and "zip-slip" in entry["error"]
    assert pictures(layout) == stored  # alice keeps her JPEG: nothing of the zip was applied
    assert not (layout.root.parent / "outside.png").exists() and not (layout.root / "outside.png").exists()
    assert daemon.alive() and daemon.errors() == []


def course_content(layout: Layout, shortname: str) -> dict[str, Any]:
    """The course row and its content from the platform tables, without ids."""
    [course] = layout.query("SELECT * FROM courses WHERE shortname = ?", (shortname,))
    cid = course["id"]

    def of(table: str, columns: str, order: str) -> list[dict[str, Any]]:
        return layout.query(f"SELECT {columns} FROM {table} WHERE course_id = ? ORDER BY {order}", (cid,))

    return {
        "course": {k: v for k, v in course.items() if k not in ("id", "created_at", "updated_at")},
        "sections": of("course_sections", "number, name, summary", "number"),
        "documents": of("course_documents", "path, sha256, size, title, mimetype", "path"),
        "path": of("course_path_items", "key, title, parent_key, kind, target, position, section", "key"),
        "activities": of("course_activities", "key, section, kind, title, position", "key"),
    }


def test_a_course_backup_restores_the_deleted_course(
    start_daemon: StartDaemon, layout: Layout, tmp_path: Path
) -> None:
    """Imported from a .mbz, backed up by a coursebackup file (native and SCORM 1.2, into
    <data>/cache/backups), deleted, then restored by dropping its native backup: the same
    course, sections, documents, learning path and activities come back."""
    daemon = start_daemon()
    pdf = b"%PDF-1.4 " + bytes(range(256)) * 8
    mbz = build_mbz(tmp_path / "chem.mbz", fullname="Chimie générale", shortname="CHEM-1",
                    summary="<p>Atomes & molécules</p>", sections=[(0, "", ""), (1, "Atomes", "<p>S1</p>")],
                    activities=[MbzActivity("resource", 5, 1, "Cours 1", files={"cours 1.pdf": pdf}),
                                MbzActivity("page", 6, 1, "Bienvenue", content="<p>Bonjour</p>"),
                                MbzActivity("quiz", 7, 1, "Quiz")])
    write_then_rename(layout.sync, "chem.mbz", mbz.read_bytes())
    assert daemon.wait_file("chem.mbz")["state"] == "done"
    before = course_content(layout, "CHEM-1")
    assert before["documents"] and before["path"] and before["activities"]

    write_then_rename(layout.sync, "coursebackup_nightly.csv", b"CHEM-1\nCHEM-1,scorm12\n")
    entry = daemon.wait_file("coursebackup_nightly.csv")
    assert (entry["state"], entry["processor"]) == ("done", "course_backup")
    (archived,) = layout.archived("coursebackup_nightly.csv")
    assert [r["result"] for r in layout.report_of(archived)["rows"]] == ["created", "created"]
    backups = sorted((layout.root / "cache" / "backups").iterdir())
    assert [p.name.startswith("CHEM-1_") for p in backups] == [True, True]
    native, scorm = sorted(backups, key=lambda p: p.name.endswith("_scorm12.zip"))
    assert scorm.name.endswith("_scorm12.zip") and native.stat().st_mode & 0o777 == 0o600
    with zipfile.ZipFile(scorm) as package:
        assert "imsmanifest.xml" in package.namelist()

    write_then_rename(layout.sync, "deletecourses.csv", b"CHEM-1\n")
    assert daemon.wait_file("deletecourses.csv")["state"] == "done"
    assert layout.query("SELECT id FROM courses WHERE shortname = 'CHEM-1'") == []

    write_then_rename(layout.sync, "restore-chem.zip", native.read_bytes())
    entry = daemon.wait_file("restore-chem.zip")
    assert (entry["state"], entry["processor"]) == ("done", "course_import"), entry["error"]
    (archived,) = layout.archived("restore-chem.zip")
    assert "error" not in {r["result"] for r in layout.report_of(archived)["rows"]}
    after = course_content(layout, "CHEM-1")
    assert after == before
    assert daemon.errors() == []
