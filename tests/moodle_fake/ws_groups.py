"""Groups, groupings and group members: the ``core_group_*`` functions of the fake Moodle.

Behaviour from the recordings (``core_group_*.json`` and their ``debuginfo/`` twins), the rest
from Moodle 4.5's ``group/externallib.php`` (said so where it matters):

- every write is one transaction for the whole batch (README §4): the first bad item raises and
  nothing persists; unknown group ids in ``delete_groups``, adding a member twice, removing a
  non-member and assigning a group to a grouping twice are silently ignored;
- only enrolled users (any enrolment, even suspended) may be group members;
- group and grouping names come back raw (README §5.10), ``enrolmentkey`` is ``null`` when never
  set except in the create reply, which says ``""``;
- ``create_groupings`` without ``idnumber`` creates the grouping, then fails to serialise its reply
  (``invalidresponse``, README §5.5).
"""

from __future__ import annotations

from typing import Any

from tests.moodle_fake.errors import (
    MISSING_RECORD,
    WsError,
    invalid_parameter,
    invalid_response,
    moodle_error,
)
from tests.moodle_fake.records import Group, Grouping
from tests.moodle_fake.schema import OPTIONAL, dflt, many, opt, req, struct
from tests.moodle_fake.site import Site
from tests.moodle_fake.wsbase import WsFunction

VISIBILITIES = (0, 1, 2, 3)  # GROUPS_VISIBILITY_ALL, _MEMBERS, _OWN, _NONE
FORMATS = (0, 1, 2, 4)  # FORMAT_MOODLE, _HTML, _PLAIN, _MARKDOWN
_CUSTOMFIELDS = many(struct(shortname=req("alphanumext"), value=req("raw")), mode=OPTIONAL)


def missing(table: str, value: Any, fields: str = "*", extra: str = "") -> WsError:
    """The ``dml_missing_record_exception`` of a MUST_EXIST read, with the recorded debuginfo."""
    where = "id = ? AND deleted = ? AND mnethostid = ?" if extra else "id = ?"
    debuginfo = f"SELECT {fields} FROM {{{table}}} WHERE {where}\n[array (\n  0 => {value},\n{extra})]"
    if table == "user":
        return WsError(MISSING_RECORD, "invaliduser", "Invalid user", debuginfo)
    message = f"Can't find data record in database table {table}."
    return WsError(MISSING_RECORD, "invalidrecord", message, debuginfo)


def must_user(site: Site, userid: int) -> Any:
    """``get_record('user', [id, deleted=0, mnethostid], MUST_EXIST)``."""
    user = site.get("users", userid)
    if user is None or user.deleted:
        raise missing("user", userid, extra="  1 => 0,\n  2 => '1',\n")
    return user


def must_group(site: Site, groupid: int, fields: str = "*") -> Group:
    """``groups_get_group($id, $fields, MUST_EXIST)``."""
    group: Group | None = site.get("groups", groupid)
    if group is None:
        raise missing("groups", groupid, fields)
    return group


def must_grouping(site: Site, groupingid: int, fields: str = "*") -> Grouping:
    """``groups_get_grouping($id, $fields, MUST_EXIST)``."""
    grouping: Grouping | None = site.get("groupings", groupingid)
    if grouping is None:
        raise missing("groupings", groupingid, fields)
    return grouping


def must_course_context(site: Site, courseid: int) -> int:
    """``context_course::instance($courseid)`` (MUST_EXIST): its context id."""
    course = site.get("courses", courseid)
    if course is None:
        raise missing("course", courseid, "id,category")
    contextid: int = course.contextid
    return contextid


def valid_course_context(site: Site, courseid: int) -> int:
    """``context_course::instance(IGNORE_MISSING)`` + ``validate_context`` as the group functions wrap it."""
    course = site.get("courses", courseid)
    if course is None:
        raise moodle_error("errorcoursecontextnotvalid", courseid=courseid,
                           message="Invalid parameter value detected")
    contextid: int = course.contextid
    return contextid


def validate_format(value: int) -> int:
    """``util::validate_format`` (Moodle 4.5 source; not recorded): an unknown text format is refused."""
    if value not in FORMATS:
        raise moodle_error("formatnotsupported")
    return value


def taken(site: Site, table: str, courseid: int, idnumber: str) -> bool:
    """Whether a group (grouping) of the course already has this idnumber."""
    return any(row.courseid == courseid and row.idnumber == idnumber for row in site.iter_rows(table))


def group_reply(group: Group, *, created: bool = False) -> dict[str, Any]:
    """A group as get_course_groups / get_groups (and, with ``created``, create_groups) return it."""
    key = "" if created and group.enrolmentkey is None else group.enrolmentkey
    return {"id": group.id, "courseid": group.courseid, "name": group.name, "description": group.description,
            "descriptionformat": group.descriptionformat, "enrolmentkey": key,
            "idnumber": group.idnumber, "visibility": group.visibility, "participation": group.participation}


def grouping_reply(grouping: Grouping) -> dict[str, Any]:
    """A grouping as get_course_groupings and create_groupings return it."""
    return {"id": grouping.id, "courseid": grouping.courseid, "name": grouping.name,
            "description": grouping.description, "descriptionformat": grouping.descriptionformat,
            "idnumber": grouping.idnumber}


# -- groups ------------------------------------------------------------------------------


def get_course_groups(site: Site, params: dict[str, Any]) -> list[dict[str, Any]]:
    """The groups of a course by name (``groups_get_all_groups``)."""
    valid_course_context(site, params["courseid"])
    return [group_reply(g) for g in site.groups_of(params["courseid"])]


def get_groups(site: Site, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Groups by id, in the order asked; an unknown id fails the call (Moodle 4.5 source, not recorded)."""
    return [group_reply(must_group(site, groupid, "id, courseid, name, idnumber, description, "
                                   "descriptionformat, enrolmentkey, visibility, participation"))
            for groupid in params["groupids"]]


def create_groups(site: Site, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Create groups, the whole batch or nothing."""
    created = []
    for item in params["groups"]:
        courseid, name = item["courseid"], item["name"]
        if not name.strip():
            raise invalid_parameter("Invalid group name")
        if any(g.courseid == courseid and g.name == name for g in site.iter_rows("groups")):
            raise invalid_parameter("Group with the same name already exists in the course")
        valid_course_context(site, courseid)
        fmt = validate_format(item["descriptionformat"])
        if item["visibility"] not in VISIBILITIES:
            raise invalid_parameter("Invalid group visibility provided. Must be one of 0,1,2,3")
        idnumber = item.get("idnumber", "")
        if idnumber and taken(site, "groups", courseid, idnumber):
            raise moodle_error("idnumbertaken")
        # customfields: the site has no group custom fields, so they are accepted and dropped
        group = Group(site.next_id("groups"), courseid, name, description=item["description"],
                      descriptionformat=fmt, enrolmentkey=item.get("enrolmentkey"), idnumber=idnumber,
                      visibility=item["visibility"], participation=item["participation"])
        site.put("groups", group.id, group)
        created.append(group_reply(group, created=True))
    return created


def delete_groups(site: Site, params: dict[str, Any]) -> None:
    """Delete groups with their members and grouping links; unknown ids are silently ignored."""
    for groupid in params["groupids"]:
        if site.get("groups", groupid) is not None:
            site.delete_group(groupid)


# -- members -----------------------------------------------------------------------------


def add_group_members(site: Site, params: dict[str, Any]) -> None:
    """Add members, the whole batch or nothing; only enrolled users (any enrolment status)."""
    for member in params["members"]:
        group = must_group(site, member["groupid"])
        user = must_user(site, member["userid"])
        valid_course_context(site, group.courseid)
        # is_enrolled($context, $userid) without onlyactive: any enrolment, even suspended
        if site.get("enrolments", (group.courseid, user.id)) is None:
            raise invalid_parameter("Only enrolled users may be members of groups")
        if site.get("group_members", (group.id, user.id)) is None:
            site.put("group_members", (group.id, user.id), site.now())


def delete_group_members(site: Site, params: dict[str, Any]) -> None:
    """Remove members, the whole batch or nothing; a non-member is silently ignored."""
    for member in params["members"]:
        group = must_group(site, member["groupid"])
        user = must_user(site, member["userid"])
        site.drop("group_members", (group.id, user.id))


def get_group_members(site: Site, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Members of groups, each ordered by last name then first name (as recorded)."""
    replies = []
    for groupid in params["groupids"]:
        group = must_group(site, groupid, "id, courseid, name, enrolmentkey")
        replies.append({"groupid": groupid, "userids": site.by_lastname(site.group_members(group.id))})
    return replies


# -- groupings ---------------------------------------------------------------------------


def get_course_groupings(site: Site, params: dict[str, Any]) -> list[dict[str, Any]]:
    """The groupings of a course by name; an unknown course is a missing record."""
    must_course_context(site, params["courseid"])
    return [grouping_reply(g) for g in site.groupings_of(params["courseid"])]


def get_groupings(site: Site, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Groupings by id (customfields always ``[]``), with their groups by id when ``returngroups``."""
    replies = []
    for groupingid in params["groupingids"]:
        grouping = must_grouping(site, groupingid)
        reply = {**grouping_reply(grouping), "customfields": []}
        if params["returngroups"]:
            ids = sorted(site.grouping_groups(grouping.id))
            reply["groups"] = [
                {k: v for k, v in group_reply(site.get("groups", gid)).items()
                 if k not in ("visibility", "participation")} | {"customfields": []}
                for gid in ids if site.get("groups", gid) is not None]
        replies.append(reply)
    return replies


def create_groupings(site: Site, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Create groupings, the whole batch or nothing; without ``idnumber``: created, then invalidresponse."""
    created = []
    for item in params["groupings"]:
        courseid, name = item["courseid"], item["name"]
        if not name.strip():
            raise invalid_parameter("Invalid grouping name")
        if any(g.courseid == courseid and g.name == name for g in site.iter_rows("groupings")):
            raise invalid_parameter("Grouping with the same name already exists in the course")
        must_course_context(site, courseid)
        fmt = validate_format(item["descriptionformat"])
        idnumber = item.get("idnumber")
        if idnumber and taken(site, "groupings", courseid, idnumber):
            raise moodle_error("idnumbertaken")
        grouping = Grouping(site.next_id("groupings"), courseid, name, description=item["description"],
                            descriptionformat=fmt, idnumber=idnumber or "")
        site.put("groupings", grouping.id, grouping)
        reply = grouping_reply(grouping)
        if idnumber is None:  # the reply echoes the input: no idnumber key
            del reply["idnumber"]
        created.append(reply)
    if any("idnumber" not in reply for reply in created):
        site.end()  # committed before the reply is checked (README §5.5)
        raise invalid_response("Error in response - Missing following required key in a single structure: "
                               "idnumber")
    return created


def assign_grouping(site: Site, params: dict[str, Any]) -> None:
    """Put groups in groupings, the whole batch or nothing; an existing link is silently ignored.

    Like Moodle 4.5, a group of another course is not refused (not recorded)."""
    for item in params["assignments"]:
        grouping = must_grouping(site, item["groupingid"], "id, courseid")
        group = must_group(site, item["groupid"], "id, courseid")
        if site.get("grouping_groups", (grouping.id, group.id)) is None:
            site.put("grouping_groups", (grouping.id, group.id), site.now())


_MEMBERS = many(struct(groupid=req("int"), userid=req("int")))

FUNCTIONS: list[WsFunction] = [
    WsFunction("core_group_get_course_groups", struct(courseid=req("int")), get_course_groups),
    WsFunction("core_group_get_groups", struct(groupids=many(req("int"))), get_groups),
    WsFunction("core_group_create_groups", struct(groups=many(struct(
        courseid=req("int"), name=req("text"), description=req("raw"), descriptionformat=dflt("int", 1),
        enrolmentkey=opt("raw"), idnumber=opt("raw"), visibility=dflt("int", 0),
        participation=dflt("bool", True), customfields=_CUSTOMFIELDS))), create_groups),
    WsFunction("core_group_delete_groups", struct(groupids=many(req("int"))), delete_groups),
    WsFunction("core_group_add_group_members", struct(members=_MEMBERS), add_group_members),
    WsFunction("core_group_delete_group_members", struct(members=_MEMBERS), delete_group_members),
    WsFunction("core_group_get_group_members", struct(groupids=many(req("int"))), get_group_members),
    WsFunction("core_group_get_course_groupings", struct(courseid=req("int")), get_course_groupings),
    WsFunction("core_group_get_groupings", struct(groupingids=many(req("int")),
                                                   returngroups=dflt("bool", False)), get_groupings),
    WsFunction("core_group_create_groupings", struct(groupings=many(struct(
        courseid=req("int"), name=req("text"), description=req("raw"), descriptionformat=dflt("int", 1),
        idnumber=opt("raw"), customfields=_CUSTOMFIELDS))), create_groupings),
    WsFunction("core_group_assign_grouping", struct(assignments=many(struct(
        groupingid=req("int"), groupid=req("int")))), assign_grouping),
]
