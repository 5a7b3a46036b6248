"""The course processors end to end on the SQL platform store (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from syncd.csvfile import CsvFile, CsvOptions, row_values, validate_header
from syncd.domain import Outcome, RowResult
from syncd.platform.base import UserRecord
from syncd.platform.model import (
    CategoryRecord,
    CourseRecord,
    Enrolment,
    EnrolMethod,
    GroupingRecord,
    GroupRecord,
    RoleAssignment,
)
from syncd.platform.sqlstore import SqlPlatform, create_schema
from syncd.processors import course_check, course_delete, course_reset, courses
from syncd.processors.base import ProcessorFactory, Row, RunContext

CTX = RunContext(timezone=UTC, now=lambda: datetime(2026, 1, 1, tzinfo=UTC))


@pytest.fixture
def platform(db_engine: Engine) -> SqlPlatform:
    """A SQL platform on an empty database, on SQLite and on PostgreSQL."""
    create_schema(db_engine)
    return SqlPlatform(db_engine)


def course(shortname: str, line: int = 2, /, **values: str) -> Row:
    """A courses row with the required columns filled in."""
    return Row(line, {"shortname": shortname, "fullname": f"{shortname} course", **values})


def run(
    platform: SqlPlatform, factory: ProcessorFactory, rows: Sequence[Row], **options: Any
) -> list[RowResult]:
    processor = factory(options, CTX)
    with platform.transaction() as tx:
        return processor.apply(rows, tx)


def load(platform: SqlPlatform, *shortnames: str) -> dict[str, CourseRecord]:
    with platform.transaction() as tx:
        return {c.shortname: c for c in tx.courses.find(shortnames=shortnames)}


def categories(platform: SqlPlatform) -> dict[int, CategoryRecord]:
    with platform.transaction() as tx:
        return {c.id: c for c in tx.categories.all() if c.id is not None}


def path_of(platform: SqlPlatform, category_id: int) -> str:
    by_id = categories(platform)
    names: list[str] = []
    current: int | None = category_id
    while current is not None:
        names.append(by_id[current].name)
        current = by_id[current].parent_id
    return "/".join(reversed(names))


def test_create_then_update_courses(platform: SqlPlatform) -> None:
    """Categories, template sections, topics, teachers and methods land in the database."""
    with platform.transaction() as tx:
        tx.users.add([UserRecord("ann"), UserRecord("bob")])
    rows = [
        course("TPL", category="Templates", topic0="General|Hi", topic1="Unit 1|Basics"),
        course("MATH", 3, idnumber="M1", category="Science/Maths", template="TPL", topic2="Own|Text",
               startdate="2026-09-01 08:00", self="1", teacher1_account="ann", teacher2_account="bob",
               teacher2_role="teacher"),
        course("BAD", 4, teacher1_account="nobody"),
    ]
    results = run(platform, courses.build, rows)
    assert [r.outcome for r in results] == [Outcome.CREATED, Outcome.CREATED, Outcome.ERROR]
    math = load(platform, "MATH")["MATH"]
    assert math.id is not None
    assert path_of(platform, math.category_id) == "Science/Maths"
    assert math.startdate == datetime(2026, 9, 1, 8, tzinfo=UTC)
    with platform.transaction() as tx:
        assert [(s.number, s.name, s.summary) for s in tx.courses.sections([math.id])] == [
            (0, "General", "Hi"), (1, "Unit 1", "Basics"), (2, "Own", "Text")]
        enabled = {m.method: m.enabled for m in tx.enrolments.methods([math.id])}
        assert enabled == {"manual": True, "self": True}
        assert len(tx.enrolments.in_courses([math.id])) == 2
        roles = {v: k for k, v in tx.roles.all().items()}
        assert sorted(roles[r.role_id] for r in tx.enrolments.roles_in_courses([math.id])) == [
            "editingteacher", "teacher"]
    again = [course("MATH", idnumber="M1", startdate="2026-09-01 08:00", self="0", category="Arts",
                    topic1="Renamed")]
    assert run(platform, courses.build, again, update=True, protect_category=True) == [
        RowResult(Outcome.UPDATED, "course 'MATH': topic1, self")]
    assert run(platform, courses.build, again, update=True, protect_category=True) == [
        RowResult(Outcome.UNCHANGED, "course 'MATH'")]
    assert load(platform, "MATH")["MATH"].category_id == math.category_id


def test_renames_across_rows_meet_the_unique_constraints(platform: SqlPlatform) -> None:
    """Shortnames moved from course to course in one batch pass the database's constraints."""
    run(platform, courses.build, [course("A", idnumber="1"), course("B", 3, idnumber="2")])
    rows = [course("A", idnumber="1", summary="x"), course("C", 3, idnumber="2"),
            course("B", 4, idnumber="1")]
    assert [r.outcome for r in run(platform, courses.build, rows, identity="idnumber", update=True)] == [
        Outcome.UPDATED] * 3
    found = load(platform, "A", "B", "C")
    assert {k: v.idnumber for k, v in found.items()} == {"B": "1", "C": "2"}


def test_delete_check_and_reset(platform: SqlPlatform) -> None:
    """Reset empties what it is asked to; check finds; delete cascades through the foreign keys."""
    run(platform, courses.build, [course("MATH", topic1="T"), course("PHYS", 3)])
    ids = {k: v.id for k, v in load(platform, "MATH", "PHYS").items()}
    math = ids["MATH"]
    assert math is not None
    with platform.transaction() as tx:
        tx.users.add([UserRecord("s1"), UserRecord("s2")])
        users = {u.username: u.id for u in tx.users.find(usernames=["s1", "s2"])}
        manual = next(m for m in tx.enrolments.methods([math]) if m.method == "manual")
        assert manual.id is not None
        tx.enrolments.add([Enrolment(manual.id, math, uid) for uid in users.values() if uid])
        student = tx.roles.all()["student"]
        tx.enrolments.assign([RoleAssignment(math, uid, student) for uid in users.values() if uid])
        group = GroupRecord(math, "G1")
        tx.groups.add_groups([group])
        assert group.id is not None
        tx.groups.add_members([(group.id, uid) for uid in users.values() if uid])
        grouping = GroupingRecord(math, "All")
        tx.groups.add_groupings([grouping])
        assert grouping.id is not None
        tx.groups.link([(grouping.id, group.id)])
        tx.enrolments.add_methods([EnrolMethod(math, "self")])
    reset = run(platform, course_reset.build, [Row(2, {"shortname": "MATH", "enrolments": "student",
                                                         "groups": "members", "groupings": "yes"})])
    assert reset == [RowResult(Outcome.UPDATED, "course 'MATH' reset: 2 users unenrolled, "
                                                "0 group memberships removed, 1 grouping deleted")]
    with platform.transaction() as tx:
        assert tx.enrolments.in_courses([math]) == [] and tx.enrolments.roles_in_courses([math]) == []
        assert [g.name for g in tx.groups.groups([math])] == ["G1"] and tx.groups.groupings([math]) == []
    named = [Row(1, {"shortname": "MATH"}), Row(2, {"shortname": "GEO"})]
    checked = run(platform, course_check.build, named)
    assert [r.outcome for r in checked] == [Outcome.UNCHANGED, Outcome.ERROR]
    twice = [Row(1, {"shortname": "MATH"}), Row(2, {"shortname": "MATH"})]
    deleted = run(platform, course_delete.build, twice)
    assert [r.outcome for r in deleted] == [Outcome.DELETED, Outcome.SKIPPED]
    assert set(load(platform, "MATH", "PHYS")) == {"PHYS"}
    with platform.transaction() as tx:
        assert tx.courses.sections([math]) == [] and tx.groups.groups([math]) == []


def _batches(path: Path, factory: ProcessorFactory, size: int, **options: Any) -> Iterator[list[Row]]:
    """The rows of a command file as the runner reads them, ``size`` at a time."""
    csv = CsvFile(path, CsvOptions())
    schema = factory(options, CTX).schema
    header = csv.resolve_header(schema)
    validate_header(header, schema, path.name)
    records = iter(csv.records())
    while batch := list(islice(records, size)):
        yield [Row(r.line, row_values(header, r)) for r in batch]


def _apply_file(
    platform: SqlPlatform, path: Path, factory: ProcessorFactory, **options: Any
) -> Counter[Outcome]:
    """Apply a command file in batches of 500, a transaction each; count the outcomes."""
    processor = factory(options, CTX)
    counts: Counter[Outcome] = Counter()
    for rows in _batches(path, factory, 500, **options):
        with platform.transaction() as tx:
            counts.update(r.outcome for r in processor.apply(rows, tx))
    return counts


def test_two_thousand_course_file_in_batches(platform: SqlPlatform, tmp_path: Path) -> None:
    """2,000 courses in 4 batches: created once, skipped on a second run, checked, reset and deleted."""
    with platform.transaction() as tx:
        tx.users.add([UserRecord(f"teacher{i}") for i in range(20)])
    lines = ["shortname,fullname,idnumber,category,startdate,topic1,self,teacher1_account"]
    lines += [
        f"C{i:04d},Course {i},ID{i:04d},Faculty {i % 4}/Dept {i % 20},2026-09-01,Week 1|Intro {i},{i % 2},"
        f"teacher{i % 20}"
        for i in range(2000)
    ]
    courses_csv = tmp_path / "courses.csv"
    courses_csv.write_text("\n".join(lines) + "\n")
    assert _apply_file(platform, courses_csv, courses.build) == {Outcome.CREATED: 2000}
    assert len(categories(platform)) == 4 + 20
    assert _apply_file(platform, courses_csv, courses.build) == {Outcome.SKIPPED: 2000}
    assert _apply_file(platform, courses_csv, courses.build, update=True) == {Outcome.UNCHANGED: 2000}
    with platform.transaction() as tx:
        found = tx.courses.find(idnumbers=[f"ID{i:04d}" for i in range(2000)])
        ids = [c.id for c in found if c.id is not None]
        assert len(ids) == 2000
        assert len(tx.enrolments.in_courses(ids)) == 2000
        assert len(tx.courses.sections(ids)) == 4000
        assert Counter(m.method for m in tx.enrolments.methods(ids)) == {"manual": 2000, "self": 1000}
    names = tmp_path / "names.csv"
    names.write_text("".join(f"C{i:04d}\n" for i in range(0, 2000, 2)))
    assert _apply_file(platform, names, course_check.build) == {Outcome.UNCHANGED: 1000}
    reset = tmp_path / "reset.csv"
    reset.write_text("shortname,enrolments\n" + "".join(f"C{i:04d},all\n" for i in range(2000)))
    assert _apply_file(platform, reset, course_reset.build) == {Outcome.UPDATED: 2000}
    assert _apply_file(platform, names, course_delete.build) == {Outcome.DELETED: 1000}
    assert _apply_file(platform, names, course_check.build) == {Outcome.ERROR: 1000}
    with platform.transaction() as tx:
        assert len(tx.courses.find(idnumbers=[f"ID{i:04d}" for i in range(2000)])) == 1000
        assert tx.enrolments.in_courses(ids) == []
