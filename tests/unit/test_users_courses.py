"""The users processor's course<N>/role<N>/group<N>/enrol<N>/start<N>/end<N> and cohort<N> columns."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from syncd.domain import ConfigError, Outcome, RowResult
from syncd.platform.base import PlatformTx, UserRecord
from syncd.platform.model import EnrolMethod
from syncd.processors.base import Row, RunContext
from syncd.processors.users import SPEC, build
from tests.fakes import FakePlatform
from tests.unit.test_enrolments import CallSpy

CTX = RunContext(timezone=UTC, now=lambda: datetime(2026, 1, 1, tzinfo=UTC), password_cost=10)


def person(username: str, line: int = 2, **values: str) -> Row:
    """A users row with the required columns and a password (no generation flag)."""
    return Row(line, {"username": username, "firstname": "Ann", "lastname": "Lee", **values})


def run(platform: FakePlatform, rows: Sequence[Row], **options: Any) -> list[RowResult]:
    """Apply one batch in one committed transaction."""
    with platform.transaction() as tx:
        return build(options, CTX).apply(rows, tx)


def one(platform: FakePlatform, row: Row, **options: Any) -> RowResult:
    """Apply a single row."""
    (result,) = run(platform, [row], **options)
    return result


@pytest.fixture
def platform() -> FakePlatform:
    """Courses MATH101 and BIO1 (each with a manual method), cohort 'Year 1' (Y1)."""
    platform = FakePlatform()
    platform.seed_course("MATH101")
    platform.seed_course("BIO1")
    platform.seed_cohort("Year 1", "Y1")
    return platform


def course_id(platform: FakePlatform, shortname: str) -> int:
    """The id of a stored course."""
    course = platform.course(shortname)
    assert course is not None and course.id is not None
    return course.id


# -- schema, options ------------------------------------------------------------------


def test_schema_accepts_numbered_columns_1_to_99() -> None:
    """course1…course99 and their companions are accepted; 0 and 100 are not."""
    schema = build({}, CTX).schema
    for name in ("course1", "role1", "group7", "enrol12", "start99", "end99", "cohort3"):
        assert schema.allows(name), name
    for name in ("course0", "course100", "role", "cohort01x"):
        assert not schema.allows(name), name


def test_cohort_autocreate_option() -> None:
    """cohort_autocreate is a boolean option, listed in SPEC and shown when on."""
    assert "cohort_autocreate" in SPEC.options
    assert build({"cohort_autocreate": True}, CTX).describe().endswith(" cohort_autocreate=yes")
    assert build({"cohort_autocreate": "yes"}, CTX).cohort_autocreate is True
    with pytest.raises(ConfigError, match="users: option cohort_autocreate: invalid boolean 'sometimes'"):
        build({"cohort_autocreate": "sometimes"}, CTX)
    with pytest.raises(ConfigError, match="users: option cohort_autocreate must be true or false"):
        build({"cohort_autocreate": 2}, CTX)


# -- courses ---------------------------------------------------------------------------


def test_new_user_is_enrolled_as_student_through_manual(platform: FakePlatform) -> None:
    """A user created by the row is enrolled in course1 with the default role and method."""
    result = one(platform, person("ann", course1="MATH101"))
    assert result == RowResult(
        Outcome.CREATED, "user 'ann'; course1: enrolled in 'MATH101' as student (manual)"
    )
    assert platform.enrolled("MATH101") == {"ann": True}
    assert platform.course_roles("MATH101") == {("ann", "student")}


def test_role_enrol_and_dates_columns(platform: FakePlatform) -> None:
    """role<N>, enrol<N>, start<N> and end<N> apply to their course<N>."""
    cid = course_id(platform, "BIO1")
    platform.direct.enrolments.add_methods([EnrolMethod(cid, "self")])
    row = person(
        "ann",
        course1="MATH101",
        role1="Teacher",
        course2="BIO1",
        enrol2="self",
        start2="2026-09-01",
        end2="0",
    )
    result = one(platform, row)
    assert result.reason.endswith("course2: enrolled in 'BIO1' as student (self)")
    assert platform.course_roles("MATH101") == {("ann", "teacher")}
    (bio,) = [e for e in platform.enrolments() if e.course_id == cid]
    assert (bio.start, bio.end) == (datetime(2026, 9, 1, tzinfo=UTC), None)


def test_existing_user_gets_enrolled_and_a_rerun_is_unchanged(platform: FakePlatform) -> None:
    """An unchanged user with a new enrolment is updated; the same row again is unchanged."""
    one(platform, person("ann"))
    assert one(platform, person("ann", course1="MATH101")) == RowResult(
        Outcome.UPDATED, "user 'ann'; course1: enrolled in 'MATH101' as student (manual)"
    )
    assert one(platform, person("ann", course1="MATH101")) == RowResult(Outcome.UNCHANGED, "user 'ann'")


def test_later_dates_update_the_enrolment(platform: FakePlatform) -> None:
    """A changed start<N> on an existing enrolment is an update naming it."""
    one(platform, person("ann", course1="MATH101"))
    result = one(platform, person("ann", course1="MATH101", start1="2026-09-01"))
    assert result == RowResult(
        Outcome.UPDATED, "user 'ann'; course1: enrolment in 'MATH101' as student (manual): start"
    )


def test_group_is_created_when_missing_and_reused(platform: FakePlatform) -> None:
    """group<N> puts the user in that course's group, made the first time it is named."""
    results = run(
        platform,
        [person("ann", course1="MATH101", group1="G1"), person("bob", course1="MATH101", group1="G1")],
    )
    assert results[0].reason.endswith("as student (manual); group 'G1' (new)")
    assert results[1].reason.endswith("as student (manual); group 'G1'")
    assert [g.name for g in platform.groups()] == ["G1"]
    assert platform.members_of_group("MATH101", "G1") == {"ann", "bob"}


def test_empty_course_column_ignores_its_companions(platform: FakePlatform) -> None:
    """An empty course<N> leaves role<N>/group<N> unused and is no error."""
    result = one(platform, person("ann", course1="", role1="teacher", group1="G"))
    assert result == RowResult(Outcome.CREATED, "user 'ann'")
    assert platform.enrolments() == []


def test_companion_without_its_course_column_is_a_row_error(platform: FakePlatform) -> None:
    """role3 with no course3 column fails the row before the user is touched."""
    result = one(platform, person("ann", course1="MATH101", role3="teacher"))
    assert result == RowResult(Outcome.ERROR, "role3: no course3 column for it")
    assert platform.user("ann") is None


def test_bad_dates_fail_the_row_before_anything(platform: FakePlatform) -> None:
    """A malformed start<N>, or end<N> before start<N>, fails the whole row."""
    bad = one(platform, person("ann", course1="MATH101", start1="soon"))
    assert bad.outcome is Outcome.ERROR and bad.reason.startswith("start1: invalid date 'soon'")
    order = one(platform, person("ann", course1="MATH101", start1="2026-09-02", end1="2026-09-01"))
    assert order == RowResult(Outcome.ERROR, "end1: '2026-09-01' is before start1 '2026-09-02'")
    assert platform.user("ann") is None


def test_unknown_course_keeps_the_user_change(platform: FakePlatform) -> None:
    """A failing course<N> makes the row an error that says the user part was applied."""
    result = one(platform, person("ann", course1="MATH101", course2="NOPE"))
    assert result == RowResult(
        Outcome.ERROR,
        "user 'ann' created; course1: enrolled in 'MATH101' as student (manual); "
        "course2: unknown course 'NOPE'",
    )
    assert platform.user("ann") is not None
    assert platform.enrolled("MATH101") == {"ann": True}


def test_unknown_role_and_method_name_their_columns(platform: FakePlatform) -> None:
    """Unknown role<N> and a method the course lacks are errors naming role<N>/enrol<N>."""
    one(platform, person("ann", city="Paris"))
    result = one(
        platform, person("ann", city="Lyon", course1="MATH101", role1="dean", course2="BIO1", enrol2="self")
    )
    assert result == RowResult(
        Outcome.ERROR,
        "user 'ann' updated: city; role1: unknown role 'dean'; "
        "enrol2: course 'BIO1' has no enrolment method 'self'",
    )
    assert platform.enrolments() == []
    unchanged = one(platform, person("ann", city="Lyon", course1="NOPE"))
    assert unchanged.reason == "user 'ann' unchanged; course1: unknown course 'NOPE'"


def test_deleted_and_skipped_rows_enrol_nobody(platform: FakePlatform) -> None:
    """Course columns apply only when the user row was created, updated or unchanged."""
    one(platform, person("ann"))
    results = run(platform, [person("ann", course1="MATH101", deleted="1"), person("bob", course1="MATH101")])
    assert [r.outcome for r in results] == [Outcome.DELETED, Outcome.CREATED]
    skipped = one(platform, person("cid", course1="MATH101"), mode="update_only")
    assert skipped.outcome is Outcome.SKIPPED
    assert platform.enrolled("MATH101") == {"bob": True}


def test_renamed_user_is_enrolled_under_the_new_name(platform: FakePlatform) -> None:
    """A row that renames a user enrols the renamed user."""
    one(platform, person("ann"))
    result = one(platform, person("anna", oldusername="ann", course1="MATH101"))
    assert result.outcome is Outcome.UPDATED
    assert platform.enrolled("MATH101") == {"anna": True}


# -- cohorts ---------------------------------------------------------------------------


def test_cohort_by_idnumber_then_name(platform: FakePlatform) -> None:
    """cohort<N> names a cohort by idnumber, else by name; adding twice is unchanged."""
    platform.seed_cohort("Staff")
    result = one(platform, person("ann", cohort1="Y1", cohort2="Staff"))
    assert result == RowResult(
        Outcome.CREATED, "user 'ann'; cohort1: added to 'Year 1'; cohort2: added to 'Staff'"
    )
    assert platform.members_of_cohort("Y1") == {"ann"}
    assert one(platform, person("ann", cohort1="Year 1")).outcome is Outcome.UNCHANGED


def test_unknown_cohort_is_an_error_unless_autocreate(platform: FakePlatform) -> None:
    """An unknown cohort fails the row; with cohort_autocreate it is made (name = idnumber = value)."""
    assert (
        one(platform, person("ann", cohort1="Y9")).reason
        == "user 'ann' created; cohort1: unknown cohort 'Y9'"
    )
    results = run(
        platform, [person("ann", cohort1="Y9"), person("bob", cohort1="Y9")], cohort_autocreate=True
    )
    assert results[0] == RowResult(Outcome.UPDATED, "user 'ann'; cohort1: added to 'Y9' (new cohort)")
    assert results[1].outcome is Outcome.CREATED
    made = platform.cohort("Y9")
    assert made is not None and made.name == "Y9"
    assert platform.members_of_cohort("Y9") == {"ann", "bob"}


def test_ambiguous_cohort_name_is_an_error(platform: FakePlatform) -> None:
    """Two cohorts with the name asked for (and no such idnumber) is a row error."""
    platform.seed_cohort("Staff", "S1")
    platform.seed_cohort("Staff", "S2")
    result = one(platform, person("ann", cohort1="Staff"))
    assert result.reason == "user 'ann' created; cohort1: 2 cohorts are named 'Staff' (use the idnumber)"


# -- batching ------------------------------------------------------------------------


def test_new_users_and_their_enrolments_are_written_in_batches(platform: FakePlatform) -> None:
    """Users created in the batch are added first, then enrolled with one call per kind."""
    rows = [
        person(f"u{i}", course1="MATH101", course2="BIO1", group2="G", cohort1="Y1", password="Secret-1")
        for i in range(12)
    ]
    calls: Counter[str] = Counter()
    with platform.transaction() as tx:
        results = build({}, CTX).apply(rows, cast(PlatformTx, CallSpy(tx, calls)))
    assert {r.outcome for r in results} == {Outcome.CREATED}
    assert calls == Counter(
        {
            "users.find": 1,
            "users.add": 1,
            "courses.find": 1,
            "roles.all": 1,
            "enrolments.methods": 1,
            "enrolments.find": 1,
            "enrolments.roles": 1,
            "groups.groups": 1,
            "cohorts.find": 1,
            "cohorts.members": 1,
            "enrolments.add": 1,
            "enrolments.assign": 1,
            "groups.add_groups": 1,
            "groups.add_members": 1,
            "cohorts.add_members": 1,
        }
    )
    assert len(platform.enrolled("MATH101")) == len(platform.enrolled("BIO1")) == 12
    assert len(platform.members_of_cohort("Y1")) == 12


def test_rows_without_course_columns_cost_no_extra_calls(platform: FakePlatform) -> None:
    """A users row without course columns behaves as before (no extra look-ups)."""
    platform.seed(UserRecord(username="old", firstname="O", lastname="L"))
    calls: Counter[str] = Counter()
    with platform.transaction() as tx:
        results = build({}, CTX).apply([person("old")], cast(PlatformTx, CallSpy(tx, calls)))
    assert results[0].outcome is Outcome.UPDATED
    assert calls == Counter({"users.find": 1, "users.update": 1})
