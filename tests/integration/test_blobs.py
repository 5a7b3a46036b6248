"""The blob store of the embedded platform on a real filesystem: layout, modes, atomic puts, sweep."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from syncd.platform.sqlstore import BlobStore, NoFilesRootError, SqlPlatform, create_schema
from syncd.sqlutil import make_engine

#: an mtime long ago, and a sweep limit after it and before any file this test writes now
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)
LIMIT = datetime(2021, 1, 1, tzinfo=UTC)


def sha(data: bytes) -> str:
    """The sha256 of ``data`` in hex."""
    return hashlib.sha256(data).hexdigest()


def mode(path: Path) -> int:
    """The permission bits of ``path``."""
    return stat.S_IMODE(path.stat().st_mode)


def age(path: Path) -> None:
    """Make ``path`` look written :data:`LONG_AGO`."""
    os.utime(path, (LONG_AGO.timestamp(), LONG_AGO.timestamp()))


def test_put_writes_one_private_file_per_content(tmp_path: Path) -> None:
    """A blob is <root>/<sha[:2]>/<sha>, mode 0600 in 0700 folders; the same content twice is one file."""
    root = tmp_path / "data" / "files"
    blobs = BlobStore(root)
    digest, size = blobs.put([b"abc", b"def"])
    again = blobs.put([b"abcdef"])
    blobs.put([b"other"])
    assert (digest, size) == again == (sha(b"abcdef"), 6)
    target = root / digest[:2] / digest
    assert target.read_bytes() == b"abcdef" and blobs.path(digest) == target
    assert mode(target) == 0o600 and mode(target.parent) == 0o700 and mode(root) == 0o700
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == sorted(
        f"{d[:2]}/{d}" for d in (digest, sha(b"other"))
    )


def test_put_of_present_content_touches_it_without_rewriting(tmp_path: Path) -> None:
    """Putting stored content again leaves its bytes and inode alone but renews its mtime (for sweeps)."""
    blobs = BlobStore(tmp_path)
    digest, _ = blobs.put([b"same"])
    target = blobs.path(digest)
    age(target)
    inode = target.stat().st_ino
    blobs.put([b"sa", b"me"])
    assert target.stat().st_ino == inode and target.stat().st_mtime > LIMIT.timestamp()


def test_a_failed_put_leaves_no_temp_file_and_no_blob(tmp_path: Path) -> None:
    """When the chunks raise midway, the temp file is removed and nothing is stored."""
    blobs = BlobStore(tmp_path)

    def chunks() -> Iterator[bytes]:
        yield b"half of it"
        raise OSError("upload cut")

    with pytest.raises(OSError, match="upload cut"):
        blobs.put(chunks())
    assert list(tmp_path.iterdir()) == [] and not blobs.exists(sha(b"half of it"))


def test_no_temp_file_is_left_after_puts(tmp_path: Path) -> None:
    """After puts (new and present content) the root holds only blob folders, no hidden temp file."""
    blobs = BlobStore(tmp_path)
    for data in (b"a", b"b", b"a"):
        blobs.put([data])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({sha(b"a")[:2], sha(b"b")[:2]})


def test_lookups_refuse_paths_that_are_not_hashes(tmp_path: Path) -> None:
    """A hash that could name another file (../, uppercase, short) is a ValueError, not a path."""
    (tmp_path / "secret").write_text("x")
    blobs = BlobStore(tmp_path / "files")
    for bad in ("../secret", "", "A" * 64, "a" * 63):
        with pytest.raises(ValueError, match="sha256"):
            blobs.open(bad)
    with pytest.raises(FileNotFoundError, match="no blob"):
        blobs.open(sha(b"absent"))


def test_sweep_removes_old_unreferenced_blobs_and_temp_files(tmp_path: Path) -> None:
    """sweep removes unreferenced blobs and temp files older than the limit; it keeps referenced,
    recent and foreign files, and drops folders it emptied."""
    blobs = BlobStore(tmp_path)
    kept, orphan, recent = (blobs.put([d])[0] for d in (b"kept", b"orphan", b"recent"))
    temp = tmp_path / ".put-crashed.tmp"
    temp.write_bytes(b"partial")
    foreign = tmp_path / "README"
    foreign.write_text("not a blob")
    for path in (blobs.path(kept), blobs.path(orphan), temp, foreign):
        age(path)
    removed = blobs.sweep({kept}, older_than=LIMIT)
    assert removed == 2
    assert blobs.exists(kept) and blobs.exists(recent) and not blobs.exists(orphan)
    assert not temp.exists() and foreign.exists()
    assert blobs.path(orphan).parent.exists() == (orphan[:2] in (kept[:2], recent[:2]))
    assert BlobStore(tmp_path / "never-made").sweep(set(), older_than=LIMIT) == 0


def test_sql_platform_without_files_root_says_so(tmp_path: Path) -> None:
    """tx.files of a store built without files_root raises NoFilesRootError naming the fix; with one,
    blobs go under that folder."""
    engine = make_engine(f"sqlite:///{tmp_path / 'syncd.db'}")
    create_schema(engine)
    try:
        with SqlPlatform(engine).transaction() as tx, pytest.raises(NoFilesRootError, match="files_root"):
            _ = tx.files
        with SqlPlatform(engine, tmp_path / "files").transaction() as tx:
            digest, _ = tx.files.put([b"x"])
        assert (tmp_path / "files" / digest[:2] / digest).read_bytes() == b"x"
    finally:
        engine.dispose()
