"""A small, strict reader of PHP's ``serialize()`` format (for Chamilo's course_info.dat).

Public surface::

    unserialize(data: bytes, *, allowed_classes: Collection[str] = (), charset="utf-8",
                where="PHP data", max_depth=32, max_elements=100_000) -> PhpValue
    PhpObject(cls: str, props: dict[str, PhpValue])     a frozen record, no behaviour
    PhpValue = None | bool | int | float | str | dict[int | str, PhpValue] | PhpObject
    PhpSerialError(ArchiveError)      message: "<where>: byte <offset>: <reason>"

Accepted: ``N;`` ``b:0;`` ``b:1;`` ``i:<int>;`` ``d:<float>;`` (incl. INF, -INF, NAN),
``s:<bytes>:"<bytes>";`` (the length counts BYTES; decoded with ``charset``),
``a:<n>:{key value …}`` (keys ``i:`` or ``s:``) → dict, and
``O:<len>:"<Class>":<n>:{name value …}`` → :class:`PhpObject` when ``Class`` is in
``allowed_classes`` (exact, namespaced spelling). Private and protected property names
(``\\0Class\\0name``, ``\\0*\\0name``) are normalised to ``name``.

Refused, with the byte offset: references (``r:``/``R:``), custom serialisation (``C:``),
enums (``E:``), escaped strings (``S:``), any other token, classes not allowed, duplicate
keys, trailing bytes, nesting deeper than ``max_depth``, more than ``max_elements``
values, undecodable strings. Nothing is ever instantiated or executed: objects are data.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TypeAlias

from syncd.archives._base import ArchiveError

PhpValue: TypeAlias = "bool | int | float | str | dict[int | str, PhpValue] | PhpObject | None"

_INT = re.compile(rb"-?[0-9]{1,20}")
_FLOAT = re.compile(
    rb"-?(?:[0-9]{1,400}(?:\.[0-9]{0,400})?|\.[0-9]{1,400})(?:[eE][+-]?[0-9]{1,4})?|-?INF|NAN")
_LENGTH = re.compile(rb"[0-9]{1,12}")
_SPECIAL_FLOATS = {b"INF": math.inf, b"-INF": -math.inf, b"NAN": math.nan}


@dataclass(frozen=True, slots=True)
class PhpObject:
    """A PHP object as data: its class name and its properties (normalised names)."""

    cls: str
    props: dict[str, PhpValue]


class PhpSerialError(ArchiveError):
    """The serialized data are malformed or hold something the reader refuses."""


def unserialize(data: bytes, *, allowed_classes: Collection[str] = (), charset: str = "utf-8",
                where: str = "PHP data", max_depth: int = 32, max_elements: int = 100_000) -> PhpValue:
    """The value serialized in ``data`` (see the module docstring for what is accepted)."""
    reader = _Reader(data, frozenset(allowed_classes), charset, where, max_depth, max_elements)
    value = reader.value(0)
    if reader.pos != len(data):
        raise reader.fail("trailing bytes after the value")
    return value


class _Reader:
    def __init__(self, data: bytes, allowed: frozenset[str], charset: str, where: str,
                 max_depth: int, max_elements: int) -> None:
        self.data = data
        self.pos = 0
        self.allowed = allowed
        self.charset = charset
        self.where = where
        self.max_depth = max_depth
        self.max_elements = max_elements
        self.elements = 0

    def fail(self, reason: str, at: int | None = None) -> PhpSerialError:
        return PhpSerialError(f"{self.where}: byte {self.pos if at is None else at}: {reason}")

    def value(self, depth: int) -> PhpValue:
        if depth > self.max_depth:
            raise self.fail(f"nesting deeper than {self.max_depth}")
        self.elements += 1
        if self.elements > self.max_elements:
            raise self.fail(f"more than {self.max_elements} values")
        token = self.data[self.pos:self.pos + 2]
        if token == b"N;":
            self.pos += 2
            return None
        readers: dict[bytes, Callable[[], PhpValue]] = {
            b"b:": self._bool, b"i:": self._int, b"d:": self._float, b"s:": self._str}
        if token in readers:
            self.pos += 2
            return readers[token]()
        if token == b"a:":
            self.pos += 2
            return self._pairs(depth)
        if token == b"O:":
            self.pos += 2
            return self._object(depth)
        names = {b"r:": "references (r:)", b"R:": "references (R:)", b"C:": "custom serialisation (C:)",
                 b"E:": "enums (E:)", b"S:": "escaped strings (S:)"}
        if token in names:
            raise self.fail(f"{names[token]} are refused")
        raise self.fail(f"unknown token {token!r}" if token else "unexpected end of data")

    def expect(self, literal: bytes) -> None:
        if self.data[self.pos:self.pos + len(literal)] != literal:
            raise self.fail(f"expected {literal.decode()!r}")
        self.pos += len(literal)

    def match(self, pattern: re.Pattern[bytes], what: str) -> bytes:
        found = pattern.match(self.data, self.pos)
        if found is None:
            raise self.fail(f"expected {what}")
        self.pos = found.end()
        return found.group()

    def _bool(self) -> bool:
        flag = self.data[self.pos:self.pos + 1]
        if flag not in (b"0", b"1"):
            raise self.fail("a boolean must be 0 or 1")
        self.pos += 1
        self.expect(b";")
        return flag == b"1"

    def _int(self) -> int:
        number = int(self.match(_INT, "an integer"))
        self.expect(b";")
        return number

    def _float(self) -> float:
        text = self.match(_FLOAT, "a number")
        self.expect(b";")
        return _SPECIAL_FLOATS[text] if text in _SPECIAL_FLOATS else float(text)

    def _length(self) -> int:
        return int(self.match(_LENGTH, "a length"))

    def _str(self) -> str:
        length = self._length()
        self.expect(b':"')
        start = self.pos
        if start + length > len(self.data):
            raise self.fail(f"string of {length} bytes runs past the end of the data")
        raw = self.data[start:start + length]
        self.pos += length
        self.expect(b'";')
        try:
            return raw.decode(self.charset)
        except UnicodeDecodeError as exc:
            raise self.fail(f"string is not valid {self.charset}", at=start + exc.start) from None

    def _key(self) -> int | str:
        token = self.data[self.pos:self.pos + 2]
        if token == b"i:":
            self.pos += 2
            return self._int()
        if token == b"s:":
            self.pos += 2
            return self._str()
        raise self.fail("an array key must be an integer or a string")

    def _pairs(self, depth: int) -> dict[int | str, PhpValue]:
        count = self._length()
        if count > self.max_elements:
            raise self.fail(f"more than {self.max_elements} values")
        self.expect(b":{")
        result: dict[int | str, PhpValue] = {}
        for _ in range(count):
            at = self.pos
            key = self._key()
            if key in result:
                raise self.fail(f"duplicate key {key!r}", at=at)
            result[key] = self.value(depth + 1)
        self.expect(b"}")
        return result

    def _object(self, depth: int) -> PhpObject:
        at = self.pos
        length = self._length()
        self.expect(b':"')
        raw = self.data[self.pos:self.pos + length]
        self.pos += length
        self.expect(b'":')
        cls = raw.decode("ascii", errors="replace")
        if cls not in self.allowed:
            raise self.fail(f"class {cls!r} is not allowed", at=at)
        props: dict[str, PhpValue] = {}
        for key, value in self._pairs(depth).items():
            name = self._property_name(key)
            if name in props:
                raise self.fail(f"duplicate property {name!r} in {cls}")
            props[name] = value
        return PhpObject(cls, props)

    def _property_name(self, key: int | str) -> str:
        if isinstance(key, int):
            return str(key)
        if not key.startswith("\0"):
            return key
        parts = key.split("\0")
        if len(parts) != 3 or not parts[1] or not parts[2]:
            raise self.fail(f"malformed private/protected property name {key!r}")
        return parts[2]
