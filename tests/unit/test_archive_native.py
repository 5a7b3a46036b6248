"""syncd's native backup (syncd/archives/native.py): what write_native writes, and every
way read_syncd refuses a damaged or forged backup — each an ArchiveError naming the
archive and the member (``files/<sha256>``) or the manifest field."""

from __future__ import annotations

import hashlib
import io
import json
import unicodedata
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from syncd.archives.model import CourseArchive
from syncd.archives.native import FILES, MANIFEST, BackupError, read_syncd, write_native
from syncd.archives.readers import read_course
from syncd.archives.safe import ArchiveError, Limits, open_archive
from syncd.processors.course_backup import CourseContent, read_content
from tests.archive_builders import write_zip
from tests.backup_samples import DOCUMENTS, SHORTNAME, expected_archive, seed_sample_course
from tests.fakes import FakePlatform

Manifest = dict[str, Any]


def content_of(fake: FakePlatform, shortname: str = SHORTNAME) -> CourseContent:
    """The course's content as course_backup reads it through the port."""
    with fake.transaction() as tx:
        [course] = tx.courses.find(shortnames=[shortname])
        categories = {c.id: c for c in tx.categories.all() if c.id is not None}
        return read_content(tx, course, categories)


def write(fake: FakePlatform, dest: Path, *, limits: Limits | None = None,
          open_blob: Callable[[str], BinaryIO] | None = None) -> Path:
    """write_native of the fake's sample course to ``dest``."""
    c = content_of(fake)
    write_native(dest, c.course, c.sections, c.documents, c.path, c.activities,
                 open_blob or fake.direct.files.open, category=c.category, limits=limits)
    return dest


def read(path: Path) -> CourseArchive:
    """read_syncd on ``path`` through the safe archive layer."""
    with open_archive(path, Limits()) as archive:
        return read_syncd(archive, path.name)


def members(path: Path) -> dict[str, bytes]:
    """Every member of the zip, in order."""
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


@pytest.fixture
def fake() -> FakePlatform:
    platform = FakePlatform()
    seed_sample_course(platform)
    return platform


@pytest.fixture
def good(fake: FakePlatform, tmp_path: Path) -> Path:
    """A native backup of the sample course."""
    return write(fake, tmp_path / "good.zip")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_read_syncd_gives_the_course_as_stored(fake: FakePlatform, good: Path) -> None:
    """The backup reads back as the stored course: fields, category path, sections, documents,
    learning path and activities, with each document pointing at its content member."""
    assert read(good) == expected_archive(fake)
    with open_archive(good, Limits()) as archive:
        assert read_course(archive, good.name).format == "syncd"  # registered in READERS


def test_the_manifest_is_readable_json_and_each_content_is_stored_once(good: Path) -> None:
    """The manifest is UTF-8 JSON (non-ASCII kept as is); one files/<sha256> per distinct content."""
    found = members(good)
    text = found[MANIFEST].decode("utf-8")
    assert "été" in text and json.loads(text)["syncd_course"] == 1
    blobs = {data for data, _ in DOCUMENTS.values()}
    assert set(found) == {MANIFEST} | {FILES + sha(data) for data in blobs}
    assert all(found[FILES + sha(data)] == data for data in blobs)


def test_a_very_compressible_document_is_stored_so_the_backup_reimports(tmp_path: Path) -> None:
    """A blob that would deflate past the import's ratio limit is stored uncompressed: the
    archive layer's zip-bomb check accepts the backup, and read_syncd verifies it."""
    fake = FakePlatform()
    seed_sample_course(fake)
    course = fake.course(SHORTNAME)
    assert course is not None and course.id is not None
    zeros = bytes(3 << 20)
    fake.seed_document(course.id, "vide.bin", zeros)
    path = write(fake, tmp_path / "zeros.zip")
    with zipfile.ZipFile(path) as archive:
        assert archive.getinfo(FILES + sha(zeros)).compress_type == zipfile.ZIP_STORED
        assert archive.getinfo(MANIFEST).compress_type == zipfile.ZIP_DEFLATED
    assert any(d.path == "vide.bin" and d.size == len(zeros) for d in read(path).documents)


@pytest.mark.parametrize(("limits", "message"), [
    (Limits(max_entries=4), r"^5 members, over the import limit of 4$"),
    (Limits(max_entry_bytes=25), r"^annexes/日本語/copie\.txt: 30 bytes, over the import limit of 25 "),
    (Limits(max_total_bytes=500), r"bytes in all, over the import limit of 500$"),
    (Limits(max_xml_bytes=100), r"^a manifest of \d+ bytes, over the limit of 100$"),
])
def test_a_course_over_the_import_limits_is_refused_before_writing(
    fake: FakePlatform, tmp_path: Path, limits: Limits, message: str
) -> None:
    """A backup that could not be imported again is refused, naming the limit; no file is left."""
    with pytest.raises(BackupError, match=message):
        write(fake, tmp_path / "out" / "big.zip", limits=limits)
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_an_existing_file_is_never_replaced(fake: FakePlatform, tmp_path: Path) -> None:
    """Publishing refuses a taken name (FileExistsError): the old file stays, no temp is left."""
    dest = tmp_path / "taken.zip"
    dest.write_bytes(b"older backup")
    with pytest.raises(FileExistsError):
        write(fake, dest)
    assert dest.read_bytes() == b"older backup"
    assert [p.name for p in tmp_path.iterdir()] == ["taken.zip"]


def test_a_blob_that_is_not_what_its_hash_says_is_refused(fake: FakePlatform, tmp_path: Path) -> None:
    """A damaged file store (a blob whose bytes changed) fails the backup; nothing is published."""
    def damaged(sha256: str) -> BinaryIO:
        data = fake.blobs()[sha256]
        return io.BytesIO(data[:-1] + b"?")

    with pytest.raises(BackupError, match="the file store is damaged"):
        write(fake, tmp_path / "b" / "damaged.zip", open_blob=damaged)
    assert list((tmp_path / "b").iterdir()) == []


# -- refusals ----------------------------------------------------------------------------------


def rebuilt(good: Path, dest: Path, change: Callable[[dict[str, bytes]], None]) -> Path:
    """A copy of the ``good`` backup whose members went through ``change``."""
    found = members(good)
    change(found)
    return write_zip(dest, found)


def edited(good: Path, dest: Path, edit: Callable[[Manifest], None]) -> Path:
    """A copy of the ``good`` backup whose manifest went through ``edit``."""
    def change(found: dict[str, bytes]) -> None:
        manifest = json.loads(found[MANIFEST])
        edit(manifest)
        found[MANIFEST] = json.dumps(manifest, ensure_ascii=False).encode("utf-8")
    return rebuilt(good, dest, change)


def refusal(path: Path) -> str:
    """The message of the ArchiveError read_syncd raises on ``path``."""
    with pytest.raises(ArchiveError) as info:
        read(path)
    message = str(info.value)
    assert message.startswith(f"{path.name}: "), message
    return message


def first_blob(found: dict[str, bytes]) -> str:
    return next(name for name in found if name.startswith(FILES))


def test_a_tampered_content_member_is_refused_naming_it(good: Path, tmp_path: Path) -> None:
    """A files/<sha256> member whose bytes changed (same size) fails on its hash, named."""
    name = first_blob(members(good))

    def tamper(found: dict[str, bytes]) -> None:
        data = found[name]
        found[name] = bytes([data[0] ^ 1]) + data[1:]

    message = refusal(rebuilt(good, tmp_path / "tampered.zip", tamper))
    assert f"member {name!r}: content does not match its name (sha256 " in message


def test_a_missing_content_member_is_refused_naming_it(good: Path, tmp_path: Path) -> None:
    """A document whose files/<sha256> member is gone fails, naming the member and the field."""
    name = first_blob(members(good))
    message = refusal(rebuilt(good, tmp_path / "missing.zip", lambda found: found.pop(name)))
    assert f"{MANIFEST}: documents[" in message
    assert f"].sha256: its content {name} is missing from the archive" in message


def test_a_missing_manifest_is_refused(good: Path, tmp_path: Path) -> None:
    """read_syncd on a zip without syncd-course.json names the missing member."""
    message = refusal(rebuilt(good, tmp_path / "nomanifest.zip", lambda found: found.pop(MANIFEST)))
    assert f"member {MANIFEST!r}: no such member" in message


def _set(*keys: str | int, value: object) -> Callable[[Manifest], None]:
    def edit(manifest: Manifest) -> None:
        target: Any = manifest
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
    return edit


def _drop(key: str) -> Callable[[Manifest], None]:
    return lambda manifest: manifest.pop(key)


def _append(key: str, index: int) -> Callable[[Manifest], None]:
    return lambda manifest: manifest[key].append(dict(manifest[key][index]))


# (case, edit, what the message says after "syncd-course.json: ")
MANIFEST_CASES: list[tuple[str, Callable[[Manifest], None], str]] = [
    ("newer version", _set("syncd_course", value=2),
     "(top).syncd_course: format version 2; this syncd reads 1"),
    ("version as text", _set("syncd_course", value="1"),
     "(top).syncd_course: must be a whole number, not '1'"),
    ("version as bool", _set("syncd_course", value=True),
     "(top).syncd_course: must be a whole number, not True"),
    ("no course", _drop("course"), "(top).course: missing"),
    ("course not an object", _set("course", value=[]), "(top).course: must be an object, not []"),
    ("visible as text", _set("course", "visible", value="yes"),
     "course.visible: must be true or false, not 'yes'"),
    ("shortname null", _set("course", "shortname", value=None),
     "course.shortname: must be a string, not None"),
    ("groupmode as text", _set("course", "groupmode", value="1"), "course.groupmode: must be a whole number"),
    ("bad date", _set("course", "startdate", value="next monday"),
     "course.startdate: not an ISO 8601 date: 'next monday'"),
    ("category with a slash", _set("course", "category", value=["A/B"]),
     "course.category: must be a list of non-empty names without '/'"),
    ("sections not a list", _set("sections", value={"0": "x"}), "(top).sections: must be a list"),
    ("section number as text", _set("sections", 1, "number", value="1"),
     "sections[1].number: must be a whole number"),
    ("negative section", _set("sections", 1, "number", value=-1), "sections[1].number: must be 0 or more"),
    ("section twice", _append("sections", 1), "(top).sections: a section number appears twice"),
    ("document size as text", _set("documents", 0, "size", value="30"),
     "documents[0].size: must be a whole number"),
    ("document size wrong", _set("documents", 0, "size", value=31),
     "documents[0].size: 31 bytes, but files/"),
    ("document without title", lambda m: m["documents"][0].pop("title"), "documents[0].title: missing"),
    ("sha256 in capitals", lambda m: m["documents"][0].update(sha256=m["documents"][0]["sha256"].upper()),
     "documents[0].sha256: not a lowercase hex sha256"),
    ("document twice", _append("documents", 0), "(top).documents: a path appears twice"),
    ("path item of an unknown kind", _set("path", 0, "kind", value="quiz"), "path item 'm1': kind 'quiz'"),
    ("path item without its parent", _set("path", 1, "parent", value="nowhere"),
     "path item 'l1': no parent 'nowhere' in the path"),
    ("path cycle", _set("path", 0, "parent", value="m1.1"),
     "path item 'm1': its parents form a cycle through 'm1'"),
    ("activity key twice", _set("activities", 1, "key", value="act-1"), "activity key 'act-1' twice"),
]


@pytest.mark.parametrize(("case", "edit", "expected"), MANIFEST_CASES, ids=[c[0] for c in MANIFEST_CASES])
def test_a_bad_manifest_is_refused_naming_the_field(
    good: Path, tmp_path: Path, case: str, edit: Callable[[Manifest], None], expected: str
) -> None:
    """Each wrong version, type, value or tree in the manifest is an ArchiveError that names
    the manifest and the field (``documents[0].size``), never a crash or a silent default."""
    message = refusal(edited(good, tmp_path / "bad.zip", edit))
    assert f"{MANIFEST}: {expected}" in message, message


@pytest.mark.parametrize("path", [
    "../evil.txt", "cours/../../evil.txt", "/etc/passwd", "C:/Windows/evil.txt", "cours\\evil.txt",
    "cours//double.txt", "./cours/x.txt", "cours/", "", "nul\x00.txt", "ctrl\x07.txt",
    unicodedata.normalize("NFD", "cours/Résumé été.txt"),
])
def test_a_document_path_that_could_escape_is_refused(good: Path, tmp_path: Path, path: str) -> None:
    """Absolute paths, '..', drive letters, backslashes, empty parts, control characters and
    names not in NFC are refused in a document's path, naming the field: course_import never
    gets a path that could leave the course (or differ from the name a zip member would have)."""
    message = refusal(edited(good, tmp_path / "escape.zip", _set("documents", 0, "path", value=path)))
    assert f"{MANIFEST}: documents[0].path: " in message, message


@pytest.mark.parametrize(("data", "expected"), [
    (b"\xff\xfe{}", "not valid UTF-8 JSON"),
    (b'{"syncd_course": 1,', "not valid UTF-8 JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "not valid UTF-8 JSON"),
    (b'{"syncd_course": 1' + b"0" * 5000 + b"}", "not valid UTF-8 JSON"),
    (b"[1]", "(top) must be an object"),
    (b"{}", "(top).syncd_course: missing"),
])
def test_a_manifest_that_is_not_a_json_object_is_refused(tmp_path: Path, data: bytes, expected: str) -> None:
    """Bad UTF-8, broken or deeply nested JSON, a number of thousands of digits, or a top
    level that is not the expected object: an ArchiveError, never a crash."""
    message = refusal(write_zip(tmp_path / "notjson.zip", {MANIFEST: data}))
    assert f"{MANIFEST}: {expected}" in message, message
