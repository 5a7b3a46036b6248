"""The enrolments processor: enrol, unenrol, change roles, suspend; group memberships.

SPEC §4 "enrolments". Per batch: one user look-up, one course look-up, the roles, then
(:class:`~syncd.processors._enrol.EnrolSet`) one read each of the methods, enrolments
and role assignments of the batch's (course, user) pairs, rows applied in order against
that working set, and one write per kind at the end.

- ``cmd`` add (default): enrol through ``enrol`` with the role and dates; without an
  ``enrol`` column, give the role alone. An empty ``enrol`` means manual, which a course
  gets on demand; any other method must exist on the course and be enabled.
- ``del``: unenrol from the method (when ``enrol`` is given) and take the role away.
- ``shift``: the role becomes the user's only role in the course (enrolling too when
  ``enrol`` is given). ``disable``/``enable``: suspend/reactivate the user's enrolment
  through the method, or every enrolment of the user in the course without ``enrol``.
- ``gcmd`` with ``g1``…``g9`` (group names): gadd, gaddcreate (missing groups made),
  greplace(create) (the user leaves the course's other groups), gdel. Joining a group
  needs an enrolment in the course.
- Moodle's header-less flat file (``add,student,<uid>,<cid>[,start,end]``): see ``_enrolrows``.

Dates: ISO 8601 or epoch seconds; empty or 0 = no limit. On an existing enrolment an
``add`` reactivates it and sets the dates whose columns are present.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from syncd.csvfile import Schema
from syncd.domain import Outcome, RowError, RowResult
from syncd.platform.base import PlatformTx, UserRecord
from syncd.platform.model import CourseRecord, EnrolMethod, GroupRecord
from syncd.processors._enrol import EnrolSet
from syncd.processors._enrolrows import HEADERLESS, OPTIONAL, ROLE_CMDS, EnrolRow, parse_row
from syncd.processors._lookup import courses_by, option, role_id, unknown, user_key, users_by
from syncd.processors.base import ProcessorSpec, Row, RunContext

USER_KEYS = ("idnumber", "username", "email")
COURSE_KEYS = ("idnumber", "shortname", "id")
_NAME = "enrolments"


@dataclass(slots=True)
class _Target:
    """What one row is about, resolved: user, course, role (None for disable/enable)."""

    row: EnrolRow
    user: UserRecord
    course: CourseRecord
    role: int | None
    role_name: str
    method: EnrolMethod | None

    @property
    def ids(self) -> tuple[int, int]:
        """(course_id, user_id)."""
        assert self.course.id is not None and self.user.id is not None
        return self.course.id, self.user.id

    @property
    def who(self) -> str:
        """``user 'jdoe' in 'MATH101'``."""
        return f"user {self.user.username!r} in {self.course.shortname!r}"


@dataclass(frozen=True, slots=True)
class _Batch:
    """What a batch resolved once: users and courses by key, roles both ways, the working set."""

    users: Mapping[str, UserRecord]
    courses: Mapping[str, CourseRecord]
    roles: Mapping[str, int]
    names: Mapping[int, str]
    work: EnrolSet


class EnrolmentsProcessor:
    """Applies enrolments rows (implements Processor)."""

    def __init__(self, *, user_key: str, course_key: str, timezone: tzinfo) -> None:
        self.user_key = user_key
        self.course_key = course_key
        self._tz = timezone

    @property
    def schema(self) -> Schema:
        """rolename, cid, uid; the optional columns; the flat-file names when header-less."""
        return Schema(frozenset({"rolename", "cid", "uid"}), OPTIONAL, headerless=HEADERLESS)

    def describe(self) -> str:
        """The effective options, for the report."""
        return f"user_key={self.user_key} course_key={self.course_key}"

    def apply(self, rows: Sequence[Row], tx: PlatformTx) -> list[RowResult]:
        """Apply ``rows`` in order: batch look-ups first, one write per kind at the end."""
        parsed: list[EnrolRow | RowError] = []
        for row in rows:
            try:
                parsed.append(parse_row(row, self._tz))
            except RowError as exc:
                parsed.append(exc)
        valid = [p for p in parsed if isinstance(p, EnrolRow)]
        if not valid:
            return [RowResult(Outcome.ERROR, str(p)) for p in parsed]
        users = users_by(tx, self.user_key, {p.uid for p in valid})
        courses = courses_by(tx, self.course_key, {p.cid for p in valid})
        roles = tx.roles.all()
        work = EnrolSet.load(tx, *self._pairs(valid, users, courses))
        batch = _Batch(users, courses, roles, {rid: name for name, rid in roles.items()}, work)
        results = [
            self._apply_one(p, batch) if isinstance(p, EnrolRow) else RowResult(Outcome.ERROR, str(p))
            for p in parsed
        ]
        work.flush()
        return results

    def _pairs(
        self, rows: list[EnrolRow], users: Mapping[str, UserRecord], courses: Mapping[str, CourseRecord]
    ) -> tuple[set[tuple[int, int]], set[int]]:
        """The (course, user) pairs the rows can touch, and the courses whose groups they name."""
        pairs: set[tuple[int, int]] = set()
        group_courses: set[int] = set()
        for p in rows:
            user = users.get(user_key(self.user_key, p.uid))
            course = courses.get(p.cid)
            if user is None or course is None:
                continue
            assert user.id is not None and course.id is not None
            pairs.add((course.id, user.id))
            if p.gcmd is not None or (p.cmd == "del" and p.method is not None):
                group_courses.add(course.id)  # a last unenrolment leaves the groups too
        return pairs, group_courses

    def _apply_one(self, p: EnrolRow, batch: _Batch) -> RowResult:
        try:
            target = self._resolve(p, batch)
            plan = _plan_groups(target, batch.work)
            outcome, reason = _COMMANDS[p.cmd](target, batch.work, batch.names)
            if plan:
                return _apply_groups(target, plan, batch.work, outcome, reason)
            return RowResult(outcome, reason)
        except RowError as exc:
            return RowResult(Outcome.ERROR, str(exc))

    def _resolve(self, p: EnrolRow, batch: _Batch) -> _Target:
        """Every reference of the row, or the RowError naming the first unknown one."""
        user = batch.users.get(user_key(self.user_key, p.uid))
        if user is None:
            raise unknown("user", p.uid, "uid")
        course = batch.courses.get(p.cid)
        if course is None:
            raise unknown("course", p.cid, "cid")
        assert course.id is not None
        role = role_id(batch.roles, p.rolename, "rolename") if p.cmd in ROLE_CMDS else None
        method: EnrolMethod | None = None
        if p.method is not None:
            if p.cmd in ("add", "shift"):
                method = batch.work.method_for_enrol(course, p.method, "enrol")
            else:
                method = batch.work.find_method(course.id, p.method)
        role_name = batch.names.get(role, p.rolename) if role is not None else p.rolename
        return _Target(p, user, course, role, role_name, method)


# -- commands: each returns (outcome, reason) and changes the working set -----------------

Done = tuple[Outcome, str]


def _add(t: _Target, work: EnrolSet, _names: Mapping[int, str]) -> Done:
    assert t.role is not None
    course_id, user_id = t.ids
    if t.method is None:
        added = work.assign(course_id, user_id, t.role)
        reason = f"user {t.user.username!r} has role {t.role_name} in {t.course.shortname!r}"
        return (Outcome.CREATED if added else Outcome.UNCHANGED), reason
    changed = work.enrol(t.method, user_id, t.row.dates)
    role_added = work.assign(course_id, user_id, t.role)
    reason = (
        f"user {t.user.username!r} enrolled in {t.course.shortname!r} as {t.role_name} ({t.method.method})"
    )
    if changed is None:
        return Outcome.CREATED, reason
    if role_added:
        changed.insert(0, "role")
    if changed:
        return Outcome.UPDATED, f"{reason}: {', '.join(changed)}"
    return Outcome.UNCHANGED, reason


def _del(t: _Target, work: EnrolSet, names: Mapping[int, str]) -> Done:
    assert t.role is not None
    course_id, user_id = t.ids
    method_name = t.row.method
    unenrolled = t.method is not None and work.unenrol(t.method, user_id)
    unassigned = work.unassign(course_id, user_id, t.role)
    done = ([f"unenrolled ({method_name})"] if unenrolled else []) + (
        [f"role {t.role_name} removed"] if unassigned else []
    )
    if unenrolled and not work.is_enrolled(course_id, user_id):
        roles, groups = work.clear(course_id, user_id)
        if roles or groups:
            lost = sorted(names.get(r, str(r)) for r in roles) + [f"group {g.name}" for g in groups]
            done.append(f"last enrolment, also removed {', '.join(lost)}")
    if done:
        return Outcome.DELETED, f"{t.who}: {', '.join(done)}"
    not_enrolled = f"not enrolled ({method_name}), " if method_name is not None else ""
    return Outcome.UNCHANGED, f"{t.who}: {not_enrolled}no role {t.role_name}"


def _shift(t: _Target, work: EnrolSet, names: Mapping[int, str]) -> Done:
    assert t.role is not None
    course_id, user_id = t.ids
    changed = work.enrol(t.method, user_id, t.row.dates) if t.method is not None else []
    added, removed = work.shift(course_id, user_id, t.role)
    via = f" ({t.method.method})" if t.method is not None else ""
    reason = f"{t.who} as {t.role_name} only{via}"
    done = ["enrolled"] if changed is None else list(changed)
    if added:
        done.append(f"role {t.role_name} added")
    done += [f"{name} removed" for name in sorted(names.get(r, str(r)) for r in removed)]
    if not done:
        return Outcome.UNCHANGED, reason
    outcome = Outcome.CREATED if changed is None else Outcome.UPDATED
    return outcome, f"{reason}: {', '.join(done)}"


def _status(t: _Target, work: EnrolSet, active: bool) -> Done:
    course_id, user_id = t.ids
    if t.row.method is None:
        targets = work.enrolments(course_id, user_id)
    else:
        found = work.enrolment(t.method, user_id) if t.method is not None else None
        targets = [found] if found is not None else []
    via = f" ({t.row.method})" if t.row.method is not None else ""
    if not targets:
        raise RowError(f"user {t.user.username!r} is not enrolled in {t.course.shortname!r}{via}")
    changed = [work.set_active(e, active) for e in targets]
    state = "active" if active else "suspended"
    if any(changed):
        return Outcome.UPDATED, f"{t.who}: enrolment {state}{via}"
    return Outcome.UNCHANGED, f"{t.who}: enrolment already {state}{via}"


def _disable(t: _Target, work: EnrolSet, _names: Mapping[int, str]) -> Done:
    return _status(t, work, False)


def _enable(t: _Target, work: EnrolSet, _names: Mapping[int, str]) -> Done:
    return _status(t, work, True)


_COMMANDS: dict[str, Callable[[_Target, EnrolSet, Mapping[int, str]], Done]] = {
    "add": _add,
    "del": _del,
    "shift": _shift,
    "disable": _disable,
    "enable": _enable,
}


# -- groups -----------------------------------------------------------------------------


def _plan_groups(t: _Target, work: EnrolSet) -> list[GroupRecord]:
    """The groups the row names (resolved, not yet changed); RowError before any change."""
    gcmd = t.row.gcmd
    if gcmd is None:
        return []
    create = gcmd.endswith("create")
    plan: dict[str, GroupRecord] = {}
    for column, name in t.row.groups:
        if name not in plan:
            plan[name] = work.groups.group(t.course, name, column, create=create)
    if gcmd != "gdel" and not _enrolled_after(t, work):
        raise RowError(f"gcmd: user {t.user.username!r} is not enrolled in {t.course.shortname!r}")
    return list(plan.values())


def _enrolled_after(t: _Target, work: EnrolSet) -> bool:
    """Whether the user will be enrolled in the course once the row's command is done."""
    course_id, user_id = t.ids
    if t.row.cmd in ("add", "shift") and t.method is not None:
        return True
    current = work.enrolments(course_id, user_id)
    if t.row.cmd == "del" and t.method is not None:
        return any(e.method_id != t.method.id for e in current)
    return bool(current)


def _apply_groups(
    t: _Target, plan: list[GroupRecord], work: EnrolSet, outcome: Outcome, reason: str
) -> RowResult:
    _course_id, user_id = t.ids
    done: list[str] = []
    if t.row.gcmd == "gdel":
        done += [f"-{g.name}" for g in plan if work.groups.leave(g, user_id)]
    else:
        if t.row.gcmd in ("greplace", "greplacecreate"):
            keep = {id(g) for g in plan}
            others = [g for g in work.groups.groups_of(*t.ids) if id(g) not in keep]
            done += [f"-{g.name}" for g in others if work.groups.leave(g, user_id)]
        for group in plan:
            new = group.id is None
            if work.groups.join(group, user_id):
                done.append(f"+{group.name}" + (" (new group)" if new else ""))
    if not done:
        return RowResult(outcome, reason)
    if outcome is Outcome.UNCHANGED:
        outcome = Outcome.UPDATED
    return RowResult(outcome, f"{reason}; groups: {', '.join(done)}")


def build(options: Mapping[str, Any], ctx: RunContext) -> EnrolmentsProcessor:
    """Build the processor from route options; raise ConfigError naming a bad one."""
    return EnrolmentsProcessor(
        user_key=option(options, "user_key", USER_KEYS, _NAME),
        course_key=option(options, "course_key", COURSE_KEYS, _NAME),
        timezone=ctx.timezone,
    )


SPEC = ProcessorSpec(
    name=_NAME,
    priority=50,
    factory=build,
    sniff=frozenset({"rolename", "cid", "uid"}),
    options=frozenset({"user_key", "course_key"}),
)
