"""course_delete, course_check and course_reset against the in-memory platform (SPEC §4)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from syncd.csvfile import CsvFile, CsvOptions, row_values
from syncd.domain import ConfigError, Outcome, RowResult
from syncd.platform.base import UserRecord
from syncd.platform.model import CourseRecord, Enrolment, EnrolMethod, GroupingRecord, RoleAssignment
from syncd.processors import course_check, course_delete, course_reset
from syncd.processors.base import ProcessorFactory, Row, RunContext
from tests.fakes import FakePlatform

CTX = RunContext(timezone=UTC, now=lambda: datetime(2026, 1, 1, tzinfo=UTC))


def run(
    platform: FakePlatform, factory: ProcessorFactory, rows: Sequence[Row], **options: Any
) -> list[RowResult]:
    """Apply one batch in one committed transaction."""
    processor = factory(options, CTX)
    with platform.transaction() as tx:
        return processor.apply(rows, tx)


def rows(column: str, *values: str, **extra: str) -> list[Row]:
    """One row per value, lines from 1."""
    return [Row(i, {column: v, **extra}) for i, v in enumerate(values, 1)]


def read(tmp_path: Path, text: str, factory: ProcessorFactory, **options: Any) -> list[Row]:
    """Rows of a file as the runner reads them with this processor's schema."""
    path = tmp_path / "input.csv"
    path.write_text(text)
    csv = CsvFile(path, CsvOptions())
    header = csv.resolve_header(factory(options, CTX).schema)
    return [Row(r.line, row_values(header, r)) for r in csv.records()]


@pytest.fixture
def platform() -> FakePlatform:
    return FakePlatform()


def enrol(platform: FakePlatform, course: CourseRecord, username: str, role: str,
          method: str = "manual") -> UserRecord:
    """Enrol a (new or existing) user through ``method`` with ``role``."""
    user = platform.user(username) or platform.seed(UserRecord(username))[0]
    assert course.id is not None and user.id is not None
    found = [m for m in platform.methods() if m.course_id == course.id and m.method == method]
    if not found:
        platform.direct.enrolments.add_methods([EnrolMethod(course.id, method)])
        found = [m for m in platform.methods() if m.course_id == course.id and m.method == method]
    assert found[0].id is not None
    platform.direct.enrolments.add([Enrolment(found[0].id, course.id, user.id)])
    platform.direct.enrolments.assign([RoleAssignment(course.id, user.id, platform.roles()[role])])
    return user


# -- registry and options ----------------------------------------------------------------


def test_specs_register_names_priorities_and_options() -> None:
    """The three processors are registered with the issue's priorities and an identity option."""
    specs = [course_check.SPEC, course_reset.SPEC, course_delete.SPEC]
    assert [(s.name, s.priority) for s in specs] == [("course_check", 85), ("course_reset", 88),
                                                     ("course_delete", 95)]
    assert all(s.options == {"identity"} for s in specs)
    assert course_reset.SPEC.sniff == {"shortname", "enrolments"}


@pytest.mark.parametrize("module", [course_delete, course_check, course_reset])
def test_bad_identity_is_a_config_error(module: Any) -> None:
    """An unknown identity names the processor, the choices and the value."""
    expected = rf"{module.SPEC.name}: option identity must be one of shortname, idnumber, id"
    with pytest.raises(ConfigError, match=expected):
        module.build({"identity": "name"}, CTX)


# -- course_delete -----------------------------------------------------------------------


def test_delete_removes_courses_with_everything_they_hold(platform: FakePlatform) -> None:
    """A found course is deleted with its enrolments, roles and groups; others stay."""
    math = platform.seed_course("MATH")
    keep = platform.seed_course("KEEP")
    enrol(platform, math, "ann", "student")
    assert math.id is not None
    platform.seed_group(math.id, "G1")
    results = run(platform, course_delete.build, rows("shortname", "MATH"))
    assert results == [RowResult(Outcome.DELETED, f"course 'MATH' (id {math.id})")]
    assert [c.shortname for c in platform.courses()] == [keep.shortname]
    assert (platform.enrolments(), platform.role_assignments(), platform.groups()) == ([], [], [])


def test_delete_skips_missing_and_repeated_courses(platform: FakePlatform) -> None:
    """A missing course is skipped; a course named twice is deleted once."""
    platform.seed_course("A")
    results = run(platform, course_delete.build, rows("shortname", "A", "NOPE", "A"))
    assert results[1:] == [
        RowResult(Outcome.SKIPPED, "no such course 'NOPE' (shortname)"),
        RowResult(Outcome.SKIPPED, "no such course 'A' (shortname)"),
    ]
    assert results[0].outcome is Outcome.DELETED and platform.courses() == []


def test_delete_by_idnumber_and_id(platform: FakePlatform) -> None:
    """identity idnumber and id (leading zeros allowed) pick courses; a non-number id is a row error."""
    a = platform.seed_course("A", idnumber="IA")
    b = platform.seed_course("B")
    assert outcomes(run(platform, course_delete.build, rows("idnumber", "IA", ""), identity="idnumber")) == [
        Outcome.DELETED, Outcome.ERROR]
    results = run(platform, course_delete.build, rows("id", f"0{b.id}", "x", str(a.id)), identity="id")
    assert outcomes(results) == [Outcome.DELETED, Outcome.ERROR, Outcome.SKIPPED]
    assert results[1].reason == "id: invalid course id 'x'"
    assert platform.courses() == []


def test_delete_file_header_is_optional(platform: FakePlatform, tmp_path: Path) -> None:
    """A first line that is not a column name is data; a header line is a header."""
    assert [r.values for r in read(tmp_path, "MATH\nPHYS\n", course_delete.build)] == [
        {"shortname": "MATH"}, {"shortname": "PHYS"}]
    with_header = read(tmp_path, "shortname\nMATH\n", course_delete.build)
    assert [r.values for r in with_header] == [{"shortname": "MATH"}]
    assert [r.values for r in read(tmp_path, "C-1\n", course_delete.build, identity="idnumber")] == [
        {"idnumber": "C-1"}]


def outcomes(results: Sequence[RowResult]) -> list[Outcome]:
    return [r.outcome for r in results]


# -- course_check ------------------------------------------------------------------------


def test_check_reports_found_and_missing_and_changes_nothing(platform: FakePlatform) -> None:
    """Found is unchanged with the id; missing is an error carrying the description."""
    math = platform.seed_course("MATH")
    before = (platform.courses(), platform.methods())
    results = run(platform, course_check.build, [
        Row(1, {"shortname": "MATH", "description": "Maths"}),
        Row(2, {"shortname": "ALG", "description": "Algebra I"}),
        Row(3, {"shortname": "GEO"}),
        Row(4, {"shortname": ""}),
    ])
    assert results == [
        RowResult(Outcome.UNCHANGED, f"found: course 'MATH' (id {math.id})"),
        RowResult(Outcome.ERROR, "missing course 'ALG' (Algebra I)"),
        RowResult(Outcome.ERROR, "missing course 'GEO'"),
        RowResult(Outcome.ERROR, "shortname: empty value; a course identifier is required"),
    ]
    assert (platform.courses(), platform.methods()) == before


def test_check_by_idnumber_names_the_key(platform: FakePlatform) -> None:
    """With another identity the missing reason says which key was looked for."""
    platform.seed_course("MATH", idnumber="M1")
    results = run(platform, course_check.build, rows("idnumber", "M1", "M2"), identity="idnumber")
    assert results[1] == RowResult(Outcome.ERROR, "missing course idnumber 'M2'")
    assert results[0].outcome is Outcome.UNCHANGED


def test_check_file_reads_identifier_and_description_without_header(tmp_path: Path) -> None:
    """identifier[,description] lines without a header; the description may be absent."""
    got = [r.values for r in read(tmp_path, "MATH,Maths\nPHYS\n", course_check.build)]
    assert got == [{"shortname": "MATH", "description": "Maths"}, {"shortname": "PHYS"}]


# -- course_reset ------------------------------------------------------------------------


@pytest.fixture
def term(platform: FakePlatform) -> CourseRecord:
    """A course with a teacher, two students, a guest auditor, groups, a grouping, a cohort binding."""
    course = platform.seed_course("MATH")
    assert course.id is not None
    enrol(platform, course, "teach", "editingteacher")
    enrol(platform, course, "s1", "student")
    enrol(platform, course, "s2", "student")
    enrol(platform, course, "aud", "guest")
    cohort = platform.seed_cohort("Year 1", "Y1")
    platform.direct.enrolments.add_methods([EnrolMethod(course.id, "cohort", cohort_id=cohort.id)])
    binding = next(m for m in platform.methods() if m.method == "cohort")
    assert binding.id is not None
    c1 = platform.seed(UserRecord("c1"))[0]
    assert c1.id is not None and platform.user("s1") is not None
    platform.direct.enrolments.add([Enrolment(binding.id, course.id, c1.id)])
    s1 = platform.user("s1")
    assert s1 is not None and s1.id is not None
    platform.direct.enrolments.add([Enrolment(binding.id, course.id, s1.id)])
    platform.direct.enrolments.assign([RoleAssignment(course.id, c1.id, platform.roles()["student"])])
    g1, g2 = platform.seed_group(course.id, "G1"), platform.seed_group(course.id, "G2")
    assert g1.id is not None and g2.id is not None
    platform.direct.groups.add_members([(g1.id, s1.id), (g2.id, c1.id)])
    platform.direct.groups.add_groupings([GroupingRecord(course.id, "All")])
    return course


def reset(platform: FakePlatform, **items: str) -> RowResult:
    """Reset MATH with these items; the one result."""
    [result] = run(platform, course_reset.build, [Row(2, {"shortname": "MATH", **items})])
    return result


def test_reset_enrolments_all_unenrols_everyone(platform: FakePlatform, term: CourseRecord) -> None:
    """all removes every enrolment (any method), every role and the group memberships."""
    expected = RowResult(Outcome.UPDATED, "course 'MATH' reset: 5 users unenrolled")
    assert reset(platform, enrolments="all") == expected
    assert (platform.enrolled("MATH"), platform.course_roles("MATH")) == ({}, set())
    assert platform.group_members() == set() and len(platform.groups()) == 2


def test_reset_enrolments_by_role_keeps_the_others(platform: FakePlatform, term: CourseRecord) -> None:
    """A role list unenrols only the users holding one of those roles, from every method."""
    result = reset(platform, enrolments="student, guest")
    assert result == RowResult(Outcome.UPDATED, "course 'MATH' reset: 4 users unenrolled")
    assert platform.enrolled("MATH") == {"teach": True}
    assert platform.course_roles("MATH") == {("teach", "editingteacher")}


def test_reset_unknown_role_is_a_row_error(platform: FakePlatform, term: CourseRecord) -> None:
    """An unknown role in enrolments names the column and the value; nothing is removed."""
    expected = RowResult(Outcome.ERROR, "unknown role 'pupil' (enrolments)")
    assert reset(platform, enrolments="student pupil") == expected
    assert len(platform.enrolments()) == 6


def test_reset_groups_all_or_members(platform: FakePlatform, term: CourseRecord) -> None:
    """members empties the groups; all deletes them."""
    assert reset(platform, groups="members") == RowResult(
        Outcome.UPDATED, "course 'MATH' reset: 2 group memberships removed")
    assert len(platform.groups()) == 2 and platform.group_members() == set()
    expected = RowResult(Outcome.UPDATED, "course 'MATH' reset: 2 groups deleted")
    assert reset(platform, groups="ALL") == expected
    assert platform.groups() == []
    assert reset(platform, groups="some").reason == "groups: invalid value 'some' (expected all or members)"


def test_reset_groupings_keeps_the_groups(platform: FakePlatform, term: CourseRecord) -> None:
    """groupings=yes deletes the groupings only; no leaves them."""
    assert reset(platform, groupings="no").outcome is Outcome.UNCHANGED
    expected = RowResult(Outcome.UPDATED, "course 'MATH' reset: 1 grouping deleted")
    assert reset(platform, groupings="yes") == expected
    assert platform.groupings() == [] and len(platform.groups()) == 2
    assert reset(platform, groupings="maybe").reason.startswith("groupings: invalid boolean 'maybe'")


def test_reset_cohort_bindings_unenrols_users_left_without_enrolment(
    platform: FakePlatform, term: CourseRecord
) -> None:
    """The cohort methods go with their enrolments; users with no other enrolment lose roles and groups."""
    result = reset(platform, cohort_bindings="1")
    assert result == RowResult(Outcome.UPDATED, "course 'MATH' reset: 1 cohort binding removed")
    assert [m.method for m in platform.methods()] == ["manual"]
    assert set(platform.enrolled("MATH")) == {"teach", "s1", "s2", "aud"}
    assert ("c1", "student") not in platform.course_roles("MATH")
    assert platform.members_of_group("MATH", "G2") == set()
    assert platform.members_of_group("MATH", "G1") == {"s1"}


def test_reset_lists_every_item_with_counts(platform: FakePlatform, term: CourseRecord) -> None:
    """Several items in one row: the reason lists each with its count, zero included."""
    result = reset(platform, enrolments="guest", groups="all", groupings="yes", cohort_bindings="yes")
    assert result.reason == (
        "course 'MATH' reset: 1 user unenrolled, 2 groups deleted, 1 grouping deleted, "
        "1 cohort binding removed"
    )
    assert reset(platform, groupings="yes", groups="") == RowResult(
        Outcome.UNCHANGED, "course 'MATH' reset: 0 groupings deleted")


def test_reset_without_items_or_course(platform: FakePlatform, term: CourseRecord) -> None:
    """No item given leaves the course as it is; an unknown course is a row error."""
    expected = RowResult(Outcome.UNCHANGED, "course 'MATH': no reset item given")
    assert reset(platform) == expected
    results = run(platform, course_reset.build, [Row(2, {"shortname": "NOPE", "groups": "all"})])
    assert results == [RowResult(Outcome.ERROR, "unknown course 'NOPE' (shortname)")]
    assert len(platform.enrolments()) == 6


def test_reset_rows_of_a_batch_apply_in_order(platform: FakePlatform, term: CourseRecord) -> None:
    """The same course twice: the second row sees what the first removed."""
    results = run(platform, course_reset.build, [
        Row(2, {"shortname": "MATH", "enrolments": "student"}),
        Row(3, {"shortname": "MATH", "enrolments": "all"}),
    ])
    assert [r.reason for r in results] == [
        "course 'MATH' reset: 3 users unenrolled",
        "course 'MATH' reset: 2 users unenrolled",
    ]
    assert platform.enrolments() == [] and platform.role_assignments() == []


def test_reset_other_courses_are_untouched(platform: FakePlatform, term: CourseRecord) -> None:
    """Only the named course is reset."""
    other = platform.seed_course("PHYS")
    enrol(platform, other, "s1", "student")
    reset(platform, enrolments="all", groups="all")
    assert platform.enrolled("PHYS") == {"s1": True}
