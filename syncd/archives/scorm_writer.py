"""A course as a SCORM 1.2 package (IMS Content Packaging 1.1.2 + ADL SCORM 1.2 CAM).

Public surface::

    write_scorm12(dest, course, sections, documents, path, activities, open_blob, *,
                  when=None, limits=Limits()) -> None

The zip holds ``imsmanifest.xml`` at its root and every document under its own path
(``content/<path>`` instead when a document is itself called ``imsmanifest.xml``).
The manifest (UTF-8, built with xml.etree, so every text and attribute is escaped):

- ``<manifest identifier version="1.0">`` in the IMS CP 1.1.2 namespace with the
  ``adlcp`` (ADL SCORM 1.2) and ``imsmd`` (IMS LOM 1.2.1) namespaces; the identifier is
  the course shortname when it is a valid XML ID, else a cleaned-up form of it;
- ``<metadata>``: ``<schema>ADL SCORM</schema><schemaversion>1.2</schemaversion>`` and a
  LOM ``general`` title (the fullname) and description (the summary);
- one ``<organization>`` (the ``default``), titled with the fullname, whose items are the
  learning path: folders nest, document and sco items point at their document's
  resource, link items at a resource whose href is the URL; activity items (and items
  whose target is gone) have no resource. Without a learning path, one item per
  document, nested in one folder item per directory of its path (documents belong to
  no section in syncd's model). A course with neither gets an empty
  ``<organizations/>`` (IMS CP wants at least one item in an organization);
- ``<resources>``: one per document, ``type="webcontent"``, ``adlcp:scormtype`` ``sco``
  when a sco item launches it, else ``asset``, ``href`` and one ``<file href>`` (paths
  percent-encoded), plus one per link.

XML ids are generated (``ORG-1``, ``ITEM-<n>``, ``RES-<n>``) and unique; titles are cut
to the 200 characters the schema allows, and characters XML 1.0 cannot carry are
dropped. The ADL schema files (.xsd) are not included. Written atomically like the
native backup (:class:`~syncd.archives.backupzip.BackupZip`); a course over the import
limits is refused with :class:`~syncd.archives.backupzip.BackupError`.
"""

from __future__ import annotations

import functools
import posixpath
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote
from xml.etree.ElementTree import Element, SubElement, tostring

from syncd.archives._base import Limits
from syncd.archives.backupzip import BackupZip, check_importable
from syncd.platform.model import ActivityRecord, CourseRecord, DocumentRecord, PathItemRecord, SectionRecord

IMSCP = "http://www.imsproject.org/xsd/imscp_rootv1p1p2"
ADLCP = "http://www.adlnet.org/xsd/adlcp_rootv1p2"
IMSMD = "http://www.imsglobal.org/xsd/imsmd_rootv1p2p1"
_XSI = "http://www.w3.org/2001/XMLSchema-instance"
_SCHEMA_LOCATION = (f"{IMSCP} imscp_rootv1p1p2.xsd {IMSMD} imsmd_rootv1p2p1.xsd "
                    f"{ADLCP} adlcp_rootv1p2.xsd")
MANIFEST = "imsmanifest.xml"
MAX_TITLE = 200
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
#: not allowed in an XML name: \w lets through ª ² ³ µ ¹ º ¼ ½ ¾ (U+00AA-U+00BF), which XML refuses
_NOT_NAME = re.compile(r"[^\w.-]|[\u00aa-\u00bf]")
_NCNAME = re.compile(r"[^\W\d][\w.-]*")
_GENERATED = re.compile(r"(ORG|ITEM|RES)-\d+")


def _text(value: str, limit: int | None = None) -> str:
    cleaned = _NOT_XML.sub("", value)
    return cleaned[:limit] if limit else cleaned


def _identifier(shortname: str) -> str:
    """The shortname as an XML ID (NCName), distinct from the generated ids."""
    ident = _NOT_NAME.sub("_", _text(shortname)) or "course"
    if not _NCNAME.fullmatch(ident):
        ident = "_" + ident
    return "C-" + ident if _GENERATED.fullmatch(ident) else ident


class _Manifest:
    """Builds the organization and resources of one package."""

    def __init__(self, documents: Sequence[DocumentRecord], prefix: str, sco: set[str]) -> None:
        self.organization = Element("organization", identifier="ORG-1")
        self.resources = Element("resources")
        self._items = 0
        self._docs: dict[str, str] = {}  # document path -> resource id
        self._links: dict[str, str] = {}  # URL -> resource id
        for doc in documents:
            self._docs[doc.path] = self._resource(prefix + doc.path, "sco" if doc.path in sco else "asset")

    def _resource(self, href: str, scormtype: str, *, url: bool = False) -> str:
        ident = f"RES-{len(self.resources) + 1}"
        resource = SubElement(self.resources, "resource", identifier=ident, type="webcontent")
        resource.set("adlcp:scormtype", scormtype)
        resource.set("href", _text(href) if url else quote(href))
        if not url:
            SubElement(resource, "file", href=quote(href))
        return ident

    def item(self, parent: Element, title: str, resource: str | None) -> Element:
        """Append an item (with ``identifierref`` when it opens a resource) to ``parent``."""
        self._items += 1
        item = SubElement(parent, "item", identifier=f"ITEM-{self._items}")
        if resource is not None:
            item.set("identifierref", resource)
        SubElement(item, "title").text = _text(title, MAX_TITLE)
        return item

    def target(self, item: PathItemRecord) -> str | None:
        """The resource a path item opens, if any."""
        if item.kind in ("document", "sco") and item.target is not None:
            return self._docs.get(item.target)
        if item.kind == "link" and item.target:
            if item.target not in self._links:
                self._links[item.target] = self._resource(item.target, "asset", url=True)
            return self._links[item.target]
        return None


def _path_tree(manifest: _Manifest, path: Sequence[PathItemRecord]) -> None:
    """The learning path as nested items (siblings by position; orphans at the top)."""
    keys = {i.key for i in path}
    children: dict[str | None, list[PathItemRecord]] = {}
    for item in path:
        parent = item.parent_key if item.parent_key in keys else None
        children.setdefault(parent, []).append(item)
    order = {id(item): n for n, item in enumerate(path)}
    done: set[str] = set()

    def add(parent_key: str | None, parent: Element) -> None:
        for item in sorted(children.get(parent_key, []), key=lambda i: (i.position, order[id(i)])):
            if item.key in done:  # a cycle: the store forbids them, but never loop
                continue
            done.add(item.key)
            add(item.key, manifest.item(parent, item.title or item.key, manifest.target(item)))

    add(None, manifest.organization)


def _document_tree(manifest: _Manifest, documents: Sequence[DocumentRecord]) -> None:
    """One item per document, in one folder item per directory of its path."""
    folders: dict[str, Element] = {"": manifest.organization}

    def folder(directory: str) -> Element:
        if directory not in folders:
            parent, _, name = directory.rpartition("/")
            folders[directory] = manifest.item(folder(parent), name, None)
        return folders[directory]

    for doc in sorted(documents, key=lambda d: d.path.split("/")):
        directory, _, name = doc.path.rpartition("/")
        manifest.item(folder(directory), doc.title or name, manifest.target(
            PathItemRecord(doc.course_id, doc.path, doc.title, None, "document", doc.path, 0, None)))


def _metadata(root: Element, course: CourseRecord) -> None:
    metadata = SubElement(root, "metadata")
    SubElement(metadata, "schema").text = "ADL SCORM"
    SubElement(metadata, "schemaversion").text = "1.2"
    general = SubElement(SubElement(metadata, "imsmd:lom"), "imsmd:general")
    title = SubElement(SubElement(general, "imsmd:title"), "imsmd:langstring")
    title.text = _text(course.fullname)
    if course.summary:
        description = SubElement(SubElement(general, "imsmd:description"), "imsmd:langstring")
        description.text = _text(course.summary)


def manifest_xml(course: CourseRecord, documents: Sequence[DocumentRecord],
                 path: Sequence[PathItemRecord], prefix: str = "") -> bytes:
    """The ``imsmanifest.xml`` of the package (documents stored under ``prefix``)."""
    root = Element("manifest", {
        "identifier": _identifier(course.shortname), "version": "1.0", "xmlns": IMSCP,
        "xmlns:adlcp": ADLCP, "xmlns:imsmd": IMSMD, "xmlns:xsi": _XSI,
        "xsi:schemaLocation": _SCHEMA_LOCATION,
    })
    _metadata(root, course)
    sco = {i.target for i in path if i.kind == "sco" and i.target is not None}
    manifest = _Manifest(documents, prefix, sco)
    SubElement(manifest.organization, "title").text = _text(course.fullname or course.shortname, MAX_TITLE)
    if path:
        _path_tree(manifest, path)
    else:
        _document_tree(manifest, documents)
    organizations = SubElement(root, "organizations")
    if manifest.organization.find("item") is not None:  # IMS CP: an organization has 1+ items
        organizations.set("default", "ORG-1")
        organizations.append(manifest.organization)
    root.append(manifest.resources)
    data: bytes = tostring(root, encoding="utf-8", xml_declaration=True)
    return data


def write_scorm12(dest: Path, course: CourseRecord, sections: Sequence[SectionRecord],
                  documents: Sequence[DocumentRecord], path: Sequence[PathItemRecord],
                  activities: Sequence[ActivityRecord], open_blob: Callable[[str], BinaryIO], *,
                  when: datetime | None = None, limits: Limits | None = None) -> None:
    """Write the SCORM 1.2 package of one course to ``dest`` (see the module docstring).

    ``sections`` and ``activities`` have no place in SCORM 1.2 and are not written."""
    prefix = "content/" if any(d.path.lower() == MANIFEST for d in documents) else ""
    data = manifest_xml(course, documents, path, prefix)
    check_importable({d.path: d.size for d in documents}, len(data), limits or Limits())
    with BackupZip(dest, when) as out:
        out.add_bytes(MANIFEST, data)
        for doc in documents:
            member = posixpath.normpath(prefix + doc.path)
            out.add_stream(member, functools.partial(open_blob, doc.sha256), doc.size, doc.sha256)
