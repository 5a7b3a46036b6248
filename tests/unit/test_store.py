"""Unit tests of the <data> layout, atomic moves and private writes."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path, PurePosixPath

import pytest

from syncd.domain import RejectFile
from syncd.intake.store import RESERVED, FileStore

WHEN = datetime(2026, 9, 1, 8, 5, 3)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    """A store with its layout created."""
    fs = FileStore(tmp_path / "data")
    fs.ensure_layout()
    return fs


def dropped(store: FileStore, rel: str, data: bytes = b"id\n1\n") -> Path:
    path = store.sync_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (1_700_000_000, 1_700_000_000))
    return path


def no_exdev(src: Path, dest: Path) -> None:
    raise OSError(errno.EXDEV, "Invalid cross-device link")


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_layout_created_with_private_modes(store: FileStore) -> None:
    """ensure_layout creates every folder: sync/ 0770 for the SFTP group, the rest 0700."""
    private = [store.store_dir, store.cache_dir, store.state_dir, store.archives_dir,
               store.reports_dir, store.tryback_dir, store.failed_dir]
    assert {mode(p) for p in private} == {0o700}
    assert mode(store.sync_dir) == 0o770
    assert [p.name for p in (store.archives_dir, store.reports_dir, store.tryback_dir,
                             store.failed_dir)] == list(RESERVED)
    assert FileStore.RESERVED == RESERVED


def test_layout_never_changes_existing_modes(tmp_path: Path) -> None:
    """Existing folders keep their mode: a 0700 sync/ is not loosened to 0770."""
    (tmp_path / "sync").mkdir(mode=0o700)
    (tmp_path / "store").mkdir(mode=0o750)
    os.chmod(tmp_path / "store", 0o750)
    FileStore(tmp_path).ensure_layout()
    assert mode(tmp_path / "sync") == 0o700
    assert mode(tmp_path / "store") == 0o750
    assert mode(tmp_path / "store" / "archives") == 0o700


def test_relative_data_dir_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative data dir (dev checkout ./var) gives absolute paths."""
    monkeypatch.chdir(tmp_path)
    assert FileStore(Path("var")).sync_dir == tmp_path / "var" / "sync"


def test_store_path_keeps_subfolders_and_avoids_collisions(store: FileStore) -> None:
    """store_path_for keeps the sub-folders and adds -2, -3 before the extension when taken."""
    first = store.store_path_for(PurePosixPath("erp/users.csv"))
    assert first == store.store_dir / "erp" / "users.csv"
    first.parent.mkdir()
    first.write_bytes(b"")
    assert store.store_path_for(PurePosixPath("erp/users.csv")).name == "users-2.csv"
    (first.parent / "users-2.csv").write_bytes(b"")
    assert store.store_path_for(PurePosixPath("erp/users.csv")).name == "users-3.csv"


def test_store_path_collision_keeps_compound_extension(store: FileStore) -> None:
    """A taken course archive name gets its number before .tar.gz."""
    (store.store_dir / "course.tar.gz").write_bytes(b"")
    assert store.store_path_for(PurePosixPath("course.tar.gz")).name == "course-2.tar.gz"


@pytest.mark.parametrize(
    ("rel", "why"),
    [("/etc/passwd", "absolute"), ("../x.csv", "below store"), ("a/../../x.csv", "below store"),
     ("archives/x.csv", "reserved"), ("tryback", "reserved"), ("", "below store")],
)
def test_store_path_refuses_escapes_and_reserved(store: FileStore, rel: str, why: str) -> None:
    """Absolute paths, '..' and reserved first folders are refused, naming the path."""
    with pytest.raises(ValueError, match=why) as err:
        store.store_path_for(PurePosixPath(rel))
    assert repr(str(PurePosixPath(rel))) in str(err.value)


def test_reserved_name_deeper_is_allowed(store: FileStore) -> None:
    """Only the first part is checked against the reserved folders."""
    assert store.store_path_for(PurePosixPath("erp/archives/x.csv")).parent.name == "archives"


def test_move_in_same_filesystem(store: FileStore) -> None:
    """move_in renames the file into store/, creating sub-folders 0700, file 0600, mtime kept."""
    src = dropped(store, "erp/users.csv")
    os.chmod(src, 0o664)
    dest = store.store_path_for(PurePosixPath("erp/users.csv"))
    store.move_in(src, dest)
    assert not src.exists()
    assert dest.read_bytes() == b"id\n1\n"
    assert mode(dest) == 0o600
    assert mode(dest.parent) == 0o700
    assert dest.stat().st_mtime == 1_700_000_000


def test_move_in_across_filesystems(store: FileStore) -> None:
    """On EXDEV the file is copied, synced and renamed into place, and the source removed."""
    store._rename = no_exdev
    src = dropped(store, "users.csv", b"x" * 3_000_000)
    dest = store.store_path_for(PurePosixPath("deep/er/users.csv"))
    store.move_in(src, dest)
    assert not src.exists()
    assert dest.read_bytes() == b"x" * 3_000_000
    assert mode(dest) == 0o600
    assert dest.stat().st_mtime == 1_700_000_000
    assert names(dest.parent) == ["users.csv"]  # no temp file left


def test_move_in_across_filesystems_failure_keeps_source(
    store: FileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy that fails before its rename leaves the source in place and no temp file behind."""
    store._rename = no_exdev
    src = dropped(store, "users.csv")

    def no_space(tmp: Path, dest: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store, "_publish", no_space)
    dest = store.store_dir / "users.csv"
    with pytest.raises(OSError, match="No space"):
        store.move_in(src, dest)
    assert src.read_bytes() == b"id\n1\n"
    assert names(store.store_dir) == sorted(RESERVED)


def test_move_in_refuses_symlink(store: FileStore, tmp_path: Path) -> None:
    """A symlink in sync/ is refused (RejectFile) and neither it nor its target is touched."""
    target = tmp_path / "secret"
    target.write_bytes(b"secret")
    link = store.sync_dir / "users.csv"
    link.symlink_to(target)
    with pytest.raises(RejectFile, match="symbolic link"):
        store.move_in(link, store.store_dir / "users.csv")
    assert link.is_symlink()
    assert target.read_bytes() == b"secret"
    assert not (store.store_dir / "users.csv").exists()


@pytest.mark.parametrize("cross_fs", [False, True])
def test_move_in_never_overwrites(store: FileStore, cross_fs: bool) -> None:
    """An existing destination raises FileExistsError and both files stay as they were."""
    if cross_fs:
        store._rename = no_exdev
    src = dropped(store, "users.csv", b"new")
    dest = store.store_dir / "users.csv"
    dest.write_bytes(b"old")
    with pytest.raises(FileExistsError):
        store.move_in(src, dest)
    assert src.read_bytes() == b"new"
    assert dest.read_bytes() == b"old"


def test_copy_publish_never_overwrites_a_late_arrival(store: FileStore) -> None:
    """The cross-filesystem publish step refuses a destination that appeared meanwhile."""
    src = dropped(store, "users.csv", b"new")
    dest = store.store_dir / "users.csv"

    def exdev_then_race(a: Path, b: Path) -> None:
        dest.write_bytes(b"late")
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    store._rename = exdev_then_race
    with pytest.raises(FileExistsError):
        store.move_in(src, dest)
    assert dest.read_bytes() == b"late"
    assert src.read_bytes() == b"new"
    assert names(store.store_dir) == sorted([*RESERVED, "users.csv"])


def test_move_to_stays_inside_data_dir(store: FileStore, tmp_path: Path) -> None:
    """move_to refuses a destination outside <data>."""
    src = dropped(store, "users.csv")
    with pytest.raises(ValueError, match="outside"):
        store.move_to(src, tmp_path / "elsewhere.csv")
    assert src.exists()


def test_move_to_archive(store: FileStore) -> None:
    """move_to moves a stored file into a reserved folder under its dated name."""
    src = store.store_dir / "users.csv"
    src.write_bytes(b"data")
    dest = store.dated_name(store.archives_dir, "users.csv", WHEN)
    store.move_to(src, dest)
    assert dest.name == "20260901-080503_users.csv"
    assert dest.read_bytes() == b"data"
    assert mode(dest) == 0o600
    assert not src.exists()


def test_dated_name_collisions(store: FileStore) -> None:
    """dated_name strips folders and adds -2, -3 before the extension when the name is taken."""
    first = store.dated_name(store.archives_dir, "erp/users.csv", WHEN)
    assert first == store.archives_dir / "20260901-080503_users.csv"
    first.write_bytes(b"")
    second = store.dated_name(store.archives_dir, "users.csv", WHEN)
    assert second.name == "20260901-080503_users-2.csv"
    second.write_bytes(b"")
    assert store.dated_name(store.archives_dir, "users.csv", WHEN).name == (
        "20260901-080503_users-3.csv"
    )


def test_dated_name_report_twins_keep_their_suffix(store: FileStore) -> None:
    """A taken report name is numbered before .report.txt, so its JSON twin can follow."""
    (store.reports_dir / "20260901-080503_users.csv.report.txt").write_bytes(b"")
    name = store.dated_name(store.reports_dir, "users.csv.report.txt", WHEN).name
    assert name == "20260901-080503_users.csv-2.report.txt"


def test_dated_name_refuses_empty(store: FileStore) -> None:
    """A name with no file part is refused, naming it."""
    with pytest.raises(ValueError, match="'erp/'"):
        store.dated_name(store.archives_dir, "erp/", WHEN)


def test_write_private_is_atomic_and_private(store: FileStore) -> None:
    """write_private writes all chunks, mode 0600, creating the folder 0700, no temp left."""
    path = store.reports_dir / "sub" / "r.report.txt"
    store.write_private(path, [b"line 1\n", b"line 2\n"])
    assert path.read_bytes() == b"line 1\nline 2\n"
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert names(path.parent) == ["r.report.txt"]


def test_write_private_failure_leaves_old_file_and_no_temp(store: FileStore) -> None:
    """If producing the chunks fails, the old file is intact and no temp file is left."""
    path = store.state_dir / "state.json"
    store.write_private(path, [b"old"])

    def chunks() -> Iterator[bytes]:
        yield b"half"
        raise RuntimeError("generator broke")

    with pytest.raises(RuntimeError):
        store.write_private(path, chunks())
    assert path.read_bytes() == b"old"
    assert names(store.state_dir) == ["state.json"]


def test_open_private_creates_new_private_file(store: FileStore) -> None:
    """open_private creates a 0600 file and refuses an existing one."""
    path = store.tryback_dir / "users_tryback.csv"
    with store.open_private(path) as out:
        out.write(b"header\n")
    assert mode(path) == 0o600
    with pytest.raises(FileExistsError):
        store.open_private(path)
    assert path.read_bytes() == b"header\n"
