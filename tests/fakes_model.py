"""In-memory repositories of the platform model (categories to enrolments), for unit tests.

Used through :class:`tests.fakes.FakePlatform`. Everything lives in one
:class:`FakeState`, so that a transaction's snapshot and rollback cover every table.
Each write checks what the SQL store's constraints check (unique keys, foreign keys)
and raises :class:`FakeIntegrityError` where the database would raise IntegrityError;
deletes cascade as the port's docstrings say. Records going in or out are copies.
Empty idnumbers are stored as None, as the SQL store does.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from syncd.platform.base import Checkpoint, SavedResult, UserRecord
from syncd.platform.model import (
    DEFAULT_ROLES,
    ActivityRecord,
    CategoryRecord,
    CohortRecord,
    CourseRecord,
    DocumentRecord,
    Enrolment,
    EnrolMethod,
    GroupingRecord,
    GroupRecord,
    PathItemRecord,
    PictureRecord,
    RoleAssignment,
    SectionRecord,
)

T = TypeVar("T")


class SharedBlobs(dict[str, bytes]):
    """Blob contents by sha256. A transaction's snapshot shares it (deepcopy returns it):
    blobs are not transactional, in the fake as in the real file store."""

    def __deepcopy__(self, memo: dict[int, Any]) -> SharedBlobs:
        return self


class FakeIntegrityError(Exception):
    """A write broke a uniqueness or reference rule (what a database's IntegrityError would be)."""


@dataclass
class FakeState:
    """Every table of the fake platform; ids are counted per table from 1."""

    users: dict[int, UserRecord] = field(default_factory=dict)
    next_id: int = 1  # users
    checkpoints: dict[int, Checkpoint] = field(default_factory=dict)
    results: dict[int, dict[int, SavedResult]] = field(default_factory=dict)
    roles: dict[str, int] = field(default_factory=lambda: {r: i for i, r in enumerate(DEFAULT_ROLES, 1)})
    categories: dict[int, CategoryRecord] = field(default_factory=dict)
    courses: dict[int, CourseRecord] = field(default_factory=dict)
    sections: dict[int, SectionRecord] = field(default_factory=dict)
    methods: dict[int, EnrolMethod] = field(default_factory=dict)
    enrolments: dict[int, Enrolment] = field(default_factory=dict)
    role_assignments: set[RoleAssignment] = field(default_factory=set)
    groups: dict[int, GroupRecord] = field(default_factory=dict)
    groupings: dict[int, GroupingRecord] = field(default_factory=dict)
    grouping_links: set[tuple[int, int]] = field(default_factory=set)
    group_members: set[tuple[int, int]] = field(default_factory=set)
    cohorts: dict[int, CohortRecord] = field(default_factory=dict)
    cohort_members: set[tuple[int, int]] = field(default_factory=set)
    documents: dict[int, DocumentRecord] = field(default_factory=dict)
    path_items: dict[int, PathItemRecord] = field(default_factory=dict)
    activities: dict[int, ActivityRecord] = field(default_factory=dict)
    pictures: dict[int, PictureRecord] = field(default_factory=dict)
    blobs: SharedBlobs = field(default_factory=SharedBlobs)
    counters: dict[str, int] = field(default_factory=dict)

    def new_id(self, table: str) -> int:
        """The next id of ``table``."""
        self.counters[table] = self.counters.get(table, 0) + 1
        return self.counters[table]


def _copies(records: Iterable[T]) -> list[T]:
    return [copy.copy(r) for r in records]


def _need(exists: bool, what: str, value: object) -> None:
    """Raise as a foreign key would when ``what`` ``value`` does not exist."""
    if not exists:
        raise FakeIntegrityError(f"foreign key: no {what} {value!r}")


def _unique(taken: Iterable[Any], key: Any, what: str) -> None:
    if key in set(taken):
        raise FakeIntegrityError(f"duplicate {what} {key!r}")


def _store(table: dict[int, T], record: Any, name: str, state: FakeState) -> None:
    """Give a new record its id and store a copy of it."""
    if record.id is not None:
        raise ValueError(f"add() takes new {name} records only (id {record.id})")
    record.id = state.new_id(name)
    table[record.id] = _stored(record)


def _stored(record: T) -> T:
    """The copy of ``record`` the store keeps, as the SQL store would give it back: an empty
    idnumber becomes None, datetimes are in UTC."""
    kept = copy.copy(record)
    for name in (f.name for f in dataclasses.fields(kept)):  # type: ignore[arg-type]
        value = getattr(kept, name)
        if name == "idnumber" and value == "":
            setattr(kept, name, None)
        elif isinstance(value, datetime):
            setattr(kept, name, utc(value))
    return kept


def utc(value: datetime | None) -> datetime | None:
    """An aware datetime in UTC (a naive one is taken as UTC already), or None."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _known(table: dict[int, Any], record: Any, name: str) -> int:
    """The id of ``record``, which must be stored in ``table``."""
    if record.id is None or record.id not in table:
        raise ValueError(f"update() of unknown {name} id {record.id}")
    return int(record.id)


class FakeCategories:
    """CategoryRepository over a dict."""

    def __init__(self, state: FakeState) -> None:
        self._s = state

    def all(self) -> list[CategoryRecord]:
        """Copies of every category, by id."""
        return _copies(c for _, c in sorted(self._s.categories.items()))

    def add(self, categories: Sequence[CategoryRecord]) -> None:
        """Store new categories (parents first); idnumber unique when set."""
        for cat in categories:
            if cat.parent_id is not None:
                _need(cat.parent_id in self._s.categories, "category", cat.parent_id)
            if cat.idnumber:
                _unique((c.idnumber for c in self._s.categories.values()), cat.idnumber, "category idnumber")
            _store(self._s.categories, cat, "categories", self._s)


class FakeCourses:
    """CourseRepository over dicts of courses and sections."""

    def __init__(self, state: FakeState) -> None:
        self._s = state

    def find(
        self, *, shortnames: Collection[str] = (), idnumbers: Collection[str] = (), ids: Collection[int] = ()
    ) -> list[CourseRecord]:
        """Copies of every course matching any key."""
        names, numbers, wanted = set(shortnames), set(idnumbers), set(ids)
        return _copies(
            c
            for c in self._s.courses.values()
            if c.shortname in names or (c.idnumber is not None and c.idnumber in numbers) or c.id in wanted
        )

    def add(self, courses: Sequence[CourseRecord]) -> None:
        """Store new courses and give them ids."""
        for course in courses:
            self._check(course)
            _store(self._s.courses, course, "courses", self._s)

    def update(self, courses: Sequence[CourseRecord]) -> None:
        """Replace existing courses by id."""
        for course in courses:
            course_id = _known(self._s.courses, course, "course")
            self._check(course)
            self._s.courses[course_id] = _stored(course)

    def _check(self, course: CourseRecord) -> None:
        _need(course.category_id in self._s.categories, "category", course.category_id)
        others = [c for c in self._s.courses.values() if c.id != course.id]
        _unique((c.shortname for c in others), course.shortname, "course shortname")
        if course.idnumber:
            _unique((c.idnumber for c in others), course.idnumber, "course idnumber")

    def delete(self, course_ids: Collection[int]) -> None:
        """Delete courses with sections, methods, enrolments, roles, groups, groupings and
        content (documents, learning path, activities; blobs stay)."""
        gone = set(course_ids)
        s = self._s
        s.documents = {k: v for k, v in s.documents.items() if v.course_id not in gone}
        s.path_items = {k: v for k, v in s.path_items.items() if v.course_id not in gone}
        s.activities = {k: v for k, v in s.activities.items() if v.course_id not in gone}
        FakeEnrolments(s).delete_methods([k for k, m in s.methods.items() if m.course_id in gone])
        s.role_assignments = {r for r in s.role_assignments if r.course_id not in gone}
        drop_groupings(s, [g for g, rec in s.groupings.items() if rec.course_id in gone])
        drop_groups(s, [g for g, rec in s.groups.items() if rec.course_id in gone])
        s.sections = {k: v for k, v in s.sections.items() if v.course_id not in gone}
        for course_id in gone:
            s.courses.pop(course_id, None)

    def sections(self, course_ids: Collection[int]) -> list[SectionRecord]:
        """Copies of the sections of these courses, by course then number."""
        wanted = set(course_ids)
        found = [x for x in self._s.sections.values() if x.course_id in wanted]
        return _copies(sorted(found, key=lambda x: (x.course_id, x.number)))

    def put_sections(self, sections: Sequence[SectionRecord]) -> None:
        """Insert or replace sections by (course_id, number); set their ids."""
        for section in sections:
            _need(section.course_id in self._s.courses, "course", section.course_id)
            key = (section.course_id, section.number)
            old = next((x for x in self._s.sections.values() if (x.course_id, x.number) == key), None)
            section_id = old.id if old is not None and old.id is not None else self._s.new_id("sections")
            section.id = section_id
            self._s.sections[section_id] = _stored(section)


class FakeRoles:
    """RoleRepository over a dict."""

    def __init__(self, state: FakeState) -> None:
        self._s = state

    def all(self) -> dict[str, int]:
        """Role shortname -> id."""
        return dict(self._s.roles)


class FakeEnrolments:
    """EnrolmentRepository over dicts of methods and enrolments and a set of role assignments."""

    def __init__(self, state: FakeState) -> None:
        self._s = state

    def methods(self, course_ids: Collection[int]) -> list[EnrolMethod]:
        """Copies of every method of these courses, by id."""
        wanted = set(course_ids)
        return _copies(m for _, m in sorted(self._s.methods.items()) if m.course_id in wanted)

    def methods_of_cohorts(self, cohort_ids: Collection[int]) -> list[EnrolMethod]:
        """Copies of every cohort-sync method bound to these cohorts, by id."""
        wanted = set(cohort_ids)
        return _copies(
            m for _, m in sorted(self._s.methods.items()) if m.method == "cohort" and m.cohort_id in wanted
        )

    def add_methods(self, methods: Sequence[EnrolMethod]) -> None:
        """Store new methods: one per (course, method), cohort ones one per (course, cohort)."""
        for method in methods:
            self._check_method(method)
            _store(self._s.methods, method, "methods", self._s)

    def update_methods(self, methods: Sequence[EnrolMethod]) -> None:
        """Replace methods by id."""
        for method in methods:
            method_id = _known(self._s.methods, method, "enrolment method")
            self._check_method(method)
            self._s.methods[method_id] = _stored(method)

    def _check_method(self, m: EnrolMethod) -> None:
        s = self._s
        _need(m.course_id in s.courses, "course", m.course_id)
        if m.cohort_id is not None:
            _need(m.cohort_id in s.cohorts, "cohort", m.cohort_id)
        if m.role_id is not None:
            _need(m.role_id in s.roles.values(), "role", m.role_id)
        if m.group_id is not None:
            _need(m.group_id in s.groups, "group", m.group_id)
        key = (m.course_id, m.method, m.cohort_id if m.method == "cohort" else None)
        taken = (
            (o.course_id, o.method, o.cohort_id if o.method == "cohort" else None)
            for o in s.methods.values()
            if o.id != m.id
        )
        _unique(taken, key, "enrolment method")

    def delete_methods(self, method_ids: Collection[int]) -> None:
        """Delete methods and their enrolments."""
        gone = set(method_ids)
        self._s.enrolments = {k: e for k, e in self._s.enrolments.items() if e.method_id not in gone}
        for method_id in gone:
            self._s.methods.pop(method_id, None)

    def find(self, pairs: Collection[tuple[int, int]]) -> list[Enrolment]:
        """Copies of the enrolments of these (course_id, user_id) pairs, by id."""
        wanted = set(pairs)
        return _copies(e for _, e in sorted(self._s.enrolments.items()) if (e.course_id, e.user_id) in wanted)

    def in_courses(self, course_ids: Collection[int]) -> list[Enrolment]:
        """Copies of every enrolment in these courses, by id."""
        wanted = set(course_ids)
        return _copies(e for _, e in sorted(self._s.enrolments.items()) if e.course_id in wanted)

    def add(self, enrolments: Sequence[Enrolment]) -> None:
        """Store new enrolments: one per (method, user), course = the method's course."""
        s = self._s
        for e in enrolments:
            _need(e.method_id in s.methods, "enrolment method", e.method_id)
            course_id = s.methods[e.method_id].course_id
            _need(course_id == e.course_id, "method in course", (e.method_id, e.course_id))
            _need(e.user_id in s.users, "user", e.user_id)
            taken = ((o.method_id, o.user_id) for o in s.enrolments.values())
            _unique(taken, (e.method_id, e.user_id), "enrolment")
            _store(s.enrolments, e, "enrolments", s)

    def update(self, enrolments: Sequence[Enrolment]) -> None:
        """Write active/start/end by id."""
        for e in enrolments:
            stored = self._s.enrolments[_known(self._s.enrolments, e, "enrolment")]
            stored.active, stored.start, stored.end = e.active, utc(e.start), utc(e.end)

    def delete(self, enrolment_ids: Collection[int]) -> None:
        """Remove enrolments (absent ids are ignored)."""
        for enrolment_id in set(enrolment_ids):
            self._s.enrolments.pop(enrolment_id, None)

    def roles(self, pairs: Collection[tuple[int, int]]) -> list[RoleAssignment]:
        """Role assignments of these (course_id, user_id) pairs."""
        wanted = set(pairs)
        found = (r for r in self._s.role_assignments if (r.course_id, r.user_id) in wanted)
        return sorted(found, key=_ra_key)

    def roles_in_courses(self, course_ids: Collection[int]) -> list[RoleAssignment]:
        """Role assignments in these courses."""
        wanted = set(course_ids)
        return sorted((r for r in self._s.role_assignments if r.course_id in wanted), key=_ra_key)

    def assign(self, assignments: Collection[RoleAssignment]) -> None:
        """Add role assignments; present ones are ignored."""
        s = self._s
        for r in assignments:
            _need(r.course_id in s.courses, "course", r.course_id)
            _need(r.user_id in s.users, "user", r.user_id)
            _need(r.role_id in s.roles.values(), "role", r.role_id)
            s.role_assignments.add(r)

    def unassign(self, assignments: Collection[RoleAssignment]) -> None:
        """Remove role assignments; absent ones are ignored."""
        self._s.role_assignments -= set(assignments)


def _ra_key(r: RoleAssignment) -> tuple[int, int, int]:
    return (r.course_id, r.user_id, r.role_id)


def drop_groups(s: FakeState, group_ids: Collection[int]) -> None:
    """Delete groups with their members and grouping links (cohort methods forget them)."""
    gone = set(group_ids)
    s.group_members = {m for m in s.group_members if m[0] not in gone}
    s.grouping_links = {x for x in s.grouping_links if x[1] not in gone}
    for method in s.methods.values():
        if method.group_id in gone:
            method.group_id = None
    for group_id in gone:
        s.groups.pop(group_id, None)


def drop_groupings(s: FakeState, grouping_ids: Collection[int]) -> None:
    """Delete groupings and their links; the groups stay."""
    gone = set(grouping_ids)
    s.grouping_links = {x for x in s.grouping_links if x[0] not in gone}
    for grouping_id in gone:
        s.groupings.pop(grouping_id, None)
