"""The state of the fake Moodle site: stock content, settings, seeding helpers and shared operations.

A new :class:`Site` is a stock Moodle 4.5 as the recordings show it: system context 1, guest
(user 1), admin (user 2, context 5, the token's owner), the site course (course 1) and
"Category 1" (category 1). Everything else is seeded with the ``add_*`` helpers (ids are
allocated like Moodle's sequences, or given explicitly) or created through the web services.

Settings are plain attributes (change them at any time):

- ``welcome_message_fails``: mail is broken, so ``enrol_manual_enrol_users`` reports
  "Message was not sent." *after* committing when the course has a contact (README §5.1).
- ``debug``: error replies carry ``debuginfo`` (the real reason of a generic error).
- ``allowaccountssameemail`` (False), ``passwordpolicy`` (True), ``langs`` ({"en"}).

Read-back helpers (``user_by_username``, ``enrolments``, ``roles_in_course``...) are in
:class:`~tests.moodle_fake.sitequery.SiteQueries`. All public methods take :attr:`lock`.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import replace
from typing import Any

from tests.moodle_fake.records import (
    ACTIVE,
    COURSE,
    COURSECAT,
    MODULE,
    SYSTEM,
    SYSTEM_CONTEXT,
    USER,
    Category,
    Cohort,
    Course,
    Enrolment,
    Group,
    Grouping,
    Module,
    Section,
    User,
)
from tests.moodle_fake.sitequery import SiteQueries

THEMEREV = 1795313921
ADMIN_ID, GUEST_ID = 2, 1
_AMP = re.compile(r"&(?!#?[A-Za-z0-9]+;)")


def format_string(text: str) -> str:
    """Moodle's format_string for names: a bare ``&`` becomes ``&amp;`` (README §5.10)."""
    return _AMP.sub("&amp;", text)


class Site(SiteQueries):
    """A Moodle site held in memory. Thread-safe: one re-entrant lock around the state."""

    def __init__(self, *, now: float | None = None, welcome_message_fails: bool = False,
                 debug: bool = False, wwwroot: str = "http://127.0.0.1:8081") -> None:
        super().__init__(self._time)
        self._fixed_time = now
        self.welcome_message_fails = welcome_message_fails
        self.debug = debug
        self.wwwroot = wwwroot
        self.sitename = "Test Moodle"
        self.allowaccountssameemail = False
        self.passwordpolicy = True
        self.langs = {"en"}
        self.profile_fields: dict[str, str] = {}
        self.admin_id = ADMIN_ID
        self._stock()

    def _time(self) -> float:
        return time.time() if self._fixed_time is None else self._fixed_time

    def set_time(self, now: float | None) -> None:
        """Freeze the site's clock at ``now`` (None: follow the real clock)."""
        self._fixed_time = now

    def _stock(self) -> None:
        self.put("contexts", SYSTEM_CONTEXT, (SYSTEM, 0, 0))
        self.set_next_id("contexts", 2)
        self.add_course("testmoodle", fullname=self.sitename, category=0, id=1, format="site",
                        summary="Local test site", manual=None, newsitems=3, enablecompletion=0,
                        sections=0)
        self.add_category("Category 1", id=1)
        self.add_user("guest", firstname="Guest user", lastname=" ", email="root@localhost", id=GUEST_ID,
                      contextid=4)
        self.add_user("admin", firstname="Admin", lastname="User", email="admin@example.com", id=ADMIN_ID,
                      contextid=5)

    # -- contexts --------------------------------------------------------------------------

    def new_context(self, level: int, instanceid: int, parent: int, contextid: int | None = None) -> int:
        """Create a context (id from the ``contexts`` sequence unless given)."""
        if contextid is None:
            contextid = self.next_id("contexts")
        else:
            self._seen_id("contexts", contextid)
        self.put("contexts", contextid, (level, instanceid, parent))
        return contextid

    def context(self, contextid: int) -> tuple[int, int, int] | None:
        """(level, instanceid, parent context) of a context, or None."""
        found: tuple[int, int, int] | None = self.get("contexts", contextid)
        return found

    def context_id(self, level: int, instanceid: int) -> int | None:
        """The context of an instance (system: 1), or None when it does not exist."""
        if level == SYSTEM:
            return SYSTEM_CONTEXT
        table = {USER: "users", COURSECAT: "categories", COURSE: "courses", MODULE: "modules"}.get(level)
        row = self.get(table, instanceid) if table else None
        if row is None or (level == USER and row.deleted):
            return None
        contextid: int = row.contextid
        return contextid

    def parent_contexts(self, contextid: int) -> list[int]:
        """``contextid`` and its parents up to the system context."""
        chain = []
        current: int | None = contextid
        while current:
            chain.append(current)
            found = self.context(current)
            current = found[2] if found else None
        return chain

    # -- seeding ---------------------------------------------------------------------------

    def add_user(self, username: str, *, firstname: str = "Test", lastname: str | None = None,
                 email: str | None = None, id: int | None = None, contextid: int | None = None,
                 customfields: dict[str, str] | None = None, **fields: Any) -> int:
        """Create a user directly (no web-service checks); its id."""
        with self.lock:
            userid = self._allocate("users", id)
            ctx = self.new_context(USER, userid, SYSTEM_CONTEXT, contextid)
            now = self.now()
            user = User(id=userid, username=username, firstname=firstname,
                        lastname=username if lastname is None else lastname,
                        email=f"{username}@example.com" if email is None else email, contextid=ctx,
                        timecreated=now, timemodified=now,
                        customfields=tuple((customfields or {}).items()), **fields)
            self.put("users", userid, user)
            return userid

    def add_profile_field(self, shortname: str, name: str | None = None) -> None:
        """Declare a custom user profile field (text): ``customfields`` with it are stored."""
        with self.lock:
            self.profile_fields[shortname] = name or shortname

    def add_category(self, name: str, *, parent: int = 0, idnumber: str | None = None, id: int | None = None,
                     contextid: int | None = None, **fields: Any) -> int:
        """Create a course category; its id."""
        with self.lock:
            catid = self._allocate("categories", id)
            parentctx = self.get("categories", parent).contextid if parent else SYSTEM_CONTEXT
            ctx = self.new_context(COURSECAT, catid, parentctx, contextid)
            self.put("categories", catid, Category(id=catid, name=name, parent=parent, idnumber=idnumber,
                                                   contextid=ctx, timemodified=self.now(), **fields))
            return catid

    def add_course(self, shortname: str, *, fullname: str | None = None, category: int = 1,
                   id: int | None = None, contextid: int | None = None, sections: int = 0,
                   **fields: Any) -> int:
        """Create a course with sections 0..``sections`` and a manual enrolment instance; its id."""
        with self.lock:
            courseid = self._allocate("courses", id)
            cat = self.get("categories", category)
            ctx = self.new_context(COURSE, courseid, cat.contextid if cat else SYSTEM_CONTEXT, contextid)
            now = self.now()
            course = Course(id=courseid, category=category, fullname=fullname or shortname,
                            shortname=shortname, contextid=ctx, timecreated=now, timemodified=now,
                            cacherev=now, **fields)
            if course.format == "weeks" and course.startdate and not fields.get("enddate"):
                course = replace(course, enddate=course.startdate + 7 * 24 * 3600 * max(1, sections))
            self.put("courses", courseid, course)
            for number in range(sections + 1):
                self.add_section(courseid, number)
            return courseid

    def add_section(self, courseid: int, number: int | None = None, name: str | None = None,
                    summary: str = "", *, id: int | None = None) -> int:
        """Add (or rename, when ``number`` exists) a course section; its id."""
        with self.lock:
            existing = [s for s in self.sections_of(courseid) if s.section == number]
            if existing:
                self.put("sections", existing[0].id, replace(existing[0], name=name, summary=summary))
                return existing[0].id
            if number is None:
                number = len(self.sections_of(courseid))
            sectionid = self._allocate("sections", id)
            self.put("sections", sectionid, Section(sectionid, courseid, number, name, summary))
            return sectionid

    def add_module(self, courseid: int, section: int, modname: str, name: str, *, url: str = "",
                   id: int | None = None, instance: int | None = None, contextid: int | None = None) -> int:
        """Add an activity (``forum``, ``page``, ``url``...) to a section of a course; its cmid."""
        with self.lock:
            sectionid = self.add_section(courseid, section) if not [
                s for s in self.sections_of(courseid) if s.section == section] else next(
                s.id for s in self.sections_of(courseid) if s.section == section)
            cmid = self._allocate("modules", id)
            inst = self._allocate(f"mod_{modname}", instance)
            ctx = self.new_context(MODULE, cmid, self.get("courses", courseid).contextid, contextid)
            self.put("modules", cmid, Module(cmid, courseid, sectionid, modname, name, inst, ctx, url=url,
                                             timemodified=self.now()))
            return cmid

    def enrol(self, userid: int, courseid: int, roleid: int | None = 5, *, status: int = ACTIVE,
              timestart: int = 0, timeend: int = 0) -> None:
        """Enrol a user with the manual instance (and give ``roleid`` in the course)."""
        with self.lock:
            self.enrol_user(courseid, userid, roleid, timestart, timeend, status)

    def add_group(self, courseid: int, name: str, *, idnumber: str = "", id: int | None = None,
                  **fields: Any) -> int:
        """Create a group in a course; its id."""
        with self.lock:
            groupid = self._allocate("groups", id)
            self.put("groups", groupid, Group(groupid, courseid, name, idnumber=idnumber, **fields))
            return groupid

    def add_grouping(self, courseid: int, name: str, *, idnumber: str = "", id: int | None = None,
                     **fields: Any) -> int:
        """Create a grouping in a course; its id."""
        with self.lock:
            groupingid = self._allocate("groupings", id)
            grouping = Grouping(groupingid, courseid, name, idnumber=idnumber, **fields)
            self.put("groupings", groupingid, grouping)
            return groupingid

    def add_group_member(self, groupid: int, userid: int) -> None:
        """Put a user in a group (no enrolment check)."""
        with self.lock:
            self.put("group_members", (groupid, userid), self.now())

    def add_cohort(self, name: str, idnumber: str, *, contextid: int = SYSTEM_CONTEXT, id: int | None = None,
                   **fields: Any) -> int:
        """Create a cohort (system context unless told); its id."""
        with self.lock:
            cohortid = self._allocate("cohorts", id)
            self.put("cohorts", cohortid, Cohort(cohortid, contextid, name, idnumber, **fields))
            return cohortid

    def add_cohort_member(self, cohortid: int, userid: int) -> None:
        """Put a user in a cohort."""
        with self.lock:
            self.put("cohort_members", (cohortid, userid), self.now())

    def set_manual_instance(self, courseid: int, enabled: bool | None, *,
                            welcome: bool | None = None) -> None:
        """Enable/disable (False) or remove (None) a course's manual enrolment instance."""
        with self.lock:
            course = self.get("courses", courseid)
            changes: dict[str, Any] = {"manual": enabled}
            if welcome is not None:
                changes["welcome"] = welcome
            self.put("courses", courseid, replace(course, **changes))

    def _allocate(self, sequence: str, wanted: int | None) -> int:
        if wanted is None:
            return self.next_id(sequence)
        self._seen_id(sequence, wanted)
        return wanted

    # -- operations shared by the web-service functions -------------------------------------------

    def role_assign(self, roleid: int, userid: int, contextid: int) -> None:
        """Give a role in a context (no-op when held)."""
        self.put("role_assignments", (contextid, userid, roleid), self.now())

    def role_unassign(self, roleid: int, userid: int, contextid: int) -> None:
        """Take a role back (no-op when not held)."""
        self.drop("role_assignments", (contextid, userid, roleid))

    def enrol_user(self, courseid: int, userid: int, roleid: int | None, timestart: int, timeend: int,
                   status: int) -> None:
        """``enrol_plugin::enrol_user``: create or update the enrolment, then assign the role."""
        current = self.get("enrolments", (courseid, userid))
        if current is None:
            self.put("enrolments", (courseid, userid),
                     Enrolment(courseid, userid, status, timestart, timeend, self.now()))
        elif (current.status, current.timestart, current.timeend) != (status, timestart, timeend):
            self.put("enrolments", (courseid, userid),
                     replace(current, status=status, timestart=timestart, timeend=timeend))
        if roleid:
            self.role_assign(roleid, userid, self.get("courses", courseid).contextid)

    def unenrol_user(self, courseid: int, userid: int) -> None:
        """``unenrol_user``: enrolment, roles in the course and its modules, group memberships."""
        if self.get("enrolments", (courseid, userid)) is None:
            return
        self.drop("enrolments", (courseid, userid))
        contexts = {self.get("courses", courseid).contextid} | {
            m.contextid for m in self.iter_rows("modules") if m.courseid == courseid}
        self.drop_where("role_assignments", lambda key, _row: key[0] in contexts and key[1] == userid)
        groups = {g.id for g in self.iter_rows("groups") if g.courseid == courseid}
        self.drop_where("group_members", lambda key, _row: key[0] in groups and key[1] == userid)

    def delete_user(self, userid: int) -> None:
        """``delete_user``: keep the row, mark it deleted, scramble username and email."""
        user = self.get("users", userid)
        for courseid, uid in [key for key, _ in self.items("enrolments") if key[1] == userid]:
            self.unenrol_user(courseid, uid)
        self.drop_where("role_assignments", lambda key, _row: key[1] == userid)
        self.drop_where("group_members", lambda key, _row: key[1] == userid)
        self.drop_where("cohort_members", lambda key, _row: key[1] == userid)
        now = self.now()
        username = re.sub(r"[^-.@_a-z0-9]", "", f"{user.email}.{now}".lower())
        self.put("users", userid, replace(user, deleted=1, username=username, idnumber="", picture=0,
                                          email=hashlib.md5(user.username.encode()).hexdigest(),
                                          timemodified=now))

    def delete_group(self, groupid: int) -> None:
        """``groups_delete_group``: the group, its members and its grouping links."""
        self.drop("groups", groupid)
        self.drop_where("group_members", lambda key, _row: key[0] == groupid)
        self.drop_where("grouping_groups", lambda key, _row: key[1] == groupid)

    def delete_course(self, courseid: int) -> None:
        """``delete_course``: the course and everything inside it."""
        course = self.get("courses", courseid)
        for key in [key for key, _ in self.items("enrolments") if key[0] == courseid]:
            self.unenrol_user(*key)
        for group in [g for g in self.rows("groups") if g.courseid == courseid]:
            self.delete_group(group.id)
        self.drop_where("groupings", lambda _key, row: row.courseid == courseid)
        self.drop_where("role_assignments", lambda key, _row: key[0] == course.contextid)
        self.clear_content(courseid, keep_section0=False)
        self.drop("contexts", course.contextid)
        self.drop("courses", courseid)

    def clear_content(self, courseid: int, *, keep_section0: bool) -> None:
        """Delete the activities of a course and its sections (but section 0 if told)."""
        for module in [m for m in self.rows("modules") if m.courseid == courseid]:
            self.drop("contexts", module.contextid)
            self.drop("modules", module.id)
        self.drop_where("sections", lambda _key, row: row.courseid == courseid and (
            row.section > 0 or not keep_section0))

    def copy_content(self, source: int, target: int) -> None:
        """Backup/restore of activities: sections by number (names and summaries too), new module ids."""
        sections = {s.section: s.id for s in self.sections_of(target)}
        for section in self.sections_of(source):
            if section.section in sections:
                self.put("sections", sections[section.section],
                         replace(self.get("sections", sections[section.section]), name=section.name,
                                 summary=section.summary, visible=section.visible))
            else:
                newid = self.next_id("sections")
                self.put("sections", newid, replace(section, id=newid, courseid=target))
                sections[section.section] = newid
        targetctx = self.get("courses", target).contextid
        by_section = {s.id: s.section for s in self.sections_of(source)}
        for module in self.modules_of(source):
            cmid = self.next_id("modules")
            ctx = self.new_context(MODULE, cmid, targetctx)
            self.put("modules", cmid, replace(module, id=cmid, courseid=target, contextid=ctx,
                                              sectionid=sections[by_section[module.sectionid]],
                                              instance=self.next_id(f"mod_{module.modname}")))
