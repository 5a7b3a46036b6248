"""Reader of SCORM 1.2 packages (a zip with ``imsmanifest.xml`` at its root).

Public surface::

    read_scorm12(archive: Archive, where: str) -> CourseArchive   (format "scorm12")

- fullname: the default organization's ``title``, else the LOM general title, else the
  manifest identifier; shortname: the manifest ``identifier`` (callers may override it);
  summary: the LOM general description.
- documents: every file the resources list (and each resource's launch ``href``), with
  ``xml:base`` applied, that the package holds — a ``Skipped`` line for each listed file
  it lacks. Unlisted members are not imported.
- learning path: the default organization's item tree, keys = item identifiers. An item
  without ``identifierref`` is a ``folder``; one whose resource is ``adlcp:scormtype="sco"``
  is a ``sco``, any other resource a ``document``, both targeting the resource's launch
  file; a resource whose href is a web URL gives a ``link``. A missing launch file leaves
  the item with target None and a ``Skipped`` line.
- no sections and no activities: a SCORM package is one learning path.
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
from syncd.archives.model import CourseArchive, Skipped
from syncd.archives.xmlsafe import attr, text_of


def read_scorm12(archive: Archive, where: str) -> CourseArchive:
    """The course in the SCORM 1.2 package ``archive`` (see the module docstring)."""
    root = read_xml(archive, "imsmanifest.xml", where)
    resources = manifest_resources(root)
    documents = Documents()
    skipped: list[Skipped] = []
    for resource in resources.values():
        add_listed_files(archive, resource, documents, skipped)
    organization = default_organization(root)
    path = LearningPath()
    if organization is not None:
        _walk(organization, None, 0, _Context(resources, documents, path, skipped, where))
    identifier = attr(root, "identifier") or ""
    return CourseArchive(
        format="scorm12",
        shortname=identifier,
        fullname=text_of(organization, "title") or lom_general(root, "title") or identifier,
        summary=lom_general(root, "description"),
        documents=documents.items(),
        path=path.items(),
        skipped=list(dict.fromkeys(skipped)),
    )


class _Context:
    def __init__(self, resources: dict[str, Resource], documents: Documents, path: LearningPath,
                 skipped: list[Skipped], where: str) -> None:
        self.resources = resources
        self.documents = documents
        self.path = path
        self.skipped = skipped
        self.where = where


def _walk(parent: Element, parent_key: str | None, depth: int, ctx: _Context) -> None:
    for item in items(parent, depth, ctx.where):
        title = item_title(item)
        kind, target = _kind_and_target(item, title, ctx)
        key = ctx.path.add(attr(item, "identifier") or title, title, parent_key, kind, target, None)
        _walk(item, key, depth + 1, ctx)


def _kind_and_target(item: Element, title: str, ctx: _Context) -> tuple[str, str | None]:
    ref = attr(item, "identifierref")
    if not ref:
        return "folder", None
    resource = ctx.resources.get(ref)
    if resource is None:
        ctx.skipped.append(Skipped(f"item {title}", f"its resource {ref!r} is not in imsmanifest.xml"))
        return "document", None
    kind = "sco" if resource.scormtype == "sco" else "document"
    if resource.href is None and (url := web_url(resource.raw_href)):
        return "link", url
    target = resource.href or (resource.files[0] if resource.files else None)
    if target is None or target not in ctx.documents:
        ctx.skipped.append(Skipped(f"item {title}", "its launch file is missing from the package"))
        return kind, None
    return kind, target
