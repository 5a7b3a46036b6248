"""Helpers the format readers share: manifest reading, href resolution, dates, and
builders that keep documents unique and learning-path positions consistent."""

from __future__ import annotations

import html
import posixpath
from datetime import UTC, datetime
from urllib.parse import unquote, urlsplit
from xml.etree.ElementTree import Element

from syncd.archives._base import Archive, ArchiveError, member_name
from syncd.archives.model import ArchiveDocument, PathItem
from syncd.archives.xmlsafe import parse_xml

_URL_SCHEMES = frozenset({"http", "https", "ftp", "ftps", "mailto"})


def read_xml(archive: Archive, name: str, where: str) -> Element:
    """The parsed XML member ``name``; ArchiveError when it is missing, too big or unsafe."""
    if name not in archive:
        raise ArchiveError(f"{where}: {name} is missing from the archive")
    cap = archive.limits.max_xml_bytes
    return parse_xml(archive.read(name, cap), f"{where}: {name}", max_bytes=cap)


def resolve_href(base: str, href: str) -> str | None:
    """The member name a relative manifest href points at (URL-decoded, query and
    fragment dropped, joined to ``base``); None for a URL or a path leaving the package."""
    parts = urlsplit(href.strip())
    if parts.scheme or parts.netloc or not parts.path:
        return None
    joined = posixpath.normpath(posixpath.join(base, unquote(parts.path)))
    try:
        return member_name(joined)
    except ValueError:
        return None


def web_url(href: str) -> str | None:
    """``href`` when it is an absolute web/mail URL, else None."""
    href = href.strip()
    return href if urlsplit(href).scheme.lower() in _URL_SCHEMES else None


def iso_from_epoch(value: str) -> str | None:
    """A Unix timestamp as ISO 8601 UTC (``2026-09-01T00:00:00+00:00``); None for 0/empty/bad."""
    try:
        seconds = int(value.strip())
    except ValueError:
        return None
    if seconds <= 0:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        return None


def html_page(title: str, body: str) -> bytes:
    """A small standalone UTF-8 HTML document around ``body`` (already HTML)."""
    return (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"</head><body>\n{body}\n</body></html>\n").encode()


class Documents:
    """The documents of one course, unique by path, in the order first added."""

    def __init__(self) -> None:
        self._docs: dict[str, ArchiveDocument] = {}

    def __contains__(self, path: object) -> bool:
        return path in self._docs

    def add_member(self, path: str, archive: Archive, member: str) -> None:
        """Add ``member`` of ``archive`` as document ``path`` (first one wins)."""
        if path not in self._docs:
            self._docs[path] = ArchiveDocument(path, archive.size(member), member)

    def add_generated(self, path: str, content: bytes) -> None:
        """Add a document the reader built itself (first one wins)."""
        if path not in self._docs:
            self._docs[path] = ArchiveDocument(path, len(content), "", content)

    def items(self) -> list[ArchiveDocument]:
        """The documents, in order."""
        return list(self._docs.values())


class LearningPath:
    """Builds the learning path: unique keys and 0-based positions among siblings."""

    def __init__(self) -> None:
        self._items: list[PathItem] = []
        self._keys: set[str] = set()
        self._children: dict[str | None, int] = {}

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def add(self, key: str, title: str, parent: str | None, kind: str, target: str | None,
            section: int | None) -> str:
        """Append an item under ``parent`` and return its key (suffixed ``#2``… if taken)."""
        unique, n = key, 2
        while unique in self._keys:
            unique, n = f"{key}#{n}", n + 1
        position = self._children.get(parent, 0)
        self._children[parent] = position + 1
        self._keys.add(unique)
        self._items.append(PathItem(unique, title, parent, kind, target, position, section))
        return unique

    def items(self) -> list[PathItem]:
        """The items, parents before their children."""
        return list(self._items)
