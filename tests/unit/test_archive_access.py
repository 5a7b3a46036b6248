"""What syncd.archives.safe accepts: formats by magic bytes, normalised names, bounded
reads, and copies written privately to the caller's path only."""

from __future__ import annotations

import hashlib
import io
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from syncd.archives.model import ArchiveDocument
from syncd.archives.readers import copy_document, in_archive_order, open_document
from syncd.archives.safe import Limits, member_name, open_archive
from tests.archive_builders import write_tar, write_zip

MEMBERS = {"imsmanifest.xml": b"<manifest/>", "lessons/Урок 1.html": b"<p>\xd0\x9f</p>", "日本/a.txt": b"a"}


@pytest.mark.parametrize(("writer", "name"), [
    (lambda p: write_zip(p, MEMBERS), "package.bin"),
    (lambda p: write_tar(p, MEMBERS, "gz"), "package.zip"),
    (lambda p: write_tar(p, MEMBERS, "bz2"), "x"),
    (lambda p: write_tar(p, MEMBERS, "xz"), "x.tar.gz"),
    (lambda p: write_tar(p, MEMBERS, ""), "x.mbz"),
])
def test_formats_told_by_content_not_name(tmp_path: Path, writer: object, name: str) -> None:
    """zip, tar.gz, tar.bz2, tar.xz and plain tar open whatever their file name says."""
    path = writer(tmp_path / name)  # type: ignore[operator]
    with open_archive(path, Limits()) as archive:
        assert archive.names() == list(MEMBERS)
        assert {n: archive.read(n, 1000) for n in archive.names()} == MEMBERS


def test_names_are_normalised(tmp_path: Path) -> None:
    """'./a//b.txt' reads as 'a/b.txt'; directory entries (and GNU tar's './') are not members."""
    path = tmp_path / "n.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        entries = (("./", tarfile.DIRTYPE), ("./a", tarfile.DIRTYPE), ("./a//b.txt", tarfile.REGTYPE))
        for name, kind in entries:
            info = tarfile.TarInfo(name)
            info.type, info.size = kind, 1 if kind == tarfile.REGTYPE else 0
            archive.addfile(info, io.BytesIO(b"b") if kind == tarfile.REGTYPE else None)
    with open_archive(path, Limits()) as archive:
        assert archive.names() == ["a/b.txt"]
        assert "a/b.txt" in archive and archive.size("a/b.txt") == 1


def test_member_names_are_nfc(tmp_path: Path) -> None:
    """A decomposed (NFD, macOS-style) name reads in its composed NFC form."""
    with open_archive(write_zip(tmp_path / "u.zip", {"cafe\u0301.txt": b"x"}), Limits()) as archive:
        assert archive.names() == ["caf\u00e9.txt"]


def test_utf8_names_without_the_flag(tmp_path: Path) -> None:
    """A UTF-8 name written without the zip UTF-8 flag (cp437 by the book) reads as UTF-8."""
    path = tmp_path / "legacy.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("Урок.txt", b"x")  # UTF-8 bytes, with the flag set
    raw = bytearray(path.read_bytes())
    for header in (b"PK\x03\x04", b"PK\x01\x02"):  # clear the flag in both headers
        at = raw.index(header)
        flag_at = at + (6 if header == b"PK\x03\x04" else 8)
        raw[flag_at + 1] &= ~0x08 & 0xFF
    path.write_bytes(bytes(raw))
    with open_archive(path, Limits()) as archive:
        assert archive.names() == ["Урок.txt"]


def test_member_name_rules() -> None:
    """member_name normalises and explains each refusal."""
    assert member_name("./a//b/./c.txt") == "a/b/c.txt"
    assert member_name("./", directory=True) == ""
    for bad, reason in (("a/\x00b", "NUL"), ("a\nb", "control"), ("", "empty"), ("a/\udcff", "UTF-8")):
        with pytest.raises(ValueError, match=reason):
            member_name(bad)


def test_copy_to_writes_a_private_file_and_returns_its_sha256(tmp_path: Path) -> None:
    """copy_to writes exactly dest (0600, parents 0700), returns the sha256, leaves no temp."""
    data = b"document body" * 1000
    dest = tmp_path / "store" / "ab" / "doc.bin"
    with open_archive(write_zip(tmp_path / "a.zip", {"doc.pdf": data}), Limits()) as archive:
        digest = archive.copy_to("doc.pdf", dest)
    assert digest == hashlib.sha256(data).hexdigest()
    assert dest.read_bytes() == data
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    assert stat.S_IMODE(dest.parent.stat().st_mode) == 0o700
    assert sorted(p.name for p in dest.parent.iterdir()) == ["doc.bin"]


def test_open_streams_in_chunks(tmp_path: Path) -> None:
    """open() streams a member in bounded reads and ends exactly at its size."""
    data = bytes(range(256)) * 2000
    with open_archive(write_tar(tmp_path / "a.tgz", {"big.bin": data}), Limits()) as archive, \
            archive.open("big.bin") as stream:
        chunks = list(iter(lambda: stream.read(10_000), b""))
    assert b"".join(chunks) == data and max(map(len, chunks)) <= 10_000


def test_generated_and_member_documents(tmp_path: Path) -> None:
    """open_document/copy_document read a member-backed and a generated document alike."""
    with open_archive(write_zip(tmp_path / "a.zip", {"f.txt": b"member"}), Limits()) as archive:
        from_member = ArchiveDocument("f.txt", 6, "f.txt")
        generated = ArchiveDocument("page.html", 4, "", b"page")
        with open_document(archive, from_member) as stream:
            assert stream.read() == b"member"
        digest = copy_document(archive, generated, tmp_path / "out" / "page.html")
    assert digest == hashlib.sha256(b"page").hexdigest()
    assert (tmp_path / "out" / "page.html").read_bytes() == b"page"


def test_documents_in_archive_order(tmp_path: Path) -> None:
    """in_archive_order puts generated documents first, then members as the archive stores them."""
    with open_archive(write_tar(tmp_path / "o.tgz", {"z.txt": b"z", "a.txt": b"a"}), Limits()) as archive:
        docs = [ArchiveDocument("a", 1, "a.txt"), ArchiveDocument("z", 1, "z.txt"),
                ArchiveDocument("g.html", 1, "", b"g")]
        assert [d.path for d in in_archive_order(archive, docs)] == ["g.html", "z", "a"]


def test_empty_zip(tmp_path: Path) -> None:
    """An empty zip (end record only) opens with no members."""
    with open_archive(write_zip(tmp_path / "empty.zip", {}), Limits()) as archive:
        assert archive.names() == []


def test_small_files_compressing_well_are_not_bombs(tmp_path: Path) -> None:
    """A page of spaces compresses far beyond 200:1 but stays under the ratio floor: accepted."""
    with open_archive(write_zip(tmp_path / "s.zip", {"blank.txt": b" " * 500_000}), Limits()) as archive:
        assert archive.read("blank.txt", 1 << 20) == b" " * 500_000
