"""In-memory fakes of syncd's ports, for unit tests.

:class:`FakePlatform` keeps the whole platform model (users, categories, courses and
sections, roles, enrolment methods, enrolments, role assignments, groups, groupings,
cohorts and their members) plus checkpoints and saved results in one state of dicts and
sets. A transaction works on the live state and restores a snapshot on rollback or on an
exception, as a database would. Records handed out or taken in are copies, so a
processor's unsaved changes never leak into the store. Writes check what the SQL store's
constraints check (unique keys, foreign keys: see ``tests/fakes_model.py`` and
``tests/fakes_groups.py``) and raise :class:`FakeIntegrityError`; deletes cascade as the
port says; an empty idnumber is stored as None and datetimes in UTC, as the SQL store
gives them back. ``tests/integration/test_sqlstore_model.py`` runs one contract against
this fake and the SQL store, so the two keep the same semantics.

Test helpers on :class:`FakePlatform` (not part of the port; none counts as a transaction):

- ``FakePlatform(roles=("auditor",))``: extra roles besides ``DEFAULT_ROLES``.
- ``platform.direct``: a :class:`FakeTx` on the live state, for seeding with the port's
  own methods, e.g. ``platform.direct.courses.add([CourseRecord(...)])``.
- ``seed(*users)``, ``seed_category(name)``, ``seed_course(shortname, ...)`` (with its
  manual enrolment method; in a "Misc" category unless ``category_id``),
  ``seed_cohort(name, idnumber)``, ``seed_group(course_id, name)``: quick seeding, return
  the stored records with their ids.
- Reads (copies, sorted): ``users()``, ``user(username)``, ``categories()``, ``courses()``,
  ``course(shortname)``, ``sections(shortname=None)``, ``roles()``, ``methods()``,
  ``enrolments()``, ``role_assignments()``, ``groups()``, ``groupings()``,
  ``grouping_links()``, ``group_members()``, ``cohorts()``, ``cohort(idnumber)``,
  ``cohort_members()``.
- Readable views by key: ``enrolled(shortname)`` -> {username: active} over every method,
  ``course_roles(shortname)`` -> {(username, role shortname)}, ``members_of_group(shortname,
  group name)`` and ``members_of_cohort(idnumber)`` -> sets of usernames.
- Content (``tests/fakes_content.py``): ``seed_document``, ``seed_picture``, ``documents()``,
  ``path_items()``, ``activities()``, ``pictures()``, ``blobs()``.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

from syncd.platform.base import Checkpoint, SavedResult, UserRecord
from syncd.platform.content import copy_by_parts
from syncd.platform.model import (
    CategoryRecord,
    CohortRecord,
    CourseRecord,
    Enrolment,
    EnrolMethod,
    GroupingRecord,
    GroupRecord,
    RoleAssignment,
    SectionRecord,
)
from tests.fakes_content import ContentTx, ContentViews
from tests.fakes_groups import FakeCohorts, FakeGroups
from tests.fakes_model import (
    FakeCategories,
    FakeCourses,
    FakeEnrolments,
    FakeIntegrityError,
    FakeRoles,
    FakeState,
)

__all__ = ["FakeIntegrityError", "FakePlatform", "FakeTx", "FakeUsers"]

_State = FakeState
T = TypeVar("T")


def _copy(user: UserRecord) -> UserRecord:
    return copy.deepcopy(user)


class FakeUsers:
    """UserRepository over a dict of users by id."""

    def __init__(self, state: _State) -> None:
        self._state = state

    def find(
        self,
        *,
        usernames: Collection[str] = (),
        idnumbers: Collection[str] = (),
        emails: Collection[str] = (),
    ) -> list[UserRecord]:
        """Copies of every user matching any key (emails case-insensitively)."""
        names, ids, mails = set(usernames), set(idnumbers), {e.lower() for e in emails}
        return [
            _copy(u)
            for u in self._state.users.values()
            if u.username in names
            or (u.idnumber is not None and u.idnumber in ids)
            or (u.email is not None and u.email.lower() in mails)
        ]

    def deleted(self, user_ids: Collection[int]) -> set[int]:
        """Those of these user ids that belong to soft-deleted users."""
        users = self._state.users
        return {i for i in user_ids if i in users and users[i].deleted}

    def add(self, users: Sequence[UserRecord]) -> None:
        """Store copies of new users and give them ids."""
        for user in users:
            assert user.id is None, "add() takes new users only"
            user.id = self._state.next_id
            self._state.next_id += 1
            self._put(user)

    def update(self, users: Sequence[UserRecord]) -> None:
        """Replace existing users by id, profile included."""
        for user in users:
            assert user.id in self._state.users, f"update() of unknown user id {user.id}"
            self._put(user)

    def _put(self, user: UserRecord) -> None:
        assert user.id is not None
        for other in self._state.users.values():
            if other.id == user.id:
                continue
            if other.username == user.username:
                raise FakeIntegrityError(f"duplicate username {user.username!r}")
            if user.idnumber is not None and other.idnumber == user.idnumber:
                raise FakeIntegrityError(f"duplicate idnumber {user.idnumber!r}")
        self._state.users[user.id] = _copy(user)


class FakeTx(ContentTx):
    """One transaction of :class:`FakePlatform` (implements PlatformTx; files, content and
    pictures come from :class:`ContentTx`)."""

    def __init__(self, state: _State) -> None:
        self._state = state
        self._users = FakeUsers(state)
        self._categories = FakeCategories(state)
        self._courses = FakeCourses(state)
        self._roles = FakeRoles(state)
        self._enrolments = FakeEnrolments(state)
        self._groups = FakeGroups(state)
        self._cohorts = FakeCohorts(state)

    @property
    def users(self) -> FakeUsers:
        """The users of the platform."""
        return self._users

    @property
    def categories(self) -> FakeCategories:
        """Course categories."""
        return self._categories

    @property
    def courses(self) -> FakeCourses:
        """Courses and sections."""
        return self._courses

    @property
    def roles(self) -> FakeRoles:
        """Roles."""
        return self._roles

    @property
    def enrolments(self) -> FakeEnrolments:
        """Enrolment methods, user enrolments, role assignments."""
        return self._enrolments

    @property
    def groups(self) -> FakeGroups:
        """Groups, groupings, members."""
        return self._groups

    @property
    def cohorts(self) -> FakeCohorts:
        """Cohorts and members."""
        return self._cohorts

    def load_checkpoint(self, file_id: int) -> Checkpoint | None:
        """The saved checkpoint of this file, if any."""
        return self._state.checkpoints.get(file_id)

    def save_checkpoint(self, file_id: int, checkpoint: Checkpoint, results: Sequence[SavedResult]) -> None:
        """Record progress and results."""
        self._state.checkpoints[file_id] = checkpoint
        saved = self._state.results.setdefault(file_id, {})
        for result in results:
            assert result.record not in saved, f"result {result.record} saved twice"
            saved[result.record] = result

    def saved_results(self, file_id: int) -> Iterator[SavedResult]:
        """Saved results of this file in record order."""
        saved = self._state.results.get(file_id, {})
        for record in sorted(saved):
            yield saved[record]

    def copy_course(self, source_id: int, target_id: int) -> None:
        """A template's content, part by part."""
        copy_by_parts(self._courses, self.content, source_id, target_id)

    def clear_checkpoint(self, file_id: int) -> None:
        """Forget checkpoint and results of this file."""
        self._state.checkpoints.pop(file_id, None)
        self._state.results.pop(file_id, None)


class FakePlatform(ContentViews):
    """An in-memory platform (implements Platform), with inspection helpers for tests."""

    def __init__(self, *, roles: Iterable[str] = ()) -> None:
        self._state = _State()
        for role in roles:
            self._state.roles.setdefault(role, len(self._state.roles) + 1)
        self.transactions = 0
        self.rollbacks = 0
        self.closed = False

    @contextmanager
    def transaction(self, *, rollback: bool = False) -> Iterator[FakeTx]:
        """Commit on normal exit; restore the state on an exception or when ``rollback``."""
        snapshot = copy.deepcopy(self._state)
        self.transactions += 1
        try:
            yield FakeTx(self._state)
        except BaseException:
            self._restore(snapshot)
            raise
        if rollback:
            self._restore(snapshot)

    def _restore(self, snapshot: _State) -> None:
        self.rollbacks += 1
        self._state.__dict__.update(snapshot.__dict__)

    def close(self) -> None:
        """Mark the platform closed."""
        self.closed = True

    # -- seeding (not part of the port; no transaction is counted) --

    @property
    def direct(self) -> FakeTx:
        """A transaction-less view of the live state, for seeding through the port's methods."""
        return FakeTx(self._state)

    def seed(self, *users: UserRecord) -> list[UserRecord]:
        """Store users directly (outside any transaction); return them with their ids."""
        FakeUsers(self._state).add(list(users))
        return list(users)

    def seed_category(self, name: str = "Misc", *, parent_id: int | None = None,
                      idnumber: str | None = None) -> CategoryRecord:
        """Store a category; return it with its id."""
        category = CategoryRecord(name=name, parent_id=parent_id, idnumber=idnumber)
        self.direct.categories.add([category])
        return category

    def seed_course(self, shortname: str, *, fullname: str = "", category_id: int | None = None,
                    idnumber: str | None = None) -> CourseRecord:
        """Store a course (in a new "Misc" category unless ``category_id``) and its manual method."""
        if category_id is None:
            category_id = self._any_category()
        course = CourseRecord(shortname=shortname, fullname=fullname or shortname,
                              category_id=category_id, idnumber=idnumber)
        self.direct.courses.add([course])
        assert course.id is not None
        self.direct.enrolments.add_methods([EnrolMethod(course_id=course.id, method="manual")])
        return course

    def _any_category(self) -> int:
        for category_id in sorted(self._state.categories):
            return category_id
        return int(self.seed_category().id or 0)

    def seed_cohort(self, name: str, idnumber: str | None = None, *,
                    category_id: int | None = None) -> CohortRecord:
        """Store a cohort; return it with its id."""
        cohort = CohortRecord(name=name, idnumber=idnumber, category_id=category_id)
        self.direct.cohorts.add([cohort])
        return cohort

    def seed_group(self, course_id: int, name: str, idnumber: str | None = None) -> GroupRecord:
        """Store a group in a course; return it with its id."""
        group = GroupRecord(course_id=course_id, name=name, idnumber=idnumber)
        self.direct.groups.add_groups([group])
        return group

    # -- inspection (not part of the port): copies, sorted by id or key --

    def users(self) -> list[UserRecord]:
        """Copies of every stored user, by id."""
        return [_copy(u) for _, u in sorted(self._state.users.items())]

    def user(self, username: str) -> UserRecord | None:
        """A copy of the stored user with this username, or None."""
        for user in self._state.users.values():
            if user.username == username:
                return _copy(user)
        return None

    def categories(self) -> list[CategoryRecord]:
        """Every category, by id."""
        return _sorted(self._state.categories)

    def courses(self) -> list[CourseRecord]:
        """Every course, by id."""
        return _sorted(self._state.courses)

    def course(self, shortname: str) -> CourseRecord | None:
        """The course with this shortname, or None."""
        return next((c for c in self.courses() if c.shortname == shortname), None)

    def sections(self, shortname: str | None = None) -> list[SectionRecord]:
        """Sections (of one course when ``shortname``), by course then number."""
        found = _sorted(self._state.sections)
        if shortname is not None:
            found = [s for s in found if s.course_id == self._course_id(shortname)]
        return sorted(found, key=lambda s: (s.course_id, s.number))

    def roles(self) -> dict[str, int]:
        """Role shortname -> id."""
        return dict(self._state.roles)

    def methods(self) -> list[EnrolMethod]:
        """Every enrolment method, by id."""
        return _sorted(self._state.methods)

    def enrolments(self) -> list[Enrolment]:
        """Every user enrolment, by id."""
        return _sorted(self._state.enrolments)

    def role_assignments(self) -> list[RoleAssignment]:
        """Every role assignment, by course, user, role."""
        return sorted(self._state.role_assignments, key=lambda r: (r.course_id, r.user_id, r.role_id))

    def groups(self) -> list[GroupRecord]:
        """Every group, by id."""
        return _sorted(self._state.groups)

    def groupings(self) -> list[GroupingRecord]:
        """Every grouping, by id."""
        return _sorted(self._state.groupings)

    def grouping_links(self) -> set[tuple[int, int]]:
        """Every (grouping_id, group_id) link."""
        return set(self._state.grouping_links)

    def group_members(self) -> set[tuple[int, int]]:
        """Every (group_id, user_id) membership."""
        return set(self._state.group_members)

    def cohorts(self) -> list[CohortRecord]:
        """Every cohort, by id."""
        return _sorted(self._state.cohorts)

    def cohort(self, idnumber: str) -> CohortRecord | None:
        """The cohort with this idnumber, or None."""
        return next((c for c in self.cohorts() if c.idnumber == idnumber), None)

    def cohort_members(self) -> set[tuple[int, int]]:
        """Every (cohort_id, user_id) membership."""
        return set(self._state.cohort_members)

    # -- readable views by key --

    def enrolled(self, shortname: str) -> dict[str, bool]:
        """Username -> active, for every enrolment in this course (any method)."""
        course_id = self._course_id(shortname)
        found = [e for e in self._state.enrolments.values() if e.course_id == course_id]
        return {self._username(e.user_id): e.active for e in found}

    def course_roles(self, shortname: str) -> set[tuple[str, str]]:
        """(username, role shortname) of every role assignment in this course."""
        course_id = self._course_id(shortname)
        names = {v: k for k, v in self._state.roles.items()}
        return {
            (self._username(r.user_id), names[r.role_id])
            for r in self._state.role_assignments
            if r.course_id == course_id
        }

    def members_of_group(self, shortname: str, group: str) -> set[str]:
        """Usernames in the group named ``group`` of this course."""
        course_id = self._course_id(shortname)
        ids = {g.id for g in self._state.groups.values() if g.course_id == course_id and g.name == group}
        return {self._username(u) for g, u in self._state.group_members if g in ids}

    def members_of_cohort(self, idnumber: str) -> set[str]:
        """Usernames in the cohort with this idnumber."""
        ids = {c.id for c in self._state.cohorts.values() if c.idnumber == idnumber}
        return {self._username(u) for c, u in self._state.cohort_members if c in ids}

    def _course_id(self, shortname: str) -> int:
        found = self.course(shortname)
        assert found is not None and found.id is not None, f"no course {shortname!r}"
        return found.id

    def _username(self, user_id: int) -> str:
        return self._state.users[user_id].username


def _sorted(table: dict[int, T]) -> list[T]:
    return [copy.copy(r) for _, r in sorted(table.items())]
