"""IMS Content Packaging pieces shared by the SCORM 1.2, Common Cartridge and Bitrix
readers: resources (with ``xml:base``), the default organization, items, LOM texts."""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from xml.etree.ElementTree import Element

from syncd.archives._base import Archive, ArchiveError
from syncd.archives._common import Documents, resolve_href
from syncd.archives.model import Skipped
from syncd.archives.xmlsafe import attr, find_local, findall_local, local, text_of

#: How deep organization items may nest.
MAX_ITEM_DEPTH = 64


@dataclass(frozen=True, slots=True)
class Resource:
    """A manifest ``<resource>``: its type, SCORM type, launch href and listed files
    (both resolved to member names; None/absent when external or outside the package)."""

    identifier: str
    type: str
    scormtype: str
    href: str | None
    raw_href: str
    files: tuple[str, ...]


def manifest_resources(root: Element) -> dict[str, Resource]:
    """The resources of the manifest by identifier, with every ``xml:base`` applied."""
    container = find_local(root, "resources")
    if container is None:
        return {}
    outer = posixpath.join(attr(root, "base") or "", attr(container, "base") or "")
    resources: dict[str, Resource] = {}
    for element in findall_local(container, "resource"):
        base = posixpath.join(outer, attr(element, "base") or "")
        raw_href = (attr(element, "href") or "").strip()
        files = tuple(dict.fromkeys(
            path for file in findall_local(element, "file")
            if (path := resolve_href(base, attr(file, "href") or "")) is not None))
        identifier = attr(element, "identifier") or ""
        resources[identifier] = Resource(
            identifier, (attr(element, "type") or "").strip(),
            (attr(element, "scormtype") or attr(element, "scormType") or "").strip().lower(),
            resolve_href(base, raw_href) if raw_href else None, raw_href, files)
    return resources


def default_organization(root: Element) -> Element | None:
    """The organization named by ``organizations/@default``, else the first one."""
    container = find_local(root, "organizations")
    if container is None:
        return None
    organizations = findall_local(container, "organization")
    default = attr(container, "default")
    for organization in organizations:
        if default and attr(organization, "identifier") == default:
            return organization
    return organizations[0] if organizations else None


def items(parent: Element, depth: int, where: str) -> list[Element]:
    """The ``<item>`` children of ``parent``; ArchiveError past :data:`MAX_ITEM_DEPTH`."""
    if depth > MAX_ITEM_DEPTH:
        raise ArchiveError(f"{where}: imsmanifest.xml: items nested deeper than {MAX_ITEM_DEPTH}")
    return findall_local(parent, "item")


def item_title(item: Element) -> str:
    """An item's title, or its identifier when it has none."""
    return text_of(item, "title") or attr(item, "identifier") or ""


def lom_general(root: Element, name: str) -> str:
    """The first string of ``metadata/…/lom/general/<name>`` (``langstring`` or ``string``)."""
    metadata = find_local(root, "metadata")
    if metadata is None:
        return ""
    for general in _named(metadata, "general"):
        node = find_local(general, name)
        if node is None:
            continue
        for text in _named(node, "langstring", "string"):
            if text.text and text.text.strip():
                return text.text.strip()
    return ""


def _named(element: Element, *names: str) -> Iterator[Element]:
    return (e for e in element.iter() if isinstance(e.tag, str) and local(e.tag) in names)


def add_listed_files(archive: Archive, resource: Resource, documents: Documents,
                     skipped: list[Skipped]) -> None:
    """Add a resource's listed files (and its launch file) that the package holds;
    a Skipped line for each one it lacks (callers drop repeated lines at the end)."""
    candidates = list(resource.files)
    if resource.href is not None and resource.href not in candidates:
        candidates.append(resource.href)
    for path in candidates:
        if path in archive:
            documents.add_member(path, archive, path)
        else:
            skipped.append(Skipped(f"file {path}", _MISSING))


_MISSING = "listed in imsmanifest.xml but missing from the package"
