"""The cohort_courses processor: bind cohorts to courses through cohort-sync enrolment (SPEC §4).

Columns: ``cohort`` (by the ``cohort_key`` option: idnumber, name or id), ``course`` (by
``course_key``); optional ``role`` (default student), ``cmd`` and ``makegroup``. A course
has at most one binding (cohort-sync method) per cohort. Commands:

- ``add`` (default): create the binding with the role, or enable it and set its role, then
  sync it as Moodle's cohort sync does: every member of the cohort is enrolled through it
  (enrolment reactivated if suspended) and has the role in the course; a user enrolled
  through it who has left the cohort is unenrolled. ``makegroup`` true: the members also go
  into a group of the course named like the cohort (created when missing), or into the group
  ``makegroup`` names; false: the binding stops feeding a group; empty: kept as it is;
- ``del``: disable the binding: the method is disabled, its enrolments suspended;
- ``restore``: re-enable a disabled binding and its enrolments;
- ``fulldel``: delete the binding with its enrolments.

``role`` and ``makegroup`` only matter to ``add``. No binding to ``del``/``restore``/
``fulldel``: skipped. Unenrolling (``add`` of a user who left, ``fulldel``) follows Moodle:
a user left with no enrolment in the course loses every role and group membership there;
one still enrolled otherwise loses the binding's role unless another method of the course
may have given it (another binding with that role, or any non-cohort method).

Batch: one look-up of cohorts, courses and roles, one read of the courses' methods,
enrolments, role assignments, groups and members and of the cohorts' members; rows applied
in order; one write per kind at the end (see :class:`_Sync`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from syncd.csvfile import Schema, parse_bool
from syncd.domain import Outcome, RowError, RowResult
from syncd.platform.base import PlatformTx
from syncd.platform.model import CohortRecord, CourseRecord, EnrolMethod, GroupRecord
from syncd.processors._cohortsync import Binding, Sync
from syncd.processors._groupcommon import command, find_course, text
from syncd.processors._lookup import (
    COHORT_KEYS,
    COURSE_KEYS,
    cohorts_by,
    courses_by,
    option,
    role_id,
    unknown,
)
from syncd.processors.base import ProcessorSpec, Row, RunContext

COMMANDS = ("add", "del", "restore", "fulldel")
DEFAULT_ROLE = "student"


@dataclass(frozen=True, slots=True)
class BindingRow:
    """One valid row. ``makegroup``: None keep, False none, True the cohort's name, or a name."""

    cohort: str
    course: str
    role: str
    cmd: str
    makegroup: bool | str | None


def parse_row(row: Row) -> BindingRow:
    """Validate one row (no platform access); raise RowError naming the column."""
    values = row.values
    raw = text(values, "makegroup") or ""
    makegroup: bool | str | None = None
    if raw:
        try:
            makegroup = parse_bool(raw, "makegroup")
        except RowError:
            makegroup = raw  # not a boolean: the name of the group
    return BindingRow(
        cohort=text(values, "cohort", required=True) or "",
        course=text(values, "course", required=True) or "",
        role=(text(values, "role") or DEFAULT_ROLE).lower(),
        cmd=command(values, COMMANDS),
        makegroup=makegroup,
    )


@dataclass(slots=True)
class _Refs:
    """What the rows of one batch name, looked up once."""

    cohorts: Mapping[str, CohortRecord]
    courses: Mapping[str, CourseRecord]
    roles: Mapping[str, int]


class CohortCoursesProcessor:
    """Applies cohort_courses rows (implements Processor)."""

    def __init__(self, *, cohort_key: str, course_key: str) -> None:
        self.cohort_key = cohort_key
        self.course_key = course_key

    @property
    def schema(self) -> Schema:
        """cohort and course; role, cmd, makegroup optional."""
        return Schema(frozenset({"cohort", "course"}), frozenset({"role", "cmd", "makegroup"}))

    def describe(self) -> str:
        """The effective options, for the report."""
        return f"cohort_key={self.cohort_key} course_key={self.course_key}"

    def apply(self, rows: Sequence[Row], tx: PlatformTx) -> list[RowResult]:
        """Apply ``rows`` in order: one read per kind before, one write per kind after."""
        parsed: list[BindingRow | RowError] = []
        for row in rows:
            try:
                parsed.append(parse_row(row))
            except RowError as exc:
                parsed.append(exc)
        valid = [p for p in parsed if isinstance(p, BindingRow)]
        refs = _Refs(
            cohorts_by(tx, self.cohort_key, {p.cohort for p in valid}),
            courses_by(tx, self.course_key, {p.course for p in valid}),
            tx.roles.all() if valid else {},
        )
        sync = Sync.load(
            tx,
            {c.id for c in refs.courses.values() if c.id is not None},
            {c.id for c in refs.cohorts.values() if c.id is not None},
        )
        results = [
            self._apply_one(p, refs, sync) if isinstance(p, BindingRow) else RowResult(Outcome.ERROR, str(p))
            for p in parsed
        ]
        sync.flush()
        return results

    def _apply_one(self, row: BindingRow, refs: _Refs, sync: Sync) -> RowResult:
        try:
            cohort = refs.cohorts.get(row.cohort)
            if cohort is None:
                raise unknown("cohort", row.cohort, "cohort")
            course = find_course(refs.courses, row.course, "course")
            assert cohort.id is not None and course.id is not None
            what = f"cohort {cohort.name!r} in course {course.shortname!r}"
            if row.cmd == "add":
                role = role_id(refs.roles, row.role, "role")
                return _add(row, cohort, course, role, sync, what + f" as {row.role}")
        except RowError as exc:
            return RowResult(Outcome.ERROR, str(exc))
        return _unbind(row.cmd, sync.binding(course.id, cohort.id), sync, what)


def _unbind(cmd: str, binding: Binding | None, sync: Sync, what: str) -> RowResult:
    """del, restore or fulldel an existing binding."""
    if binding is None:
        return RowResult(Outcome.SKIPPED, f"{what}: no such binding")
    if cmd == "fulldel":
        users = sync.delete(binding)
        return RowResult(Outcome.DELETED, f"{what}: binding deleted, {_n(users, 'user')} unenrolled")
    count = sync.set_enabled(binding, cmd == "restore")
    if cmd == "restore":
        if count is None:
            return RowResult(Outcome.UNCHANGED, f"{what}: already enabled")
        return RowResult(Outcome.UPDATED, f"{what}: enabled, {_n(count, 'enrolment')} reactivated")
    if count is None:
        return RowResult(Outcome.UNCHANGED, f"{what}: already disabled")
    return RowResult(Outcome.DELETED, f"{what}: disabled, {_n(count, 'enrolment')} suspended")


def _add(row: BindingRow, cohort: CohortRecord, course: CourseRecord, role: int, sync: Sync,
         what: str) -> RowResult:
    """Create or enable the binding, set its role and group, and sync its members."""
    assert cohort.id is not None and course.id is not None
    binding = sync.binding(course.id, cohort.id)
    changes: list[str] = []
    created = binding is None
    if binding is None:
        method = EnrolMethod(course_id=course.id, method="cohort", cohort_id=cohort.id, role_id=role)
        binding = sync.add(method)
    else:
        if not binding.method.enabled:
            binding.method.enabled = True
            changes.append("enabled")
        if binding.method.role_id != role:
            changes.append(f"role {row.role}")
            sync.change_role(binding, role)
    if row.makegroup is not None:
        changes += _makegroup(row.makegroup, cohort, binding, sync)
    changes += sync.sync_members(binding)
    if created:
        return RowResult(Outcome.CREATED, what + (f": {', '.join(changes)}" if changes else ""))
    if changes:
        return RowResult(Outcome.UPDATED, f"{what}: {', '.join(changes)}")
    return RowResult(Outcome.UNCHANGED, what)


def _makegroup(value: bool | str, cohort: CohortRecord, binding: Binding, sync: Sync) -> list[str]:
    """Point the binding at the group ``value`` asks for (created when missing)."""
    if value is False:
        if binding.group is None:
            return []
        binding.group = None
        return ["no group"]
    name = cohort.name if value is True else str(value)
    group = sync.groups.group(binding.method.course_id, name)
    if group is not None and group is binding.group:
        return []
    created = group is None
    if group is None:
        group = sync.groups.add_group(GroupRecord(course_id=binding.method.course_id, name=name))
    binding.group = group
    return [f"group {name!r}" + (" (created)" if created else "")]


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def build(options: Mapping[str, Any], ctx: RunContext) -> CohortCoursesProcessor:
    """Build the processor from route options; raise ConfigError naming a bad one."""
    return CohortCoursesProcessor(
        cohort_key=option(options, "cohort_key", COHORT_KEYS, "cohort_courses"),
        course_key=option(options, "course_key", COURSE_KEYS, "cohort_courses"),
    )


SPEC = ProcessorSpec(
    name="cohort_courses",
    priority=70,
    factory=build,
    sniff=frozenset({"cohort", "course"}),
    options=frozenset({"cohort_key", "course_key"}),
)
