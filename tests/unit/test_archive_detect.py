"""detect and read_course: the format comes from the content (manifests and their
namespaces), never from the file name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from syncd.archives.detect import detect
from syncd.archives.readers import READERS, read_course
from syncd.archives.safe import ArchiveError, Limits, member_name, open_archive
from tests.archive_builders import (
    BitrixLesson,
    CcItem,
    MbzActivity,
    ScormItem,
    build_bitrix,
    build_chamilo,
    build_imscc,
    build_mbz,
    build_scorm12,
    write_zip,
)

BUILDERS: dict[str, Callable[[Path], Path]] = {
    "mbz": lambda p: build_mbz(p, activities=[MbzActivity("page", 1, 0, "P")]),
    "scorm12": lambda p: build_scorm12(p, items=[ScormItem("I", "L", href="i.html")], files={"i.html": b"i"}),
    "imscc": lambda p: build_imscc(p, modules=[CcItem("M", "Week", children=(
        CcItem("W", "Page", "webcontent", href="w.html"),))], files={"w.html": b"w"}),
    "chamilo": lambda p: build_chamilo(p, documents={"a.txt": b"a"}),
    "bitrix": lambda p: build_bitrix(p, children=[BitrixLesson(1, "Урок")]),
}


@pytest.mark.parametrize("fmt", sorted(BUILDERS))
def test_each_format_is_detected_whatever_its_name(tmp_path: Path, fmt: str) -> None:
    """Every format is told by content (the file is named .bin) and read by its reader."""
    path = BUILDERS[fmt](tmp_path / "upload.bin")
    with open_archive(path, Limits()) as archive:
        assert detect(archive) == fmt
        course = read_course(archive, "upload.bin")
    assert course.format == fmt and set(READERS) == set(BUILDERS) | {"syncd"}
    assert course.documents and all(member_name(doc.path) == doc.path for doc in course.documents)


def test_native_backup_is_detected_and_a_bad_manifest_is_named(tmp_path: Path) -> None:
    """syncd-course.json is the native format (its round trip: test_archive_native); a
    manifest without its fields is refused with the member and the missing key."""
    path = write_zip(tmp_path / "backup.zip", {"syncd-course.json": b"{}"})
    with open_archive(path, Limits()) as archive:
        assert detect(archive) == "syncd"
        with pytest.raises(ArchiveError, match=r"syncd-course.json: \(top\).syncd_course: missing"):
            read_course(archive, "backup.zip")


def test_scorm_detected_by_adlcp_attribute_alone(tmp_path: Path) -> None:
    """Without schemaversion, an adlcp:scormtype attribute marks SCORM 1.2."""
    manifest = (b'<manifest xmlns="http://www.imsproject.org/xsd/imscp_rootv1p1p2" '
                b'xmlns:adlcp="http://www.adlnet.org/xsd/adlcp_rootv1p2"><organizations/><resources>'
                b'<resource identifier="R" type="webcontent" adlcp:scormtype="asset" href="a.html"/>'
                b"</resources></manifest>")
    with open_archive(write_zip(tmp_path / "s.zip", {"imsmanifest.xml": manifest}), Limits()) as archive:
        assert detect(archive) == "scorm12"


@pytest.mark.parametrize(("members", "reason"), [
    ({"readme.txt": b"hello"}, "not a course archive: found none of moodle_backup.xml"),
    ({"course/moodle_backup.xml": b"<moodle_backup/>"}, "must be at the archive root"),
    ({"moodle_backup.xml": b"<backup/>"}, "not <moodle_backup>"),
    ({"imsmanifest.xml": b"<package/>"}, "is not <manifest>"),
    ({"imsmanifest.xml": b"<manifest><metadata><schemaversion>2004 4th Edition</schemaversion>"
                         b"</metadata></manifest>"}, "SCORM 2004 packages are not supported"),
    ({"imsmanifest.xml": b'<manifest xmlns="http://www.imsproject.org/xsd/imscp_rootv1p1p2"/>'},
     "neither SCORM 1.2"),
])
def test_unknown_content_is_refused_with_what_was_looked_for(tmp_path: Path, members: dict[str, bytes],
                                                              reason: str) -> None:
    """Archives that are not course archives are refused with a message saying why."""
    with open_archive(write_zip(tmp_path / "x.zip", members), Limits()) as archive, \
            pytest.raises(ArchiveError, match=reason):
        detect(archive)
