"""The enrolments processor and the users course<N> columns on the SQL store (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine

from syncd.domain import Outcome, RowResult
from syncd.platform.base import UserRecord
from syncd.platform.model import CategoryRecord, CourseRecord, EnrolMethod
from syncd.platform.sqlstore import SqlPlatform, create_schema
from syncd.processors import enrolments, users
from syncd.processors.base import Row, RunContext

CTX = RunContext(timezone=UTC, now=lambda: datetime(2026, 1, 1, tzinfo=UTC), password_cost=10)
USERS = 300
COURSES = 30
BATCH = 500


@pytest.fixture
def platform(db_engine: Engine) -> SqlPlatform:
    """A SQL platform with USERS users (U0…) and COURSES courses (C0…, half with a manual method)."""
    create_schema(db_engine)
    platform = SqlPlatform(db_engine)
    with platform.transaction() as tx:
        category = CategoryRecord("Term")
        tx.categories.add([category])
        assert category.id is not None
        tx.users.add([UserRecord(username=f"u{i}", idnumber=f"U{i}") for i in range(USERS)])
        courses = [
            CourseRecord(f"c{i}", f"Course {i}", category.id, idnumber=f"C{i}") for i in range(COURSES)
        ]
        tx.courses.add(courses)
        tx.enrolments.add_methods([EnrolMethod(c.id or 0, "manual") for c in courses[::2]])
    return platform


def apply(
    platform: SqlPlatform, rows: Sequence[Row], module: Any = enrolments, **options: Any
) -> list[RowResult]:
    """Apply rows in batches of BATCH, one committed transaction each, as the runner does."""
    processor = module.build(options, CTX)
    results: list[RowResult] = []
    for start in range(0, len(rows), BATCH):
        with platform.transaction() as tx:
            results += processor.apply(rows[start : start + BATCH], tx)
    return results


def enrol(line: int, uid: str, cid: str, **values: str) -> Row:
    """An enrolments row (student by default)."""
    return Row(line, {"rolename": "student", "uid": uid, "cid": cid, **values})


def state(platform: SqlPlatform) -> tuple[dict[tuple[int, int], bool], set[tuple[int, int, int]], int]:
    """(course, user) -> active; (course, user, role) assignments; group memberships count."""
    with platform.transaction() as tx:
        course_ids = [c.id or 0 for c in tx.courses.find(idnumbers=[f"C{i}" for i in range(COURSES)])]
        active = {(e.course_id, e.user_id): e.active for e in tx.enrolments.in_courses(course_ids)}
        roles = {(r.course_id, r.user_id, r.role_id) for r in tx.enrolments.roles_in_courses(course_ids)}
        group_ids = [g.id or 0 for g in tx.groups.groups(course_ids)]
        members = len(tx.groups.members(group_ids)) if group_ids else 0
    return active, roles, members


def test_thousands_of_rows_then_changes(platform: SqlPlatform) -> None:
    """3,000 adds (dates, groups created), then del/shift/disable rows, land as the rows say."""
    dates = {"enrol": "", "starttime": "2026-09-01", "gcmd": "gaddcreate"}
    rows = [enrol(i + 2, f"U{i // COURSES}", f"C{i % COURSES}", g1=f"G{i % 3}", **dates) for i in range(3000)]
    results = apply(platform, rows)
    assert {r.outcome for r in results} == {Outcome.CREATED}
    pairs = 3000  # every row is another (course, user)
    active, roles, members = state(platform)
    assert len(active) == pairs and all(active.values())
    assert len(roles) == pairs
    assert members == pairs
    again = apply(platform, rows[:BATCH])
    assert {r.outcome for r in again} == {Outcome.UNCHANGED}
    changes = [
        enrol(2, "U0", "C0", enrol="", cmd="del"),
        enrol(3, "U1", "C1", rolename="teacher", cmd="shift"),
        enrol(4, "U2", "C2", cmd="disable", rolename=""),
        enrol(5, "U999", "C2"),
    ]
    assert [r.outcome for r in apply(platform, changes)] == [
        Outcome.DELETED,
        Outcome.UPDATED,
        Outcome.UPDATED,
        Outcome.ERROR,
    ]
    after, after_roles, after_members = state(platform)
    assert len(after) == pairs - 1 and sum(not a for a in after.values()) == 1
    assert len(after_roles) == pairs - 1
    assert after_members == pairs - 1


def test_dates_and_flat_file_rows_round_trip(platform: SqlPlatform) -> None:
    """Dates survive the database; header-less rows enrol through manual and unenrol."""
    start, end = datetime(2026, 9, 1, 8, tzinfo=UTC), datetime(2027, 1, 31, tzinfo=UTC)
    flat = ("op", "rolename", "uid", "cid", "starttime", "endtime")
    fields = ("add", "student", "U5", "C1", str(int(start.timestamp())), end.isoformat())
    rows = [Row(1, dict(zip(flat, fields, strict=True)))]
    assert apply(platform, rows)[0].outcome is Outcome.CREATED  # C1 has no manual method: made now
    with platform.transaction() as tx:
        (course,) = tx.courses.find(idnumbers=["C1"])
        (user,) = tx.users.find(idnumbers=["U5"])
        (enrolment,) = tx.enrolments.find([(course.id or 0, user.id or 0)])
        assert (enrolment.start, enrolment.end) == (start, end)
        assert [m.method for m in tx.enrolments.methods([course.id or 0])] == ["manual"]
    assert apply(platform, rows)[0].outcome is Outcome.UNCHANGED
    rows = [Row(2, dict(zip(flat, ("del", "student", "U5", "C1"), strict=False)))]
    assert apply(platform, rows)[0].outcome is Outcome.DELETED
    assert state(platform)[0] == {}


def test_users_file_enrols_new_users_and_fills_cohorts(platform: SqlPlatform) -> None:
    """A users batch creates users, enrols them in course<N> with group<N> and adds cohort<N>."""
    rows = [
        Row(
            i + 2,
            {
                "username": f"new{i}",
                "firstname": "N",
                "lastname": "U",
                "course1": f"c{i % COURSES}",
                "group1": "Lab",
                "course2": "c0",
                "role2": "teacher",
                "cohort1": "Y1",
            },
        )
        for i in range(600)
    ]
    results = apply(platform, rows, users, cohort_autocreate=True)
    assert {r.outcome for r in results} == {Outcome.CREATED}
    active, roles, members = state(platform)
    assert len(active) == 600 + 600 - 600 // COURSES  # c0 rows enrol once for both slots
    assert members == 600
    with platform.transaction() as tx:
        (cohort,) = tx.cohorts.find(idnumbers=["Y1"])
        assert len(tx.cohorts.members([cohort.id or 0])) == 600
    assert len(roles) == 600 + 600
