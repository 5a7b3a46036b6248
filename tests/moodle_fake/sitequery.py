"""Read-back helpers of the fake site, for the tests and for the web-service functions.

Every helper takes the site's lock and returns rows (frozen dataclasses) or plain values, so a
test can check what a connector did without going through the web services::

    user = fake.site.user_by_username("zoe")
    assert fake.site.enrolments(courseid)[user.id].status == SUSPENDED
    assert fake.site.roles_in_course(courseid, user.id) == {5}
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, ClassVar

from tests.moodle_fake.records import (
    ACTIVE,
    EDITINGTEACHER,
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
from tests.moodle_fake.store import IndexSpec, Store


def _key_part(position: int) -> Callable[[Any, Any], Hashable]:
    return lambda key, _row: key[position]


def _field(name: str) -> Callable[[Any, Any], Hashable]:
    return lambda _key, row: getattr(row, name)


class SiteQueries(Store):
    """Look-ups over the tables (mixed into :class:`~tests.moodle_fake.site.Site`)."""

    INDEXES: ClassVar[IndexSpec] = {
        "users": {
            **{name: _field(name) for name in ("id", "username", "idnumber", "email")},
            "email_lower": lambda _key, row: row.email.lower(),
        },
        "enrolments": {"course": _field("courseid")},
        "role_assignments": {"holder": lambda key, _row: (key[0], key[1])},
        "group_members": {"group": _key_part(0)},
        "grouping_groups": {"grouping": _key_part(0)},
        "cohort_members": {"cohort": _key_part(0)},
    }

    # -- users -----------------------------------------------------------------------------

    def user(self, userid: int) -> User | None:
        """The user with this id (deleted users too), or None."""
        with self.lock:
            found: User | None = self.get("users", userid)
            return found

    def live_user(self, userid: int) -> User | None:
        """The user with this id unless deleted."""
        user = self.user(userid)
        return user if user is not None and not user.deleted else None

    def user_by_username(self, username: str) -> User | None:
        """The (not deleted) user with this username, or None."""
        return self._find_user("username", username)

    def user_by_idnumber(self, idnumber: str) -> User | None:
        """The first (not deleted) user with this idnumber, or None."""
        return self._find_user("idnumber", idnumber) if idnumber else None

    def users_by_username(self) -> dict[str, User]:
        """Every user that is not deleted, by username."""
        with self.lock:
            return {u.username: u for u in self.iter_rows("users") if not u.deleted}

    def users_where(self, field: str, values: list[Any]) -> list[User]:
        """The users (deleted too) whose ``field`` (an index of ``users``) is one of ``values``, by id."""
        with self.lock:
            keys = {key for value in values for key in self.keys_by("users", field, value)}
            return sorted((self.tables["users"][key] for key in keys), key=lambda u: u.id)

    def _find_user(self, field: str, value: str) -> User | None:
        with self.lock:
            users = self.tables["users"]
            live = [key for key in self.keys_by("users", field, value) if not users[key].deleted]
            found: User | None = self.first("users", live)
            return found

    # -- categories and courses ---------------------------------------------------------------

    def category(self, catid: int) -> Category | None:
        """A category, or None."""
        with self.lock:
            found: Category | None = self.get("categories", catid)
            return found

    def category_by_idnumber(self, idnumber: str) -> Category | None:
        """The category with this idnumber, or None."""
        with self.lock:
            return next((c for c in self.iter_rows("categories") if c.idnumber == idnumber), None)

    def category_path(self, catid: int) -> list[str]:
        """The names from the top category down to ``catid`` (raw, not escaped)."""
        with self.lock:
            names: list[str] = []
            current = self.category(catid)
            while current is not None:
                names.insert(0, current.name)
                current = self.category(current.parent) if current.parent else None
            return names

    def category_sortorders(self) -> dict[int, int]:
        """Moodle's category sortorder: tree pre-order (children by id), 10000 apart."""
        with self.lock:
            children: dict[int, list[int]] = {}
            for cat in sorted(self.iter_rows("categories"), key=lambda c: c.id):
                children.setdefault(cat.parent, []).append(cat.id)
            order: dict[int, int] = {}

            def walk(parent: int) -> None:
                for catid in children.get(parent, []):
                    order[catid] = (len(order) + 1) * 10000
                    walk(catid)

            walk(0)
            return order

    def descendants(self, catid: int) -> set[int]:
        """Every category below ``catid``."""
        with self.lock:
            found: set[int] = set()
            frontier = {catid}
            while frontier:
                frontier = {c.id for c in self.iter_rows("categories") if c.parent in frontier} - found
                found |= frontier
            return found

    def course(self, courseid: int) -> Course | None:
        """A course, or None."""
        with self.lock:
            found: Course | None = self.get("courses", courseid)
            return found

    def course_by_shortname(self, shortname: str) -> Course | None:
        """The course with this shortname, or None."""
        with self.lock:
            return next((c for c in self.iter_rows("courses") if c.shortname == shortname), None)

    def course_by_idnumber(self, idnumber: str) -> Course | None:
        """The course with this idnumber, or None."""
        with self.lock:
            return next((c for c in self.iter_rows("courses") if idnumber and c.idnumber == idnumber), None)

    def course_sortorder(self, course: Course, catorder: dict[int, int] | None = None) -> int:
        """Category sortorder + rank, the newest course first; an orphan keeps its last value."""
        with self.lock:
            if course.id == 1:
                return 1
            catorder = self.category_sortorders() if catorder is None else catorder
            if course.category not in catorder:
                return course.lastsortorder
            newer = sum(1 for c in self.iter_rows("courses")
                        if c.category == course.category and c.id > course.id)
            return catorder[course.category] + newer + 1

    def sections_of(self, courseid: int) -> list[Section]:
        """The sections of a course by number."""
        with self.lock:
            return sorted((s for s in self.iter_rows("sections") if s.courseid == courseid),
                          key=lambda s: s.section)

    def modules_of(self, courseid: int) -> list[Module]:
        """The activities of a course, by id."""
        with self.lock:
            return sorted((m for m in self.iter_rows("modules") if m.courseid == courseid),
                          key=lambda m: m.id)

    # -- enrolments and roles -----------------------------------------------------------------------

    def enrolments(self, courseid: int) -> dict[int, Enrolment]:
        """The manual enrolments of a course, by user id (status, timestart, timeend)."""
        with self.lock:
            rows = self.tables["enrolments"]
            return {rows[key].userid: rows[key] for key in self.keys_by("enrolments", "course", courseid)}

    def is_active(self, enrolment: Enrolment) -> bool:
        """Active now: status active, started, not ended, manual instance enabled."""
        now = self.now()
        course = self.course(enrolment.courseid)
        return (enrolment.status == ACTIVE and course is not None and course.manual is True
                and enrolment.timestart <= now and (enrolment.timeend == 0 or enrolment.timeend > now))

    def roles_at(self, contextid: int, userid: int) -> set[int]:
        """Role ids a user holds in exactly this context."""
        with self.lock:
            return {key[2] for key in self.keys_by("role_assignments", "holder", (contextid, userid))}

    def roles_in_course(self, courseid: int, userid: int) -> set[int]:
        """Role ids a user holds in a course's context."""
        course = self.course(courseid)
        return set() if course is None else self.roles_at(course.contextid, userid)

    def contacts(self, courseid: int) -> list[User]:
        """Course contacts: enrolled (active) users with the editingteacher role, by id."""
        with self.lock:
            course = self.course(courseid)
            if course is None:
                return []
            found = []
            for enrolment in sorted(self.enrolments(courseid).values(), key=lambda e: e.userid):
                teacher = EDITINGTEACHER in self.roles_at(course.contextid, enrolment.userid)
                if teacher and self.is_active(enrolment):
                    user = self.live_user(enrolment.userid)
                    if user is not None:
                        found.append(user)
            return found

    # -- groups and cohorts -----------------------------------------------------------------------

    def groups_of(self, courseid: int) -> list[Group]:
        """The groups of a course, by name."""
        with self.lock:
            return sorted((g for g in self.iter_rows("groups") if g.courseid == courseid),
                          key=lambda g: g.name)

    def group_by_name(self, courseid: int, name: str) -> Group | None:
        """The group of a course with this name, or None."""
        return next((g for g in self.groups_of(courseid) if g.name == name), None)

    def group_members(self, groupid: int) -> set[int]:
        """User ids in a group."""
        with self.lock:
            return {key[1] for key in self.keys_by("group_members", "group", groupid)}

    def groupings_of(self, courseid: int) -> list[Grouping]:
        """The groupings of a course, by name."""
        with self.lock:
            return sorted((g for g in self.iter_rows("groupings") if g.courseid == courseid),
                          key=lambda g: g.name)

    def grouping_groups(self, groupingid: int) -> set[int]:
        """Group ids in a grouping."""
        with self.lock:
            return {key[1] for key in self.keys_by("grouping_groups", "grouping", groupingid)}

    def cohort(self, cohortid: int) -> Cohort | None:
        """A cohort, or None."""
        with self.lock:
            found: Cohort | None = self.get("cohorts", cohortid)
            return found

    def cohort_by_idnumber(self, idnumber: str) -> Cohort | None:
        """The first cohort with this idnumber (update_cohorts lets two share one), or None."""
        with self.lock:
            return next((c for c in sorted(self.iter_rows("cohorts"), key=lambda c: c.id)
                         if c.idnumber == idnumber), None)

    def cohort_members(self, cohortid: int) -> set[int]:
        """User ids in a cohort."""
        with self.lock:
            return {key[1] for key in self.keys_by("cohort_members", "cohort", cohortid)}

    def by_lastname(self, userids: set[int]) -> list[int]:
        """User ids ordered like Moodle's member lists: last name, first name."""
        with self.lock:
            users = [self.get("users", uid) for uid in userids]
            return [u.id for u in sorted((u for u in users if u is not None),
                                         key=lambda u: (u.lastname, u.firstname, u.id))]

    def snapshot(self) -> dict[str, Any]:
        """A copy of every table (for a test that wants to prove nothing changed)."""
        with self.lock:
            return {name: dict(rows) for name, rows in self.tables.items() if name != "drafts"}
