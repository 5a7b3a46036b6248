"""syncd.archives.phpserial: PHP serialize() data read strictly; everything else refused
with the byte offset."""

from __future__ import annotations

import math

import pytest

from syncd.archives.phpserial import PhpObject, PhpSerialError, unserialize
from tests.archive_builders import PhpObj, php_serialize


def test_scalars() -> None:
    """N, b, i, d (incl. INF/NAN) and s read as None, bool, int, float and str."""
    assert unserialize(b"N;") is None
    assert unserialize(b"b:1;") is True and unserialize(b"b:0;") is False
    assert unserialize(b"i:-42;") == -42
    assert unserialize(b"d:0.5;") == 0.5 and unserialize(b"d:1.0E+25;") == 1e25
    assert unserialize(b"d:-INF;") == -math.inf and math.isnan(unserialize(b"d:NAN;"))  # type: ignore[arg-type]
    assert unserialize(b's:5:"a;b"c";') == 'a;b"c'


def test_string_length_counts_bytes_in_the_charset() -> None:
    """s:<n> counts bytes: the same title in UTF-8 and ISO-8859-15 reads back."""
    assert unserialize(php_serialize("Café Ωμέγα 日本")) == "Café Ωμέγα 日本"
    latin = php_serialize("Cours d'été €", "iso-8859-15")
    assert unserialize(latin, charset="iso-8859-15") == "Cours d'été €"


def test_arrays_and_objects() -> None:
    """Arrays become dicts with int/str keys; allowed objects become PhpObject."""
    value = php_serialize(PhpObj("Course", {"code": "C1", "resources": {"document": {3: [1, "x"]}}}))
    course = unserialize(value, allowed_classes={"Course"})
    assert course == PhpObject("Course", {"code": "C1", "resources": {"document": {3: {0: 1, 1: "x"}}}})


def test_private_and_protected_property_names_are_normalised() -> None:
    """'\\0Class\\0name' and '\\0*\\0name' become 'name'."""
    data = php_serialize(PhpObj("Doc", {"\0Doc\0path": "a", "\0*\0title": "b", "size": 1}))
    expected = PhpObject("Doc", {"path": "a", "title": "b", "size": 1})
    assert unserialize(data, allowed_classes=["Doc"]) == expected


@pytest.mark.parametrize(("data", "reason", "offset"), [
    (b'O:8:"stdClass":0:{}', "class 'stdClass' is not allowed", 2),
    (b"a:2:{i:0;i:1;i:1;r:2;}", "references (r:) are refused", 17),
    (b"a:1:{i:0;R:1;}", "references (R:) are refused", 9),
    (b'C:3:"Foo":1:{x}', "custom serialisation (C:) are refused", 0),
    (b'E:7:"Foo:Bar";', "enums (E:) are refused", 0),
    (b'S:1:"\\61";', "escaped strings (S:) are refused", 0),
    (b"x:1;", "unknown token", 0),
    (b"i:1;i:2;", "trailing bytes", 4),
    (b"i:1", "expected ';'", 3),
    (b's:10:"short";', "string of 10 bytes runs past the end", 6),
    (b"b:2;", "a boolean must be 0 or 1", 2),
    (b"a:2:{i:0;N;i:0;N;}", "duplicate key 0", 11),
    (b"a:1:{d:1.5;N;}", "an array key must be an integer or a string", 5),
    (b"", "unexpected end of data", 0),
])
def test_refusals_name_the_byte_offset(data: bytes, reason: str, offset: int) -> None:
    """Everything outside the accepted subset is refused with its reason and byte offset."""
    with pytest.raises(PhpSerialError) as info:
        unserialize(data, allowed_classes={"Course"}, where="course_info.dat")
    assert f"course_info.dat: byte {offset}: {reason}" in str(info.value)


def test_depth_limit() -> None:
    """Nesting deeper than max_depth is refused."""
    data = b"a:1:{i:0;" * 40 + b"N;" + b"}" * 40
    with pytest.raises(PhpSerialError, match="nesting deeper than 32"):
        unserialize(data)
    assert unserialize(b"a:1:{i:0;" * 5 + b"N;" + b"}" * 5, max_depth=5) is not None


def test_element_limit() -> None:
    """More than max_elements values is refused, also when only announced by a count."""
    with pytest.raises(PhpSerialError, match="more than 100 values"):
        unserialize(php_serialize(list(range(200))), max_elements=100)
    with pytest.raises(PhpSerialError, match="more than 100000 values"):
        unserialize(b"a:999999999:{")


def test_undecodable_string() -> None:
    """A string that is not valid in the charset is refused at the bad byte."""
    with pytest.raises(PhpSerialError, match=r"byte 6: string is not valid utf-8"):
        unserialize(b's:3:"a\xffb";')
