"""The group_members processor: put users in groups of courses, move them, take them out.

Columns (SPEC §4): ``courseid`` (by the ``course_key`` option), ``groupid`` (the group's
name, or its idnumber with ``group_key = idnumber``), ``userid`` (by the ``user_key``
option: idnumber, username or email); optional ``cmd``:

- ``add`` (default): make the user a member of the group;
- ``shift``: take the user out of every other group of the course, then add;
- ``del``: take the user out of the group (not a member: skipped).

As on Moodle, only a user enrolled in the course (through any method, active or not) may
be a member of its groups: ``add``/``shift`` of anyone else is a row error.

Batch: one look-up of courses, users, the courses' groups with their members, and the
enrolments of the (course, user) pairs; rows applied in order; one removal and one
addition of memberships at the end.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from syncd.csvfile import Schema
from syncd.domain import Outcome, RowError, RowResult
from syncd.platform.base import PlatformTx, UserRecord
from syncd.platform.model import CourseRecord
from syncd.processors._groupcommon import Group, GroupSet, command, find_course, text
from syncd.processors._lookup import COURSE_KEYS, USER_KEYS, courses_by, option, unknown, user_key, users_by
from syncd.processors.base import ProcessorSpec, Row, RunContext

COMMANDS = ("add", "shift", "del")
GROUP_KEYS = ("name", "idnumber")


@dataclass(frozen=True, slots=True)
class MemberRow:
    """One valid row: the keys as written, and the command."""

    course: str
    group: str
    user: str
    cmd: str


def parse_row(row: Row) -> MemberRow:
    """Validate one row (no platform access); raise RowError naming the column."""
    values = row.values
    return MemberRow(
        course=text(values, "courseid", required=True) or "",
        group=text(values, "groupid", required=True) or "",
        user=text(values, "userid", required=True) or "",
        cmd=command(values, COMMANDS),
    )


@dataclass(slots=True)
class _Batch:
    """What the rows of one batch refer to, loaded once."""

    courses: Mapping[str, CourseRecord]
    users: Mapping[str, UserRecord]
    groups: GroupSet
    enrolled: set[tuple[int, int]]


class GroupMembersProcessor:
    """Applies group_members rows (implements Processor)."""

    def __init__(self, *, course_key: str, group_key: str, user_key: str) -> None:
        self.course_key = course_key
        self.group_key = group_key
        self.user_key = user_key

    @property
    def schema(self) -> Schema:
        """courseid, groupid, userid; cmd optional."""
        return Schema(frozenset({"courseid", "groupid", "userid"}), frozenset({"cmd"}))

    def describe(self) -> str:
        """The effective options, for the report."""
        return f"course_key={self.course_key} group_key={self.group_key} user_key={self.user_key}"

    def apply(self, rows: Sequence[Row], tx: PlatformTx) -> list[RowResult]:
        """Apply ``rows`` in order: one read per kind before, one write per kind after."""
        parsed: list[MemberRow | RowError] = []
        for row in rows:
            try:
                parsed.append(parse_row(row))
            except RowError as exc:
                parsed.append(exc)
        batch = self._load([p for p in parsed if isinstance(p, MemberRow)], tx)
        results = [
            self._apply_one(p, batch) if isinstance(p, MemberRow) else RowResult(Outcome.ERROR, str(p))
            for p in parsed
        ]
        batch.groups.flush(tx.groups)
        return results

    def _load(self, rows: list[MemberRow], tx: PlatformTx) -> _Batch:
        courses = courses_by(tx, self.course_key, {r.course for r in rows})
        users = users_by(tx, self.user_key, {r.user for r in rows})
        course_ids = {c.id for c in courses.values() if c.id is not None}
        groups = GroupSet(tx.groups, course_ids, members=True)
        pairs = set()
        for r in rows:
            course, user = courses.get(r.course), users.get(user_key(self.user_key, r.user))
            if r.cmd != "del" and course is not None and user is not None:
                assert course.id is not None and user.id is not None
                pairs.add((course.id, user.id))
        enrolled = {(e.course_id, e.user_id) for e in tx.enrolments.find(pairs)} if pairs else set()
        return _Batch(courses, users, groups, enrolled)

    def _apply_one(self, row: MemberRow, batch: _Batch) -> RowResult:
        try:
            course = find_course(batch.courses, row.course, "courseid")
            group = self._group(row, course, batch.groups)
            user = batch.users.get(user_key(self.user_key, row.user))
            if user is None:
                raise unknown("user", row.user, "userid")
        except RowError as exc:
            return RowResult(Outcome.ERROR, str(exc))
        assert user.id is not None and course.id is not None
        who = f"user {user.username!r} in group {group.record.name!r} of course {course.shortname!r}"
        if row.cmd == "del":
            if user.id not in group.members:
                return RowResult(Outcome.SKIPPED, f"{who}: not a member")
            group.members.discard(user.id)
            return RowResult(Outcome.DELETED, who)
        if (course.id, user.id) not in batch.enrolled:
            return RowResult(
                Outcome.ERROR, f"user {user.username!r} is not enrolled in course {course.shortname!r}"
            )
        left = []
        if row.cmd == "shift":
            for other in batch.groups.groups_of(course.id):
                if other is not group and user.id in other.members:
                    other.members.discard(user.id)
                    left.append(repr(other.record.name))
        added = user.id not in group.members
        group.members.add(user.id)
        if left:
            return RowResult(Outcome.UPDATED, f"{who} (taken out of {', '.join(left)})")
        return RowResult(Outcome.CREATED if added else Outcome.UNCHANGED, who)

    def _group(self, row: MemberRow, course: CourseRecord, groups: GroupSet) -> Group:
        assert course.id is not None
        if self.group_key == "idnumber":
            group = groups.group_by_idnumber(course.id, row.group)
        else:
            group = groups.group(course.id, row.group)
        if group is None:
            raise RowError(
                f"unknown group {row.group!r} in course {course.shortname!r} (groupid, by {self.group_key})"
            )
        return group


def build(options: Mapping[str, Any], ctx: RunContext) -> GroupMembersProcessor:
    """Build the processor from route options; raise ConfigError naming a bad one."""
    return GroupMembersProcessor(
        course_key=option(options, "course_key", COURSE_KEYS, "group_members"),
        group_key=option(options, "group_key", GROUP_KEYS, "group_members"),
        user_key=option(options, "user_key", USER_KEYS[:3], "group_members"),
    )


SPEC = ProcessorSpec(
    name="group_members",
    priority=60,
    factory=build,
    sniff=frozenset({"courseid", "groupid", "userid"}),
    options=frozenset({"course_key", "group_key", "user_key"}),
)
