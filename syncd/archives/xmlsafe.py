"""Safe XML parsing for archive manifests, plus namespace-blind lookup helpers.

Public surface::

    parse_xml(data: bytes, where: str, *, max_bytes: int = 32 MiB) -> Element
    local(tag) -> str              "{ns}name" / "prefix:name" -> "name"
    namespace(tag) -> str          "{ns}name" -> "ns" ("" when none)
    attr(element, name) -> str | None     an attribute by local name, any namespace
    find_local(element, *path) -> Element | None     children by local names
    findall_local(element, name) -> list[Element]    direct children with that local name
    text_of(element, *path, default="") -> str       stripped text at path, or default

Parsing goes through defusedxml with DTDs, entity declarations and external references
all forbidden: billion-laughs, quadratic blow-up and XXE documents raise ArchiveError
naming ``where``, as do malformed XML and documents over ``max_bytes``. The XML encoding
declaration is honoured: UTF-8/UTF-16/ASCII/Latin-1 go to expat as they are, any other
declared encoding Python knows (windows-1251, KOI8-R, Shift_JIS…) is decoded here and
handed to expat as UTF-8.
"""

from __future__ import annotations

import codecs
import re
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree

from syncd.archives._base import MAX_XML_BYTES, ArchiveError

_DECLARATION = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*([\"'])([A-Za-z][A-Za-z0-9._-]*)\1")
_EXPAT_NATIVE = frozenset({"utf-8", "utf-16", "ascii", "latin-1", "iso8859-1"})
_BOMS = (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def _as_expat_input(data: bytes, where: str) -> bytes:
    """``data`` itself, or re-encoded as UTF-8 when it declares an encoding expat lacks."""
    if data.startswith(_BOMS):
        return data
    match = _DECLARATION.match(data[:512])
    if match is None:
        return data
    declared = match.group(2).decode("ascii")
    try:
        codec = codecs.lookup(declared).name
    except LookupError:
        raise ArchiveError(f"{where}: unknown XML encoding {declared!r}") from None
    if codec in _EXPAT_NATIVE:
        return data
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as exc:
        raise ArchiveError(f"{where}: not valid {declared} at byte {exc.start}") from None
    return _redeclare(text, declared)


def _redeclare(text: str, declared: str) -> bytes:
    """``text`` as UTF-8 bytes with its declaration naming UTF-8 instead of ``declared``."""
    head, sep, rest = text.partition("?>")
    return (head.replace(declared, "UTF-8", 1) + sep + rest).encode("utf-8")


def parse_xml(data: bytes, where: str, *, max_bytes: int = MAX_XML_BYTES) -> Element:
    """The root element of ``data``; ArchiveError naming ``where`` on any refusal."""
    if len(data) > max_bytes:
        raise ArchiveError(f"{where}: {len(data)} bytes of XML, over the limit of {max_bytes}")
    source = _as_expat_input(data, where)
    try:
        root = defusedxml.ElementTree.fromstring(
            source, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DTDForbidden:
        raise ArchiveError(f"{where}: XML with a DTD (DOCTYPE) is refused "
                           "(entity expansion / external entity attack?)") from None
    except defusedxml.EntitiesForbidden:
        raise ArchiveError(f"{where}: XML entity declarations are refused (billion laughs?)") from None
    except defusedxml.ExternalReferenceForbidden:
        raise ArchiveError(f"{where}: XML external references are refused (XXE?)") from None
    except (ParseError, ValueError) as exc:
        raise ArchiveError(f"{where}: malformed XML ({exc})") from None
    if not isinstance(root, Element):
        raise ArchiveError(f"{where}: no XML root element")
    return root


def local(tag: str) -> str:
    """The local part of an element or attribute name, without namespace or prefix."""
    if tag.startswith("{"):
        tag = tag.partition("}")[2]
    return tag.rpartition(":")[2]


def namespace(tag: str) -> str:
    """The namespace URI of a ``{ns}name`` tag, "" when it has none."""
    return tag[1:].partition("}")[0] if tag.startswith("{") else ""


def attr(element: Element, name: str) -> str | None:
    """The attribute called ``name`` in any namespace (an unqualified one first)."""
    if name in element.attrib:
        return element.attrib[name]
    for key, value in element.attrib.items():
        if local(key) == name:
            return value
    return None


def findall_local(element: Element, name: str) -> list[Element]:
    """The direct children of ``element`` whose local name is ``name``."""
    return [child for child in element if isinstance(child.tag, str) and local(child.tag) == name]


def find_local(element: Element, *path: str) -> Element | None:
    """The first descendant along ``path`` (local names of successive children), or None."""
    current: Element | None = element
    for name in path:
        if current is None:
            return None
        found = findall_local(current, name)
        current = found[0] if found else None
    return current


def text_of(element: Element | None, *path: str, default: str = "") -> str:
    """The stripped text of the element at ``path`` below ``element``, or ``default``."""
    if element is None:
        return default
    target = find_local(element, *path)
    if target is None or target.text is None:
        return default
    return target.text.strip()
