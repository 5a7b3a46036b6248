"""Build course archives for tests from the formats' documented structure (no samples).

- ``build_mbz``: a Moodle 2+ backup (moodle_backup.xml, course/course.xml,
  sections/section_<id>/section.xml, activities/<mod>_<id>/<mod>.xml, files.xml +
  files/<sha1[:2]>/<sha1>), zip or tar.gz;
- ``build_scorm12``: a SCORM 1.2 package (imsmanifest.xml with the ADL 1.2 namespaces);
- ``build_imscc``: an IMS Common Cartridge 1.1 package (web content, web links,
  discussions, assessments);
- ``build_chamilo``: a Chamilo backup zip (course_info.dat = base64 of a PHP-serialized
  Course, written by the small PHP serializer below, plus the document/ tree);
- ``build_bitrix``: a 1C-Bitrix learning export tar.gz (imsmanifest.xml + res<n>.xml,
  windows-1251 by default).

Every builder returns the archive's path. ``write_zip``/``write_tar`` write raw members.
"""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr


def write_zip(path: Path, members: Mapping[str, bytes]) -> Path:
    """A deflated zip holding ``members`` (name → bytes), in order."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def write_tar(path: Path, members: Mapping[str, bytes], compression: str = "gz") -> Path:
    """A tar (``compression``: gz, bz2, xz or "" for none) holding ``members``."""
    with tarfile.open(path, f"w:{compression}") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 1_700_000_000
            archive.addfile(info, io.BytesIO(data))
    return path


def _write(path: Path, members: Mapping[str, bytes], tar: bool) -> Path:
    return write_tar(path, members) if tar else write_zip(path, members)


def _el(tag: str, text: object = "", **attrs: object) -> str:
    attributes = "".join(f" {key.rstrip('_').replace('__', ':')}={quoteattr(str(value))}"
                         for key, value in attrs.items())
    return f"<{tag}{attributes}>{escape(str(text))}</{tag}>"


def _doc(body: str, encoding: str = "UTF-8") -> bytes:
    return f'<?xml version="1.0" encoding="{encoding}"?>\n{body}'.encode(encoding)


# -- Moodle ---------------------------------------------------------------------------

@dataclass(frozen=True)
class MbzActivity:
    """An activity of a Moodle backup; ``files`` (resource/folder) maps paths to bytes."""

    modulename: str
    moduleid: int
    section: int
    title: str
    content: str = ""
    url: str = ""
    files: Mapping[str, bytes] = field(default_factory=dict)


def build_mbz(path: Path, *, fullname: str = "Course", shortname: str = "C1", summary: str = "",
              sections: Sequence[tuple[int, str, str]] = ((0, "", ""),),
              activities: Sequence[MbzActivity] = (), files: Mapping[str, bytes] | None = None,
              startdate: int = 0, fmt: str = "topics", idnumber: str = "", tar: bool = False) -> Path:
    """A Moodle backup: ``sections`` are (number, name, summary); ``files`` are course
    files (area ``legacy``); zip unless ``tar``."""
    members: dict[str, bytes] = {}
    acts = "".join("<activity>" + _el("moduleid", a.moduleid) + _el("sectionid", 100 + a.section)
                   + _el("modulename", a.modulename) + _el("title", a.title)
                   + _el("directory", f"activities/{a.modulename}_{a.moduleid}") + "</activity>"
                   for a in activities)
    secs = "".join(f"<section>{_el('sectionid', 100 + n)}{_el('title', name or n)}"
                   f"{_el('directory', f'sections/section_{100 + n}')}</section>" for n, name, _ in sections)
    info = (_el("name", path.name) + _el("original_course_format", fmt)
            + _el("original_course_fullname", fullname) + _el("original_course_shortname", shortname)
            + f"<contents><activities>{acts}</activities><sections>{secs}</sections>"
            + "<course><courseid>2</courseid><directory>course</directory></course></contents>")
    members["moodle_backup.xml"] = _doc(f"<moodle_backup><information>{info}</information></moodle_backup>")
    members["course/course.xml"] = _doc(
        '<course id="2" contextid="10">' + _el("shortname", shortname) + _el("fullname", fullname)
        + _el("idnumber", idnumber) + _el("summary", summary) + _el("format", fmt)
        + _el("startdate", startdate) + _el("visible", 1) + _el("lang", "") + "</course>")
    _mbz_parts(members, sections, activities)
    records = [(1000 + a.moduleid, f"mod_{a.modulename}", "content", name, data)
               for a in activities for name, data in a.files.items()]
    records += [(10, "course", "legacy", name, data) for name, data in (files or {}).items()]
    listing = "".join(_file_record(i, *record) for i, record in enumerate(records))
    members["files.xml"] = _doc(f"<files>{listing}</files>")
    for *_, data in records:
        digest = hashlib.sha1(data).hexdigest()
        members[f"files/{digest[:2]}/{digest}"] = data
    return _write(path, members, tar)


def _mbz_parts(members: dict[str, bytes], sections: Sequence[tuple[int, str, str]],
               activities: Sequence[MbzActivity]) -> None:
    """The section.xml and <mod>.xml members."""
    for number, name, summary in sections:
        sequence = ",".join(str(a.moduleid) for a in activities if a.section == number)
        members[f"sections/section_{100 + number}/section.xml"] = _doc(
            f'<section id="{100 + number}">' + _el("number", number) + _el("name", name or "$@NULL@$")
            + _el("summary", summary) + _el("sequence", sequence) + "</section>")
    for a in activities:
        body = _el("name", a.title) + _el("content", a.content) + _el("externalurl", a.url)
        members[f"activities/{a.modulename}_{a.moduleid}/{a.modulename}.xml"] = _doc(
            f'<activity id="{a.moduleid}" moduleid="{a.moduleid}" modulename="{a.modulename}" '
            f'contextid="{1000 + a.moduleid}"><{a.modulename} id="{a.moduleid}">{body}</{a.modulename}>'
            "</activity>")


def _file_record(n: int, contextid: int, component: str, area: str, name: str, data: bytes) -> str:
    folder, _, filename = name.rpartition("/")
    return (f'<file id="{n + 1}">' + _el("contenthash", hashlib.sha1(data).hexdigest())
            + _el("contextid", contextid) + _el("component", component) + _el("filearea", area)
            + _el("itemid", 0) + _el("filepath", f"/{folder}/" if folder else "/")
            + _el("filename", filename) + _el("filesize", len(data)) + _el("sortorder", 1 if n == 0 else 0)
            + "</file>")


# -- SCORM 1.2 --------------------------------------------------------------------------

@dataclass(frozen=True)
class ScormItem:
    """An organization item: with ``href`` it has a resource (launch file), else a folder."""

    identifier: str
    title: str
    href: str | None = None
    scormtype: str = "sco"
    files: tuple[str, ...] = ()
    children: tuple[ScormItem, ...] = ()


def _scorm_items(items: Sequence[ScormItem]) -> tuple[str, str]:
    xml, resources = "", ""
    for item in items:
        ref = f' identifierref="R_{item.identifier}"' if item.href else ""
        inner, inner_res = _scorm_items(item.children)
        xml += f'<item identifier={quoteattr(item.identifier)}{ref}>{_el("title", item.title)}{inner}</item>'
        resources += inner_res
        if item.href:
            listed = "".join(f"<file href={quoteattr(f)}/>" for f in (item.href, *item.files))
            resources += (f'<resource identifier="R_{item.identifier}" type="webcontent" '
                          f'adlcp:scormtype="{item.scormtype}" href={quoteattr(item.href)}>'
                          f"{listed}</resource>")
    return xml, resources


def build_scorm12(path: Path, *, identifier: str = "com.example.course", title: str = "Course",
                  items: Sequence[ScormItem] = (), files: Mapping[str, bytes] | None = None) -> Path:
    """A SCORM 1.2 zip; ``files`` are the members written besides the manifest."""
    xml, resources = _scorm_items(items)
    manifest = (
        f'<manifest identifier={quoteattr(identifier)} version="1.0" '
        'xmlns="http://www.imsproject.org/xsd/imscp_rootv1p1p2" '
        'xmlns:adlcp="http://www.adlnet.org/xsd/adlcp_rootv1p2">'
        "<metadata><schema>ADL SCORM</schema><schemaversion>1.2</schemaversion></metadata>"
        f'<organizations default="ORG"><organization identifier="ORG">{_el("title", title)}{xml}'
        f"</organization></organizations><resources>{resources}</resources></manifest>")
    return write_zip(path, {"imsmanifest.xml": _doc(manifest), **(files or {})})


# -- IMS Common Cartridge 1.1 --------------------------------------------------------------

CC11 = "http://www.imsglobal.org/xsd/imsccv1p1/imscp_v1p1"
_CC_TYPES = {"webcontent": "webcontent", "weblink": "imswl_xmlv1p1", "discussion": "imsdt_xmlv1p1",
             "assessment": "imsqti_xmlv1p2/imscc_xmlv1p1/assessment"}


@dataclass(frozen=True)
class CcItem:
    """A cartridge item: ``kind`` folder (with ``children``), webcontent (``href``),
    weblink (``url``), discussion or assessment."""

    identifier: str
    title: str
    kind: str = "folder"
    href: str = ""
    url: str = ""
    children: tuple[CcItem, ...] = ()


def _cc_items(items: Sequence[CcItem], members: dict[str, bytes]) -> tuple[str, str]:
    xml, resources = "", ""
    for item in items:
        if item.kind == "folder":
            inner, inner_res = _cc_items(item.children, members)
            xml += f'<item identifier="{item.identifier}">{_el("title", item.title)}{inner}</item>'
            resources += inner_res
            continue
        xml += (f'<item identifier="{item.identifier}" identifierref="R_{item.identifier}">'
                f'{_el("title", item.title)}</item>')
        file = item.href if item.kind == "webcontent" else f"R_{item.identifier}/{item.kind}.xml"
        if item.kind == "weblink":
            members[file] = _doc('<webLink xmlns="http://www.imsglobal.org/xsd/imsccv1p1/imswl_v1p1">'
                                 + _el("title", item.title) + f"<url href={quoteattr(item.url)}/></webLink>")
        elif item.kind != "webcontent":
            members[file] = _doc(f"<{item.kind}>{escape(item.title)}</{item.kind}>")
        href = f" href={quoteattr(file)}" if item.kind == "webcontent" else ""
        resources += (f'<resource identifier="R_{item.identifier}" type="{_CC_TYPES[item.kind]}"{href}>'
                      f"<file href={quoteattr(file)}/></resource>")
    return xml, resources


def build_imscc(path: Path, *, identifier: str = "cc-course", title: str = "Course", description: str = "",
                modules: Sequence[CcItem] = (), files: Mapping[str, bytes] | None = None) -> Path:
    """A Common Cartridge 1.1 zip: ``modules`` under the untitled root item."""
    members: dict[str, bytes] = dict(files or {})
    xml, resources = _cc_items(modules, members)
    lom = ('<lomimscc:lom><lomimscc:general><lomimscc:title>'
           f'<lomimscc:string language="en">{escape(title)}</lomimscc:string></lomimscc:title>'
           f'<lomimscc:description><lomimscc:string>{escape(description)}</lomimscc:string>'
           "</lomimscc:description></lomimscc:general></lomimscc:lom>")
    manifest = (
        f'<manifest identifier={quoteattr(identifier)} xmlns="{CC11}" '
        'xmlns:lomimscc="http://ltsc.ieee.org/xsd/imsccv1p1/LOM/manifest">'
        f"<metadata><schema>IMS Common Cartridge</schema><schemaversion>1.1.0</schemaversion>{lom}</metadata>"
        f'<organizations><organization identifier="O_1" structure="rooted-hierarchy">'
        f'<item identifier="root">{xml}</item></organization></organizations>'
        f"<resources>{resources}</resources></manifest>")
    return write_zip(path, {"imsmanifest.xml": _doc(manifest), **members})


# -- PHP serialize (for Chamilo) -------------------------------------------------------------

@dataclass(frozen=True)
class PhpObj:
    """A PHP object for :func:`php_serialize`: its class and properties, in order."""

    cls: str
    props: Mapping[str, Any]


def php_serialize(value: Any, charset: str = "utf-8") -> bytes:
    """PHP's ``serialize()`` of None, bool, int, float, str (``charset`` bytes), list,
    tuple and Mapping (arrays) and :class:`PhpObj`."""
    if value is None:
        return b"N;"
    if isinstance(value, bool):
        return b"b:1;" if value else b"b:0;"
    if isinstance(value, int):
        return b"i:%d;" % value
    if isinstance(value, float):
        return f"d:{value!r};".encode()
    if isinstance(value, str):
        raw = value.encode(charset)
        return b's:%d:"%s";' % (len(raw), raw)
    if isinstance(value, list | tuple):
        value = dict(enumerate(value))
    body = b"".join(php_serialize(k, charset) + php_serialize(v, charset)
                    for k, v in (value.props if isinstance(value, PhpObj) else value).items())
    if isinstance(value, PhpObj):
        cls = value.cls.encode()
        return b'O:%d:"%s":%d:{%s}' % (len(cls), cls, len(value.props), body)
    return b"a:%d:{%s}" % (len(value), body)


# -- Chamilo -------------------------------------------------------------------------------------

_CNS = "Chamilo\\CourseBundle\\Component\\CourseCopy\\"


@dataclass(frozen=True)
class ChamiloLpItem:
    """A learning-path item; ``ref`` is a document path (under document/) or a link id."""

    id: int
    item_type: str
    title: str
    ref: str = ""
    parent: int = 0
    order: int = 0


@dataclass(frozen=True)
class ChamiloLp:
    """A Chamilo learning path with its items."""

    id: int
    name: str
    items: tuple[ChamiloLpItem, ...] = ()
    description: str = ""


def _resource(cls: str, legacy: bool, source_id: int, kind: str, **props: Any) -> PhpObj:
    name = cls if legacy else f"{_CNS}Resources\\{cls}"
    return PhpObj(name, {"source_id": source_id, "destination_id": -1, "type": kind,
                         "linked_resources": [], "item_properties": [], "obj": None, **props})


def build_chamilo(path: Path, *, code: str = "COURSE1", title: str = "Course", lang: str = "english",
                  documents: Mapping[str, bytes] | None = None, learnpaths: Sequence[ChamiloLp] = (),
                  links: Sequence[tuple[int, str, str]] = (), quizzes: Sequence[tuple[int, str]] = (),
                  forums: Sequence[tuple[int, str]] = (), description: str = "", legacy: bool = False,
                  encoding: str = "UTF-8", missing: Sequence[str] = ()) -> Path:
    """A Chamilo backup zip. ``documents`` (path under document/ → bytes) are listed and
    written; ``missing`` paths are listed only. ``links`` are (id, title, url)."""
    docs = dict(documents or {})
    paths = list(docs) + list(missing)
    ids = {p: n for n, p in enumerate(paths, 1)}
    folders = sorted({p.rsplit("/", i)[0] for p in paths for i in range(1, p.count("/") + 1)})
    res: dict[str, Any] = {"document": {
        n: _resource("Document", legacy, n, "document", path=f"document/{p}", comment="",
                     file_type="file", size=str(len(docs.get(p, b""))), title=p.rpartition("/")[2])
        for p, n in ids.items()}}
    for n, folder in enumerate(folders, 1000):
        res["document"][n] = _resource("Document", legacy, n, "document", path=f"document/{folder}",
                                       comment="", file_type="folder", size="0", title=folder)
    res["link"] = {i: _resource("Link", legacy, i, "link", title=t, url=u, description="", category_id=0)
                   for i, t, u in links}
    res["quiz"] = {i: _resource("Quiz", legacy, i, "quiz", title=t, description="") for i, t in quizzes}
    res["forum"] = {i: _resource("Forum", legacy, i, "forum", obj=PhpObj("stdClass", {"forum_title": t}))
                    for i, t in forums}
    res["Forum_Category"] = {1: _resource("ForumCategory", legacy, 1, "Forum_Category", title="General")}
    res["course_description"] = {1: _resource("CourseDescription", legacy, 1, "course_description",
                                              title="Description", content=description, description_type=1)}
    res["learnpath"] = {lp.id: _resource("CourseCopyLearnpath", legacy, lp.id, "learnpath", lp_type=1,
                                         name=lp.name, description=lp.description, display_order=lp.id,
                                         items=[_lp_item(item, ids) for item in lp.items])
                        for lp in learnpaths}
    info = {"code": code, "official_code": code, "title": title, "course_language": lang, "visibility": 2}
    course = PhpObj("Course" if legacy else f"{_CNS}Course",
                    {"resources": res, "code": code, "path": "", "destination_path": "",
                     "destination_db": "", "encoding": encoding, "info": info, "type": "complete"})
    members = {"course_info.dat": base64.b64encode(php_serialize(course, encoding))}
    members.update({f"document/{p}": data for p, data in docs.items()})
    return write_zip(path, members)


def _lp_item(item: ChamiloLpItem, doc_ids: Mapping[str, int]) -> dict[str, Any]:
    ref = str(doc_ids.get(item.ref, item.ref)) if item.item_type == "document" else item.ref
    return {"id": item.id, "item_type": item.item_type, "ref": "", "title": item.title, "description": "",
            "path": ref, "parent_item_id": item.parent, "previous_item_id": 0, "next_item_id": 0,
            "display_order": item.order or item.id, "prerequisite": "", "launch_data": ""}


# -- 1C-Bitrix ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BitrixLesson:
    """A lesson: ``html`` may say ``{res}`` for its ``cid:resources/res<n>`` folder."""

    id: int
    name: str
    html: str = ""
    text_type: str = "html"
    files: Mapping[str, bytes] = field(default_factory=dict)
    questions: tuple[str, ...] = ()


@dataclass(frozen=True)
class BitrixChapter:
    """A chapter with nested chapters and lessons."""

    id: int
    name: str
    preview: str = ""
    detail: str = ""
    children: tuple[BitrixChapter | BitrixLesson, ...] = ()


class _Bitrix:
    def __init__(self, charset: str) -> None:
        self.charset, self.ref = charset, 1
        self.members: dict[str, bytes] = {}
        self.resources = ""

    def record(self, tag: str, fields: Mapping[str, object], files: Mapping[str, bytes] = {},
               kind: str = "webcontent") -> int:
        ref = self.ref if tag == "coursetoc" else self.next()
        body = "".join(f"<{k}><![CDATA[{v}]]></{k}>" if k in ("detail_text", "preview_text", "description")
                       else _el(k, v) for k, v in fields.items())
        head = "<coursetoc>" if tag == "coursetoc" else f'<content type="{tag}">'
        tail = "</coursetoc>" if tag == "coursetoc" else "</content>"
        self.members[f"res{ref}.xml"] = _doc(head + body + tail, self.charset)
        listed = ""
        for name, data in files.items():
            self.members[f"resources/res{ref}/{name}"] = data
            listed += f'<file href="resources/res{ref}/{name}" />'
        self.resources += (f'<resource identifier="RES{ref}" type="{kind}" href="res{ref}.xml">'
                           f"{listed}</resource>")
        return ref

    def next(self) -> int:
        self.ref += 1
        return self.ref

    def items(self, nodes: Sequence[BitrixChapter | BitrixLesson]) -> str:
        xml = ""
        for node in nodes:
            if isinstance(node, BitrixChapter):
                ref = self.record("CHA", {"id": node.id, "name": node.name, "preview_text": node.preview,
                                          "detail_text": node.detail, "detail_text_type": "html"})
                xml += f'<item identifier="CHA{ref}" identifierref="RES{ref}">{_el("title", node.name)}'
                xml += self.items(node.children) + "</item>"
                continue
            html = node.html.replace("{res}", f"cid:resources/res{self.ref + 1}")
            ref = self.record("LES", {"id": node.id, "name": node.name, "detail_text": html,
                                      "detail_text_type": node.text_type}, node.files)
            xml += f'<item identifier="LES{ref}" identifierref="RES{ref}">{_el("title", node.name)}'
            for question in node.questions:
                q = self.record("QUE", {"name": question}, kind="imsqti_xmlv1p1")
                xml += f'<item identifier="QUE{q}" identifierref="RES{q}">{_el("title", question)}</item>'
            xml += "</item>"
        return xml


def build_bitrix(path: Path, *, course_id: int = 7, name: str = "Course", code: str = "",
                 description: str = "", active: str = "Y", active_from: int = 0,
                 children: Sequence[BitrixChapter | BitrixLesson] = (), tests: Sequence[str] = (),
                 charset: str = "windows-1251") -> Path:
    """A Bitrix learning export tar.gz, every XML file encoded and declared in ``charset``."""
    bx = _Bitrix(charset)
    bx.record("coursetoc", {"id": course_id, "name": name, "code": code, "description": description,
                            "active": active, "active_from": active_from or ""})
    xml = bx.items(children)
    for test in tests:
        ref = bx.record("TES", {"name": test})
        mark = bx.record("TMK", {"mark": "5"})
        xml += (f'<item identifier="TES{ref}" identifierref="RES{ref}">{_el("title", test)}'
                f'<item identifier="TMK{mark}" identifierref="RES{mark}"><title>5</title></item></item>')
    manifest = ('<manifest xmlns="http://www.imsproject.org/xsd/imscp_rootv1p1p2" identifier="toc1">'
                '<organizations default="man1"><organization identifier="man1" structure="hierarchical">'
                f'<item identifier="COR1" identifierref="RES1" parameters="">{_el("title", name)}{xml}</item>'
                f"</organization></organizations><resources>{bx.resources}</resources></manifest>")
    return write_tar(path, {"imsmanifest.xml": _doc(manifest, charset), **bx.members})
