"""Course categories and courses: the ``core_course_*`` functions of the fake Moodle.

Behaviour from ``core_course_*.json`` (README §4, §5.3, §5.4, §5.9-11, §5.13):

- create_categories and create_courses are one transaction for the whole batch; update_courses
  and delete_courses turn a bad item into a warning ``{item, itemid, warningcode, message}``
  and keep going, with no rollback inside an item (an unknown ``categoryid`` is saved first).
- Category and course names come back through ``format_string`` (``&`` → ``&amp;``).
- ``get_courses_by_field(field=ids)`` with an unknown id is the PHP ``Error`` with no errorcode;
  ``enrollmentmethods`` lists the *enabled* instances only.

The content functions (get_contents, import, duplicate) live in :mod:`ws_coursecontent` and are
part of :data:`FUNCTIONS`.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from tests.moodle_fake.errors import WsError, invalid_parameter, missing_record, moodle_error, php_error
from tests.moodle_fake.records import COURSE, Category, Course
from tests.moodle_fake.schema import CLEANERS, DEFAULT, dflt, many, opt, req, struct
from tests.moodle_fake.site import Site, format_string
from tests.moodle_fake.ws_coursecontent import CONTENT_FUNCTIONS
from tests.moodle_fake.wsbase import WsFunction

# moodlecourse|numsections of the recorded site: its weeks course without numsections got an end date
# one week after its start (automaticenddate = start + numsections weeks) and one section after 0
DEFAULT_NUMSECTIONS = 1
WEEK = 7 * 24 * 3600
FILTERS = ("displayh5p", "activitynames", "mathjaxloader", "emoticon", "urltolink", "mediaplugin")
_CRITERIA_INT = ("id", "parent", "sortorder", "visible")


def _warning(itemid: int, err: WsError) -> dict[str, Any]:
    return {"item": "course", "itemid": itemid, "warningcode": err.errorcode, "message": err.message}


# -- categories -----------------------------------------------------------------------------


def _category_out(site: Site, cat: Category, order: dict[int, int]) -> dict[str, Any]:
    path = [str(cat.id)]
    parent = cat.parent
    while parent:
        path.insert(0, str(parent))
        above = site.category(parent)
        parent = above.parent if above else 0
    return {
        "id": cat.id,
        "name": format_string(cat.name),
        "idnumber": cat.idnumber,
        # format_text of the description: the fake only escapes bare ampersands, like names
        "description": format_string(cat.description),
        "descriptionformat": 1,
        "parent": cat.parent,
        "sortorder": order.get(cat.id, 0),
        "coursecount": sum(1 for c in site.iter_rows("courses") if c.category == cat.id),
        "visible": cat.visible,
        "visibleold": cat.visible,
        "timemodified": cat.timemodified,
        "depth": len(path),
        "path": "/" + "/".join(path),
        "theme": cat.theme,
    }


def _matches(cat: Category, key: str, value: str) -> bool:
    if key in _CRITERIA_INT:  # PARAM_INT, silently cleaned ("abc" → 0)
        number = int(value) if re.fullmatch(r"-?[0-9]+", value.strip()) else 0
        return bool(getattr(cat, key) == number)
    if key == "ids":
        return str(cat.id) in re.sub(r"[^0-9,]", "", value).split(",")
    if key == "name":
        return cat.name == value
    return bool(getattr(cat, key) == value)  # idnumber, theme


def get_categories(site: Site, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Categories matching every criterion (ANDed), plus their descendants unless addsubcategories=0."""
    allowed = {*_CRITERIA_INT, "ids", "name", "idnumber", "theme"}
    for crit in params["criteria"]:
        if crit["key"] not in allowed:
            raise moodle_error("criteriaerror", f"You can not search on this criteria: {crit['key']}")
    cats = site.rows("categories")
    found = {c.id for c in cats if all(_matches(c, k["key"], k["value"]) for k in params["criteria"])}
    if params["criteria"] and params["addsubcategories"]:
        for catid in list(found):
            found |= site.descendants(catid)
    order = site.category_sortorders()
    chosen = sorted((c for c in cats if c.id in found), key=lambda c: order.get(c.id, 0))
    return [_category_out(site, c, order) for c in chosen]


def create_categories(site: Site, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Whole batch: the first bad item fails the call."""
    out = []
    for item in params["categories"]:
        if item["parent"] and site.category(item["parent"]) is None:
            raise moodle_error("unknowcategory")
        if item["name"] == "":
            raise moodle_error("categorynamerequired")
        idnumber = item.get("idnumber")
        if idnumber and site.category_by_idnumber(idnumber) is not None:
            raise moodle_error("categoryidnumbertaken", idnumber)
        catid = site.add_category(
            item["name"],
            parent=item["parent"],
            idnumber=idnumber,
            description=item.get("description", ""),
            theme=item.get("theme", ""),
        )
        out.append({"id": catid, "name": format_string(item["name"])})
    return out


# -- get_courses_by_field ----------------------------------------------------------------------


def _format_options(course: Course) -> list[dict[str, Any]]:
    options: list[dict[str, Any]] = [
        {"name": "hiddensections", "value": 1},
        {"name": "coursedisplay", "value": 0},
    ]
    if course.format == "weeks":
        options.append({"name": "automaticenddate", "value": 1})
    return [*options, {"name": "indentation", "value": "1"}]


def enrolment_methods(course: Course) -> list[str]:
    """The enabled enrolment instances of a course (manual first)."""
    return (["manual"] if course.manual is True else []) + list(course.methods)


def course_out(site: Site, course: Course, catorder: dict[int, int]) -> dict[str, Any]:
    """One course as get_courses_by_field shows it."""
    cat = site.category(course.category)
    out: dict[str, Any] = {
        "id": course.id,
        "fullname": format_string(course.fullname),
        "displayname": format_string(course.fullname),
        "shortname": format_string(course.shortname),
        "courseimage": f"{site.wwwroot}/pluginfile.php/{course.contextid}/course/generated/course.svg",
        "categoryid": course.category,
        "categoryname": format_string(cat.name) if cat else "",
        "sortorder": site.course_sortorder(course, catorder),
        "summary": course.summary,
        "summaryformat": course.summaryformat,
        "summaryfiles": [],
        "overviewfiles": [],
        "showactivitydates": False,
        "showcompletionconditions": None if course.format == "site" else True,
        "contacts": [{"id": u.id, "fullname": u.fullname} for u in site.contacts(course.id)],
        "enrollmentmethods": enrolment_methods(course),
    }
    for key in (
        "idnumber",
        "format",
        "showgrades",
        "newsitems",
        "startdate",
        "enddate",
        "maxbytes",
        "showreports",
        "visible",
        "groupmode",
        "groupmodeforce",
        "defaultgroupingid",
        "enablecompletion",
        "completionnotify",
        "lang",
        "theme",
    ):
        out[key] = getattr(course, key)
    out.update(
        {
            "marker": 0,
            "legacyfiles": 0,
            "calendartype": "",
            "timecreated": course.timecreated,
            "timemodified": course.timemodified,
            "requested": 0,
            "cacherev": course.cacherev,
            "filters": [{"filter": f, "localstate": 0, "inheritedstate": 1} for f in FILTERS],
        }
    )
    if course.format != "site":
        out["courseformatoptions"] = _format_options(course)
    return out


def get_courses_by_field(site: Site, params: dict[str, Any]) -> dict[str, Any]:
    """Courses by one field; no field: every course."""
    field, value = params["field"], params["value"]
    courses = sorted(site.rows("courses"), key=lambda c: c.id)
    if field == "":
        chosen = courses
    elif field in ("id", "category"):
        number = CLEANERS["int"](value.strip()) or 0
        chosen = [c for c in courses if getattr(c, field) == number]
    elif field == "ids":
        parts = re.sub(r"[^0-9,]", "", value).split(",")
        if "" in parts:  # the SQL gets an empty bigint (debuginfo: invalid input syntax)
            raise WsError(
                "dml_read_exception",
                "dmlreadexception",
                "Error reading from database",
                'ERROR:  invalid input syntax for type bigint: ""',
            )
        wanted = {int(p) for p in parts}
        chosen = [c for c in courses if c.id in wanted]
        if len(chosen) != len(wanted):
            raise php_error("Error", 'Attempt to assign property "contextvalidated" on null')
    elif field in ("shortname", "idnumber"):
        chosen = [c for c in courses if value and getattr(c, field) == value]
    else:
        raise invalid_parameter("Invalid field name")
    order = site.category_sortorders()
    return {"courses": [course_out(site, c, order) for c in chosen], "warnings": []}


# -- create / update / delete ------------------------------------------------------------------


def _check_names(site: Site, courseid: int, item: dict[str, Any]) -> None:
    shortname, idnumber = item.get("shortname"), item.get("idnumber")
    if shortname:
        other = site.course_by_shortname(shortname)
        if other is not None and other.id != courseid:
            raise moodle_error("shortnametaken", a=shortname)
    if idnumber:
        other = site.course_by_idnumber(idnumber)
        if other is not None and other.id != courseid:
            raise moodle_error("courseidnumbertaken", a=idnumber)


def _check_dates(item: dict[str, Any]) -> None:
    """course_validate_dates: only the submitted fields count (README §5.4)."""
    start, end = item.get("startdate", 0), item.get("enddate", 0)
    if not start and end:
        raise moodle_error("nostartdatenoenddate")
    if end and end < start:
        raise moodle_error("enddatebeforestartdate")


def _numsections(item: dict[str, Any]) -> int:
    options = {o["name"]: o["value"] for o in item.get("courseformatoptions", [])}
    raw = options.get("numsections", item.get("numsections", DEFAULT_NUMSECTIONS))
    return int(raw) if re.fullmatch(r"[0-9]+", str(raw)) else DEFAULT_NUMSECTIONS


_COURSE_KEYS = (
    "idnumber",
    "summary",
    "summaryformat",
    "format",
    "showgrades",
    "newsitems",
    "startdate",
    "enddate",
    "maxbytes",
    "showreports",
    "visible",
    "groupmode",
    "groupmodeforce",
    "defaultgroupingid",
    "enablecompletion",
    "completionnotify",
    "lang",
)


def create_courses(site: Site, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Whole batch: the first bad item fails the call."""
    out = []
    for item in params["courses"]:
        if site.category(item["categoryid"]) is None:
            raise moodle_error(
                "errorcatcontextnotvalid",
                catid=item["categoryid"],
                message="Invalid parameter value detected",
            )
        _check_names(site, 0, item)
        _check_dates(item)
        fields = {k: item[k] for k in _COURSE_KEYS if k in item}
        if "forcetheme" in item:
            fields["theme"] = item["forcetheme"]
        if fields.get("format") == "weeks" and fields.get("startdate") and not fields.get("enddate"):
            fields["enddate"] = fields["startdate"] + WEEK * max(1, _numsections(item))  # automaticenddate
        courseid = site.add_course(
            item["shortname"],
            fullname=item["fullname"],
            category=item["categoryid"],
            sections=_numsections(item),
            **fields,
        )
        out.append({"id": courseid, "shortname": item["shortname"]})
    return out


def _update_one(site: Site, item: dict[str, Any]) -> None:
    course = site.course(item["id"])
    if course is None:
        raise missing_record("course", item["id"])
    if "fullname" in item and item["fullname"] != course.fullname and not item["fullname"].strip():
        raise moodle_error("errorinvalidparam", a="fullname")
    if "shortname" in item and item["shortname"] != course.shortname and not item["shortname"].strip():
        raise moodle_error("errorinvalidparam", a="shortname")
    _check_names(site, course.id, item)
    _check_dates(item)
    changes = {k: item[k] for k in ("fullname", "shortname", *_COURSE_KEYS) if k in item}
    if "forcetheme" in item:
        changes["theme"] = item["forcetheme"]
    moved = bool(item.get("categoryid")) and item["categoryid"] != course.category
    if moved:
        changes["category"] = item["categoryid"]
        changes["lastsortorder"] = site.course_sortorder(course)
    updated = replace(course, timemodified=site.now(), **changes)
    if updated.format == "weeks" and updated.startdate:  # automaticenddate: recomputed on every update
        weeks = max(1, len(site.sections_of(course.id)) - 1)
        updated = replace(updated, enddate=updated.startdate + WEEK * weeks)
    site.put("courses", course.id, updated)
    if moved:  # the row is already saved when the new category's context is looked up (§5.4)
        cat = site.category(item["categoryid"])
        if cat is None:
            raise missing_record("course_categories", item["categoryid"])
        site.put("contexts", course.contextid, (COURSE, course.id, cat.contextid))


def update_courses(site: Site, params: dict[str, Any]) -> dict[str, Any]:
    """Each item on its own; a failure is a warning and what the item saved before failing stays."""
    warnings = []
    for item in params["courses"]:
        try:
            _update_one(site, item)
        except WsError as err:
            warnings.append(_warning(item["id"], err))
    return {"warnings": warnings}


def delete_courses(site: Site, params: dict[str, Any]) -> dict[str, Any]:
    """Unknown ids and the site course are warnings; the others are deleted."""
    warnings = []
    for courseid in params["courseids"]:
        if site.course(courseid) is None:
            warnings.append(
                {
                    "item": "course",
                    "itemid": courseid,
                    "warningcode": "unknowncourseidnumber",
                    "message": f"Unknown course ID {courseid}",
                }
            )
        elif courseid == 1:
            warnings.append(
                {
                    "item": "course",
                    "itemid": courseid,
                    "warningcode": "cannotdeletecategorycourse",
                    "message": f"Course {courseid} failed to be deleted",
                }
            )
        else:
            site.delete_course(courseid)
    return {"warnings": warnings}


_OPTIONS = many(struct(name=req("alphanumext"), value=req("raw")), mode="optional")
_COURSE_FIELDS = {
    "idnumber": opt("raw"),
    "summary": opt("raw"),
    "summaryformat": opt("int"),
    "format": opt("plugin"),
    "showgrades": opt("int"),
    "newsitems": opt("int"),
    "startdate": opt("int"),
    "enddate": opt("int"),
    "numsections": opt("int"),
    "maxbytes": opt("int"),
    "showreports": opt("int"),
    "visible": opt("int"),
    "hiddensections": opt("int"),
    "groupmode": opt("int"),
    "groupmodeforce": opt("int"),
    "defaultgroupingid": opt("int"),
    "enablecompletion": opt("int"),
    "completionnotify": opt("int"),
    # lang is PARAM_SAFEDIR in Moodle, then checked against the installed packs: the fake refuses a
    # missing pack at validation (invalidparameter), which is what the connector's tests expect
    "lang": opt("lang"),
    "forcetheme": opt("plugin"),
    "courseformatoptions": _OPTIONS,
    "customfields": many(struct(shortname=req("alphanumext"), value=req("raw")), mode="optional"),
}

FUNCTIONS: list[WsFunction] = [
    WsFunction(
        "core_course_get_categories",
        struct(
            criteria=many(struct(key=req("alpha"), value=req("raw")), mode=DEFAULT, default=[]),
            addsubcategories=dflt("bool", True),
        ),
        get_categories,
    ),
    WsFunction(
        "core_course_create_categories",
        struct(
            categories=many(
                struct(
                    name=req("text"),
                    parent=dflt("int", 0),
                    idnumber=opt("raw"),
                    description=opt("raw"),
                    descriptionformat=dflt("int", 1),
                    theme=opt("plugin"),
                )
            )
        ),
        create_categories,
    ),
    WsFunction(
        "core_course_get_courses_by_field",
        struct(field=dflt("alpha", ""), value=dflt("raw", "")),
        get_courses_by_field,
    ),
    WsFunction(
        "core_course_create_courses",
        struct(
            courses=many(
                struct(
                    fullname=req("text"),
                    shortname=req("text"),
                    categoryid=req("int"),
                    **{**_COURSE_FIELDS, "summaryformat": dflt("int", 1), "format": dflt("plugin", "topics")},
                )
            )
        ),
        create_courses,
    ),
    WsFunction(
        "core_course_update_courses",
        struct(
            courses=many(
                struct(
                    id=req("int"),
                    fullname=opt("text"),
                    shortname=opt("text"),
                    categoryid=opt("int"),
                    **_COURSE_FIELDS,
                )
            )
        ),
        update_courses,
    ),
    WsFunction("core_course_delete_courses", struct(courseids=many(req("int"))), delete_courses),
    *CONTENT_FUNCTIONS,
]
