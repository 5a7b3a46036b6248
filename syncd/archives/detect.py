"""Tell a course archive's format by its content, never by its name.

Public surface::

    detect(archive: Archive) -> ArchiveFormat   "mbz" | "scorm12" | "imscc" | "chamilo"
                                                | "bitrix" | "syncd"

Rules, in this order (manifests must be at the archive root):

- ``moodle_backup.xml`` with root element ``moodle_backup`` → ``mbz``;
- ``course_info.dat`` → ``chamilo``;
- ``syncd-course.json`` → ``syncd`` (the native format the backup side writes);
- ``imsmanifest.xml`` with root ``manifest``, then by markers:
  IMS Common Cartridge namespace (``…/imsccv1p1/imscp_v1p1``; 1.2 and 1.3 too) → ``imscc``;
  ADL SCORM 1.2 (``schemaversion`` 1.2, or anything in the ``adlcp_rootv1p2`` namespace
  such as ``adlcp:scormtype``) → ``scorm12``; SCORM 2004 is refused by name;
  1C-Bitrix (a top item ``COR<n>`` whose resource is a ``res<n>.xml`` member) → ``bitrix``.

Anything else raises ArchiveError "not a course archive: …" listing what was looked for.
"""

from __future__ import annotations

import re
from xml.etree.ElementTree import Element

from syncd.archives._base import Archive, ArchiveError
from syncd.archives._common import read_xml
from syncd.archives.model import ArchiveFormat
from syncd.archives.xmlsafe import attr, find_local, findall_local, local, namespace, text_of

CC_NAMESPACES = frozenset({
    "http://www.imsglobal.org/xsd/imsccv1p1/imscp_v1p1",
    "http://www.imsglobal.org/xsd/imsccv1p2/imscp_v1p1",
    "http://www.imsglobal.org/xsd/imsccv1p3/imscp_v1p1",
})
ADLCP_12 = "http://www.adlnet.org/xsd/adlcp_rootv1p2"
_BITRIX_ITEM = re.compile(r"^COR\d+$")
_BITRIX_RES = re.compile(r"^res\d+\.xml$")
_LOOKED_FOR = ("moodle_backup.xml (Moodle backup), course_info.dat (Chamilo backup), "
               "imsmanifest.xml (SCORM 1.2, IMS Common Cartridge 1.1, 1C-Bitrix export), "
               "syncd-course.json (syncd backup)")


def detect(archive: Archive) -> ArchiveFormat:
    """The format of the course archive (see the module docstring); ArchiveError if none."""
    where = archive.label
    if "moodle_backup.xml" in archive:
        root = read_xml(archive, "moodle_backup.xml", where)
        if local(root.tag) != "moodle_backup":
            raise ArchiveError(f"{where}: moodle_backup.xml has root <{local(root.tag)}>, "
                               "not <moodle_backup>")
        return "mbz"
    if "course_info.dat" in archive:
        return "chamilo"
    if "syncd-course.json" in archive:
        return "syncd"
    if "imsmanifest.xml" in archive:
        return _manifest_format(archive, read_xml(archive, "imsmanifest.xml", where))
    raise ArchiveError(f"{where}: not a course archive: found none of {_LOOKED_FOR}"
                       + _nested_hint(archive))


def _manifest_format(archive: Archive, root: Element) -> ArchiveFormat:
    where = f"{archive.label}: imsmanifest.xml"
    if local(root.tag) != "manifest":
        raise ArchiveError(f"{where}: root element <{local(root.tag)}> is not <manifest>")
    if namespace(root.tag) in CC_NAMESPACES:
        return "imscc"
    version = text_of(root, "metadata", "schemaversion")
    if version == "1.2" or _uses_namespace(root, ADLCP_12):
        return "scorm12"
    if version.startswith(("2004", "CAM 1.3")) or _uses_namespace(root, "http://www.adlnet.org/xsd/adlcp_v1p3"):
        raise ArchiveError(f"{where}: SCORM 2004 packages are not supported (SCORM 1.2 only)")
    if _is_bitrix(archive, root):
        return "bitrix"
    raise ArchiveError(
        f"{archive.label}: not a course archive: imsmanifest.xml is neither SCORM 1.2 "
        "(schemaversion 1.2 / adlcp 1.2 namespace), IMS Common Cartridge 1.1 (namespace "
        "http://www.imsglobal.org/xsd/imsccv1p1/imscp_v1p1) nor a 1C-Bitrix export "
        "(COR item with res<N>.xml resources)")


def _uses_namespace(root: Element, uri: str) -> bool:
    """Whether any element or attribute of the document lives in namespace ``uri``."""
    prefix = "{" + uri + "}"
    for element in root.iter():
        if isinstance(element.tag, str) and element.tag.startswith(prefix):
            return True
        if any(key.startswith(prefix) for key in element.attrib):
            return True
    return False


def _is_bitrix(archive: Archive, root: Element) -> bool:
    """A top item COR<n> whose resource's href is a res<n>.xml member of the archive."""
    organizations = find_local(root, "organizations")
    resources = find_local(root, "resources")
    if organizations is None or resources is None:
        return False
    hrefs = {attr(res, "identifier"): attr(res, "href") or "" for res in findall_local(resources, "resource")}
    for organization in findall_local(organizations, "organization"):
        for item in findall_local(organization, "item"):
            if not _BITRIX_ITEM.match(attr(item, "identifier") or ""):
                continue
            href = hrefs.get(attr(item, "identifierref"), "")
            if _BITRIX_RES.match(href) and href in archive:
                return True
    return False


def _nested_hint(archive: Archive) -> str:
    """A hint when a manifest sits one folder down (an archive of a folder)."""
    for name in archive.names():
        folder, _, base = name.rpartition("/")
        if folder and "/" not in folder and base in ("moodle_backup.xml", "imsmanifest.xml",
                                                     "course_info.dat", "syncd-course.json"):
            return f" ({name} found: the manifest must be at the archive root)"
    return ""
