"""Course content: ``core_course_get_contents``, ``core_course_import_course`` and ``..._duplicate_course``.

From ``core_course_get_contents.json``, ``core_course_import_course.json`` and
``core_course_duplicate_course.json``: sections with their modules (a module's ``contents`` left
out by ``excludecontents``, modules by ``excludemodules``); import copies the sections (names and
summaries) and activities of one course into another (``deletecontent`` empties the target
first) and rejects options other than activities/blocks/filters; duplicate creates a course
with the source's settings and content, rejects unknown options and quotes the *fullname* of
the course holding the shortname. Both run synchronously. Registered by :mod:`ws_courses`.
"""

from __future__ import annotations

import json
from typing import Any

from tests.moodle_fake.errors import missing_record, moodle_error
from tests.moodle_fake.records import Module, Section
from tests.moodle_fake.schema import DEFAULT, dflt, many, req, struct
from tests.moodle_fake.site import THEMEREV, Site, format_string
from tests.moodle_fake.wsbase import WsFunction

#: modname → (purpose, plural); others: ("other", "<Modname>s")
_MODS = {
    "forum": ("collaboration", "Forums"),
    "page": ("content", "Pages"),
    "url": ("content", "URLs"),
    "resource": ("content", "Files"),
    "assign": ("assessment", "Assignments"),
    "quiz": ("assessment", "Quizzes"),
    "label": ("content", "Text and media areas"),
    "folder": ("content", "Folders"),
    "scorm": ("content", "SCORM packages"),
}
IMPORT_OPTIONS = ("activities", "blocks", "filters")
DUPLICATE_OPTIONS = (
    "activities",
    "blocks",
    "filters",
    "users",
    "enrolments",
    "role_assignments",
    "comments",
    "userscompletion",
    "logs",
    "grade_histories",
)


def section_name(section: Section) -> str:
    """get_section_name: the stored name, else the format's default (4.4+: "General" / "New section")."""
    if section.name:
        return format_string(section.name)
    return "General" if section.section == 0 else "New section"


def _contents(site: Site, module: Module) -> list[dict[str, Any]]:
    if module.modname == "url":
        return [
            {
                "type": "url",
                "filename": module.name,
                "filepath": None,
                "filesize": 0,
                "fileurl": module.url,
                "timecreated": None,
                "timemodified": module.timemodified,
                "sortorder": None,
                "userid": None,
                "author": None,
                "license": None,
            }
        ]
    return [
        {
            "type": "file",
            "filename": "index.html",
            "filepath": "/",
            "filesize": 0,
            "fileurl": f"{site.wwwroot}/webservice/pluginfile.php/{module.contextid}"
            "/mod_page/content/index.html?forcedownload=1",
            "timecreated": None,
            "timemodified": module.timemodified,
            "sortorder": 1,
            "userid": None,
            "author": None,
            "license": None,
        }
    ]


def module_out(site: Site, module: Module, excludecontents: bool) -> dict[str, Any]:
    """One module as get_contents shows it (pages and urls carry contents, as recorded)."""
    purpose, plural = _MODS.get(module.modname, ("other", module.modname.capitalize() + "s"))
    out: dict[str, Any] = {
        "id": module.id,
        "url": f"{site.wwwroot}/mod/{module.modname}/view.php?id={module.id}",
        "name": format_string(module.name),
        "instance": module.instance,
        "contextid": module.contextid,
        "visible": module.visible,
        "uservisible": True,
        "visibleoncoursepage": 1,
        "modicon": f"{site.wwwroot}/theme/image.php/boost/{module.modname}/{THEMEREV}/monologo?filtericon=1",
        "modname": module.modname,
        "purpose": purpose,
        "branded": False,
        "modplural": plural,
        "availability": None,
        "indent": 0,
        "onclick": "",
        "afterlink": None,
    }
    if module.modname == "forum":
        out["activitybadge"] = []
    customdata = {"forum": {"trackingtype": "1"}, "url": {"display": 4, "filtericon": True}}.get(
        module.modname, ""
    )
    out.update(
        {
            "customdata": json.dumps(customdata, separators=(",", ":")),
            "noviewlink": False,
            "completion": 0,
            "downloadcontent": 1,
            "dates": [],
            "groupmode": 0,
        }
    )
    if module.modname in ("page", "url", "resource"):
        contents = _contents(site, module)
        out["contents"] = [] if excludecontents else contents  # recorded: an empty list, not left out
        out["contentsinfo"] = {
            "filescount": len(contents),
            "filessize": 0,
            "lastmodified": module.timemodified,
            "mimetypes": [],
            "repositorytype": "",
        }
    return out


def get_contents(site: Site, params: dict[str, Any]) -> list[dict[str, Any]]:
    """The sections of a course, each with its modules."""
    if site.course(params["courseid"]) is None:
        raise missing_record("course", params["courseid"])
    options = {o["name"]: o["value"] for o in params["options"]}
    flag = lambda name: options.get(name, "0") not in ("0", "", "false")  # noqa: E731
    modules = [] if flag("excludemodules") else site.modules_of(params["courseid"])
    out = []
    for section in site.sections_of(params["courseid"]):
        if "sectionid" in options and str(section.id) != options["sectionid"]:
            continue
        if "sectionnumber" in options and str(section.section) != options["sectionnumber"]:
            continue
        mods = [
            module_out(site, m, flag("excludecontents"))
            for m in modules
            if m.sectionid == section.id
            and ("cmid" not in options or str(m.id) == options["cmid"])
            and ("modname" not in options or m.modname == options["modname"])
        ]
        out.append(
            {
                "id": section.id,
                "name": section_name(section),
                "visible": section.visible,
                "summary": section.summary,
                "summaryformat": section.summaryformat,
                "section": section.section,
                "hiddenbynumsections": 0,
                "uservisible": True,
                "component": None,
                "itemid": None,
                "modules": mods,
            }
        )
    return out


def _backup_settings(options: list[dict[str, Any]], allowed: tuple[str, ...]) -> dict[str, int]:
    """Each option must be a known name with the value 0 or 1, else invalidextparam."""
    settings = {}
    for option in options:
        value = option["value"]
        if option["name"] not in allowed or value not in ("0", "1"):
            raise moodle_error("invalidextparam", a=option["name"])
        settings[option["name"]] = int(value)
    return settings


def import_course(site: Site, params: dict[str, Any]) -> None:
    """Copy the content of ``importfrom`` into ``importto`` (emptied first with deletecontent=1)."""
    for courseid in (params["importfrom"], params["importto"]):
        if site.course(courseid) is None:
            raise moodle_error("invalidcourseid")
    settings = _backup_settings(params["options"], IMPORT_OPTIONS)
    if params["deletecontent"]:
        site.clear_content(params["importto"], keep_section0=True)
    if settings.get("activities", 1):
        site.copy_content(params["importfrom"], params["importto"])


def duplicate_course(site: Site, params: dict[str, Any]) -> dict[str, Any]:
    """A new course with the source's settings and content (and its enrolments with users=1)."""
    source = site.course(params["courseid"])
    if source is None:
        raise moodle_error("invalidcourseid")
    if site.category(params["categoryid"]) is None:
        raise missing_record("course_categories", params["categoryid"])
    settings = _backup_settings(params["options"], DUPLICATE_OPTIONS)
    taken = [
        c.fullname
        for c in sorted(site.rows("courses"), key=lambda c: c.id)
        if c.shortname == params["shortname"]
    ]
    if taken:
        raise moodle_error("shortnametaken", a=",".join(taken))
    keep = (
        "summary",
        "summaryformat",
        "format",
        "showgrades",
        "newsitems",
        "startdate",
        "enddate",
        "maxbytes",
        "showreports",
        "groupmode",
        "groupmodeforce",
        "enablecompletion",
        "completionnotify",
        "lang",
    )
    courseid = site.add_course(
        params["shortname"],
        fullname=params["fullname"],
        category=params["categoryid"],
        visible=1 if params["visible"] else 0,
        sections=0,
        **{k: getattr(source, k) for k in keep},
    )
    if settings.get("activities", 1):
        site.copy_content(source.id, courseid)
    if settings.get("users", 0):
        for userid, enrolment in site.enrolments(source.id).items():
            site.enrol_user(courseid, userid, None, enrolment.timestart, enrolment.timeend, enrolment.status)
            for roleid in site.roles_in_course(source.id, userid):
                site.role_assign(roleid, userid, site.course(courseid).contextid)  # type: ignore[union-attr]
    return {"id": courseid, "shortname": params["shortname"]}


_OPTIONS = many(struct(name=req("alphaext"), value=req("raw")), mode=DEFAULT, default=[])

CONTENT_FUNCTIONS: list[WsFunction] = [
    WsFunction(
        "core_course_get_contents",
        struct(
            courseid=req("int"),
            options=many(struct(name=req("alpha"), value=req("raw")), mode=DEFAULT, default=[]),
        ),
        get_contents,
    ),
    WsFunction(
        "core_course_import_course",
        struct(
            importfrom=req("int"),
            importto=req("int"),
            options=many(struct(name=req("alpha"), value=req("raw")), mode=DEFAULT, default=[]),
            deletecontent=dflt("int", 0),
        ),
        import_course,
    ),
    WsFunction(
        "core_course_duplicate_course",
        struct(
            courseid=req("int"),
            fullname=req("text"),
            shortname=req("text"),
            categoryid=req("int"),
            visible=dflt("int", 1),
            options=_OPTIONS,
        ),
        duplicate_course,
    ),
]
