"""Archives made by the real tools (GNU tar, Info-ZIP zip/unzip) through open_archive and
the readers: what they produce is read, what they can smuggle (links, FIFOs, encryption)
is refused, and documents copy out to the target folder only."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from syncd.archives.readers import copy_document, in_archive_order, read_course
from syncd.archives.safe import ArchiveError, Limits, open_archive
from tests.archive_builders import MbzActivity, ScormItem, build_mbz, build_scorm12


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(reason=f"no {name} on PATH")
    return found


def run(*args: str, cwd: Path) -> None:
    subprocess.run(args, cwd=cwd, check=True, capture_output=True)


def unpacked(archive: Path, into: Path) -> Path:
    """The members of a builder's zip as a real folder (made by unzip)."""
    into.mkdir()
    run(tool("unzip"), "-q", str(archive), cwd=into)
    return into


def snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def copy_all(archive_path: Path, target: Path) -> dict[str, str]:
    """Read the course and copy every document under ``target``; path → sha256."""
    with open_archive(archive_path, Limits()) as archive:
        course = read_course(archive, archive_path.name)
        return {doc.path: copy_document(archive, doc, target / doc.path)
                for doc in in_archive_order(archive, course.documents)}


@pytest.mark.parametrize("flag", ["-czf", "-cJf"])
def test_gnu_tar_moodle_backup(tmp_path: Path, flag: str) -> None:
    """A backup folder packed by GNU tar ('./' names, gzip or xz) reads; documents copy out intact."""
    source = build_mbz(tmp_path / "b.zip", fullname="Химия", activities=[
        MbzActivity("resource", 3, 0, "Таблица", files={"таблица.pdf": b"%PDF table"})])
    folder = unpacked(source, tmp_path / "src")
    run(tool("tar"), flag, str(tmp_path / "backup.mbz"), "-C", str(folder), ".", cwd=tmp_path)
    copied = copy_all(tmp_path / "backup.mbz", tmp_path / "target")
    assert copied == {"resource_3/таблица.pdf": hashlib.sha256(b"%PDF table").hexdigest()}
    assert (tmp_path / "target" / "resource_3" / "таблица.pdf").read_bytes() == b"%PDF table"


def test_info_zip_scorm_package(tmp_path: Path) -> None:
    """A SCORM folder zipped by Info-ZIP (extra fields, UTF-8 names) reads like ours."""
    source = build_scorm12(tmp_path / "s.zip", title="Урок",
                           items=[ScormItem("I", "Один", href="урок/index.html")],
                           files={"урок/index.html": b"<html>1</html>"})
    folder = unpacked(source, tmp_path / "src")
    run(tool("zip"), "-qr", str(tmp_path / "package.zip"), ".", cwd=folder)
    assert copy_all(tmp_path / "package.zip", tmp_path / "target") == {
        "урок/index.html": hashlib.sha256(b"<html>1</html>").hexdigest()}


def refused_after_tool(tmp_path: Path, archive: Path) -> str:
    before = snapshot(tmp_path)
    with pytest.raises(ArchiveError) as info, open_archive(archive, Limits()) as opened:
        for name in opened.names():
            opened.copy_to(name, tmp_path / "target" / name)
    assert snapshot(tmp_path) == before
    return str(info.value)


def test_gnu_tar_symlink_hardlink_and_fifo_are_refused(tmp_path: Path) -> None:
    """Links and FIFOs packed by GNU tar are refused; nothing lands anywhere."""
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "a.txt").write_text("a")
    cases = {"sym": lambda: (folder / "evil").symlink_to("/etc/passwd"),
             "hard": lambda: os.link(folder / "a.txt", folder / "evil"),
             "fifo": lambda: os.mkfifo(folder / "evil")}
    expected = {"sym": "symbolic link", "hard": "hard link", "fifo": "FIFO"}
    for case, make in cases.items():
        make()
        archive = tmp_path / f"{case}.tar.gz"
        run(tool("tar"), "-czf", str(archive), "-C", str(folder), "a.txt", "evil", cwd=tmp_path)
        (folder / "evil").unlink()
        assert expected[case] in refused_after_tool(tmp_path, archive)


def test_info_zip_symlink_and_encryption_are_refused(tmp_path: Path) -> None:
    """zip --symlinks entries and zip -P (encrypted) entries are refused."""
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "a.txt").write_text("secret")
    (folder / "link").symlink_to("/etc/passwd")
    run(tool("zip"), "-q", "--symlinks", str(tmp_path / "sym.zip"), "link", cwd=folder)
    run(tool("zip"), "-q", "-P", "pw", str(tmp_path / "enc.zip"), "a.txt", cwd=folder)
    assert "symbolic link" in refused_after_tool(tmp_path, tmp_path / "sym.zip")
    assert "encrypted" in refused_after_tool(tmp_path, tmp_path / "enc.zip")
