"""The working set of one courses batch: what it loaded, what its rows made, how it is written.

Rows are applied in memory, in order, against these sets; :class:`CourseWork` then writes
the batch with one call per kind (categories once per tree level, parents first). Records
created by the batch carry a temporary NEGATIVE id until they are written, so that a new
course can already own sections, enrolment methods, enrolments and role assignments, and
a new category can already hold courses; :class:`TempIds` maps them to the real ids.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from syncd.platform.base import CourseRepository, PlatformTx
from syncd.platform.model import (
    CategoryRecord,
    CourseRecord,
    Enrolment,
    EnrolMethod,
    RoleAssignment,
    SectionRecord,
)
from syncd.processors._lookup import unknown


class TempIds:
    """Temporary ids (-1, -2…) of records not written yet, and their real ids once written."""

    def __init__(self) -> None:
        self._last = 0
        self._real: dict[int, int] = {}

    def new(self) -> int:
        """A fresh temporary id."""
        self._last -= 1
        return self._last

    def set(self, temp: int, real: int | None) -> None:
        """Record the real id a temporary one became."""
        assert real is not None
        self._real[temp] = real

    def real(self, some_id: int) -> int:
        """The real id of ``some_id`` (itself when it is real already)."""
        return self._real.get(some_id, some_id) if some_id < 0 else some_id

    def written(self, some_id: int) -> bool:
        """Whether ``some_id`` is real or a temporary id that was written (its id may still be
        negative: a platform's dry run pretends with negative ids)."""
        return some_id > 0 or some_id in self._real


class CategoryTree:
    """Every category (read once per batch), plus the ones rows create, by id and by path."""

    def __init__(self, found: Iterable[CategoryRecord], temp: TempIds) -> None:
        self._temp = temp
        self.by_id: dict[int, CategoryRecord] = {}
        self._child: dict[tuple[int | None, str], int] = {}
        self._new: list[tuple[int, CategoryRecord]] = []  # (temp id, record), parents first
        for category in sorted(found, key=lambda c: c.id or 0):
            assert category.id is not None
            self._take(category.id, category)

    def _take(self, category_id: int, category: CategoryRecord) -> None:
        self.by_id[category_id] = category
        self._child.setdefault((category.parent_id, category.name), category_id)

    def check(self, ref: int | tuple[str, ...]) -> None:
        """Raise the row error for a category id that does not exist (paths always resolve)."""
        if isinstance(ref, int) and ref not in self.by_id:
            raise unknown("category", str(ref), "category")

    def resolve(self, ref: int | tuple[str, ...]) -> int:
        """The id of a category id or path; the missing levels of a path are created."""
        self.check(ref)
        if isinstance(ref, int):
            return ref
        parent: int | None = None
        for name in ref:
            found = self._child.get((parent, name))
            if found is None:
                found = self._temp.new()
                category = CategoryRecord(name=name, parent_id=parent)
                self._new.append((found, category))
                self._take(found, category)
            parent = found
        assert parent is not None
        return parent

    def flush(self, tx: PlatformTx) -> None:
        """Add the new categories, one call per level: a level's parents have ids by then."""
        pending = list(self._new)
        while pending:
            level = [(t, c) for t, c in pending if c.parent_id is None or self._temp.written(c.parent_id)]
            assert level, "every pending category's parent is pending or written"
            for _temp_id, category in level:
                if category.parent_id is not None:
                    category.parent_id = self._temp.real(category.parent_id)
            tx.categories.add([c for _, c in level])
            for temp_id, category in level:
                self._temp.set(temp_id, category.id)
            done = {t for t, _ in level}
            pending = [(t, c) for t, c in pending if t not in done]
        self._new.clear()


class CourseSet:
    """The courses a batch knows, indexed by shortname, idnumber and id (temporary ids too)."""

    def __init__(self, found: Iterable[CourseRecord], temp: TempIds) -> None:
        self._temp = temp
        self.by_shortname: dict[str, CourseRecord] = {}
        self.by_idnumber: dict[str, CourseRecord] = {}
        self.by_id: dict[int, CourseRecord] = {}
        self._loaded: dict[int, tuple[str, str | None]] = {}
        self._new: list[CourseRecord] = []
        self._changed: dict[int, CourseRecord] = {}
        for course in found:
            assert course.id is not None
            self._loaded[course.id] = (course.shortname, course.idnumber)
            self._index(course)

    @property
    def loaded_ids(self) -> list[int]:
        """Ids of the courses that exist in the platform."""
        return list(self._loaded)

    def add(self, course: CourseRecord) -> None:
        """Take in a new course and give it a temporary id."""
        course.id = self._temp.new()
        self._new.append(course)
        self._index(course)

    def change(self, course: CourseRecord, values: Mapping[str, Any]) -> None:
        """Set ``values`` on a known course and re-index it."""
        self._unindex(course)
        for name, value in values.items():
            setattr(course, name, value)
        self._index(course)
        if course.id is not None and course.id > 0:
            self._changed[course.id] = course

    def flush(self, repo: CourseRepository) -> None:
        """Update changed courses (keys taken over moved aside first), then add new ones."""
        for course in [*self._new, *self._changed.values()]:
            course.category_id = self._temp.real(course.category_id)
        vacating = self._vacating()
        if vacating:
            repo.update(vacating)
        if self._changed:
            repo.update(list(self._changed.values()))
        if self._new:
            temps = [c.id for c in self._new]
            for course in self._new:
                course.id = None
            repo.add(self._new)
            for temp_id, course in zip(temps, self._new, strict=True):
                assert temp_id is not None
                self._temp.set(temp_id, course.id)

    def _vacating(self) -> list[CourseRecord]:
        """Placeholder copies of changed courses whose stored key another course now takes."""
        placeholders = []
        for course_id, course in self._changed.items():
            old_name, old_idnumber = self._loaded[course_id]
            holders = (
                self.by_shortname.get(old_name) if old_name != course.shortname else None,
                self.by_idnumber.get(old_idnumber) if old_idnumber not in (None, course.idnumber) else None,
            )
            if any(h is not None and h.id is not None and h.id > 0 for h in holders):
                placeholders.append(dataclasses.replace(course, shortname=f"#{course_id}#", idnumber=None))
        return placeholders

    def _index(self, course: CourseRecord) -> None:
        self.by_shortname[course.shortname] = course
        if course.idnumber:
            self.by_idnumber[course.idnumber] = course
        if course.id is not None:
            self.by_id[course.id] = course

    def _unindex(self, course: CourseRecord) -> None:
        if self.by_shortname.get(course.shortname) is course:
            del self.by_shortname[course.shortname]
        if course.idnumber and self.by_idnumber.get(course.idnumber) is course:
            del self.by_idnumber[course.idnumber]


class SectionSet:
    """Sections of the batch's courses by course id and number; changed ones are written at the end."""

    def __init__(self, found: Iterable[SectionRecord], temp: TempIds) -> None:
        self._temp = temp
        self._by_course: dict[int, dict[int, SectionRecord]] = {}
        self._dirty: dict[tuple[int, int], SectionRecord] = {}
        for section in found:
            self._by_course.setdefault(section.course_id, {})[section.number] = section

    def of(self, course_id: int) -> dict[int, SectionRecord]:
        """The sections of a course by number (empty for an unknown course)."""
        return self._by_course.get(course_id, {})

    def put(self, course_id: int, number: int, name: str, summary: str | None) -> bool:
        """Set a section's name (and summary unless None); fill gaps below it. True if changed."""
        sections = self._by_course.setdefault(course_id, {})
        current = sections.get(number)
        if summary is None:
            summary = current.summary if current is not None else ""
        if current is not None and (current.name, current.summary) == (name, summary):
            return False
        for below in range(number):
            if below not in sections:
                self._set(SectionRecord(course_id=course_id, number=below))
        self._set(SectionRecord(course_id, number, name, summary, current.id if current else None))
        return True

    def _set(self, section: SectionRecord) -> None:
        self._by_course.setdefault(section.course_id, {})[section.number] = section
        self._dirty[(section.course_id, section.number)] = section

    def flush(self, repo: CourseRepository) -> None:
        """Insert or replace every changed section (after the courses are written)."""
        if not self._dirty:
            return
        for section in self._dirty.values():
            section.course_id = self._temp.real(section.course_id)
        repo.put_sections(sorted(self._dirty.values(), key=lambda s: (s.course_id, s.number)))
        self._dirty.clear()


class EnrolSet:
    """Enrolment methods, teacher enrolments and role assignments the batch reads and adds."""

    def __init__(self, methods: Iterable[EnrolMethod], temp: TempIds) -> None:
        self._temp = temp
        self._methods: dict[tuple[int, str], EnrolMethod] = {}
        self._new_methods: list[EnrolMethod] = []
        self._changed_methods: dict[int, EnrolMethod] = {}
        self._enrolled: set[tuple[int, int]] = set()
        self._assigned: set[tuple[int, int, int]] = set()
        self.known_pairs: set[tuple[int, int]] = set()
        self._new_enrolments: list[Enrolment] = []
        self._new_roles: set[tuple[int, int, int]] = set()
        for method in methods:
            if method.method != "cohort":
                self._methods.setdefault((method.course_id, method.method), method)

    def learn(self, pairs: Iterable[tuple[int, int]], found: Sequence[Enrolment],
              roles: Sequence[RoleAssignment]) -> None:
        """Take in what the platform holds for these (course_id, user_id) pairs."""
        self.known_pairs.update(pairs)
        self._enrolled.update((e.course_id, e.user_id) for e in found)
        self._assigned.update((r.course_id, r.user_id, r.role_id) for r in roles)

    def ensure(self, tx: PlatformTx, course_id: int, user_id: int) -> None:
        """Read one existing pair the batch look-up did not cover (a key moved by an earlier row)."""
        pair = (course_id, user_id)
        if course_id > 0 and pair not in self.known_pairs:
            self.learn([pair], tx.enrolments.find([pair]), tx.enrolments.roles([pair]))

    def switch(self, course_id: int, method: str, on: bool) -> bool:
        """Enable (adding it if missing) or disable a method of a course; True if changed."""
        current = self._methods.get((course_id, method))
        if current is None:
            if not on:
                return False
            current = EnrolMethod(course_id=course_id, method=method, enabled=True, id=self._temp.new())
            self._methods[(course_id, method)] = current
            self._new_methods.append(current)
            return True
        if current.enabled == on:
            return False
        current.enabled = on
        if current.id is not None and current.id > 0:
            self._changed_methods[current.id] = current
        return True

    def enrol(self, course_id: int, user_id: int, role_id: int) -> bool:
        """Enrol a user manually (unless enrolled already) and give the role; True if changed."""
        changed = False
        if (course_id, user_id) not in self._enrolled:
            self.switch(course_id, "manual", True)
            manual = self._methods[(course_id, "manual")]
            assert manual.id is not None
            self._new_enrolments.append(Enrolment(method_id=manual.id, course_id=course_id, user_id=user_id))
            self._enrolled.add((course_id, user_id))
            changed = True
        if (course_id, user_id, role_id) not in self._assigned:
            self._assigned.add((course_id, user_id, role_id))
            self._new_roles.add((course_id, user_id, role_id))
            changed = True
        return changed

    def flush(self, tx: PlatformTx) -> None:
        """Write methods, then enrolments, then role assignments (courses exist by then)."""
        real = self._temp.real
        if self._new_methods:
            temps = [m.id for m in self._new_methods]
            for method in self._new_methods:
                method.id, method.course_id = None, real(method.course_id)
            tx.enrolments.add_methods(self._new_methods)
            for temp_id, method in zip(temps, self._new_methods, strict=True):
                assert temp_id is not None
                self._temp.set(temp_id, method.id)
        if self._changed_methods:
            tx.enrolments.update_methods(list(self._changed_methods.values()))
        if self._new_enrolments:
            for e in self._new_enrolments:
                e.method_id, e.course_id = real(e.method_id), real(e.course_id)
            tx.enrolments.add(self._new_enrolments)
        if self._new_roles:
            tx.enrolments.assign([RoleAssignment(real(c), u, r) for c, u, r in sorted(self._new_roles)])
