"""The cohorts and cohort_courses processors against the in-memory platform (SPEC §4)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from syncd.domain import ConfigError, Outcome, RowResult
from syncd.platform.base import PlatformTx, UserRecord
from syncd.platform.model import CohortRecord, CourseRecord, Enrolment, EnrolMethod, RoleAssignment
from syncd.processors import cohort_courses, cohorts
from syncd.processors.base import Row, RunContext
from tests.fakes import FakePlatform
from tests.unit.test_groups import CallCounter

CTX = RunContext(timezone=UTC, now=lambda: datetime(2026, 1, 1, tzinfo=UTC))


def row(line: int = 2, **values: str) -> Row:
    """A row with these values."""
    return Row(line, values)


def run_cohorts(platform: FakePlatform, rows: Sequence[Row], **options: Any) -> list[RowResult]:
    """Apply one cohorts batch in one committed transaction."""
    with platform.transaction() as tx:
        return cohorts.build(options, CTX).apply(rows, tx)


def run_bindings(platform: FakePlatform, rows: Sequence[Row], **options: Any) -> list[RowResult]:
    """Apply one cohort_courses batch in one committed transaction."""
    with platform.transaction() as tx:
        return cohort_courses.build(options, CTX).apply(rows, tx)


def outcomes(results: Sequence[RowResult]) -> list[Outcome]:
    return [r.outcome for r in results]


def users(platform: FakePlatform, *names: str) -> list[UserRecord]:
    """Users ``name`` with idnumber ``ID-name``."""
    return platform.seed(*(UserRecord(n, "A", "B", idnumber=f"ID-{n}", email=f"{n}@x.org") for n in names))


def join(platform: FakePlatform, cohort: CohortRecord, *people: UserRecord) -> None:
    """Make users members of a cohort."""
    platform.direct.cohorts.add_members({(cohort.id or 0, u.id or 0) for u in people})


@pytest.fixture
def platform() -> FakePlatform:
    return FakePlatform()


# -- cohorts: options ----------------------------------------------------------------


def test_cohorts_spec_options_and_schema() -> None:
    """cohorts registers at 30; cohort_key picks the required key column (aliases accepted)."""
    assert (cohorts.SPEC.name, cohorts.SPEC.priority) == ("cohorts", 30)
    assert cohorts.SPEC.options == {"cohort_key", "user_key", "autocreate"}
    processor = cohorts.build({}, CTX)
    assert processor.schema.required == {"cidnumber"}
    assert processor.schema.optional == {"cmd", "cname", "cid", "cdescription", "ccategory", "userid"}
    assert processor.describe() == "cohort_key=cidnumber user_key=idnumber autocreate=yes"
    assert cohorts.build({"cohort_key": "name"}, CTX).schema.required == {"cname"}
    assert cohorts.build({"cohort_key": "cid"}, CTX).schema.required == {"cid"}
    with pytest.raises(ConfigError, match="cohorts: option cohort_key must be one of cidnumber, cname, cid"):
        cohorts.build({"cohort_key": "code"}, CTX)
    with pytest.raises(ConfigError, match="cohorts: option autocreate must be true or false"):
        cohorts.build({"autocreate": "maybe"}, CTX)


# -- cohorts: add --------------------------------------------------------------------


def test_add_autocreates_the_cohort_and_its_member(platform: FakePlatform) -> None:
    """A missing cohort is created from cname/cidnumber/cdescription, then the user joins."""
    users(platform, "ann", "bob")
    results = run_cohorts(
        platform,
        [
            row(cidnumber="L1", cname="Licence 1", cdescription="first year", userid="ID-ann"),
            row(cidnumber="L1", cname="Licence 1", cdescription="first year", userid="ID-bob"),
            row(cidnumber="L2", userid=""),
        ],
    )
    assert results == [
        RowResult(Outcome.CREATED, "cohort 'Licence 1', user 'ann'"),
        RowResult(Outcome.CREATED, "user 'bob' in cohort 'Licence 1'"),
        RowResult(Outcome.CREATED, "cohort 'L2'"),
    ]
    l1 = platform.cohort("L1")
    assert l1 is not None and (l1.name, l1.description, l1.category_id) == ("Licence 1", "first year", None)
    assert platform.members_of_cohort("L1") == {"ann", "bob"}
    assert platform.members_of_cohort("L2") == set()


def test_autocreate_off_makes_a_missing_cohort_an_error(platform: FakePlatform) -> None:
    """autocreate=false: a cohort that does not exist is an unknown reference."""
    results = run_cohorts(platform, [row(cidnumber="L1", cname="Licence 1")], autocreate=False)
    assert results == [RowResult(Outcome.ERROR, "unknown cohort 'L1' (cidnumber)")]
    assert platform.cohorts() == []


def test_existing_cohort_is_updated_or_unchanged(platform: FakePlatform) -> None:
    """Present columns that differ update the cohort; an empty cname keeps the name."""
    cohort = platform.seed_cohort("Licence 1", "L1")
    [ann] = users(platform, "ann")
    join(platform, cohort, ann)
    results = run_cohorts(
        platform,
        [
            row(cidnumber="L1", cname="Licence 1", userid="ID-ann"),
            row(cidnumber="L1", cname="", cdescription="new"),
            row(cidnumber="L1", cname="L-One", userid="ID-ann"),
        ],
    )
    assert results == [
        RowResult(Outcome.UNCHANGED, "user 'ann' in cohort 'Licence 1'"),
        RowResult(Outcome.UPDATED, "cohort 'Licence 1': cdescription"),
        RowResult(Outcome.UPDATED, "cohort 'L-One': cname"),
    ]
    stored = platform.cohort("L1")
    assert stored is not None and (stored.name, stored.description) == ("L-One", "new")


def test_new_member_of_a_changed_cohort_says_both(platform: FakePlatform) -> None:
    """A row that adds a member and changes the cohort is created, naming the change."""
    platform.seed_cohort("Licence 1", "L1")
    users(platform, "ann")
    results = run_cohorts(platform, [row(cidnumber="L1", cdescription="x", userid="ID-ann")])
    reason = "user 'ann' in cohort 'Licence 1' (cohort updated: cdescription)"
    assert results == [RowResult(Outcome.CREATED, reason)]


def test_ccategory_by_path_or_id_and_empty_for_system(platform: FakePlatform) -> None:
    """ccategory names an existing category by path or id; empty = system; unknown = error."""
    top = platform.seed_category("Science")
    sub = platform.seed_category("Physics", parent_id=top.id)
    results = run_cohorts(
        platform,
        [
            row(cidnumber="P", cname="P", ccategory="Science / Physics"),
            row(cidnumber="S", cname="S", ccategory=str(top.id)),
            row(cidnumber="X", cname="X", ccategory="Science/Maths"),
            row(cidnumber="Y", cname="Y", ccategory="99"),
            row(cidnumber="S", ccategory=""),
        ],
    )
    assert outcomes(results) == [Outcome.CREATED] * 2 + [Outcome.ERROR] * 2 + [Outcome.UPDATED]
    assert results[2].reason == "unknown category 'Science/Maths' (ccategory)"
    assert results[3].reason == "unknown category '99' (ccategory)"
    assert {c.idnumber: c.category_id for c in platform.cohorts()} == {"P": sub.id, "S": None}


def test_all_digit_ccategory_is_an_id_first_then_a_name(platform: FakePlatform) -> None:
    """An all-digit ccategory is the id of an existing category, else a top-level name."""
    first = platform.seed_category("Misc")
    year = platform.seed_category("2026")
    rows = [row(cidnumber="A", ccategory=str(first.id)), row(cidnumber="B", ccategory="2026")]
    results = run_cohorts(platform, rows)
    assert outcomes(results) == [Outcome.CREATED, Outcome.CREATED]
    assert {c.idnumber: c.category_id for c in platform.cohorts()} == {"A": first.id, "B": year.id}


def test_cohort_key_cname_and_cid(platform: FakePlatform) -> None:
    """cohort_key=cname finds by name (ambiguity is an error); cid finds by id and never creates."""
    one = platform.seed_cohort("One", "C1")
    platform.seed_cohort("Twin", "T1")
    platform.seed_cohort("Twin", "T2")
    by_name = run_cohorts(platform, [row(cname="One", cdescription="d"), row(cname="Twin", cdescription="d")],
                          cohort_key="cname")
    assert by_name[0] == RowResult(Outcome.UPDATED, "cohort 'One': cdescription")
    assert by_name[1] == RowResult(Outcome.ERROR, "cname: 'Twin' names 2 cohorts (use cohort_key cidnumber)")
    by_id = run_cohorts(platform, [row(cid=str(one.id), cidnumber="C-1"), row(cid="99"), row(cid="x")],
                        cohort_key="id")
    assert by_id[0] == RowResult(Outcome.UPDATED, "cohort 'One': cidnumber")
    assert by_id[1].reason == "unknown cohort '99' (cid): a new cohort cannot be given an id"
    assert by_id[2] == RowResult(Outcome.ERROR, "cid: invalid cohort id 'x'")


def test_cidnumber_of_another_cohort_is_a_row_error(platform: FakePlatform) -> None:
    """Setting an idnumber another cohort has is refused, naming the owner."""
    platform.seed_cohort("One", "C1")
    platform.seed_cohort("Two", "C2")
    results = run_cohorts(platform, [row(cname="Two", cidnumber="C1")], cohort_key="cname")
    assert results == [RowResult(Outcome.ERROR, "cidnumber: 'C1' already belongs to cohort 'One'")]


def test_cidnumber_given_up_goes_to_a_new_cohort(platform: FakePlatform) -> None:
    """An idnumber an earlier row takes from a cohort may go to a cohort created later in the batch."""
    platform.seed_cohort("One", "C1")
    rows = [row(cname="One", cidnumber=""), row(cname="New", cidnumber="C1")]
    assert outcomes(run_cohorts(platform, rows, cohort_key="cname")) == [Outcome.UPDATED, Outcome.CREATED]
    assert {c.name: c.idnumber for c in platform.cohorts()} == {"One": None, "New": "C1"}


# -- cohorts: del, free, delete ------------------------------------------------------


def test_del_removes_the_member(platform: FakePlatform) -> None:
    """del takes userid out; a non-member is skipped; no userid is an error."""
    cohort = platform.seed_cohort("One", "C1")
    ann, _bob = users(platform, "ann", "bob")
    join(platform, cohort, ann)
    results = run_cohorts(
        platform,
        [
            row(cidnumber="C1", userid="ID-ann", cmd="del"),
            row(cidnumber="C1", userid="ID-bob", cmd="del"),
            row(cidnumber="C1", userid="", cmd="del"),
            row(cidnumber="C9", userid="ID-ann", cmd="del"),
        ],
    )
    assert results == [
        RowResult(Outcome.DELETED, "user 'ann' in cohort 'One'"),
        RowResult(Outcome.SKIPPED, "user 'bob' in cohort 'One': not a member"),
        RowResult(Outcome.ERROR, "userid: empty value; cmd del takes a user out of the cohort"),
        RowResult(Outcome.ERROR, "unknown cohort 'C9' (cidnumber)"),
    ]
    assert platform.members_of_cohort("C1") == set()


def test_free_empties_the_cohort_which_stays(platform: FakePlatform) -> None:
    """free removes every member and keeps the cohort; an empty cohort is unchanged."""
    cohort = platform.seed_cohort("One", "C1")
    join(platform, cohort, *users(platform, "ann", "bob"))
    results = run_cohorts(platform, [row(cidnumber="C1", cmd="free"), row(cidnumber="C1", cmd="free")])
    assert results == [
        RowResult(Outcome.DELETED, "cohort 'One': 2 members taken out"),
        RowResult(Outcome.UNCHANGED, "cohort 'One': no members"),
    ]
    assert platform.cohort("C1") is not None and platform.cohort_members() == set()


def test_delete_removes_the_cohort_and_its_bindings(platform: FakePlatform) -> None:
    """cmd=delete deletes the cohort, its members and its cohort-sync methods; unknown = skipped."""
    cohort = platform.seed_cohort("One", "C1")
    course = platform.seed_course("MATH")
    join(platform, cohort, *users(platform, "ann"))
    method = EnrolMethod(course.id or 0, "cohort", cohort_id=cohort.id, role_id=4)
    platform.direct.enrolments.add_methods([method])
    results = run_cohorts(platform, [row(cidnumber="C1", cmd="delete"), row(cidnumber="C1", cmd="delete")])
    assert results == [
        RowResult(Outcome.DELETED, "cohort 'One'"),
        RowResult(Outcome.SKIPPED, "no cohort 'C1' to delete"),
    ]
    assert platform.cohorts() == [] and platform.cohort_members() == set()
    assert [m.method for m in platform.methods()] == ["manual"]


def test_delete_then_add_recreates_in_one_batch(platform: FakePlatform) -> None:
    """Rows apply in order: a cohort deleted by one row can be created again by the next."""
    old = platform.seed_cohort("One", "C1")
    users(platform, "ann")
    results = run_cohorts(platform, [row(cidnumber="C1", cmd="delete"), row(cidnumber="C1", userid="ID-ann")])
    assert outcomes(results) == [Outcome.DELETED, Outcome.CREATED]
    [new] = platform.cohorts()
    assert new.id != old.id and platform.members_of_cohort("C1") == {"ann"}


def test_unknown_user_and_bad_cmd_are_row_errors(platform: FakePlatform) -> None:
    """An unknown userid and an unknown cmd name their column and value."""
    results = run_cohorts(platform, [row(cidnumber="C1", userid="ID-zed"), row(cidnumber="C1", cmd="drop")])
    assert [r.reason for r in results] == [
        "unknown user 'ID-zed' (userid)",
        "cmd: invalid command 'drop' (expected add, del, free, delete)",
    ]
    assert platform.cohorts() == []


def test_user_key_option(platform: FakePlatform) -> None:
    """user_key=username finds userid by username."""
    users(platform, "ann")
    assert outcomes(run_cohorts(platform, [row(cidnumber="C1", userid="ann")], user_key="username")) == [
        Outcome.CREATED
    ]
    assert platform.members_of_cohort("C1") == {"ann"}


def test_cohorts_batch_reads_and_writes_once_per_kind(platform: FakePlatform) -> None:
    """100 rows over 5 cohorts: one find, one members read, one users find, one write per kind."""
    people = users(platform, *(f"u{i}" for i in range(20)))
    platform.seed_cohort("Old", "C0")
    rows = [row(cidnumber=f"C{c}", cname=f"Cohort {c}", userid=f"ID-{u.username}")
            for c in range(5) for u in people]
    with platform.transaction() as tx:
        counter = CallCounter(tx)
        results = cohorts.build({}, CTX).apply(rows, cast(PlatformTx, counter))
    assert Counter(outcomes(results)) == {Outcome.CREATED: 100}
    assert counter.calls == Counter({
        "cohorts.find": 1, "cohorts.members": 1, "users.find": 1, "enrolments.methods_of_cohorts": 1,
        "cohorts.add": 1, "cohorts.update": 1, "cohorts.add_members": 1,
    })
    assert len(platform.cohort_members()) == 100


# -- cohort_courses ------------------------------------------------------------------


@pytest.fixture
def setup(platform: FakePlatform) -> tuple[CohortRecord, CourseRecord, list[UserRecord]]:
    """Cohort 'Licence 1' (L1) with ann and bob; course MATH101 with its manual method."""
    cohort = platform.seed_cohort("Licence 1", "L1")
    course = platform.seed_course("MATH101")
    people = users(platform, "ann", "bob", "cid")
    join(platform, cohort, *people[:2])
    return cohort, course, people


def binding(platform: FakePlatform) -> EnrolMethod:
    """The one cohort-sync method of the platform."""
    [method] = [m for m in platform.methods() if m.method == "cohort"]
    return method


def test_cohort_courses_spec_and_options() -> None:
    """cohort_courses registers at 70; keys are checked when built."""
    spec = cohort_courses.SPEC
    assert (spec.name, spec.priority, spec.sniff) == ("cohort_courses", 70, {"cohort", "course"})
    assert spec.options == {"cohort_key", "course_key"}
    processor = cohort_courses.build({}, CTX)
    assert processor.schema.required == {"cohort", "course"}
    assert processor.schema.optional == {"role", "cmd", "makegroup"}
    assert processor.describe() == "cohort_key=idnumber course_key=shortname"
    with pytest.raises(ConfigError, match="cohort_courses: option cohort_key must be one of idnumber, name"):
        cohort_courses.build({"cohort_key": "cidnumber"}, CTX)


def test_add_binds_and_enrols_every_member(platform: FakePlatform, setup: Any) -> None:
    """add creates the cohort method with the role, enrols each member and gives the role."""
    cohort, course, _ = setup
    line = row(cohort="L1", course="MATH101")
    assert run_bindings(platform, [line]) == [
        RowResult(Outcome.CREATED, "cohort 'Licence 1' in course 'MATH101' as student: 2 enrolled")
    ]
    method = binding(platform)
    roles = platform.roles()
    assert (method.course_id, method.cohort_id, method.role_id, method.enabled) == (
        course.id, cohort.id, roles["student"], True,
    )
    assert platform.enrolled("MATH101") == {"ann": True, "bob": True}
    assert {e.method_id for e in platform.enrolments()} == {method.id}
    assert platform.course_roles("MATH101") == {("ann", "student"), ("bob", "student")}
    assert run_bindings(platform, [line]) == [
        RowResult(Outcome.UNCHANGED, "cohort 'Licence 1' in course 'MATH101' as student")
    ]


def test_add_syncs_joiners_and_leavers(platform: FakePlatform, setup: Any) -> None:
    """A later add enrols new members and unenrols those who left (role and groups go too)."""
    cohort, _course, (ann, _bob, cid) = setup
    run_bindings(platform, [row(cohort="L1", course="MATH101", makegroup="1")])
    platform.direct.cohorts.remove_members({(cohort.id, ann.id)})
    join(platform, cohort, cid)
    results = run_bindings(platform, [row(cohort="L1", course="MATH101")])
    assert results == [
        RowResult(Outcome.UPDATED, "cohort 'Licence 1' in course 'MATH101' as student: "
                                   "1 enrolled, 1 unenrolled, 1 added to the group")
    ]
    assert platform.enrolled("MATH101") == {"bob": True, "cid": True}
    assert platform.course_roles("MATH101") == {("bob", "student"), ("cid", "student")}
    assert platform.members_of_group("MATH101", "Licence 1") == {"bob", "cid"}


def test_add_gives_back_a_role_taken_away(platform: FakePlatform, setup: Any) -> None:
    """A member still enrolled through the binding but without its role gets it back on add."""
    _cohort, course, (ann, _bob, _cid) = setup
    run_bindings(platform, [row(cohort="L1", course="MATH101")])
    student = platform.roles()["student"]
    platform.direct.enrolments.unassign([RoleAssignment(course.id or 0, ann.id or 0, student)])
    results = run_bindings(platform, [row(cohort="L1", course="MATH101")])
    what = "cohort 'Licence 1' in course 'MATH101' as student"
    assert results == [RowResult(Outcome.UPDATED, f"{what}: 1 given the role")]
    assert ("ann", "student") in platform.course_roles("MATH101")


def test_role_change_moves_the_role(platform: FakePlatform, setup: Any) -> None:
    """add with another role updates the binding's role: members get it and lose the old one."""
    run_bindings(platform, [row(cohort="L1", course="MATH101")])
    results = run_bindings(platform, [row(cohort="L1", course="MATH101", role="Teacher")])
    what = "cohort 'Licence 1' in course 'MATH101' as teacher"
    assert results == [RowResult(Outcome.UPDATED, f"{what}: role teacher, 2 given the role")]
    assert binding(platform).role_id == platform.roles()["teacher"]
    assert platform.course_roles("MATH101") == {("ann", "teacher"), ("bob", "teacher")}


def test_unknown_references_are_row_errors(platform: FakePlatform, setup: Any) -> None:
    """Unknown cohort, course and role name their column; a bad cmd too."""
    results = run_bindings(
        platform,
        [
            row(cohort="L9", course="MATH101"),
            row(cohort="L1", course="NOPE"),
            row(cohort="L1", course="MATH101", role="dean"),
            row(cohort="L1", course="MATH101", cmd="remove"),
        ],
    )
    assert [r.reason for r in results] == [
        "unknown cohort 'L9' (cohort)",
        "unknown course 'NOPE' (course)",
        "unknown role 'dean' (role)",
        "cmd: invalid command 'remove' (expected add, del, restore, fulldel)",
    ]
    assert [m.method for m in platform.methods()] == ["manual"]


def test_del_disables_and_restore_reenables(platform: FakePlatform, setup: Any) -> None:
    """del disables the method and suspends its enrolments (roles stay); restore undoes it."""
    run_bindings(platform, [row(cohort="L1", course="MATH101")])
    what = "cohort 'Licence 1' in course 'MATH101'"
    results = run_bindings(platform, [row(cohort="L1", course="MATH101", cmd="del"),
                                      row(cohort="L1", course="MATH101", cmd="del")])
    assert results == [
        RowResult(Outcome.DELETED, f"{what}: disabled, 2 enrolments suspended"),
        RowResult(Outcome.UNCHANGED, f"{what}: already disabled"),
    ]
    assert not binding(platform).enabled
    assert platform.enrolled("MATH101") == {"ann": False, "bob": False}
    assert len(platform.course_roles("MATH101")) == 2
    results = run_bindings(platform, [row(cohort="L1", course="MATH101", cmd="restore"),
                                      row(cohort="L1", course="MATH101", cmd="restore")])
    assert results == [
        RowResult(Outcome.UPDATED, f"{what}: enabled, 2 enrolments reactivated"),
        RowResult(Outcome.UNCHANGED, f"{what}: already enabled"),
    ]
    assert binding(platform).enabled and platform.enrolled("MATH101") == {"ann": True, "bob": True}


def test_add_on_a_disabled_binding_enables_it(platform: FakePlatform, setup: Any) -> None:
    """add on a disabled binding enables it and reactivates the enrolments."""
    line = row(cohort="L1", course="MATH101")
    run_bindings(platform, [line, row(cohort="L1", course="MATH101", cmd="del")])
    results = run_bindings(platform, [line])
    what = "cohort 'Licence 1' in course 'MATH101' as student"
    assert results == [RowResult(Outcome.UPDATED, f"{what}: enabled, 2 reactivated")]
    assert platform.enrolled("MATH101") == {"ann": True, "bob": True}


def test_no_binding_to_change_is_skipped(platform: FakePlatform, setup: Any) -> None:
    """del, restore and fulldel of a cohort not bound to the course are skipped."""
    rows = [row(cohort="L1", course="MATH101", cmd=c) for c in ("del", "restore", "fulldel")]
    reason = "cohort 'Licence 1' in course 'MATH101': no such binding"
    assert run_bindings(platform, rows) == [RowResult(Outcome.SKIPPED, reason)] * 3


def test_fulldel_removes_binding_enrolments_and_given_roles(platform: FakePlatform, setup: Any) -> None:
    """fulldel deletes the method and its enrolments; a user with no enrolment left loses roles
    and groups there, one also enrolled manually keeps the role (it may come from there)."""
    _cohort, course, (ann, bob, _cid) = setup
    run_bindings(platform, [row(cohort="L1", course="MATH101", makegroup="Team")])
    [manual] = [m for m in platform.methods() if m.method == "manual"]
    platform.direct.enrolments.add([Enrolment(manual.id or 0, course.id or 0, bob.id or 0)])
    results = run_bindings(platform, [row(cohort="L1", course="MATH101", cmd="fulldel")])
    reason = "cohort 'Licence 1' in course 'MATH101': binding deleted, 2 users unenrolled"
    assert results == [RowResult(Outcome.DELETED, reason)]
    assert [m.method for m in platform.methods()] == ["manual"]
    assert platform.enrolled("MATH101") == {"bob": True}
    assert platform.course_roles("MATH101") == {("bob", "student")}
    assert platform.members_of_group("MATH101", "Team") == {"bob"}
    assert ann.id not in {u for _g, u in platform.group_members()}


def test_fulldel_drops_a_role_no_other_method_gives(platform: FakePlatform, setup: Any) -> None:
    """A user still enrolled through another cohort binding with another role loses this one."""
    cohort, _course, people = setup
    other = platform.seed_cohort("Tutors", "T")
    join(platform, other, people[0])
    run_bindings(platform, [row(cohort="L1", course="MATH101"),
                            row(cohort="T", course="MATH101", role="teacher")])
    run_bindings(platform, [row(cohort="L1", course="MATH101", cmd="fulldel")])
    assert platform.enrolled("MATH101") == {"ann": True}
    assert platform.course_roles("MATH101") == {("ann", "teacher")}
    assert cohort.id not in {m.cohort_id for m in platform.methods()}


def test_makegroup_true_name_and_false(platform: FakePlatform, setup: Any) -> None:
    """makegroup true: a group named like the cohort with the members; a name: that group
    (existing reused); false: the binding stops feeding a group."""
    _cohort, course, _ = setup
    existing = platform.seed_group(course.id or 0, "Team")
    what = "cohort 'Licence 1' in course 'MATH101' as student"
    results = run_bindings(platform, [row(cohort="L1", course="MATH101", makegroup="yes")])
    assert results == [RowResult(Outcome.CREATED, f"{what}: group 'Licence 1' (created), 2 enrolled, "
                                                  "2 added to the group")]
    created = next(g for g in platform.groups() if g.name == "Licence 1")
    assert binding(platform).group_id == created.id
    assert platform.members_of_group("MATH101", "Licence 1") == {"ann", "bob"}
    results = run_bindings(platform, [row(cohort="L1", course="MATH101", makegroup="Team")])
    assert results == [RowResult(Outcome.UPDATED, f"{what}: group 'Team', 2 added to the group")]
    assert binding(platform).group_id == existing.id
    results = run_bindings(platform, [row(cohort="L1", course="MATH101", makegroup="0")])
    assert results == [RowResult(Outcome.UPDATED, f"{what}: no group")]
    assert binding(platform).group_id is None


def test_add_then_fulldel_in_one_batch_leaves_nothing(platform: FakePlatform, setup: Any) -> None:
    """Rows apply in order: a binding made and fully deleted in one batch leaves no trace."""
    results = run_bindings(platform, [row(cohort="L1", course="MATH101", makegroup="1"),
                                      row(cohort="L1", course="MATH101", cmd="fulldel"),
                                      row(cohort="L1", course="MATH101", role="teacher")])
    assert outcomes(results) == [Outcome.CREATED, Outcome.DELETED, Outcome.CREATED]
    assert binding(platform).role_id == platform.roles()["teacher"]
    assert platform.course_roles("MATH101") == {("ann", "teacher"), ("bob", "teacher")}
    assert platform.members_of_group("MATH101", "Licence 1") == set()


def test_cohort_and_course_keys(platform: FakePlatform, setup: Any) -> None:
    """cohort_key=name and course_key=id read the columns as those fields."""
    _cohort, course, _ = setup
    results = run_bindings(platform, [row(cohort="Licence 1", course=str(course.id))],
                           cohort_key="name", course_key="id")
    assert outcomes(results) == [Outcome.CREATED]
    assert platform.enrolled("MATH101") == {"ann": True, "bob": True}


def test_cohort_courses_batch_reads_and_writes_once_per_kind(platform: FakePlatform) -> None:
    """20 bindings over 10 courses and 2 cohorts: one read per kind, one write per kind."""
    people = users(platform, *(f"u{i}" for i in range(10)))
    for name in ("A", "B"):
        join(platform, platform.seed_cohort(name, name), *people)
    for i in range(10):
        platform.seed_course(f"C{i}")
    rows = [row(cohort=c, course=f"C{i}", makegroup="1") for i in range(10) for c in ("A", "B")]
    with platform.transaction() as tx:
        counter = CallCounter(tx)
        results = cohort_courses.build({}, CTX).apply(rows, cast(PlatformTx, counter))
    assert Counter(outcomes(results)) == {Outcome.CREATED: 20}
    assert counter.calls == Counter({
        "cohorts.find": 1, "courses.find": 1, "roles.all": 1, "cohorts.members": 1, "users.deleted": 1,
        "groups.groups": 1, "enrolments.in_courses": 1, "enrolments.methods": 1,
        "enrolments.roles_in_courses": 1, "groups.add_groups": 1, "groups.add_members": 1,
        "enrolments.add_methods": 1, "enrolments.add": 1, "enrolments.assign": 1,
    })
    assert len(platform.enrolments()) == 200


# -- cohort membership changes reach bound courses at once ----------------------------


def test_joining_a_cohort_enrols_through_its_bindings(platform: FakePlatform, setup: Any) -> None:
    """A new cohort member is enrolled through each enabled binding, with its role and group."""
    run_bindings(platform, [row(cohort="L1", course="MATH101", makegroup="1")])
    physics = platform.seed_course("PHYS")
    run_bindings(platform, [row(cohort="L1", course="PHYS", role="teacher")])
    assert outcomes(run_cohorts(platform, [row(cidnumber="L1", userid="ID-cid")])) == [Outcome.CREATED]
    assert platform.enrolled("MATH101") == {"ann": True, "bob": True, "cid": True}
    assert ("cid", "student") in platform.course_roles("MATH101")
    assert platform.members_of_group("MATH101", "Licence 1") == {"ann", "bob", "cid"}
    assert platform.enrolled("PHYS") == {"ann": True, "bob": True, "cid": True}
    assert ("cid", "teacher") in platform.course_roles("PHYS")
    assert physics.id is not None


def test_joining_does_not_enrol_through_a_disabled_binding(platform: FakePlatform, setup: Any) -> None:
    """A disabled binding (cohort_courses del) does not enrol a new member."""
    run_bindings(platform, [row(cohort="L1", course="MATH101")])
    run_bindings(platform, [row(cohort="L1", course="MATH101", cmd="del")])
    run_cohorts(platform, [row(cidnumber="L1", userid="ID-cid")])
    assert platform.members_of_cohort("L1") == {"ann", "bob", "cid"}
    assert platform.enrolled("MATH101") == {"ann": False, "bob": False}


def test_leaving_a_cohort_unenrols_with_roles_and_groups(platform: FakePlatform, setup: Any) -> None:
    """del unenrols the member: with no enrolment left in the course its roles and groups go;
    one also enrolled manually keeps its enrolment, role and group (free takes everyone out)."""
    _cohort, course, (_ann, bob, _cid) = setup
    run_bindings(platform, [row(cohort="L1", course="MATH101", makegroup="Team")])
    [manual] = [m for m in platform.methods() if m.method == "manual"]
    platform.direct.enrolments.add([Enrolment(manual.id or 0, course.id or 0, bob.id or 0)])
    results = run_cohorts(platform, [row(cidnumber="L1", cmd="del", userid="ID-ann")])
    assert outcomes(results) == [Outcome.DELETED]
    assert platform.enrolled("MATH101") == {"bob": True}
    assert platform.course_roles("MATH101") == {("bob", "student")}
    assert platform.members_of_group("MATH101", "Team") == {"bob"}
    run_cohorts(platform, [row(cidnumber="L1", cmd="free")])
    assert platform.enrolled("MATH101") == {"bob": True}
    assert [e.method_id for e in platform.enrolments()] == [manual.id]
    assert platform.course_roles("MATH101") == {("bob", "student")}
    assert platform.members_of_group("MATH101", "Team") == {"bob"}


def test_deleting_a_cohort_takes_what_its_binding_gave(platform: FakePlatform, setup: Any) -> None:
    """delete of a bound cohort unenrols its members, with the roles and groups they got there."""
    run_bindings(platform, [row(cohort="L1", course="MATH101", makegroup="1")])
    assert outcomes(run_cohorts(platform, [row(cidnumber="L1", cmd="delete")])) == [Outcome.DELETED]
    assert platform.enrolments() == [] and platform.role_assignments() == []
    assert platform.group_members() == set()
    assert [m.method for m in platform.methods()] == ["manual"]


def test_join_and_leave_in_one_batch_change_nothing(platform: FakePlatform, setup: Any) -> None:
    """Rows apply in order: joined then taken out in the same batch leaves no enrolment."""
    run_bindings(platform, [row(cohort="L1", course="MATH101")])
    run_cohorts(platform, [row(cidnumber="L1", userid="ID-cid"),
                           row(cidnumber="L1", cmd="del", userid="ID-cid")])
    assert platform.enrolled("MATH101") == {"ann": True, "bob": True}


def test_soft_deleted_member_is_never_enrolled(platform: FakePlatform, setup: Any) -> None:
    """A soft-deleted user in a cohort is not enrolled by cohort_courses add nor by joining."""
    cohort, _course, _people = setup
    [dan, eve] = platform.seed(UserRecord("dan", idnumber="ID-dan", deleted=True),
                               UserRecord("eve", idnumber="ID-eve", deleted=True))
    join(platform, cohort, dan)
    run_bindings(platform, [row(cohort="L1", course="MATH101")])
    assert platform.enrolled("MATH101") == {"ann": True, "bob": True}
    results = run_cohorts(platform, [row(cidnumber="L1", userid="ID-eve")])
    assert results == [RowResult(Outcome.ERROR, "unknown user 'ID-eve' (userid)")]
    assert platform.members_of_cohort("L1") == {"ann", "bob", "dan"}
    assert platform.enrolled("MATH101") == {"ann": True, "bob": True}
    assert eve.id not in {a.user_id for a in platform.role_assignments()}


def test_cohort_sync_reads_once_per_batch(platform: FakePlatform) -> None:
    """Joiners of 5 bound cohorts over 5 courses: one read per kind, one write per kind."""
    people = users(platform, *(f"u{i}" for i in range(20)))
    for c in range(5):
        platform.seed_cohort(f"Cohort {c}", f"C{c}")
        platform.seed_course(f"K{c}")
    run_bindings(platform, [row(cohort=f"C{c}", course=f"K{c}") for c in range(5)])
    rows = [row(cidnumber=f"C{c}", userid=f"ID-{u.username}") for c in range(5) for u in people]
    with platform.transaction() as tx:
        counter = CallCounter(tx)
        cohorts.build({}, CTX).apply(rows, cast(PlatformTx, counter))
    assert counter.calls == Counter({
        "cohorts.find": 1, "cohorts.members": 1, "users.find": 1, "enrolments.methods_of_cohorts": 1,
        "groups.groups": 1, "enrolments.in_courses": 1, "enrolments.methods": 1,
        "enrolments.roles_in_courses": 1, "enrolments.add": 1, "enrolments.assign": 1,
        "cohorts.add_members": 1,
    })
    assert len(platform.enrolments()) == 100
