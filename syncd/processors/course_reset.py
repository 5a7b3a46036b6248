"""The course_reset processor: empty courses for a new term (SPEC §4 "course_reset").

Each row names a course (the ``identity`` column: shortname, idnumber or id) and the
items to reset; an absent or empty item is left alone:

- ``enrolments`` = ``all`` | role shortnames separated by commas or spaces: unenrol every
  user (``all``) or every user holding one of those roles in the course: their enrolments
  through any method, their role assignments and their group memberships in the course;
- ``groups`` = ``all`` (delete the groups) | ``members`` (empty them);
- ``groupings`` = yes: delete the groupings (their groups stay);
- ``cohort_bindings`` = yes: remove the cohort-sync enrolment methods with the enrolments
  through them; users left with no enrolment in the course lose their roles and groups.

A course that does not exist is a row error. The result is ``updated`` with the counts
of what went (``course 'X' reset: 12 users unenrolled, 3 groups deleted``), or
``unchanged`` when there was nothing to remove. The batch reads each kind it needs once
for all its courses, applies rows in order in memory (the same course twice sees the
first reset) and writes one removal per kind at the end.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from syncd.csvfile import Schema, parse_bool
from syncd.domain import Outcome, RowError, RowResult
from syncd.platform.base import PlatformTx
from syncd.platform.model import Enrolment, EnrolMethod, RoleAssignment
from syncd.processors._courserows import IDENTITIES, course_key
from syncd.processors._lookup import courses_by, option, role_id, unknown
from syncd.processors.base import ProcessorSpec, Row, RunContext

ITEMS = frozenset({"enrolments", "groups", "groupings", "cohort_bindings"})
ALL = "all"
_SEPARATORS = re.compile(r"[\s,;]+")


@dataclass(frozen=True, slots=True)
class ResetAsk:
    """What one row asks to reset; None / False = leave it."""

    key: str
    roles: frozenset[int] | None = None  # role ids to unenrol; empty set = every user
    groups: str | None = None  # "all" | "members"
    groupings: bool = False
    cohort_bindings: bool = False


@dataclass(slots=True)
class _Course:
    """What one course holds of the kinds a batch resets (kept true as rows remove things)."""

    enrolments: dict[int, Enrolment] = field(default_factory=dict)
    roles: set[RoleAssignment] = field(default_factory=set)
    groups: set[int] = field(default_factory=set)
    members: set[tuple[int, int]] = field(default_factory=set)
    groupings: set[int] = field(default_factory=set)
    cohort_methods: set[int] = field(default_factory=set)


@dataclass(slots=True)
class _Removals:
    """Everything the batch removes, written at its end."""

    enrolments: set[int] = field(default_factory=set)
    roles: set[RoleAssignment] = field(default_factory=set)
    groups: set[int] = field(default_factory=set)
    members: set[tuple[int, int]] = field(default_factory=set)
    groupings: set[int] = field(default_factory=set)
    methods: set[int] = field(default_factory=set)

    def write(self, tx: PlatformTx) -> None:
        """One call per kind: memberships and roles, enrolments, then methods, groups, groupings."""
        if self.members:
            tx.groups.remove_members(self.members)
        if self.roles:
            tx.enrolments.unassign(self.roles)
        if self.enrolments:
            tx.enrolments.delete(self.enrolments)
        if self.methods:
            tx.enrolments.delete_methods(self.methods)
        if self.groups:
            tx.groups.delete_groups(self.groups)
        if self.groupings:
            tx.groups.delete_groupings(self.groupings)


def parse_row(row: Row, identity: str, roles: Mapping[str, int]) -> ResetAsk:
    """Validate ``row`` into a :class:`ResetAsk`; raise RowError naming the column and value."""
    values = row.values
    key = course_key(row, identity)
    enrolments = values.get("enrolments", "").strip()
    ask_roles: frozenset[int] | None = None
    if enrolments.lower() == ALL:
        ask_roles = frozenset()
    elif enrolments:
        names = [name for name in _SEPARATORS.split(enrolments) if name]
        ask_roles = frozenset(role_id(roles, name, "enrolments") for name in names)
    groups = values.get("groups", "").strip().lower() or None
    if groups not in (None, ALL, "members"):
        raise RowError(f"groups: invalid value {values['groups']!r} (expected all or members)")
    return ResetAsk(
        key=key,
        roles=ask_roles,
        groups=groups,
        groupings=_yes(values, "groupings"),
        cohort_bindings=_yes(values, "cohort_bindings"),
    )


def _yes(values: Mapping[str, str], column: str) -> bool:
    value = values.get(column, "").strip()
    return parse_bool(value, column) if value else False


class CourseResetProcessor:
    """Resets the items each row names in its course (implements Processor)."""

    def __init__(self, *, identity: str) -> None:
        self.identity = identity

    @property
    def schema(self) -> Schema:
        """The identity column plus the reset items."""
        return Schema(frozenset({self.identity}), ITEMS)

    def describe(self) -> str:
        """The effective options, for the report."""
        return f"identity={self.identity}"

    def apply(self, rows: Sequence[Row], tx: PlatformTx) -> list[RowResult]:
        """Reset row by row in memory; write one removal per kind at the end."""
        needs_roles = any(row.values.get("enrolments", "").strip().lower() not in ("", ALL) for row in rows)
        roles = tx.roles.all() if needs_roles else {}
        asks: list[ResetAsk | RowError] = []
        for row in rows:
            try:
                asks.append(parse_row(row, self.identity, roles))
            except RowError as exc:
                asks.append(exc)
        valid = [a for a in asks if isinstance(a, ResetAsk)]
        found = courses_by(tx, self.identity, [a.key for a in valid])
        courses = _load(tx, [c.id for c in found.values() if c.id is not None], valid)
        removals = _Removals()
        results = []
        for ask in asks:
            if isinstance(ask, RowError):
                results.append(RowResult(Outcome.ERROR, str(ask)))
                continue
            course = found.get(ask.key)
            if course is None or course.id is None:
                results.append(RowResult(Outcome.ERROR, str(unknown("course", ask.key, self.identity))))
                continue
            results.append(_result(course.shortname, _reset(courses[course.id], ask, removals)))
        removals.write(tx)
        return results


def _result(shortname: str, done: list[tuple[int, str]]) -> RowResult:
    """updated with the counts when something went; unchanged otherwise."""
    if not done:
        return RowResult(Outcome.UNCHANGED, f"course {shortname!r}: no reset item given")
    outcome = Outcome.UPDATED if any(n for n, _ in done) else Outcome.UNCHANGED
    what = ", ".join(_count(n, phrase) for n, phrase in done)
    return RowResult(outcome, f"course {shortname!r} reset: {what}")


def _load(tx: PlatformTx, ids: list[int], asks: Sequence[ResetAsk]) -> dict[int, _Course]:
    """Read, once for the batch's courses, every kind some row of the batch resets."""
    courses = {course_id: _Course() for course_id in ids}
    if not ids:
        return courses
    unenrol = any(a.roles is not None or a.cohort_bindings for a in asks)
    if unenrol:
        for e in tx.enrolments.in_courses(ids):
            if e.id is not None:
                courses[e.course_id].enrolments[e.id] = e
        for r in tx.enrolments.roles_in_courses(ids):
            courses[r.course_id].roles.add(r)
    if unenrol or any(a.groups for a in asks):
        in_course = {}
        for g in tx.groups.groups(ids):
            if g.id is not None:
                courses[g.course_id].groups.add(g.id)
                in_course[g.id] = g.course_id
        for group_id, user_id in tx.groups.members(list(in_course)):
            courses[in_course[group_id]].members.add((group_id, user_id))
    if any(a.groupings for a in asks):
        for grouping in tx.groups.groupings(ids):
            if grouping.id is not None:
                courses[grouping.course_id].groupings.add(grouping.id)
    if any(a.cohort_bindings for a in asks):
        for method in tx.enrolments.methods(ids):
            if _is_binding(method):
                courses[method.course_id].cohort_methods.add(method.id or 0)
    return courses


def _is_binding(method: EnrolMethod) -> bool:
    return method.method == "cohort" and method.id is not None


def _reset(course: _Course, ask: ResetAsk, out: _Removals) -> list[tuple[int, str]]:
    """Apply one row's items to a course's state; (count, noun) of what went, item by item."""
    done: list[tuple[int, str]] = []
    if ask.roles is not None:
        if ask.roles:
            users = {r.user_id for r in course.roles if r.role_id in ask.roles}
        else:
            users = {e.user_id for e in course.enrolments.values()} | {r.user_id for r in course.roles}
        _unenrol(course, users, out)
        done.append((len(users), "users unenrolled"))
    if ask.groups == ALL:
        done.append((len(course.groups), "groups deleted"))
        out.groups |= course.groups
        course.groups, course.members = set(), set()
    elif ask.groups == "members":
        done.append((len(course.members), "group memberships removed"))
        out.members |= course.members
        course.members = set()
    if ask.groupings:
        done.append((len(course.groupings), "groupings deleted"))
        out.groupings |= course.groupings
        course.groupings = set()
    if ask.cohort_bindings:
        done.append((len(course.cohort_methods), "cohort bindings removed"))
        _unbind(course, out)
    return done


def _unenrol(course: _Course, users: Collection[int], out: _Removals) -> None:
    """Remove these users' enrolments, roles and group memberships from a course."""
    gone = [k for k, e in course.enrolments.items() if e.user_id in users]
    out.enrolments.update(gone)
    for enrolment_id in gone:
        del course.enrolments[enrolment_id]
    roles = {r for r in course.roles if r.user_id in users}
    out.roles |= roles
    course.roles -= roles
    members = {m for m in course.members if m[1] in users}
    out.members |= members
    course.members -= members


def _unbind(course: _Course, out: _Removals) -> None:
    """Remove the cohort methods; users they leave with no enrolment lose roles and groups."""
    methods = course.cohort_methods
    out.methods |= methods
    through = {k: e for k, e in course.enrolments.items() if e.method_id in methods}
    for enrolment_id in through:
        del course.enrolments[enrolment_id]
    still = {e.user_id for e in course.enrolments.values()}
    _unenrol(course, {e.user_id for e in through.values()} - still, out)
    course.cohort_methods = set()


def _count(number: int, phrase: str) -> str:
    """``3 users unenrolled`` / ``1 user unenrolled``: the plural noun in ``phrase`` loses its s."""
    if number == 1:
        noun, _, rest = phrase.partition("s ")
        phrase = f"{noun} {rest}"
    return f"{number} {phrase}"


def build(options: Mapping[str, Any], ctx: RunContext) -> CourseResetProcessor:
    """Build the processor from route options; raise ConfigError naming a bad one."""
    return CourseResetProcessor(identity=option(options, "identity", IDENTITIES, "course_reset"))


SPEC = ProcessorSpec(
    name="course_reset",
    priority=88,
    factory=build,
    sniff=frozenset({"shortname", "enrolments"}),
    options=frozenset({"identity"}),
)
