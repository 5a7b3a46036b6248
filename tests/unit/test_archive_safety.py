"""Every archive refusal of syncd.archives.safe: a clear ArchiveError naming the member and
the reason, and nothing written anywhere (target folder included)."""

from __future__ import annotations

import io
import os
import stat
import struct
import tarfile
import warnings
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from syncd.archives.safe import ArchiveError, Limits, open_archive
from syncd.domain import RejectFile
from tests.archive_builders import write_tar, write_zip

DEFAULT = Limits()
SMALL = Limits(ratio_floor=64 * 1024)


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` (hidden ones too) with its content."""
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def refused(tmp_path: Path, archive: Path, limits: Limits = DEFAULT) -> str:
    """Open ``archive`` and copy every member into tmp_path/target; assert an ArchiveError
    and that no file appeared or changed anywhere under tmp_path. Returns the message."""
    target = tmp_path / "target"
    target.mkdir(exist_ok=True)
    before = snapshot(tmp_path)
    with pytest.raises(ArchiveError) as info, open_archive(archive, limits) as opened:
        for name in opened.names():
            opened.copy_to(name, target / name)
    assert snapshot(tmp_path) == before
    assert isinstance(info.value, RejectFile)
    return str(info.value)


def tar_with(path: Path, *infos: tuple[tarfile.TarInfo, bytes | None], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as archive:
        for info, data in infos:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def member(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"",
           link: str = "") -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, len(data) if kind == tarfile.REGTYPE else 0
    return info, data if kind == tarfile.REGTYPE else None


# -- names ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "reason"), [
    ("../evil.txt", "'..' in the path"),
    ("docs/../../evil.txt", "'..' in the path"),
    ("/etc/cron.d/evil", "absolute path"),
    ("C:/Windows/evil.txt", "drive letter"),
    ("..\\evil.txt", "backslash"),
])
def test_zip_refuses_escaping_names(tmp_path: Path, name: str, reason: str) -> None:
    """Zip-slip, absolute, drive-letter and backslash names are refused, naming the member."""
    message = refused(tmp_path, write_zip(tmp_path / "a.zip", {"ok.txt": b"ok", name: b"x"}))
    assert reason in message and repr(name) in message and "a.zip" in message


@pytest.mark.parametrize(("name", "reason"), [
    ("../../evil.txt", "'..' in the path"),
    ("/tmp/evil.txt", "absolute path"),
])
def test_tar_refuses_escaping_names(tmp_path: Path, name: str, reason: str) -> None:
    """Zip-slip and absolute names in a tar.gz are refused like in a zip."""
    message = refused(tmp_path, write_tar(tmp_path / "a.tar.gz", {"ok.txt": b"ok", name: b"x"}))
    assert reason in message and repr(name) in message


def test_zip_refuses_duplicate_names_after_normalisation(tmp_path: Path) -> None:
    """Two entries that normalise to one name ('a/b.txt', './a//b.txt') are refused."""
    message = refused(tmp_path, write_zip(tmp_path / "d.zip", {"a/b.txt": b"1", "./a//b.txt": b"2"}))
    assert "duplicate entry" in message and "'a/b.txt'" in message


def test_zip_refuses_names_equal_after_unicode_normalisation(tmp_path: Path) -> None:
    """'café' written composed (NFC) and decomposed (NFD) is one name: refused as a duplicate."""
    members = {"caf\u00e9.txt": b"1", "cafe\u0301.txt": b"2"}
    assert "duplicate entry" in refused(tmp_path, write_zip(tmp_path / "u.zip", members))


def test_zip_refuses_exact_duplicate_entries(tmp_path: Path) -> None:
    """A zip holding the same name twice is refused."""
    path = tmp_path / "d.zip"
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w") as archive:
        warnings.simplefilter("ignore")
        archive.writestr("x.txt", b"1")
        archive.writestr("x.txt", b"2")
    assert "duplicate entry" in refused(tmp_path, path)


def test_tar_refuses_duplicate_entries(tmp_path: Path) -> None:
    """A tar holding the same name twice (an appended update) is refused."""
    path = tar_with(tmp_path / "d.tar.gz", member("x.txt", data=b"1"), member("x.txt", data=b"2"))
    assert "duplicate entry" in refused(tmp_path, path)


def test_names_are_case_sensitive(tmp_path: Path) -> None:
    """'A.txt' and 'a.txt' are two members, not duplicates."""
    with open_archive(write_zip(tmp_path / "c.zip", {"A.txt": b"1", "a.txt": b"2"}), Limits()) as archive:
        assert archive.names() == ["A.txt", "a.txt"]


# -- member types ---------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "link", "reason"), [
    (tarfile.SYMTYPE, "/etc/passwd", "symbolic link (to '/etc/passwd')"),
    (tarfile.LNKTYPE, "ok.txt", "hard link (to 'ok.txt')"),
    (tarfile.CHRTYPE, "", "device file"),
    (tarfile.BLKTYPE, "", "device file"),
    (tarfile.FIFOTYPE, "", "FIFO"),
])
def test_tar_refuses_links_devices_and_fifos(tmp_path: Path, kind: bytes, link: str, reason: str) -> None:
    """Symlinks, hard links, character/block devices and FIFOs in a tar are refused."""
    path = tar_with(tmp_path / "t.tar.gz", member("ok.txt", data=b"ok"), member("special", kind, link=link))
    message = refused(tmp_path, path)
    assert reason in message and "'special'" in message


def test_zip_refuses_symlink_entries(tmp_path: Path) -> None:
    """A zip entry carrying a Unix symlink mode is refused."""
    path = tmp_path / "s.zip"
    with zipfile.ZipFile(path, "w") as archive:
        info = zipfile.ZipInfo("link")
        info.create_system, info.external_attr = 3, (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, "/etc/passwd")
    assert "symbolic link" in refused(tmp_path, path)


# -- bombs and limits -------------------------------------------------------------------------

def test_zip_bomb_by_entry_ratio(tmp_path: Path) -> None:
    """An entry inflating over 200 times its compressed size (past the floor) is refused."""
    message = refused(tmp_path, write_zip(tmp_path / "bomb.zip", {"zeros.bin": bytes(4 << 20)}))
    assert "compression ratio" in message and "'zeros.bin'" in message


def test_zip_bomb_by_total_size(tmp_path: Path) -> None:
    """Entries each within the entry limit but together over the total limit are refused."""
    members = {f"part{n}.bin": os.urandom(40_000) for n in range(4)}
    limits = Limits(max_total_bytes=100_000, max_entry_bytes=50_000)
    assert "in total" in refused(tmp_path, write_zip(tmp_path / "t.zip", members), limits)


def test_entry_over_the_entry_limit(tmp_path: Path) -> None:
    """An entry declaring more than max_entry_bytes is refused, in zip and tar."""
    limits, members = Limits(max_entry_bytes=10_000), {"big": os.urandom(20_000)}
    assert "entry limit" in refused(tmp_path, write_zip(tmp_path / "e.zip", members), limits)
    assert "entry limit" in refused(tmp_path, write_tar(tmp_path / "e.tgz", members), limits)


def test_too_many_entries(tmp_path: Path) -> None:
    """More entries than max_entries is refused, in zip and tar."""
    members = {f"f{n}.txt": b"x" for n in range(6)}
    limits = Limits(max_entries=5)
    assert "6 entries" in refused(tmp_path, write_zip(tmp_path / "m.zip", members), limits)
    assert "more than 5 entries" in refused(tmp_path, write_tar(tmp_path / "m.tgz", members), limits)


def test_tar_bomb_by_stream_ratio(tmp_path: Path) -> None:
    """A tar.gz whose decompressed stream outgrows the ratio limit is refused while scanning."""
    message = refused(tmp_path, write_tar(tmp_path / "bomb.tar.gz", {"zeros.bin": bytes(2 << 20)}), SMALL)
    assert "compression ratio" in message


def test_tar_pax_header_bomb(tmp_path: Path) -> None:
    """A pax header claiming megabytes is refused before tarfile reads it into memory."""
    path = tmp_path / "pax.tar"
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo("x.txt")
        info.pax_headers = {"comment": "x" * (2 << 20)}
        archive.addfile(info, io.BytesIO(b""))
    assert "tar header asks to read" in refused(tmp_path, path)


def _zip_patch(path: Path, name: bytes, patch: Callable[[bytearray, int, int], None]) -> None:
    """Apply ``patch(data, local_header_offset, central_header_offset)`` to the entry ``name``."""
    data = bytearray(path.read_bytes())
    local = data.index(b"PK\x03\x04" + data[4:26] + struct.pack("<H", len(name)))
    central = data.index(b"PK\x01\x02")
    while data[central + 46:central + 46 + len(name)] != name:
        central = data.index(b"PK\x01\x02", central + 1)
    patch(data, local, central)
    path.write_bytes(bytes(data))


def test_zip_entry_lying_about_its_size(tmp_path: Path) -> None:
    """An entry whose headers claim 1000 bytes but whose stream inflates to 4 MiB yields
    at most the claimed bytes, then fails (nested/quine-like archives gain nothing)."""
    path = write_zip(tmp_path / "lie.zip", {"inner.zip": bytes(4 << 20)})

    def claim_small(data: bytearray, local: int, central: int) -> None:
        struct.pack_into("<I", data, local + 22, 1000)
        struct.pack_into("<I", data, central + 24, 1000)

    _zip_patch(path, b"inner.zip", claim_small)
    message = refused(tmp_path, path)
    assert "'inner.zip'" in message and "corrupt" in message


def test_zip_overlapping_entries(tmp_path: Path) -> None:
    """Two entries pointing at the same data (a non-recursive zip bomb) are refused."""
    path = tmp_path / "overlap.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.txt", b"a" * 1000)
    data = path.read_bytes()
    central = data.index(b"PK\x01\x02")
    entry = data[central:data.index(b"PK\x05\x06")]
    twin = entry[:46] + b"b.txt" + entry[51:]
    end = bytearray(data[data.index(b"PK\x05\x06"):])
    struct.pack_into("<HHI", end, 8, 2, 2, len(entry) * 2)
    path.write_bytes(data[:central] + entry + twin + bytes(end))
    assert "overlap" in refused(tmp_path, path)


# -- encryption and corruption ------------------------------------------------------------------

def test_zip_encrypted_entry(tmp_path: Path) -> None:
    """A stored entry with the encryption flag bit set is refused."""
    path = tmp_path / "enc.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("secret.txt", b"plain")

    def set_flag(data: bytearray, local: int, central: int) -> None:
        data[local + 6] |= 0x01
        data[central + 8] |= 0x01

    _zip_patch(path, b"secret.txt", set_flag)
    message = refused(tmp_path, path)
    assert "encrypted" in message and "'secret.txt'" in message


def test_zip_crc_mismatch(tmp_path: Path) -> None:
    """A flipped data byte is caught by the CRC check on read; no partial file is left."""
    path = tmp_path / "crc.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("data.txt", b"0123456789" * 100)
    raw = bytearray(path.read_bytes())
    raw[raw.index(b"0123456789") + 5] ^= 0xFF
    path.write_bytes(bytes(raw))
    message = refused(tmp_path, path)
    assert "CRC" in message and "'data.txt'" in message


@pytest.mark.parametrize("suffix", ["zip", "tar.gz"])
def test_truncated_archives(tmp_path: Path, suffix: str) -> None:
    """An archive cut in the middle is refused as corrupt or truncated."""
    members = {f"f{n}.bin": os.urandom(20_000) for n in range(3)}
    path = (write_zip if suffix == "zip" else write_tar)(tmp_path / f"cut.{suffix}", members)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert "truncated" in refused(tmp_path, path)


def test_tar_corrupt_header_mid_archive(tmp_path: Path) -> None:
    """A garbled header after the first member (which tarfile would take as the end) is refused."""
    path = write_tar(tmp_path / "g.tar", {"a.txt": b"a" * 10, "b.txt": b"b" * 10}, compression="")
    raw = bytearray(path.read_bytes())
    raw[1024:1024 + 100] = b"\xff" * 100  # the second member's header
    path.write_bytes(bytes(raw))
    assert "corrupt tar header at offset 1024" in refused(tmp_path, path)


def test_corrupt_deflate_stream(tmp_path: Path) -> None:
    """Garbage in place of a deflate stream is refused on read."""
    path = write_zip(tmp_path / "bad.zip", {"a.txt": os.urandom(5000)})
    raw = bytearray(path.read_bytes())
    start = raw.index(b"a.txt") + 5
    raw[start:start + 200] = zlib.compress(b"")[:1] * 200
    path.write_bytes(bytes(raw))
    assert "'a.txt'" in refused(tmp_path, path)


def test_gzip_that_is_not_a_tar(tmp_path: Path) -> None:
    """A gzip stream that holds no tar archive is refused."""
    import gzip

    path = tmp_path / "users.csv.gz"
    path.write_bytes(gzip.compress(b"username,firstname\n" * 50))
    assert "tar archive" in refused(tmp_path, path)


def test_not_an_archive(tmp_path: Path) -> None:
    """A file with no zip/tar/gzip/bzip2/xz signature is refused by its content, whatever its name."""
    path = tmp_path / "course.mbz"
    path.write_bytes(b"username,firstname\nalice,Alice\n")
    assert "not an archive" in refused(tmp_path, path)


def test_archive_path_that_is_a_symlink(tmp_path: Path) -> None:
    """open_archive never follows a symlink to the archive itself."""
    real = write_zip(tmp_path / "real.zip", {"a.txt": b"a"})
    link = tmp_path / "link.zip"
    link.symlink_to(real)
    assert "cannot be opened" in refused(tmp_path, link)


def test_read_refuses_member_over_max_bytes(tmp_path: Path) -> None:
    """read(name, max_bytes) refuses a member declaring more than max_bytes."""
    with open_archive(write_zip(tmp_path / "r.zip", {"a.txt": b"x" * 100}), Limits()) as archive, \
            pytest.raises(ArchiveError, match="over the limit of 10"):
        archive.read("a.txt", 10)


def test_unknown_member(tmp_path: Path) -> None:
    """Asking for a member the archive lacks is an ArchiveError naming it."""
    with open_archive(write_zip(tmp_path / "r.zip", {"a.txt": b"x"}), Limits()) as archive, \
            pytest.raises(ArchiveError, match=r"'b\.txt': no such member"):
        archive.size("b.txt")
