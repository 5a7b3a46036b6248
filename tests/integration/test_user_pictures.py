"""user_pictures through the real archive layer: unsafe zips fail whole before anything is
written, and pictures land in the SQL store's files folder."""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import Engine

from syncd.domain import RejectFile
from syncd.platform.base import UserRecord
from syncd.platform.sqlstore import SqlPlatform, create_schema
from syncd.processors.user_pictures import SPEC
from tests.archive_builders import write_zip
from tests.fakes import FakePlatform
from tests.pictures import apply_items, jpeg, png, reasons


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` (hidden ones too) with its content."""
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def stored_zip(path: Path, members: dict[str, bytes]) -> Path:
    """A zip whose entries are stored (not deflated), so their bytes can be patched in place."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def set_encrypted_flag(path: Path, name: bytes) -> None:
    """Set the 'encrypted' bit of entry ``name`` in its central and local headers."""
    data = bytearray(path.read_bytes())
    central = data.index(b"PK\x01\x02")
    while data[central + 46:central + 46 + len(name)] != name:
        central = data.index(b"PK\x01\x02", central + 1)
    (local,) = struct.unpack_from("<I", data, central + 42)
    data[central + 8] |= 0x01
    data[local + 6] |= 0x01
    path.write_bytes(bytes(data))


def unsafe_zip(tmp_path: Path, case: str) -> Path:
    """A picture zip with one unsafe thing in it (besides a good alice.jpg)."""
    path = tmp_path / f"userpictures_{case}.zip"
    good = {"alice.jpg": jpeg(8, 8)}
    if case == "slip":
        return write_zip(path, {**good, "../../etc/bob.png": png(4, 4)})
    if case == "absolute":
        return write_zip(path, {**good, "/var/lib/bob.png": png(4, 4)})
    if case == "bomb":
        return write_zip(path, {**good, "bob.png": png(4, 4) + bytes(4 << 20)})
    if case == "duplicate":
        with pytest.warns(UserWarning, match="Duplicate name"), zipfile.ZipFile(path, "w") as archive:
            archive.writestr("alice.jpg", jpeg(8, 8))
            archive.writestr("alice.jpg", jpeg(9, 9))
        return path
    stored_zip(path, {**good, "bob.png": png(4, 4, b"payload-payload")})
    if case == "encrypted":
        set_encrypted_flag(path, b"bob.png")
    elif case == "crc":
        raw = bytearray(path.read_bytes())
        raw[raw.index(b"payload-payload") + 3] ^= 0xFF
        path.write_bytes(bytes(raw))
    elif case == "truncated":
        path.write_bytes(path.read_bytes()[:-30])
    return path


@pytest.mark.parametrize(("case", "expected"), [
    ("slip", r"member '\.\./\.\./etc/bob\.png': '\.\.' in the path \(zip-slip\)"),
    ("absolute", r"member '/var/lib/bob\.png': absolute path"),
    ("bomb", r"member 'bob\.png': .*compression ratio"),
    ("encrypted", r"member 'bob\.png': encrypted entry"),
    ("crc", r"member 'bob\.png': .*CRC"),
    ("duplicate", r"member 'alice\.jpg': duplicate entry"),
    ("truncated", r"corrupt or truncated zip archive"),
])
def test_an_unsafe_zip_fails_whole_and_writes_nothing(tmp_path: Path, case: str, expected: str) -> None:
    """Zip-slip, absolute names, bombs, encryption, CRC errors, duplicates and truncation each
    fail the file with a message naming the archive (and the entry); nothing is written."""
    path = unsafe_zip(tmp_path, case)
    fake = FakePlatform()
    fake.seed(UserRecord("alice"), UserRecord("bob"))
    before = snapshot(tmp_path)
    with pytest.raises(RejectFile, match=expected) as info:
        apply_items(fake, SPEC, path)
    assert str(info.value).startswith(path.name)
    assert fake.pictures() == {} and fake.blobs() == {}
    assert snapshot(tmp_path) == before


def test_pictures_on_sql_land_in_the_files_folder(tmp_path: Path, db_engine: Engine) -> None:
    """Through the SQL store: created, error and unchanged lines; the blob is a 0600 file."""
    create_schema(db_engine)
    platform = SqlPlatform(db_engine, tmp_path / "files")
    with platform.transaction() as tx:
        tx.users.add([UserRecord("alice"), UserRecord("élodie")])
    data = png(32, 32)
    path = write_zip(tmp_path / "userpictures_sql.zip", {"alice.png": data, "Élodie.GIF": jpeg(3, 3),
                                                          "zoé.png": png(1, 1)})
    first = apply_items(platform, SPEC, path)
    assert [r.outcome.value for r in first] == ["created", "created", "error"]
    assert reasons(first)[2] == ("error", "zoé.png: unknown user 'zoé' (username)")
    assert {r.outcome.value for r in apply_items(platform, SPEC, path)} == {"unchanged", "error"}
    with platform.transaction() as tx:
        users = tx.users.find(usernames=["alice", "élodie"])
        pictures = tx.pictures.find([u.id for u in users if u.id is not None])
    assert sorted(p.mimetype for p in pictures.values()) == ["image/jpeg", "image/png"]
    digest = next(p.sha256 for p in pictures.values() if p.mimetype == "image/png")
    blob = tmp_path / "files" / digest[:2] / digest
    assert blob.read_bytes() == data
    assert blob.stat().st_mode & 0o777 == 0o600
