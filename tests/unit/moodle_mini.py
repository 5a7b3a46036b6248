"""A small in-memory Moodle for the enrolment and group repositories' tests (no HTTP).

It answers, with the recorded semantics (``../shared/moodle-ws`` README §4, §5), the
functions ``MoodleEnrolments`` and ``MoodleGroups`` call: enrolled users (``onlyactive``),
courses by ids (the unknown-id PHP Error), manual enrol/unenrol (whole batch, the PHP
TypeError of an unknown user, "Message was not sent." after committing when the course
has an editingteacher and ``welcome_fails``), role assign/unassign, groups, groupings,
links and members. State is plain dicts; ``mini.count(function)`` counts calls.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from tests.unit.moodle_scripted import Scripted

Pair = tuple[int, int]
ERR = "core\\exception\\invalid_parameter_exception"


def _invalid() -> dict[str, Any]:
    return {"exception": ERR, "errorcode": "invalidparameter", "message": "Invalid parameter value detected"}


class MiniMoodle:
    """Courses, users, manual enrolments, course roles, groups and groupings, in memory."""

    def __init__(self, now: int | None = None) -> None:
        self.now = int(time.time()) if now is None else now  # the repositories compare dates with the clock
        self.users: set[int] = set()
        self.courses: dict[int, list[str]] = {}  # course -> enabled enrolment plugins
        self.enrolments: dict[Pair, tuple[int, int, int]] = {}  # -> (status, timestart, timeend)
        self.roles: dict[Pair, set[int]] = {}
        self.groups: dict[int, dict[str, Any]] = {}
        self.members: set[Pair] = set()  # (group, user)
        self.groupings: dict[int, dict[str, Any]] = {}
        self.links: set[Pair] = set()  # (grouping, group)
        self.welcome_fails = False
        self._next = 1000
        self.client = Scripted(self.answer)

    # -- seeding and reading back ----------------------------------------------------------

    def new_id(self) -> int:
        """The next id of any table."""
        self._next += 1
        return self._next

    def enrol(self, course: int, user: int, role: int | None = 5, *, status: int = 0, start: int = 0,
              end: int = 0) -> None:
        """Seed an enrolment (and a role)."""
        self.enrolments[(course, user)] = (status, start, end)
        if role:
            self.roles.setdefault((course, user), set()).add(role)

    def count(self, function: str) -> int:
        """How many calls of ``function`` were made."""
        return len(self.client.sent(function))

    def writes(self) -> int:
        """Calls of anything but reads."""
        return sum(1 for f, _p in self.client.calls if "_get_" not in f)

    def active(self, pair: Pair) -> bool:
        """Whether onlyactive=1 lists this enrolment."""
        status, start, end = self.enrolments[pair]
        return status == 0 and start <= self.now and (end == 0 or end > self.now)

    # -- the web service -------------------------------------------------------------------

    def answer(self, function: str, params: Mapping[str, Any]) -> Any:
        """Moodle's reply to one call."""
        handler = getattr(self, "_" + function, None)
        if handler is None:
            return {"exception": "dml_missing_record_exception", "errorcode": "invalidrecord",
                    "message": "Can't find data record in database table external_functions."}
        return handler(dict(params))

    def _core_course_get_courses_by_field(self, p: dict[str, Any]) -> Any:
        ids = [int(v) for v in str(p["value"]).split(",")]
        if p["field"] == "ids" and any(i not in self.courses for i in ids):
            return {"exception": "Error", "message": 'Attempt to assign property "contextvalidated" on null'}
        found = [{"id": i, "enrollmentmethods": self.courses[i]} for i in ids if i in self.courses]
        return {"courses": found, "warnings": []}

    def _core_enrol_get_enrolled_users(self, p: dict[str, Any]) -> Any:
        course = int(p["courseid"])
        if course not in self.courses:
            return {"exception": "dml_missing_record_exception", "errorcode": "invalidrecord",
                    "message": "Can't find data record in database table course."}
        options = {o["name"]: o["value"] for o in p.get("options", [])}
        out = []
        for c, u in sorted(self.enrolments):
            if c != course or (int(options.get("onlyactive", 0)) and not self.active((c, u))):
                continue
            user: dict[str, Any] = {"id": u, "fullname": f"user {u}",
                                    "roles": [{"roleid": r} for r in sorted(self.roles.get((c, u), ()))]}
            groups = [g for g, m in sorted(self.members) if m == u and self.groups[g]["courseid"] == c]
            if groups:
                user["groups"] = [{"id": g, "name": self.groups[g]["name"]} for g in groups]
            out.append(user)
        return out

    def _enrol_manual_enrol_users(self, p: dict[str, Any]) -> Any:
        items = p["enrolments"]
        for e in items:
            if int(e["courseid"]) not in self.courses:
                return _invalid()
            if "manual" not in self.courses[int(e["courseid"])]:
                return {"exception": "moodle_exception", "errorcode": "wsnoinstance",
                        "message": f"Manual enrolment plugin instance doesn't exist or is disabled for the "
                                   f"course (id = {e['courseid']})"}
            if int(e["roleid"]) not in (1, 3, 4, 5):
                return {"exception": "moodle_exception", "errorcode": "wsusercannotassign",
                        "message": f"You don't have the permission to assign this role ({e['roleid']})"}
            if int(e["userid"]) not in self.users:
                return {"exception": "TypeError",
                        "message": "core\\user::get_name_placeholders(): Argument #1"}
        for e in items:
            pair = (int(e["courseid"]), int(e["userid"]))
            self.enrolments[pair] = (int(e.get("suspend") or 0), int(e.get("timestart") or 0),
                                     int(e.get("timeend") or 0))
            self.roles.setdefault(pair, set()).add(int(e["roleid"]))
        contacts = {c for (c, _u), roles in self.roles.items() if 3 in roles and (c, _u) in self.enrolments}
        if self.welcome_fails and any(int(e["courseid"]) in contacts for e in items):
            return {"exception": "moodle_exception", "errorcode": "Message was not sent.",
                    "message": "error/Message was not sent."}
        return None

    def _enrol_manual_unenrol_users(self, p: dict[str, Any]) -> Any:
        if any(int(e["userid"]) not in self.users for e in p["enrolments"]):
            return _invalid()
        for e in p["enrolments"]:
            course, user = int(e["courseid"]), int(e["userid"])
            if self.enrolments.pop((course, user), None) is not None:
                self.roles.pop((course, user), None)
                self.members -= {(g, user) for g in self.groups if self.groups[g]["courseid"] == course}
        return None

    def _roles(self, items: list[dict[str, Any]]) -> Any:
        for a in items:
            if a.get("contextlevel") != "course" or int(a["instanceid"]) not in self.courses:
                return _invalid()
            if int(a["roleid"]) not in (1, 3, 4, 5):
                return _invalid()
        return None

    def _core_role_assign_roles(self, p: dict[str, Any]) -> Any:
        if any(int(a["userid"]) not in self.users for a in p["assignments"]):
            return {"exception": "coding_exception", "errorcode": "codingerror",
                    "message": "Coding error detected: User ID does not exist or is deleted!"}
        failed = self._roles(p["assignments"])
        for a in [] if failed else p["assignments"]:
            self.roles.setdefault((int(a["instanceid"]), int(a["userid"])), set()).add(int(a["roleid"]))
        return failed

    def _core_role_unassign_roles(self, p: dict[str, Any]) -> Any:
        if "unassignments" not in p:
            return _invalid()
        failed = self._roles(p["unassignments"])
        for a in [] if failed else p["unassignments"]:
            self.roles.get((int(a["instanceid"]), int(a["userid"])), set()).discard(int(a["roleid"]))
        return failed

    def _core_group_get_course_groups(self, p: dict[str, Any]) -> Any:
        return [dict(g) for g in self.groups.values() if g["courseid"] == int(p["courseid"])]

    def _core_group_get_course_groupings(self, p: dict[str, Any]) -> Any:
        return [dict(g) for g in self.groupings.values() if g["courseid"] == int(p["courseid"])]

    def _create(self, table: dict[int, dict[str, Any]], items: list[dict[str, Any]]) -> Any:
        taken = {(g["courseid"], g["name"]) for g in table.values()}
        names = [(int(i["courseid"]), i["name"]) for i in items]
        if len(set(names)) < len(names) or taken & set(names):
            return _invalid()
        out = []
        for item in items:
            new = {"id": self.new_id(), "courseid": int(item["courseid"]), "name": item["name"],
                   "description": item.get("description", ""), "idnumber": item.get("idnumber", "")}
            table[new["id"]] = new
            out.append(dict(new))
        return out

    def _core_group_create_groups(self, p: dict[str, Any]) -> Any:
        return self._create(self.groups, p["groups"])

    def _core_group_create_groupings(self, p: dict[str, Any]) -> Any:
        created = self._create(self.groupings, p["groupings"])
        if isinstance(created, list) and any("idnumber" not in g for g in p["groupings"]):
            return {"exception": "invalid_response_exception", "errorcode": "invalidresponse",
                    "message": "Invalid response value detected"}
        return created

    def _core_group_delete_groups(self, p: dict[str, Any]) -> Any:
        for group in map(int, p["groupids"]):
            self.groups.pop(group, None)
            self.members = {(g, u) for g, u in self.members if g != group}
            self.links = {(k, g) for k, g in self.links if g != group}
        return None

    def _core_group_add_group_members(self, p: dict[str, Any]) -> Any:
        for m in p["members"]:
            group = self.groups.get(int(m["groupid"]))
            if group is None:
                return {"exception": "dml_missing_record_exception", "errorcode": "invalidrecord",
                        "message": "Can't find data record in database table groups."}
            if (group["courseid"], int(m["userid"])) not in self.enrolments:
                return _invalid()
        self.members |= {(int(m["groupid"]), int(m["userid"])) for m in p["members"]}
        return None

    def _core_group_delete_group_members(self, p: dict[str, Any]) -> Any:
        self.members -= {(int(m["groupid"]), int(m["userid"])) for m in p["members"]}
        return None

    def _core_group_assign_grouping(self, p: dict[str, Any]) -> Any:
        self.links |= {(int(a["groupingid"]), int(a["groupid"])) for a in p["assignments"]}
        return None

    def _core_group_get_groupings(self, p: dict[str, Any]) -> Any:
        out = []
        for grouping in map(int, p["groupingids"]):
            record = dict(self.groupings[grouping])
            record["groups"] = [dict(self.groups[g]) for k, g in sorted(self.links) if k == grouping]
            out.append(record)
        return out
