"""Enrolling users in courses over one batch's working set (enrolments and users processors).

Both the enrolments processor and the users processor's ``course<N>`` columns enrol
"user U in course C through method M with role R, dates S/E" through :class:`EnrolSet`:

- :meth:`EnrolSet.load` reads, once per batch, the enrolment methods of the batch's
  courses, the user enrolments and role assignments of its (course, user) pairs and, for
  the courses whose rows name groups, their groups and members;
- rows then change the working set in order (a later row sees what an earlier one did);
  nothing is registered until a change is sure, so a row that fails on a check leaves
  no trace;
- :meth:`EnrolSet.flush` writes the difference with one call per kind: new methods,
  deleted/updated/new enrolments, removed/added roles, new groups, removed/added members.

Objects created in the batch (a manual method, a group) get a negative placeholder id
until the flush gives them a real one.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Final, Literal, TypeVar

from syncd.domain import RowError
from syncd.platform.base import PlatformTx
from syncd.platform.model import CourseRecord, Enrolment, EnrolMethod, GroupRecord, RoleAssignment

#: the method created on demand when a course lacks it (every other must exist and be enabled)
MANUAL = "manual"


class _Keep(Enum):
    KEEP = "keep"


#: a date argument meaning "leave the stored value as it is" (the column was absent)
KEEP: Final = _Keep.KEEP
DateArg = datetime | None | Literal[_Keep.KEEP]

Pair = tuple[int, int]  # (course_id, user_id)
_Placed = TypeVar("_Placed", EnrolMethod, GroupRecord)


@dataclass(frozen=True, slots=True)
class Dates:
    """Start and end of an enrolment: a date, None (no limit) or KEEP (column absent)."""

    start: DateArg = KEEP
    end: DateArg = KEEP


class EnrolSet:
    """The enrolment state one batch reads and changes (see the module docstring)."""

    def __init__(self, tx: PlatformTx, pairs: Collection[Pair]) -> None:
        self._tx = tx
        self._pairs = frozenset(pairs)
        self._methods: dict[int, list[EnrolMethod]] = {}
        self._enrolments: dict[Pair, list[Enrolment]] = {}
        self._stored: dict[int, tuple[bool, datetime | None, datetime | None]] = {}
        self._roles: dict[Pair, set[int]] = {}
        self._stored_roles: dict[Pair, frozenset[int]] = {}
        self._new_methods: list[EnrolMethod] = []
        self._method_cache: dict[tuple[int, str], EnrolMethod | None] = {}
        self._groups: GroupSet | None = None

    @classmethod
    def load(cls, tx: PlatformTx, pairs: Collection[Pair], group_courses: Collection[int] = ()) -> EnrolSet:
        """Read the state of ``pairs``: one methods, one find, one roles (and groups) call."""
        work = cls(tx, pairs)
        if not work._pairs:
            return work
        repo = tx.enrolments
        for method in repo.methods({course for course, _user in work._pairs}):
            work._methods.setdefault(method.course_id, []).append(method)
        for enrolment in repo.find(work._pairs):
            assert enrolment.id is not None
            pair = (enrolment.course_id, enrolment.user_id)
            work._enrolments.setdefault(pair, []).append(enrolment)
            work._stored[enrolment.id] = (enrolment.active, enrolment.start, enrolment.end)
        for assignment in repo.roles(work._pairs):
            pair = (assignment.course_id, assignment.user_id)
            work._roles.setdefault(pair, set()).add(assignment.role_id)
        work._stored_roles = {pair: frozenset(ids) for pair, ids in work._roles.items()}
        if group_courses:
            work._groups = GroupSet.load(tx, group_courses)
        return work

    @property
    def groups(self) -> GroupSet:
        """The groups of the courses given as ``group_courses`` to :meth:`load`."""
        assert self._groups is not None, "groups were not loaded for this batch"
        return self._groups

    # -- methods ---------------------------------------------------------------------

    def find_method(self, course_id: int, name: str) -> EnrolMethod | None:
        """The course's first instance of method ``name`` (enabled ones first), or None."""
        key = (course_id, name)
        if key in self._method_cache:
            return self._method_cache[key]
        found = [m for m in self._methods.get(course_id, ()) if m.method == name]
        found.sort(key=lambda m: not m.enabled)
        self._method_cache[key] = method = found[0] if found else None
        return method

    def method_for_enrol(self, course: CourseRecord, name: str, column: str) -> EnrolMethod:
        """The enabled method to enrol through; manual is made (unregistered) when missing.

        Raise RowError naming ``column`` when the course lacks the method or has it disabled.
        """
        assert course.id is not None
        method = self.find_method(course.id, name)
        if method is None:
            if name != MANUAL:
                raise RowError(f"{column}: course {course.shortname!r} has no enrolment method {name!r}")
            return EnrolMethod(course_id=course.id, method=MANUAL)
        if not method.enabled:
            raise RowError(f"{column}: enrolment method {name!r} of course {course.shortname!r} is disabled")
        return method

    def _register_method(self, method: EnrolMethod) -> int:
        if method.id is None:
            method.id = -1 - len(self._new_methods)  # a placeholder until the flush
            self._methods.setdefault(method.course_id, []).append(method)
            self._new_methods.append(method)
            self._method_cache.pop((method.course_id, method.method), None)
        return method.id

    # -- enrolments ------------------------------------------------------------------

    def _list(self, course_id: int, user_id: int) -> list[Enrolment]:
        pair = (course_id, user_id)
        assert pair in self._pairs, f"pair {pair} was not loaded"
        return self._enrolments.setdefault(pair, [])

    def enrolments(self, course_id: int, user_id: int) -> list[Enrolment]:
        """The user's enrolments in the course (any method), as the batch has them now."""
        return list(self._list(course_id, user_id))

    def enrolment(self, method: EnrolMethod, user_id: int) -> Enrolment | None:
        """The user's enrolment through ``method``, or None."""
        if method.id is None:
            return None
        for enrolment in self._list(method.course_id, user_id):
            if enrolment.method_id == method.id:
                return enrolment
        return None

    def is_enrolled(self, course_id: int, user_id: int) -> bool:
        """Whether the user has any enrolment in the course (active or not)."""
        return bool(self._list(course_id, user_id))

    def enrol(self, method: EnrolMethod, user_id: int, dates: Dates) -> list[str] | None:
        """Enrol (active) through ``method`` with ``dates``.

        Return None when a new enrolment was made, else the names of what changed on the
        existing one (``reactivated``, ``start``, ``end``; empty = unchanged).
        """
        existing = self.enrolment(method, user_id)
        if existing is None:
            method_id = self._register_method(method)
            start = None if dates.start is KEEP else dates.start
            end = None if dates.end is KEEP else dates.end
            enrolment = Enrolment(method_id, method.course_id, user_id, True, start, end)
            self._list(method.course_id, user_id).append(enrolment)
            return None
        changed = ["reactivated"] if not existing.active else []
        existing.active = True
        if dates.start is not KEEP and dates.start != existing.start:
            existing.start = dates.start
            changed.append("start")
        if dates.end is not KEEP and dates.end != existing.end:
            existing.end = dates.end
            changed.append("end")
        return changed

    def unenrol(self, method: EnrolMethod, user_id: int) -> bool:
        """Remove the user's enrolment through ``method``; False if there was none."""
        existing = self.enrolment(method, user_id)
        if existing is None:
            return False
        self._list(method.course_id, user_id).remove(existing)
        return True

    def clear(self, course_id: int, user_id: int) -> tuple[set[int], list[GroupRecord]]:
        """After a last unenrolment (as Moodle does): drop the user's remaining roles and
        group memberships in the course; return the role ids and groups removed."""
        roles = self._role_set(course_id, user_id)
        removed = set(roles)
        roles.clear()
        groups = self.groups.groups_of(course_id, user_id)
        for group in groups:
            self.groups.leave(group, user_id)
        return removed, groups

    @staticmethod
    def set_active(enrolment: Enrolment, active: bool) -> bool:
        """Suspend or reactivate an enrolment; False if it already was so."""
        if enrolment.active == active:
            return False
        enrolment.active = active
        return True

    # -- roles -----------------------------------------------------------------------

    def _role_set(self, course_id: int, user_id: int) -> set[int]:
        pair = (course_id, user_id)
        assert pair in self._pairs, f"pair {pair} was not loaded"
        return self._roles.setdefault(pair, set())

    def assign(self, course_id: int, user_id: int, role_id: int) -> bool:
        """Give the user the role in the course; False if they had it."""
        roles = self._role_set(course_id, user_id)
        if role_id in roles:
            return False
        roles.add(role_id)
        return True

    def unassign(self, course_id: int, user_id: int, role_id: int) -> bool:
        """Take the role away; False if the user did not have it."""
        roles = self._role_set(course_id, user_id)
        if role_id not in roles:
            return False
        roles.discard(role_id)
        return True

    def shift(self, course_id: int, user_id: int, role_id: int) -> tuple[bool, set[int]]:
        """Make ``role_id`` the user's only role in the course: (it was added, roles removed)."""
        roles = self._role_set(course_id, user_id)
        removed = roles - {role_id}
        added = role_id not in roles
        roles.clear()
        roles.add(role_id)
        return added, removed

    # -- writing ---------------------------------------------------------------------

    def flush(self) -> None:
        """Write every change of the batch (once, at its end): one call per kind of write."""
        repo = self._tx.enrolments
        method_ids = _insert_placeholders(self._new_methods, repo.add_methods)
        self._flush_enrolments(method_ids)
        unassign, assign = self._role_changes()
        if unassign:
            repo.unassign(unassign)
        if assign:
            repo.assign(assign)
        if self._groups is not None:
            self._groups.flush()

    def _flush_enrolments(self, method_ids: dict[int, int]) -> None:
        repo = self._tx.enrolments
        kept: set[int] = set()
        new: list[Enrolment] = []
        changed: list[Enrolment] = []
        for enrolments in self._enrolments.values():
            for enrolment in enrolments:
                if enrolment.id is None:
                    enrolment.method_id = method_ids.get(enrolment.method_id, enrolment.method_id)
                    new.append(enrolment)
                    continue
                kept.add(enrolment.id)
                if self._stored[enrolment.id] != (enrolment.active, enrolment.start, enrolment.end):
                    changed.append(enrolment)
        removed = [i for i in self._stored if i not in kept]
        if removed:
            repo.delete(removed)
        if changed:
            repo.update(changed)
        if new:
            repo.add(new)

    def _role_changes(self) -> tuple[list[RoleAssignment], list[RoleAssignment]]:
        unassign: list[RoleAssignment] = []
        assign: list[RoleAssignment] = []
        empty: frozenset[int] = frozenset()
        for pair, roles in self._roles.items():
            stored = self._stored_roles.get(pair, empty)
            if roles == stored:
                continue
            course_id, user_id = pair
            unassign += [RoleAssignment(course_id, user_id, r) for r in stored - roles]
            assign += [RoleAssignment(course_id, user_id, r) for r in roles - stored]
        return unassign, assign


class GroupSet:
    """The groups of some courses (by name) and their members, as one batch changes them."""

    def __init__(self, tx: PlatformTx, groups: Iterable[GroupRecord], members: Iterable[Pair]) -> None:
        self._tx = tx
        self._by_course: dict[int, dict[str, GroupRecord]] = {}
        for group in groups:
            self._by_course.setdefault(group.course_id, {}).setdefault(group.name, group)
        self._members = set(members)  # (group_id, user_id)
        self._stored = frozenset(self._members)
        self._new: list[GroupRecord] = []

    @classmethod
    def load(cls, tx: PlatformTx, course_ids: Collection[int]) -> GroupSet:
        """One groups read and one members read."""
        groups = tx.groups.groups(course_ids)
        ids = [g.id for g in groups if g.id is not None]
        return cls(tx, groups, tx.groups.members(ids) if ids else ())

    def group(self, course: CourseRecord, name: str, column: str, *, create: bool) -> GroupRecord:
        """The course's group called ``name``; a new (unregistered) one when ``create``."""
        assert course.id is not None
        found = self._by_course.get(course.id, {}).get(name)
        if found is not None:
            return found
        if not create:
            raise RowError(f"unknown group {name!r} in course {course.shortname!r} ({column})")
        return GroupRecord(course_id=course.id, name=name)

    def groups_of(self, course_id: int, user_id: int) -> list[GroupRecord]:
        """The groups of the course the user is a member of."""
        members = self._members
        return [g for g in self._by_course.get(course_id, {}).values() if (g.id, user_id) in members]

    def join(self, group: GroupRecord, user_id: int) -> bool:
        """Put the user in the group (registering a new group); False if already in."""
        if group.id is None:
            group.id = -1 - len(self._new)  # a placeholder until the flush
            self._by_course.setdefault(group.course_id, {})[group.name] = group
            self._new.append(group)
        member = (group.id, user_id)
        if member in self._members:
            return False
        self._members.add(member)
        return True

    def leave(self, group: GroupRecord, user_id: int) -> bool:
        """Take the user out of the group; False if not a member."""
        if group.id is None or (group.id, user_id) not in self._members:
            return False
        self._members.discard((group.id, user_id))
        return True

    def flush(self) -> None:
        """Write new groups, then removed and added memberships."""
        repo = self._tx.groups
        group_ids = _insert_placeholders(self._new, repo.add_groups)
        if group_ids:
            self._members = {(group_ids.get(g, g), u) for g, u in self._members}
        removed = self._stored - self._members
        added = self._members - self._stored
        if removed:
            repo.remove_members(removed)
        if added:
            repo.add_members(added)


def _insert_placeholders(records: list[_Placed], add: Callable[[Sequence[_Placed]], None]) -> dict[int, int]:
    """Insert records that carry placeholder ids; return placeholder -> real id."""
    if not records:
        return {}
    placeholders = [r.id for r in records]
    for record in records:
        record.id = None
    add(records)
    real: dict[int, int] = {}
    for placeholder, record in zip(placeholders, records, strict=True):
        assert placeholder is not None and record.id is not None
        real[placeholder] = record.id
    records.clear()
    return real
