"""Enrolments and roles: ``core_enrol_*``, ``enrol_manual_*`` and ``core_role_*`` of the fake Moodle.

From the recordings (README §4, §5.1, §5.2, §5.12, §5.14):

- enrol/unenrol and assign/unassign are one transaction for the whole batch.
- ``enrol_manual_enrol_users`` queues a course welcome message per item when the manual
  instance sends one and the course already has a contact (checked *before* the item's own
  role is given: the recorded batch ending with the first editingteacher returned null). With
  ``site.welcome_message_fails`` the call commits, then answers "Message was not sent.".
  An unknown user id is the PHP TypeError without errorcode (rolled back).
- unassigning a role the user does not hold, or for an unknown user, is silently ignored.
- ``core_enrol_get_course_enrolment_methods`` never lists the manual instance.
- ``core_enrol_get_enrolled_users`` lists suspended and expired enrolments unless ``onlyactive``.
"""

from __future__ import annotations

from typing import Any

from tests.moodle_fake.errors import (
    MOODLE_EXCEPTION,
    WsError,
    coding_error,
    invalid_parameter,
    missing_record,
    moodle_error,
    php_error,
)
from tests.moodle_fake.records import (
    CAPABILITIES,
    CONTEXT_LEVELS,
    COURSE,
    ROLE_LEVELS,
    ROLES,
    SUSPENDED,
    User,
)
from tests.moodle_fake.schema import DEFAULT, many, opt, req, struct
from tests.moodle_fake.site import THEMEREV, Site, format_string
from tests.moodle_fake.wsbase import WsFunction

#: methods core_enrol_get_course_enrolment_methods can show: name and the function giving their info
_METHOD_INFO = {
    "self": ("Self enrolment (Student)", "enrol_self_get_instance_info"),
    "guest": ("Guest access", "enrol_guest_get_instance_info"),
}
_USER_TYPEERROR = (
    "core\\user::get_name_placeholders(): Argument #1 ($user) must be of type stdClass, bool given, "
    "called in /var/www/moodle/lib/enrollib.php on line 3677"
)
#: user_get_user_details' keys, in its order; the "if set" ones are left out when empty
_DETAIL_KEYS = (
    "id",
    "username",
    "firstname",
    "lastname",
    "fullname",
    "email",
    "address",
    "phone1",
    "phone2",
    "department",
    "institution",
    "idnumber",
    "firstaccess",
    "lastaccess",
    "lastcourseaccess",
    "description",
    "city",
    "country",
    "profileimageurlsmall",
    "profileimageurl",
    "customfields",
    "groups",
    "roles",
    "enrolledcourses",
)
_IF_SET = {"address", "phone1", "phone2", "institution", "idnumber", "description", "city", "country"}


def _course_or_missing(site: Site, courseid: int) -> Any:
    course = site.course(courseid)
    if course is None:
        raise missing_record("course", courseid)
    return course


def get_course_enrolment_methods(site: Site, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Enabled instances whose plugin exposes enrol info (self, guest); manual never (§5.12)."""
    course = _course_or_missing(site, params["courseid"])
    out = []
    for index, method in enumerate(course.methods):
        if method in _METHOD_INFO:
            name, function = _METHOD_INFO[method]
            out.append(
                {
                    "id": course.id * 10 + index + 1,
                    "courseid": course.id,
                    "type": method,
                    "name": name,
                    "status": True,
                    "wsfunction": function,
                }
            )
    return out


# -- get_enrolled_users ------------------------------------------------------------------------


def _has_capability(site: Site, userid: int, contextid: int, capability: str) -> bool:
    holders = CAPABILITIES.get(capability, set())
    return any(site.roles_at(ctx, userid) & holders for ctx in site.parent_contexts(contextid))


def _details(site: Site, user: User, course: Any, fields: set[str] | None) -> dict[str, Any]:
    picture = (
        f"{site.wwwroot}/pluginfile.php/{user.contextid}/user/icon/boost/f%s?rev={user.picture}"
        if user.picture
        else f"{site.wwwroot}/theme/image.php/boost/core/{THEMEREV}/u/f%s"
    )
    values: dict[str, Any] = {
        "id": user.id,
        "username": user.username,
        "firstname": user.firstname,
        "lastname": user.lastname,
        "fullname": user.fullname,
        "email": user.email,
        "address": user.address,
        "phone1": user.phone1,
        "phone2": user.phone2,
        "department": user.department,
        "institution": user.institution,
        "idnumber": user.idnumber,
        "firstaccess": 0,
        "lastaccess": 0,
        "lastcourseaccess": 0,
        "description": user.description,
        "city": user.city,
        "country": user.country,
        "profileimageurlsmall": picture % 2,
        "profileimageurl": picture % 1,
    }
    if user.customfields:
        values["customfields"] = [
            {
                "type": "text",
                "value": v,
                "displayvalue": v,
                "name": site.profile_fields.get(k, k),
                "shortname": k,
            }
            for k, v in user.customfields
        ]
    groups = [
        g
        for g in site.groups_of(course.id)
        if user.id in site.group_members(g.id)
        and (not course.defaultgroupingid or g.id in site.grouping_groups(course.defaultgroupingid))
    ]
    if groups:  # recorded users without groups have no "groups" key
        values["groups"] = [
            {
                "id": g.id,
                "name": g.name,
                "description": g.description,
                "descriptionformat": g.descriptionformat,
            }
            for g in sorted(groups, key=lambda g: g.id)
        ]
    values["roles"] = [
        {"roleid": r, "name": "", "shortname": ROLES[r], "sortorder": 0}
        for r in sorted(site.roles_at(course.contextid, user.id))
        if r in ROLES
    ]
    # recorded: zoe, active in courses 64 and 65, shows only 64 when course 64 is read, and a
    # suspended user has no such key: the fake lists the course asked about, when active there
    mine = site.enrolments(course.id).get(user.id)
    if mine is not None and site.is_active(mine):
        values["enrolledcourses"] = [
            {
                "id": course.id,
                "fullname": format_string(course.fullname),
                "shortname": format_string(course.shortname),
            }
        ]
    out = {}
    for key in _DETAIL_KEYS:
        if key not in values or (key in _IF_SET and not values[key]):
            continue
        if fields is None or key in fields or key in ("id", "fullname"):
            out[key] = values[key]
    return out


def get_enrolled_users(site: Site, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Users enrolled in a course (any status unless onlyactive), by id."""
    course = _course_or_missing(site, params["courseid"])
    options = {o["name"]: o["value"] for o in params["options"]}
    fields = (
        {f.strip() for f in options["userfields"].split(",") if f.strip()}
        if options.get("userfields")
        else None
    )
    enrolments = sorted(site.enrolments(course.id).values(), key=lambda e: e.userid)
    if options.get("onlyactive") in ("1", "true"):
        enrolments = [e for e in enrolments if site.is_active(e)]
    if options.get("onlysuspended") in ("1", "true"):
        enrolments = [e for e in enrolments if not site.is_active(e)]
    users = [u for u in (site.live_user(e.userid) for e in enrolments) if u is not None]
    if options.get("withcapability"):
        users = [u for u in users if _has_capability(site, u.id, course.contextid, options["withcapability"])]
    if options.get("groupid"):
        members = site.group_members(int(options["groupid"]))
        users = [u for u in users if u.id in members]
    start = int(options.get("limitfrom", 0) or 0)
    count = int(options.get("limitnumber", 0) or 0)
    users = users[start : start + count] if count else users[start:]
    return [_details(site, u, course, fields) for u in users]


# -- manual enrolments --------------------------------------------------------------------------


def _assignable(roleid: int, level: int) -> bool:
    return level in ROLE_LEVELS.get(roleid, set())


def enrol_users(site: Site, params: dict[str, Any]) -> None:
    """Whole batch; the welcome message fails after the commit when mail is broken (§5.1)."""
    messages = 0
    for item in params["enrolments"]:
        course = site.course(item["courseid"])
        if course is None:
            raise invalid_parameter("Context does not exist")
        if not _assignable(item["roleid"], COURSE):
            raise moodle_error(
                "wsusercannotassign", roleid=item["roleid"], userid=item["userid"], courseid=item["courseid"]
            )
        if course.manual is not True:
            raise moodle_error("wsnoinstance", courseid=item["courseid"])
        if site.live_user(item["userid"]) is None:
            raise php_error("TypeError", _USER_TYPEERROR)
        if course.welcome and site.contacts(course.id):
            messages += 1
        status = SUSPENDED if item.get("suspend") else 0
        site.enrol_user(
            course.id,
            item["userid"],
            item["roleid"],
            item.get("timestart", 0),
            item.get("timeend", 0),
            status,
        )
    if messages and site.welcome_message_fails:
        site.end()  # committed: the message is sent after the commit and fails
        raise WsError(MOODLE_EXCEPTION, "Message was not sent.", "error/Message was not sent.")


def unenrol_users(site: Site, params: dict[str, Any]) -> None:
    """Whole batch; a user not enrolled is no error. A disabled manual instance still unenrols."""
    for item in params["enrolments"]:
        course = _course_or_missing(site, item["courseid"])
        if course.manual is None:
            raise moodle_error("wsnoinstance", courseid=item["courseid"])
        if site.user(item["userid"]) is None:
            raise invalid_parameter(f"User id not exist: {item['userid']}")
        site.unenrol_user(course.id, item["userid"])


# -- roles --------------------------------------------------------------------------------------


def _context(site: Site, item: dict[str, Any]) -> tuple[int, int]:
    """core_role_external::get_context_from_params: (contextid, level), or invalidparameter."""
    if item.get("contextid"):
        found = site.context(item["contextid"])
        if found is None:
            raise invalid_parameter("Context does not exist")
        return item["contextid"], found[0]
    if item.get("contextlevel") and "instanceid" in item:
        level = CONTEXT_LEVELS.get(item["contextlevel"])
        if level is None:
            raise invalid_parameter(f"Invalid context level = {item['contextlevel']}")
        contextid = site.context_id(level, item["instanceid"])
        if contextid is None:
            raise invalid_parameter("Context does not exist")
        return contextid, level
    raise invalid_parameter(
        "Missing parameters, please provide either context level with instance id or contextid"
    )


def assign_roles(site: Site, params: dict[str, Any]) -> None:
    """Whole batch; assigning a held role again is no error; a role can be given without enrolment."""
    for item in params["assignments"]:
        contextid, level = _context(site, item)
        if not _assignable(item["roleid"], level):
            raise invalid_parameter(
                f"Can not assign roleid={item['roleid']} in contextid={item.get('contextid', '')}"
            )
        if site.live_user(item["userid"]) is None:
            raise coding_error("User ID does not exist or is deleted!", f"userid:{item['userid']}")
        site.role_assign(item["roleid"], item["userid"], contextid)


def unassign_roles(site: Site, params: dict[str, Any]) -> None:
    """Whole batch; an unknown user or a role not held is silently ignored."""
    for item in params["unassignments"]:
        contextid, level = _context(site, item)
        if not _assignable(item["roleid"], level):
            raise invalid_parameter(
                f"Can not unassign roleid={item['roleid']} in contextid={item.get('contextid', '')}"
            )
        site.role_unassign(item["roleid"], item["userid"], contextid)


_OPTIONS = many(struct(name=req("alphanumext"), value=req("raw")), mode=DEFAULT, default=[])
_ROLE_ITEM = struct(
    roleid=req("int"),
    userid=req("int"),
    contextid=opt("int"),
    contextlevel=opt("alpha"),
    instanceid=opt("int"),
)

FUNCTIONS: list[WsFunction] = [
    WsFunction(
        "core_enrol_get_course_enrolment_methods", struct(courseid=req("int")), get_course_enrolment_methods
    ),
    WsFunction(
        "core_enrol_get_enrolled_users", struct(courseid=req("int"), options=_OPTIONS), get_enrolled_users
    ),
    WsFunction(
        "enrol_manual_enrol_users",
        struct(
            enrolments=many(
                struct(
                    roleid=req("int"),
                    userid=req("int"),
                    courseid=req("int"),
                    timestart=opt("int"),
                    timeend=opt("int"),
                    suspend=opt("int"),
                )
            )
        ),
        enrol_users,
    ),
    WsFunction(
        "enrol_manual_unenrol_users",
        struct(enrolments=many(struct(userid=req("int"), courseid=req("int"), roleid=opt("int")))),
        unenrol_users,
    ),
    WsFunction("core_role_assign_roles", struct(assignments=many(_ROLE_ITEM)), assign_roles),
    WsFunction("core_role_unassign_roles", struct(unassignments=many(_ROLE_ITEM)), unassign_roles),
]
