"""The fake platform's test helpers for the course model (its contract is pinned, against the
SQL store's, in tests/integration/test_sqlstore_model.py)."""

from __future__ import annotations

import pytest

from syncd.platform.base import UserRecord
from syncd.platform.model import DEFAULT_ROLES, CourseRecord, Enrolment, RoleAssignment
from tests.fakes import FakeIntegrityError, FakePlatform


def test_seed_course_makes_a_category_and_a_manual_method() -> None:
    """seed_course stores the course in a new category with its manual enrolment method."""
    platform = FakePlatform()
    course = platform.seed_course("MATH101")
    second = platform.seed_course("PHYS", idnumber="P1")
    assert [c.name for c in platform.categories()] == ["Misc"]
    assert course.category_id == second.category_id
    methods = [(m.course_id, m.method) for m in platform.methods()]
    assert methods == [(course.id, "manual"), (second.id, "manual")]
    assert platform.course("PHYS") == second and platform.transactions == 0


def test_extra_roles_follow_the_default_ones() -> None:
    """Roles given to the constructor get ids after DEFAULT_ROLES, whose ids stay 1..n."""
    roles = FakePlatform(roles=("auditor", "student")).roles()
    assert [roles[r] for r in DEFAULT_ROLES] == list(range(1, len(DEFAULT_ROLES) + 1))
    assert roles["auditor"] == len(DEFAULT_ROLES) + 1 and len(roles) == len(DEFAULT_ROLES) + 1


def test_readable_views_name_users_roles_and_groups() -> None:
    """enrolled, course_roles, members_of_group and members_of_cohort speak usernames."""
    platform = FakePlatform()
    ann, bob = platform.seed(UserRecord(username="ann"), UserRecord(username="bob"))
    course = platform.seed_course("C1")
    group = platform.seed_group(course.id or 0, "G")
    cohort = platform.seed_cohort("Year 1", "Y1")
    [method] = platform.methods()
    with platform.transaction() as tx:
        tx.enrolments.add([Enrolment(method.id or 0, course.id or 0, ann.id or 0),
                           Enrolment(method.id or 0, course.id or 0, bob.id or 0, active=False)])
        tx.enrolments.assign([RoleAssignment(course.id or 0, ann.id or 0, tx.roles.all()["student"])])
        tx.groups.add_members([(group.id or 0, bob.id or 0)])
        tx.cohorts.add_members([(cohort.id or 0, ann.id or 0)])
    assert platform.enrolled("C1") == {"ann": True, "bob": False}
    assert platform.course_roles("C1") == {("ann", "student")}
    assert platform.members_of_group("C1", "G") == {"bob"}
    assert platform.members_of_cohort("Y1") == {"ann"}


def test_a_failed_write_rolls_the_whole_transaction_back() -> None:
    """A FakeIntegrityError raised in a transaction undoes its earlier writes too."""
    platform = FakePlatform()
    platform.seed_course("C1")
    broken = pytest.raises(FakeIntegrityError, match="duplicate course shortname 'C1'")
    with broken, platform.transaction() as tx:
        tx.courses.add([CourseRecord("C2", "C2", 1)])
        tx.courses.add([CourseRecord("C1", "again", 1)])
    assert [c.shortname for c in platform.courses()] == ["C1"] and platform.rollbacks == 1


def test_records_are_copies() -> None:
    """Changing a record read from the fake does not change what it stores."""
    platform = FakePlatform()
    platform.seed_course("C1")
    with platform.transaction() as tx:
        [course] = tx.courses.find(shortnames=["C1"])
        course.fullname = "changed without update()"
    stored = platform.course("C1")
    assert stored is not None and stored.fullname == "C1"
