"""The users processor's per-course and cohort columns (SPEC §4 users).

``course<N>`` (a course shortname) with ``role<N>`` (default student), ``group<N>`` (a
group of that course, made when missing), ``enrol<N>`` (method, default manual),
``start<N>``/``end<N>`` (dates; empty or 0 = no limit; absent = keep); ``cohort<N>`` (a
cohort idnumber, else its name; unknown = error unless option ``cohort_autocreate``).
N is 1..99.

:func:`parse_slots` checks these columns with the rest of the row, before anything is
applied. :func:`apply_slots` runs once the batch's users are written (so new users have
ids): one course look-up, the roles, one :class:`~syncd.processors._enrol.EnrolSet` (the
same enrolment logic as the enrolments processor), one cohort look-up, then the rows in
order and one write per kind. A failing slot makes the row an error that says what the
user part did (``user 'x' created; course2: unknown course 'Y'``): that part stays applied,
as do the row's other slots.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from functools import lru_cache

from syncd.domain import Outcome, RowError, RowResult
from syncd.platform.base import PlatformTx, UserRecord
from syncd.platform.model import CohortRecord, CourseRecord
from syncd.processors._enrol import MANUAL, Dates, EnrolSet
from syncd.processors._enrolrows import parse_date

_KINDS = ("course", "role", "group", "enrol", "start", "end", "cohort")
MAX_SLOT = 99
#: every per-course and cohort column name (listed, so that the header check is a set look-up)
SLOT_COLUMNS = frozenset(f"{kind}{n}" for kind in _KINDS for n in range(1, MAX_SLOT + 1))
_SLOT = re.compile(r"(course|role|group|enrol|start|end|cohort)([1-9][0-9]?)")
DEFAULT_ROLE = "student"


@dataclass(frozen=True, slots=True)
class CourseSlot:
    """One non-empty ``course<N>`` of a row with its companions."""

    n: int
    course: str
    role: str
    group: str | None
    method: str
    dates: Dates


@dataclass(slots=True)
class Slots:
    """The per-course and cohort columns of one row: (column, cohort) pairs for cohorts."""

    courses: list[CourseSlot] = field(default_factory=list)
    cohorts: list[tuple[str, str]] = field(default_factory=list)


@lru_cache(maxsize=2048)
def _slot_of(column: str) -> tuple[str, int] | None:
    match = _SLOT.fullmatch(column)
    return (match.group(1), int(match.group(2))) if match else None


def has_slots(values: Mapping[str, str]) -> bool:
    """Whether any column is a course<N>/role<N>/…/cohort<N> column."""
    return any(_slot_of(column) is not None for column in values)


def parse_slots(values: Mapping[str, str], tz: tzinfo) -> Slots | None:
    """The row's slots (None when it has none); RowError naming the column on a bad one."""
    numbers: set[int] = set()
    slots = Slots()
    for column, raw in values.items():
        kind_n = _slot_of(column)
        if kind_n is None:
            continue
        kind, n = kind_n
        if kind == "cohort":
            if raw.strip():
                slots.cohorts.append((column, raw.strip()))
        elif f"course{n}" not in values:
            raise RowError(f"{column}: no course{n} column for it")
        else:
            numbers.add(n)
    for n in sorted(numbers):
        slot = _course_slot(values, n, tz)
        if slot is not None:
            slots.courses.append(slot)
    slots.cohorts.sort(key=lambda c: int(c[0].removeprefix("cohort")))
    return slots if slots.courses or slots.cohorts else None


def _course_slot(values: Mapping[str, str], n: int, tz: tzinfo) -> CourseSlot | None:
    course = values[f"course{n}"].strip()
    if not course:
        return None  # an empty course<N> leaves its companions unused
    start, end = parse_date(values, f"start{n}", tz), parse_date(values, f"end{n}", tz)
    if isinstance(start, datetime) and isinstance(end, datetime) and end < start:
        shown = values[f"end{n}"].strip(), values[f"start{n}"].strip()
        raise RowError(f"end{n}: {shown[0]!r} is before start{n} {shown[1]!r}")
    return CourseSlot(
        n=n,
        course=course,
        role=values.get(f"role{n}", "").strip().lower() or DEFAULT_ROLE,
        group=values.get(f"group{n}", "").strip() or None,
        method=values.get(f"enrol{n}", "").strip().lower() or MANUAL,
        dates=Dates(start, end),
    )


@dataclass(slots=True)
class Subject:
    """A row whose user part succeeded: its index in the batch, its user, slots and result."""

    index: int
    user: UserRecord
    slots: Slots
    result: RowResult


def apply_slots(tx: PlatformTx, subjects: Sequence[Subject], *, cohort_autocreate: bool) -> list[RowResult]:
    """Apply every subject's slots in order; return each subject's final result."""
    wanted = {s.course for subject in subjects for s in subject.slots.courses}
    courses = {c.shortname: c for c in tx.courses.find(shortnames=wanted)} if wanted else {}
    roles = tx.roles.all() if wanted else {}
    pairs: set[tuple[int, int]] = set()
    group_courses: set[int] = set()
    for subject in subjects:
        for slot in subject.slots.courses:
            course = courses.get(slot.course)
            if course is not None and course.id is not None and subject.user.id is not None:
                pairs.add((course.id, subject.user.id))
                if slot.group is not None:
                    group_courses.add(course.id)
    work = EnrolSet.load(tx, pairs, group_courses)
    cohorts = _Cohorts.load(tx, {v for s in subjects for _c, v in s.slots.cohorts}, cohort_autocreate)
    results = [_apply_subject(subject, courses, roles, work, cohorts) for subject in subjects]
    work.flush()
    cohorts.flush()
    return results


def _apply_subject(
    subject: Subject,
    courses: Mapping[str, CourseRecord],
    roles: Mapping[str, int],
    work: EnrolSet,
    cohorts: _Cohorts,
) -> RowResult:
    """One row's slots, in column order; a failing slot does not stop the others."""
    notes: list[str] = []
    errors: list[str] = []
    for slot in subject.slots.courses:
        try:
            note = _enrol(slot, subject.user, courses, roles, work)
        except RowError as exc:
            errors.append(str(exc))
            continue
        if note:
            notes.append(note)
    for column, value in subject.slots.cohorts:
        try:
            note = cohorts.join(column, value, subject.user)
        except RowError as exc:
            errors.append(str(exc))
            continue
        if note:
            notes.append(note)
    return _merge(subject.result, notes, errors)


def _enrol(
    slot: CourseSlot,
    user: UserRecord,
    courses: Mapping[str, CourseRecord],
    roles: Mapping[str, int],
    work: EnrolSet,
) -> str | None:
    """Enrol the user as the slot says; the note of what changed (None: nothing)."""
    n = slot.n
    course = courses.get(slot.course)
    if course is None:
        raise RowError(f"course{n}: unknown course {slot.course!r}")
    role = roles.get(slot.role)
    if role is None:
        raise RowError(f"role{n}: unknown role {slot.role!r}")
    method = work.method_for_enrol(course, slot.method, f"enrol{n}")
    group = work.groups.group(course, slot.group, f"group{n}", create=True) if slot.group else None
    assert course.id is not None and user.id is not None
    changed = work.enrol(method, user.id, slot.dates)
    role_added = work.assign(course.id, user.id, role)
    new_group = group is not None and group.id is None
    joined = group is not None and work.groups.join(group, user.id)
    what = f"{slot.role} ({method.method})"
    if changed is None:
        note = f"enrolled in {course.shortname!r} as {what}"
    elif changed or role_added:
        changed = (["role"] if role_added else []) + changed
        note = f"enrolment in {course.shortname!r} as {what}: {', '.join(changed)}"
    else:
        note = ""
    if joined and group is not None:
        note += ("; " if note else "") + f"group {group.name!r}" + (" (new)" if new_group else "")
    return f"course{n}: {note}" if note else None


def _merge(result: RowResult, notes: list[str], errors: list[str]) -> RowResult:
    """The row's result once its slots are applied."""
    if errors:
        return RowResult(Outcome.ERROR, "; ".join([_summary(result), *notes, *errors]))
    if not notes:
        return result
    outcome = Outcome.UPDATED if result.outcome is Outcome.UNCHANGED else result.outcome
    return RowResult(outcome, "; ".join([result.reason, *notes]))


def _summary(result: RowResult) -> str:
    """``user 'x' created``, ``user 'x' updated: email``, ``user 'x' unchanged``."""
    reason, outcome = result.reason, result.outcome.value
    if ": " in reason:
        head, tail = reason.split(": ", 1)
        return f"{head} {outcome}: {tail}"
    return f"{reason} {outcome}"


class _Cohorts:
    """The cohorts one batch names, their members, and the cohorts it creates."""

    def __init__(self, tx: PlatformTx, found: Collection[CohortRecord], autocreate: bool) -> None:
        self._tx = tx
        self._autocreate = autocreate
        self._by_idnumber = {c.idnumber: c for c in found if c.idnumber}
        self._by_name: dict[str, list[CohortRecord]] = {}
        for cohort in found:
            self._by_name.setdefault(cohort.name, []).append(cohort)
        ids = [c.id for c in found if c.id is not None]
        self._members = set(tx.cohorts.members(ids)) if ids else set()
        self._stored = frozenset(self._members)
        self._new: list[CohortRecord] = []

    @classmethod
    def load(cls, tx: PlatformTx, values: Collection[str], autocreate: bool) -> _Cohorts:
        """One find by idnumber or name for every value, one members read."""
        found = tx.cohorts.find(idnumbers=values, names=values) if values else []
        return cls(tx, found, autocreate)

    def _resolve(self, column: str, value: str) -> CohortRecord:
        cohort = self._by_idnumber.get(value)
        if cohort is not None:
            return cohort
        named = self._by_name.get(value, [])
        if len(named) > 1:
            raise RowError(f"{column}: {len(named)} cohorts are named {value!r} (use the idnumber)")
        if named:
            return named[0]
        if not self._autocreate:
            raise RowError(f"{column}: unknown cohort {value!r}")
        cohort = CohortRecord(name=value, idnumber=value, id=-1 - len(self._new))
        self._new.append(cohort)
        self._by_idnumber[value] = cohort
        self._by_name[value] = [cohort]
        return cohort

    def join(self, column: str, value: str, user: UserRecord) -> str | None:
        """Add the user to the cohort the value names; the note (None: already a member)."""
        cohort = self._resolve(column, value)
        assert cohort.id is not None and user.id is not None
        if (cohort.id, user.id) in self._members:
            return None
        self._members.add((cohort.id, user.id))
        return f"{column}: added to {cohort.name!r}" + (" (new cohort)" if cohort.id < 0 else "")

    def flush(self) -> None:
        """Write new cohorts, then new memberships."""
        if self._new:
            placeholders = [c.id for c in self._new]
            for cohort in self._new:
                cohort.id = None
            self._tx.cohorts.add(self._new)
            real: dict[int | None, int] = {}
            for placeholder, cohort in zip(placeholders, self._new, strict=True):
                assert cohort.id is not None
                real[placeholder] = cohort.id
            self._members = {(real.get(c, c), u) for c, u in self._members}
        added = self._members - self._stored
        if added:
            self._tx.cohorts.add_members(added)
