"""The groups processor: create or update the groups and groupings of courses (SPEC §4).

Columns: ``courseid`` (the course, by the ``course_key`` option: shortname, idnumber or
id), ``name``; optional ``idnumber``, ``type`` (group, the default, or grouping),
``grouping`` (the name of a grouping of the same course to put the group in; created
when missing, as Moodle's tool_sync does) and ``description``.

A group or grouping is identified by its name in its course. An existing one is updated
when the row's idnumber or description differ (a present column with an empty value
clears it; an absent column keeps it), else unchanged. An idnumber that another group
(grouping) of the course already has is a row error. Groups are never deleted here:
that is course_reset's job.

Batch: one course look-up, one read of the courses' groups, groupings and links; rows
applied in order against that working set; one write per kind at the end.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from syncd.csvfile import Schema
from syncd.domain import Outcome, RowError, RowResult
from syncd.platform.base import PlatformTx
from syncd.platform.model import CourseRecord, GroupingRecord, GroupRecord
from syncd.processors._groupcommon import Group, GroupSet, find_course, text
from syncd.processors._lookup import COURSE_KEYS, courses_by, option
from syncd.processors.base import ProcessorSpec, Row, RunContext

TYPES = ("group", "grouping")


@dataclass(frozen=True, slots=True)
class GroupRow:
    """One valid row. ``idnumber``/``description`` None: column absent (keep)."""

    course: str
    name: str
    kind: str
    idnumber: str | None
    description: str | None
    grouping: str  # "" = no binding


def parse_row(row: Row) -> GroupRow:
    """Validate one row (no platform access); raise RowError naming the column."""
    values = row.values
    kind = (values.get("type") or "").strip().lower() or "group"
    if kind not in TYPES:
        raise RowError(f"type: invalid type {kind!r} (expected group or grouping)")
    grouping = text(values, "grouping") or ""
    if grouping and kind == "grouping":
        raise RowError(f"grouping: {grouping!r} given for a grouping (only a group goes in a grouping)")
    return GroupRow(
        course=text(values, "courseid", required=True) or "",
        name=text(values, "name", required=True) or "",
        kind=kind,
        idnumber=text(values, "idnumber"),
        description=None if values.get("description") is None else values["description"].strip(),
        grouping=grouping,
    )


class GroupsProcessor:
    """Applies groups rows (implements Processor)."""

    def __init__(self, *, course_key: str) -> None:
        self.course_key = course_key

    @property
    def schema(self) -> Schema:
        """courseid and name; idnumber, type, grouping, description optional."""
        return Schema(
            frozenset({"courseid", "name"}),
            frozenset({"idnumber", "type", "grouping", "description"}),
        )

    def describe(self) -> str:
        """The effective options, for the report."""
        return f"course_key={self.course_key}"

    def apply(self, rows: Sequence[Row], tx: PlatformTx) -> list[RowResult]:
        """Apply ``rows`` in order: one read per kind before, one write per kind after."""
        parsed: list[GroupRow | RowError] = []
        for row in rows:
            try:
                parsed.append(parse_row(row))
            except RowError as exc:
                parsed.append(exc)
        wanted = {p.course for p in parsed if isinstance(p, GroupRow)}
        courses = courses_by(tx, self.course_key, wanted)
        course_ids = {c.id for c in courses.values() if c.id is not None}
        groups = GroupSet(tx.groups, course_ids, groupings=True)
        results = [self._apply_one(p, courses, groups) for p in parsed]
        groups.flush(tx.groups)
        return results

    def _apply_one(
        self, parsed: GroupRow | RowError, courses: Mapping[str, CourseRecord], groups: GroupSet
    ) -> RowResult:
        if isinstance(parsed, RowError):
            return RowResult(Outcome.ERROR, str(parsed))
        try:
            course = find_course(courses, parsed.course, "courseid")
            if parsed.kind == "grouping":
                return _grouping(parsed, course, groups)
            return _group(parsed, course, groups)
        except RowError as exc:
            return RowResult(Outcome.ERROR, str(exc))


def _where(course: CourseRecord) -> str:
    return f"in course {course.shortname!r}"


def _group(row: GroupRow, course: CourseRecord, groups: GroupSet) -> RowResult:
    """Create or update one group, and put it in its grouping."""
    assert course.id is not None
    group = groups.group(course.id, row.name)
    if row.idnumber is None:  # column absent: keep
        idnumber = group.record.idnumber if group is not None else None
    else:
        idnumber = row.idnumber or None
    if idnumber:
        owner = groups.group_by_idnumber(course.id, idnumber)
        if owner is not None and owner is not group:
            raise RowError(
                f"idnumber: {idnumber!r} already belongs to group {owner.record.name!r} {_where(course)}"
            )
    description = row.description
    what = f"group {row.name!r} {_where(course)}"
    if group is None:
        record = GroupRecord(course_id=course.id, name=row.name, idnumber=idnumber,
                             description=description or "")
        group = groups.add_group(record)
        bound = _bind(row, course, group, groups)
        return RowResult(Outcome.CREATED, what + (f", {bound}" if bound else ""))
    changes = []
    if idnumber != (group.record.idnumber or None):
        changes.append("idnumber")
    if description is not None and description != group.record.description:
        changes.append("description")
    if changes:
        groups.change_group(group, idnumber, group.record.description if description is None else description)
    bound = _bind(row, course, group, groups)
    if bound:
        changes.append(bound)
    if not changes:
        return RowResult(Outcome.UNCHANGED, what)
    return RowResult(Outcome.UPDATED, f"{what}: {', '.join(changes)}")


def _bind(row: GroupRow, course: CourseRecord, group: Group, groups: GroupSet) -> str:
    """Put ``group`` in the row's grouping (created when missing); say what changed."""
    if not row.grouping:
        return ""
    assert course.id is not None
    grouping = groups.grouping(course.id, row.grouping)
    created = grouping is None
    if grouping is None:
        grouping = groups.add_grouping(GroupingRecord(course_id=course.id, name=row.grouping))
    if group in grouping.groups:
        return ""
    grouping.groups.add(group)
    return f"in {'new ' if created else ''}grouping {row.grouping!r}"


def _grouping(row: GroupRow, course: CourseRecord, groups: GroupSet) -> RowResult:
    """Create one grouping, or tell it is unchanged."""
    assert course.id is not None
    grouping = groups.grouping(course.id, row.name)
    what = f"grouping {row.name!r} {_where(course)}"
    idnumber = row.idnumber or None
    if idnumber:
        owner = groups.grouping_by_idnumber(course.id, idnumber)
        if owner is not None and owner is not grouping:
            raise RowError(
                f"idnumber: {idnumber!r} already belongs to grouping {owner.record.name!r} {_where(course)}"
            )
    if grouping is None:
        record = GroupingRecord(course_id=course.id, name=row.name, idnumber=idnumber,
                                description=row.description or "")
        groups.add_grouping(record)
        return RowResult(Outcome.CREATED, what)
    changes = []
    if row.idnumber is not None and idnumber != (grouping.record.idnumber or None):
        changes.append("idnumber")
    if row.description is not None and row.description != grouping.record.description:
        changes.append("description")
    if not changes:
        return RowResult(Outcome.UNCHANGED, what)
    description = grouping.record.description if row.description is None else row.description
    groups.change_grouping(grouping, idnumber if row.idnumber is not None else grouping.record.idnumber,
                           description)
    return RowResult(Outcome.UPDATED, f"{what}: {', '.join(changes)}")


def build(options: Mapping[str, Any], ctx: RunContext) -> GroupsProcessor:
    """Build the processor from route options; raise ConfigError naming a bad one."""
    return GroupsProcessor(course_key=option(options, "course_key", COURSE_KEYS, "groups"))


SPEC = ProcessorSpec(
    name="groups",
    priority=40,
    factory=build,
    sniff=frozenset({"courseid", "name"}),
    options=frozenset({"course_key"}),
)
