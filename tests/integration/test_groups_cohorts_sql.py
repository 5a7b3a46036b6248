"""groups, group_members, cohorts and cohort_courses on the SQL store (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import Engine

from syncd.domain import Outcome, RowResult
from syncd.platform.base import UserRecord
from syncd.platform.model import CategoryRecord, CourseRecord, Enrolment, EnrolMethod
from syncd.platform.sqlstore import SqlPlatform, create_schema
from syncd.processors import cohort_courses, cohorts, group_members, groups
from syncd.processors.base import Row, RunContext

CTX = RunContext(timezone=UTC, now=lambda: datetime(2026, 1, 1, tzinfo=UTC))
USERS = 200
COURSES = 10
BATCH = 250


@pytest.fixture
def platform(db_engine: Engine) -> SqlPlatform:
    """USERS users (u0… / U0…), COURSES courses (c0… / C0…) in category Science/Physics,
    each with a manual method through which every user is enrolled."""
    create_schema(db_engine)
    platform = SqlPlatform(db_engine)
    with platform.transaction() as tx:
        top = CategoryRecord("Science")
        tx.categories.add([top])
        tx.categories.add([CategoryRecord("Physics", parent_id=top.id)])
        people = [UserRecord(username=f"u{i}", idnumber=f"U{i}") for i in range(USERS)]
        tx.users.add(people)
        courses = [CourseRecord(f"c{i}", f"Course {i}", top.id or 0, idnumber=f"C{i}")
                   for i in range(COURSES)]
        tx.courses.add(courses)
        manual = [EnrolMethod(c.id or 0, "manual") for c in courses]
        tx.enrolments.add_methods(manual)
        tx.enrolments.add([Enrolment(m.id or 0, m.course_id, u.id or 0) for m in manual for u in people])
    return platform


def apply(platform: SqlPlatform, module: ModuleType, rows: Sequence[Row], **options: Any) -> list[RowResult]:
    """Apply rows in batches of BATCH, one committed transaction each, as the runner does."""
    processor = module.build(options, CTX)
    results: list[RowResult] = []
    for start in range(0, len(rows), BATCH):
        with platform.transaction() as tx:
            results += processor.apply(rows[start : start + BATCH], tx)
    return results


def counts(results: Sequence[RowResult]) -> Counter[Outcome]:
    return Counter(r.outcome for r in results)


def course_ids(platform: SqlPlatform) -> dict[str, int]:
    with platform.transaction() as tx:
        return {c.shortname: c.id or 0 for c in tx.courses.find(idnumbers=[f"C{i}" for i in range(COURSES)])}


def user_ids(platform: SqlPlatform) -> dict[int, str]:
    with platform.transaction() as tx:
        return {u.id or 0: u.username for u in tx.users.find(usernames=[f"u{i}" for i in range(USERS)])}


def test_groups_and_memberships(platform: SqlPlatform) -> None:
    """Groups in groupings, then a membership file with add/shift/del, land as the rows say."""
    group_rows = [
        Row(i + 2, {"courseid": f"c{c}", "name": f"G{g}", "idnumber": f"c{c}-g{g}", "grouping": "All"})
        for i, (c, g) in enumerate((c, g) for c in range(COURSES) for g in range(3))
    ]
    group_rows.append(Row(99, {"courseid": "c0", "name": "G9", "idnumber": "c0-g1", "grouping": ""}))
    results = apply(platform, groups, group_rows)
    assert counts(results) == {Outcome.CREATED: 3 * COURSES, Outcome.ERROR: 1}
    assert results[-1].reason == "idnumber: 'c0-g1' already belongs to group 'G1' in course 'c0'"
    again = apply(platform, groups, group_rows[:-1])
    assert counts(again) == {Outcome.UNCHANGED: 3 * COURSES}

    member_rows = [
        Row(i + 2, {"courseid": f"C{i % COURSES}", "groupid": f"G{i % 2}", "userid": f"U{i}", "cmd": "add"})
        for i in range(USERS)
    ]
    shift = [Row(900 + i, {"courseid": f"C{i}", "groupid": "G2", "userid": f"U{i}", "cmd": "shift"})
             for i in range(COURSES)]
    last = {"courseid": f"C{COURSES - 1}", "groupid": "G1", "userid": f"U{USERS - 1}", "cmd": "del"}
    drop = [Row(999, last)]
    results = apply(platform, group_members, member_rows + shift + drop, course_key="idnumber")
    assert counts(results) == {Outcome.CREATED: USERS, Outcome.UPDATED: COURSES, Outcome.DELETED: 1}

    ids = course_ids(platform)
    names = user_ids(platform)
    with platform.transaction() as tx:
        found = tx.groups.groups(ids.values())
        by_id = {g.id: g for g in found}
        members = tx.groups.members(list(by_id))
        groupings = tx.groups.groupings(ids.values())
        links = tx.groups.grouping_links([g.id or 0 for g in groupings])
    assert len(groupings) == COURSES and len(links) == 3 * COURSES
    assert len(members) == USERS - 1
    placed = {names[u]: by_id[g].name for g, u in members}
    assert [placed[f"u{i}"] for i in range(COURSES)] == ["G2"] * COURSES
    assert placed[f"u{COURSES}"] == "G0" and f"u{USERS - 1}" not in placed


def test_cohorts_then_bindings(platform: SqlPlatform) -> None:
    """Cohorts with members, bound to courses with makegroup, then del/restore/fulldel, and
    a cohort deleted with its bindings."""
    rows = [
        Row(i + 2, {"cidnumber": f"K{i % 4}", "cname": f"Cohort {i % 4}", "ccategory": "Science/Physics",
                    "userid": f"U{i}"})
        for i in range(USERS)
    ]
    assert counts(apply(platform, cohorts, rows)) == {Outcome.CREATED: USERS}
    bindings = [
        Row(i + 2, {"cohort": f"K{k}", "course": f"c{c}", "role": "student", "makegroup": "1"})
        for i, (k, c) in enumerate((k, c) for k in range(4) for c in range(COURSES))
    ]
    results = apply(platform, cohort_courses, bindings)
    assert counts(results) == {Outcome.CREATED: 4 * COURSES}
    assert results[0].reason == (
        "cohort 'Cohort 0' in course 'c0' as student: group 'Cohort 0' (created), "
        f"{USERS // 4} enrolled, {USERS // 4} added to the group"
    )
    ids = course_ids(platform)
    with platform.transaction() as tx:
        enrolled = tx.enrolments.in_courses(ids.values())
        methods = [m for m in tx.enrolments.methods(ids.values()) if m.method == "cohort"]
        group_count = len(tx.groups.members([g.id or 0 for g in tx.groups.groups(ids.values())]))
    assert len(enrolled) == 2 * USERS * COURSES  # manual + cohort for everyone
    assert len(methods) == 4 * COURSES and all(m.group_id is not None for m in methods)
    assert group_count == USERS * COURSES

    changes = [
        Row(2, {"cohort": "K0", "course": "c0", "cmd": "del"}),
        Row(3, {"cohort": "K1", "course": "c0", "cmd": "del"}),
        Row(4, {"cohort": "K1", "course": "c0", "cmd": "restore"}),
        Row(5, {"cohort": "K2", "course": "c0", "cmd": "fulldel"}),
    ]
    assert [r.outcome for r in apply(platform, cohort_courses, changes)] == [
        Outcome.DELETED, Outcome.DELETED, Outcome.UPDATED, Outcome.DELETED,
    ]
    assert counts(apply(platform, cohorts, [Row(2, {"cidnumber": "K3", "cmd": "delete"})])) == {
        Outcome.DELETED: 1
    }
    with platform.transaction() as tx:
        course0 = tx.enrolments.in_courses([ids["c0"]])
        methods = [m for m in tx.enrolments.methods(ids.values()) if m.method == "cohort"]
        roles = tx.enrolments.roles_in_courses([ids["c0"]])
        left = tx.cohorts.find(idnumbers=["K0", "K1", "K2", "K3"])
    assert sorted(c.idnumber or "" for c in left) == ["K0", "K1", "K2"]
    assert all(c.category_id is not None for c in left)
    assert len(methods) == 3 * COURSES - 1
    cohort_enrolments = [e for e in course0 if e.method_id in {m.id for m in methods}]
    assert len(cohort_enrolments) == USERS // 2
    assert sum(not e.active for e in cohort_enrolments) == USERS // 4
    assert len(roles) == USERS  # everyone keeps student: the manual enrolment may give it


def _cohort_state(platform: SqlPlatform, course: str) -> tuple[set[int], set[tuple[int, int]], set[int]]:
    """In ``course``: users enrolled through a cohort method, (user, role) pairs, group members."""
    course_id = course_ids(platform)[course]
    with platform.transaction() as tx:
        synced = {m.id for m in tx.enrolments.methods([course_id]) if m.method == "cohort"}
        enrolled = {e.user_id for e in tx.enrolments.in_courses([course_id]) if e.method_id in synced}
        roles = {(r.user_id, r.role_id) for r in tx.enrolments.roles_in_courses([course_id])}
        members = {u for _g, u in tx.groups.members([g.id or 0 for g in tx.groups.groups([course_id])])}
    return enrolled, roles, members


def test_cohort_membership_changes_reach_bound_courses(platform: SqlPlatform) -> None:
    """Joining a bound cohort enrols at once with role and group; leaving (del, free, delete)
    unenrols, and a user with no enrolment left loses role and group; soft-deleted members are
    never enrolled by cohort_courses."""
    ids, users = course_ids(platform), {name: id_ for id_, name in user_ids(platform).items()}
    with platform.transaction() as tx:
        tx.enrolments.delete([e.id or 0 for e in tx.enrolments.in_courses([ids["c0"]])])  # no manual in c0
        [u9] = tx.users.find(usernames=["u9"])
        u9.deleted = True
        tx.users.update([u9])
        teacher = tx.roles.all()["editingteacher"]
    joined = [Row(i + 2, {"cidnumber": "K", "userid": f"U{i}"}) for i in range(4)]
    assert counts(apply(platform, cohorts, joined)) == {Outcome.CREATED: 4}
    with platform.transaction() as tx:
        [k] = tx.cohorts.find(idnumbers=["K"])
        tx.cohorts.add_members([(k.id or 0, users["u9"])])  # a soft-deleted member
    binding = [Row(2, {"cohort": "K", "course": c, "role": "editingteacher", "makegroup": "1"})
               for c in ("c0", "c1")]
    assert counts(apply(platform, cohort_courses, binding)) == {Outcome.CREATED: 2}
    first = {users[f"u{i}"] for i in range(4)}
    assert _cohort_state(platform, "c0") == (first, {(u, teacher) for u in first}, first)

    changes = [Row(2, {"cidnumber": "K", "userid": "U4"}),
               Row(3, {"cidnumber": "K", "cmd": "del", "userid": "U0"})]
    assert [r.outcome for r in apply(platform, cohorts, changes)] == [Outcome.CREATED, Outcome.DELETED]
    now = first - {users["u0"]} | {users["u4"]}
    assert _cohort_state(platform, "c0") == (now, {(u, teacher) for u in now}, now)
    enrolled, roles, members = _cohort_state(platform, "c1")  # u0 keeps c1: still enrolled manually
    assert enrolled == now and (users["u0"], teacher) in roles and users["u0"] in members

    deleted = apply(platform, cohorts, [Row(2, {"cidnumber": "K", "cmd": "delete"})])
    assert counts(deleted) == {Outcome.DELETED: 1}
    assert _cohort_state(platform, "c0") == (set(), set(), set())
    with platform.transaction() as tx:
        assert [m.method for m in tx.enrolments.methods([ids["c0"], ids["c1"]])] == ["manual", "manual"]
        assert len(tx.enrolments.in_courses([ids["c1"]])) == USERS


def test_groupings_are_updated_in_place(platform: SqlPlatform) -> None:
    """A stored grouping's idnumber and description change is written; its old idnumber may go to another."""
    rows = [Row(2, {"courseid": "c0", "name": "Labs", "type": "grouping", "idnumber": "L",
                    "description": "a"})]
    assert counts(apply(platform, groups, rows)) == {Outcome.CREATED: 1}
    rows = [
        Row(2, {"courseid": "c0", "name": "Labs", "type": "grouping", "idnumber": "L2", "description": "b"}),
        Row(3, {"courseid": "c0", "name": "New", "type": "grouping", "idnumber": "L"}),
    ]
    results = apply(platform, groups, rows)
    assert results == [
        RowResult(Outcome.UPDATED, "grouping 'Labs' in course 'c0': idnumber, description"),
        RowResult(Outcome.CREATED, "grouping 'New' in course 'c0'"),
    ]
    with platform.transaction() as tx:
        found = tx.groups.groupings([course_ids(platform)["c0"]])
    assert [(g.name, g.idnumber, g.description) for g in found] == [("Labs", "L2", "b"), ("New", "L", "")]
