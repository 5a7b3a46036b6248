"""Reader of IMS Common Cartridge 1.1 packages (``.imscc``, a zip with ``imsmanifest.xml``).

Public surface::

    read_imscc(archive: Archive, where: str) -> CourseArchive   (format "imscc")

- fullname / summary: the LOM general title / description of the manifest metadata
  (title falls back to the manifest identifier); shortname: the manifest ``identifier``.
- sections: the top-level items of the default organization (the children of its single
  untitled root item, as CC's ``rooted-hierarchy`` has it), numbered from 1. Top-level
  items that are not folders go to a section 0 ("General") created for them.
- documents: the files of ``webcontent`` and ``associatedcontent/…`` resources that the
  package holds (a ``Skipped`` line for each listed one it lacks).
- learning path: one folder per section (key: the item identifier), nested folders for
  sub-items without a resource, and for items with one:
  ``webcontent`` → a ``document`` item + activity kind ``resource``;
  ``imswl_xmlv1p1`` web link → a ``link`` item to the URL of its XML + activity kind
  ``url`` (``Skipped`` when the URL cannot be read);
  discussions (``imsdt``), assessments / question banks (``imsqti``), LTI links and any
  other type → ``Skipped`` with the type named.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element

from syncd.archives._base import Archive
from syncd.archives._common import Documents, LearningPath, read_xml, web_url
from syncd.archives._imscp import (
    Resource,
    add_listed_files,
    default_organization,
    item_title,
    items,
    lom_general,
    manifest_resources,
)
from syncd.archives.model import ArchiveActivity, ArchiveSection, CourseArchive, Skipped
from syncd.archives.xmlsafe import attr, find_local, local, text_of


class _Reader:
    def __init__(self, archive: Archive, where: str, resources: dict[str, Resource]) -> None:
        self.archive = archive
        self.where = where
        self.resources = resources
        self.documents = Documents()
        self.path = LearningPath()
        self.sections: list[ArchiveSection] = []
        self.activities: list[ArchiveActivity] = []
        self.skipped: list[Skipped] = []

    def modules(self, top: list[Element]) -> None:
        """Sections and their trees; leaf items at the top go to section 0."""
        general = ""
        if any(attr(item, "identifierref") for item in top):
            self.sections.append(ArchiveSection(0, "", ""))
            general = self.path.add("section_0", "General", None, "folder", None, 0)
        number = 0
        for item in top:
            if attr(item, "identifierref"):
                self.leaf(item, general, 0)
                continue
            number += 1
            title = item_title(item)
            self.sections.append(ArchiveSection(number, title, ""))
            key = self.path.add(attr(item, "identifier") or title, title, None, "folder", None, number)
            self.tree(item, key, number, 1)

    def tree(self, parent: Element, parent_key: str, section: int, depth: int) -> None:
        for item in items(parent, depth, self.where):
            if attr(item, "identifierref"):
                self.leaf(item, parent_key, section)
                continue
            title = item_title(item)
            key = self.path.add(attr(item, "identifier") or title, title, parent_key, "folder", None, section)
            self.tree(item, key, section, depth + 1)

    def leaf(self, item: Element, parent_key: str, section: int) -> None:
        title, ref = item_title(item), attr(item, "identifierref") or ""
        resource = self.resources.get(ref)
        if resource is None:
            self.skipped.append(Skipped(f"item {title}", f"its resource {ref!r} is not in imsmanifest.xml"))
            return
        kind = resource.type
        if kind == "webcontent":
            self.webcontent(item, title, resource, parent_key, section)
        elif kind.startswith("imswl_xml"):
            self.weblink(item, title, resource, parent_key, section)
        elif kind.startswith("imsdt_xml"):
            self.skipped.append(Skipped(f"discussion {title}", f"resource type {kind} is not modelled"))
        elif kind.startswith("imsqti_xml"):
            self.skipped.append(Skipped(f"assessment {title}", f"resource type {kind} is not modelled"))
        else:
            self.skipped.append(Skipped(f"item {title}", f"resource type {kind or '(none)'} is not modelled"))

    def webcontent(self, item: Element, title: str, resource: Resource, parent_key: str,
                   section: int) -> None:
        target = resource.href or (resource.files[0] if resource.files else None)
        if target is None or target not in self.documents:
            self.skipped.append(Skipped(f"item {title}", "its file is missing from the package"))
            return
        key = self.path.add(attr(item, "identifier") or title, title, parent_key, "document", target, section)
        self.activities.append(ArchiveActivity(key, section, "resource", title))

    def weblink(self, item: Element, title: str, resource: Resource, parent_key: str,
                section: int) -> None:
        source = resource.files[0] if resource.files else resource.href
        url = None
        if source is not None and source in self.archive:
            link = read_xml(self.archive, source, self.where)
            element = find_local(link, "url")
            if local(link.tag) == "webLink" and element is not None:
                url = web_url(attr(element, "href") or "")
        if url is None:
            self.skipped.append(Skipped(f"link {title}", "its web link XML has no usable URL"))
            return
        key = self.path.add(attr(item, "identifier") or title, title, parent_key, "link", url, section)
        self.activities.append(ArchiveActivity(key, section, "url", title))


def _top_items(organization: Element | None, where: str) -> list[Element]:
    if organization is None:
        return []
    top = items(organization, 0, where)
    if len(top) == 1 and not attr(top[0], "identifierref") and not text_of(top[0], "title"):
        return items(top[0], 1, where)  # CC's untitled root item
    return top


def read_imscc(archive: Archive, where: str) -> CourseArchive:
    """The course in the Common Cartridge ``archive`` (see the module docstring)."""
    root = read_xml(archive, "imsmanifest.xml", where)
    reader = _Reader(archive, where, manifest_resources(root))
    for resource in reader.resources.values():
        if resource.type == "webcontent" or resource.type.startswith("associatedcontent"):
            add_listed_files(archive, resource, reader.documents, reader.skipped)
    reader.modules(_top_items(default_organization(root), where))
    identifier = attr(root, "identifier") or ""
    return CourseArchive(
        format="imscc",
        shortname=identifier,
        fullname=lom_general(root, "title") or identifier,
        summary=lom_general(root, "description"),
        sections=reader.sections,
        documents=reader.documents.items(),
        path=reader.path.items(),
        activities=reader.activities,
        skipped=list(dict.fromkeys(reader.skipped)),
    )
