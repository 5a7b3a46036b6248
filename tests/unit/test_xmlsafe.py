"""syncd.archives.xmlsafe: hostile XML refused with the place named, encodings honoured,
namespace-blind lookups."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.archives.detect import detect
from syncd.archives.safe import ArchiveError, Limits, open_archive
from syncd.archives.xmlsafe import attr, find_local, findall_local, local, namespace, parse_xml, text_of
from tests.archive_builders import write_zip

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE manifest [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<manifest><title>&xxe;</title></manifest>"""

LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<lolz>&lol4;</lolz>"""

EXTERNAL_DTD = b'<?xml version="1.0"?><!DOCTYPE m SYSTEM "http://attacker.example/evil.dtd"><m/>'


@pytest.mark.parametrize(("data", "words"), [
    (XXE, "DTD"),
    (LAUGHS, "DTD"),
    (EXTERNAL_DTD, "DTD"),
])
def test_hostile_xml_is_refused(data: bytes, words: str) -> None:
    """XXE, billion laughs and external DTDs are refused, naming where the XML came from."""
    with pytest.raises(ArchiveError) as info:
        parse_xml(data, "course.zip: imsmanifest.xml")
    assert words in str(info.value) and "course.zip: imsmanifest.xml" in str(info.value)


def test_xxe_in_an_archive_manifest_writes_nothing(tmp_path: Path) -> None:
    """An XXE manifest inside a package is refused at detection; nothing is written."""
    path = write_zip(tmp_path / "evil.zip", {"imsmanifest.xml": XXE})
    before = sorted(tmp_path.rglob("*"))
    with open_archive(path, Limits()) as archive, pytest.raises(ArchiveError, match=r"imsmanifest\.xml"):
        detect(archive)
    assert sorted(tmp_path.rglob("*")) == before


def test_huge_manifest_is_refused_before_parsing(tmp_path: Path) -> None:
    """A manifest over max_xml_bytes is refused by its declared size, in the archive and directly."""
    body = b"<manifest>" + b"<item/>" * 20_000 + b"</manifest>"
    path = write_zip(tmp_path / "huge.zip", {"imsmanifest.xml": body})
    with open_archive(path, Limits(max_xml_bytes=64_000)) as archive, \
            pytest.raises(ArchiveError, match=r"'imsmanifest\.xml': \d+ bytes, over the limit of 64000"):
        detect(archive)
    with pytest.raises(ArchiveError, match="over the limit of 1000"):
        parse_xml(body, "huge", max_bytes=1000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["huge.zip"]


def test_malformed_xml() -> None:
    """Broken XML is an ArchiveError naming the place, not a ParseError."""
    with pytest.raises(ArchiveError, match=r"x\.xml: malformed XML"):
        parse_xml(b"<a><b></a>", "x.xml")


@pytest.mark.parametrize("encoding", ["windows-1251", "koi8-r", "utf-8", "UTF-16"])
def test_declared_encoding_is_honoured(encoding: str) -> None:
    """Cyrillic text declared in windows-1251, KOI8-R, UTF-8 or UTF-16 reads back the same."""
    text = f'<?xml version="1.0" encoding="{encoding}"?><course><name>Курс "Алгебра"</name></course>'
    data = text.encode(encoding)
    assert text_of(parse_xml(data, "res1.xml"), "name") == 'Курс "Алгебра"'


def test_multibyte_legacy_encoding() -> None:
    """A Shift_JIS declaration (which expat lacks) is decoded by Python and parsed."""
    data = '<?xml version="1.0" encoding="Shift_JIS"?><t>日本語の講座</t>'.encode("shift_jis")
    assert parse_xml(data, "m.xml").text == "日本語の講座"


def test_bad_bytes_for_the_declared_encoding() -> None:
    """Bytes invalid in the declared encoding are refused with their offset."""
    with pytest.raises(ArchiveError, match="not valid Shift_JIS at byte"):
        parse_xml(b'<?xml version="1.0" encoding="Shift_JIS"?><t>\x81\x20</t>', "m.xml")
    with pytest.raises(ArchiveError, match="unknown XML encoding 'x-martian'"):
        parse_xml(b'<?xml version="1.0" encoding="x-martian"?><t/>', "m.xml")


def test_namespace_blind_helpers() -> None:
    """local/namespace/attr/find_local/findall_local/text_of ignore namespaces and prefixes."""
    root = parse_xml(
        b'<m:manifest xmlns:m="urn:m" xmlns:a="urn:a"><m:organizations default="O">'
        b'<m:organization a:scormtype="sco"><m:title> T </m:title></m:organization>'
        b"<m:organization/></m:organizations></m:manifest>", "m")
    assert local(root.tag) == "manifest" and namespace(root.tag) == "urn:m"
    orgs = find_local(root, "organizations")
    assert orgs is not None and attr(orgs, "default") == "O"
    first, second = findall_local(orgs, "organization")
    assert attr(first, "scormtype") == "sco" and attr(second, "scormtype") is None
    assert text_of(root, "organizations", "organization", "title") == "T"
    assert text_of(root, "missing", default="-") == "-" and local("adlcp:scormtype") == "scormtype"
