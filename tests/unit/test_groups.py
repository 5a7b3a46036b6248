"""The groups and group_members processors against the in-memory platform (SPEC §4)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from syncd.domain import ConfigError, Outcome, RowResult
from syncd.platform.base import PlatformTx, UserRecord
from syncd.platform.model import CourseRecord, Enrolment, GroupingRecord
from syncd.processors import group_members, groups
from syncd.processors.base import Row, RunContext
from tests.fakes import FakePlatform

CTX = RunContext(timezone=UTC, now=lambda: datetime(2026, 1, 1, tzinfo=UTC))


class CallCounter:
    """A PlatformTx wrapper that counts every repository call as ``repo.method``."""

    def __init__(self, tx: Any) -> None:
        self._tx = tx
        self.calls: Counter[str] = Counter()

    def __getattr__(self, repo_name: str) -> Any:
        repo = getattr(self._tx, repo_name)
        counter = self

        class _Spy:
            def __getattr__(self, method: str) -> Callable[..., Any]:
                real = getattr(repo, method)

                def call(*args: Any, **kwargs: Any) -> Any:
                    counter.calls[f"{repo_name}.{method}"] += 1
                    return real(*args, **kwargs)

                return call

        return _Spy()


def row(line: int = 2, **values: str) -> Row:
    """A row with these values."""
    return Row(line, values)


def run_groups(platform: FakePlatform, rows: Sequence[Row], **options: Any) -> list[RowResult]:
    """Apply one groups batch in one committed transaction."""
    with platform.transaction() as tx:
        return groups.build(options, CTX).apply(rows, tx)


def run_members(platform: FakePlatform, rows: Sequence[Row], **options: Any) -> list[RowResult]:
    """Apply one group_members batch in one committed transaction."""
    with platform.transaction() as tx:
        return group_members.build(options, CTX).apply(rows, tx)


def outcomes(results: Sequence[RowResult]) -> list[Outcome]:
    return [r.outcome for r in results]


@pytest.fixture
def platform() -> FakePlatform:
    return FakePlatform()


@pytest.fixture
def math(platform: FakePlatform) -> CourseRecord:
    """Course MATH101 (idnumber M-101)."""
    return platform.seed_course("MATH101", idnumber="M-101")


def enrol(platform: FakePlatform, course: CourseRecord, *users: UserRecord, active: bool = True) -> None:
    """Enrol users through the course's manual method."""
    [manual] = [m for m in platform.methods() if m.course_id == course.id and m.method == "manual"]
    assert manual.id is not None and course.id is not None
    platform.direct.enrolments.add(
        [Enrolment(manual.id, course.id, u.id or 0, active=active) for u in users]
    )


def users(platform: FakePlatform, *names: str) -> list[UserRecord]:
    """Users ``name`` with idnumber ``ID-name`` and email ``name@x.org``."""
    return platform.seed(*(UserRecord(n, "A", "B", idnumber=f"ID-{n}", email=f"{n}@x.org") for n in names))


# -- groups: options -----------------------------------------------------------------


def test_groups_spec_and_options() -> None:
    """groups registers at priority 40 with its sniffing columns; a bad course_key is refused."""
    assert (groups.SPEC.name, groups.SPEC.priority) == ("groups", 40)
    assert groups.SPEC.sniff == {"courseid", "name"}
    assert groups.SPEC.options == {"course_key"}
    processor = groups.build({}, CTX)
    assert processor.schema.required == {"courseid", "name"}
    assert processor.schema.optional == {"idnumber", "type", "grouping", "description"}
    assert processor.describe() == "course_key=shortname"
    with pytest.raises(ConfigError, match=r"groups: option course_key must be one of shortname, idnumber"):
        groups.build({"course_key": "fullname"}, CTX)


# -- groups: create and update -------------------------------------------------------


def test_group_is_created_with_its_fields(platform: FakePlatform, math: CourseRecord) -> None:
    """A new group gets the row's idnumber and description; the reason names group and course."""
    results = run_groups(platform, [row(courseid="MATH101", name="G1", idnumber="g-1", description="Tue")])
    assert results == [RowResult(Outcome.CREATED, "group 'G1' in course 'MATH101'")]
    [group] = platform.groups()
    assert (group.course_id, group.name, group.idnumber, group.description) == (math.id, "G1", "g-1", "Tue")


@pytest.mark.parametrize(("key", "value"), [("idnumber", "M-101"), ("id", "1")])
def test_course_key_option_selects_the_course_column(
    platform: FakePlatform, math: CourseRecord, key: str, value: str
) -> None:
    """course_key=idnumber or id reads courseid as that field."""
    assert math.id == 1
    results = run_groups(platform, [row(courseid=value, name="G1")], course_key=key)
    assert outcomes(results) == [Outcome.CREATED]
    assert [g.course_id for g in platform.groups()] == [math.id]


def test_unknown_course_is_a_row_error(platform: FakePlatform, math: CourseRecord) -> None:
    """A course that does not exist is named with its column; other rows still apply."""
    results = run_groups(platform, [row(courseid="NOPE", name="G1"), row(courseid="MATH101", name="G1")])
    assert results[0] == RowResult(Outcome.ERROR, "unknown course 'NOPE' (courseid)")
    assert results[1].outcome is Outcome.CREATED


def test_existing_group_is_updated_when_fields_differ(platform: FakePlatform, math: CourseRecord) -> None:
    """Same name: idnumber/description that differ are updated; identical rows are unchanged."""
    platform.seed_group(math.id or 0, "G1", "g-1")
    results = run_groups(
        platform,
        [
            row(courseid="MATH101", name="G1", idnumber="g-1"),
            row(courseid="MATH101", name="G1", idnumber="g-2", description="new"),
            row(courseid="MATH101", name="G1", idnumber="g-2", description="new"),
        ],
    )
    assert results == [
        RowResult(Outcome.UNCHANGED, "group 'G1' in course 'MATH101'"),
        RowResult(Outcome.UPDATED, "group 'G1' in course 'MATH101': idnumber, description"),
        RowResult(Outcome.UNCHANGED, "group 'G1' in course 'MATH101'"),
    ]
    [group] = platform.groups()
    assert (group.idnumber, group.description) == ("g-2", "new")


def test_absent_column_keeps_and_empty_value_clears(platform: FakePlatform, math: CourseRecord) -> None:
    """Without an idnumber column the idnumber stays; an empty idnumber clears it."""
    platform.seed_group(math.id or 0, "G1", "g-1")
    assert outcomes(run_groups(platform, [row(courseid="MATH101", name="G1")])) == [Outcome.UNCHANGED]
    assert platform.groups()[0].idnumber == "g-1"
    results = run_groups(platform, [row(courseid="MATH101", name="G1", idnumber="")])
    assert results == [RowResult(Outcome.UPDATED, "group 'G1' in course 'MATH101': idnumber")]
    assert platform.groups()[0].idnumber is None


def test_idnumber_of_another_group_is_a_row_error(platform: FakePlatform, math: CourseRecord) -> None:
    """An idnumber another group of the course has (stored or made by an earlier row) is refused."""
    platform.seed_group(math.id or 0, "G1", "g-1")
    other = platform.seed_course("PHYS")
    results = run_groups(
        platform,
        [
            row(courseid="MATH101", name="G2", idnumber="g-1"),
            row(courseid="MATH101", name="G3", idnumber="g-3"),
            row(courseid="MATH101", name="G4", idnumber="g-3"),
            row(courseid="PHYS", name="G1", idnumber="g-1"),
        ],
    )
    assert results[0] == RowResult(
        Outcome.ERROR, "idnumber: 'g-1' already belongs to group 'G1' in course 'MATH101'"
    )
    assert outcomes(results[1:]) == [Outcome.CREATED, Outcome.ERROR, Outcome.CREATED]
    assert "'g-3' already belongs to group 'G3'" in results[2].reason
    assert sorted((g.course_id, g.name) for g in platform.groups()) == [
        (math.id, "G1"), (math.id, "G3"), (other.id, "G1"),
    ]


def test_idnumber_given_up_goes_to_a_new_group(platform: FakePlatform, math: CourseRecord) -> None:
    """An idnumber an earlier row takes from a group may go to a group created later in the batch."""
    platform.seed_group(math.id or 0, "G1", "g-1")
    results = run_groups(
        platform,
        [
            row(courseid="MATH101", name="G1", idnumber="g-0"),
            row(courseid="MATH101", name="G2", idnumber="g-1"),
        ],
    )
    assert outcomes(results) == [Outcome.UPDATED, Outcome.CREATED]
    assert {g.name: g.idnumber for g in platform.groups()} == {"G1": "g-0", "G2": "g-1"}


def test_bad_values_are_row_errors(platform: FakePlatform, math: CourseRecord) -> None:
    """A bad type, an empty name and a grouping inside a grouping name their column."""
    results = run_groups(
        platform,
        [
            row(courseid="MATH101", name="G1", type="team"),
            row(courseid="MATH101", name=" "),
            row(courseid="MATH101", name="GG", type="grouping", grouping="X"),
            row(courseid="MATH101", name="x" * 256),
        ],
    )
    assert results[0] == RowResult(Outcome.ERROR, "type: invalid type 'team' (expected group or grouping)")
    assert results[1] == RowResult(Outcome.ERROR, "name: empty value")
    assert results[2].outcome is Outcome.ERROR and results[2].reason.startswith("grouping: 'X'")
    assert results[3].outcome is Outcome.ERROR and results[3].reason.startswith("name: value longer than 255")
    assert platform.groups() == [] and platform.groupings() == []


# -- groups: groupings ---------------------------------------------------------------


def test_type_grouping_creates_a_grouping(platform: FakePlatform, math: CourseRecord) -> None:
    """type=grouping creates a grouping; the same row again is unchanged."""
    line = row(courseid="MATH101", name="Labs", type="Grouping", idnumber="L", description="all labs")
    what = "grouping 'Labs' in course 'MATH101'"
    assert run_groups(platform, [line]) == [RowResult(Outcome.CREATED, what)]
    assert run_groups(platform, [line]) == [RowResult(Outcome.UNCHANGED, what)]
    [grouping] = platform.groupings()
    assert (grouping.name, grouping.idnumber, grouping.description) == ("Labs", "L", "all labs")
    assert platform.groups() == []


def test_grouping_collision_errs_and_change_updates(platform: FakePlatform, math: CourseRecord) -> None:
    """A grouping idnumber taken by another grouping is an error; a stored grouping's change is written."""
    platform.direct.groups.add_groupings([GroupingRecord(math.id or 0, "Labs", "L")])
    results = run_groups(
        platform,
        [
            row(courseid="MATH101", name="Other", type="grouping", idnumber="L"),
            row(courseid="MATH101", name="Labs", type="grouping", description="changed"),
        ],
    )
    assert results[0] == RowResult(
        Outcome.ERROR, "idnumber: 'L' already belongs to grouping 'Labs' in course 'MATH101'"
    )
    assert results[1] == RowResult(Outcome.UPDATED, "grouping 'Labs' in course 'MATH101': description")
    [grouping] = platform.groupings()
    assert (grouping.name, grouping.idnumber, grouping.description) == ("Labs", "L", "changed")


def test_grouping_idnumber_change_frees_it_for_another(platform: FakePlatform, math: CourseRecord) -> None:
    """A stored grouping giving up its idnumber lets a later row of the batch give it to a new one."""
    platform.direct.groups.add_groupings([GroupingRecord(math.id or 0, "Labs", "L")])
    results = run_groups(
        platform,
        [
            row(courseid="MATH101", name="Labs", type="grouping", idnumber="L2"),
            row(courseid="MATH101", name="New", type="grouping", idnumber="L"),
        ],
    )
    assert [r.outcome for r in results] == [Outcome.UPDATED, Outcome.CREATED]
    assert results[0].reason == "grouping 'Labs' in course 'MATH101': idnumber"
    assert sorted((g.name, g.idnumber) for g in platform.groupings()) == [("Labs", "L2"), ("New", "L")]


def test_group_goes_in_its_grouping_made_if_missing(platform: FakePlatform, math: CourseRecord) -> None:
    """The grouping column puts the group in that grouping of the course, creating it once."""
    platform.seed_group(math.id or 0, "Old")
    results = run_groups(
        platform,
        [
            row(courseid="MATH101", name="G1", grouping="Labs"),
            row(courseid="MATH101", name="Old", grouping="Labs"),
            row(courseid="MATH101", name="Old", grouping="Labs"),
        ],
    )
    assert results == [
        RowResult(Outcome.CREATED, "group 'G1' in course 'MATH101', in new grouping 'Labs'"),
        RowResult(Outcome.UPDATED, "group 'Old' in course 'MATH101': in grouping 'Labs'"),
        RowResult(Outcome.UNCHANGED, "group 'Old' in course 'MATH101'"),
    ]
    [grouping] = platform.groupings()
    by_name = {g.name: g.id for g in platform.groups()}
    assert platform.grouping_links() == {(grouping.id, by_name["G1"]), (grouping.id, by_name["Old"])}


def test_groups_batch_reads_and_writes_once_per_kind(platform: FakePlatform) -> None:
    """60 rows over 3 courses: one course find, one read and one write per kind."""
    for name in ("A", "B", "C"):
        platform.seed_course(name)
    rows = [row(courseid=c, name=f"G{i}", grouping="All") for c in "ABC" for i in range(20)]
    with platform.transaction() as tx:
        counter = CallCounter(tx)
        results = groups.build({}, CTX).apply(rows, cast(PlatformTx, counter))
    assert Counter(outcomes(results)) == {Outcome.CREATED: 60}
    assert counter.calls == Counter({
        "courses.find": 1, "groups.groups": 1, "groups.groupings": 1,
        "groups.add_groupings": 1, "groups.add_groups": 1, "groups.link": 1,
    })
    assert len(platform.grouping_links()) == 60


def test_dry_run_transaction_leaves_nothing(platform: FakePlatform, math: CourseRecord) -> None:
    """Applied in a rolled-back transaction (dry run), the rows report but change nothing."""
    with platform.transaction(rollback=True) as tx:
        results = groups.build({}, CTX).apply([row(courseid="MATH101", name="G1", grouping="X")], tx)
    assert outcomes(results) == [Outcome.CREATED]
    assert platform.groups() == [] and platform.groupings() == []


# -- group_members -------------------------------------------------------------------


def test_group_members_spec_and_options() -> None:
    """group_members registers at priority 60; bad group_key/user_key are refused."""
    spec = group_members.SPEC
    assert (spec.name, spec.priority, spec.sniff) == ("group_members", 60, {"courseid", "groupid", "userid"})
    assert spec.options == {"course_key", "group_key", "user_key"}
    processor = group_members.build({}, CTX)
    assert processor.schema.required == {"courseid", "groupid", "userid"}
    assert processor.describe() == "course_key=shortname group_key=name user_key=idnumber"
    with pytest.raises(ConfigError, match="group_members: option group_key must be one of name, idnumber"):
        group_members.build({"group_key": "id"}, CTX)
    with pytest.raises(ConfigError, match="option user_key must be one of idnumber, username, email"):
        group_members.build({"user_key": "id"}, CTX)


def test_add_puts_an_enrolled_user_in_the_group(platform: FakePlatform, math: CourseRecord) -> None:
    """add (the default) makes an enrolled user a member; the same row again is unchanged."""
    platform.seed_group(math.id or 0, "G1")
    [ann] = users(platform, "ann")
    enrol(platform, math, ann)
    line = row(courseid="MATH101", groupid="G1", userid="ID-ann")
    who = "user 'ann' in group 'G1' of course 'MATH101'"
    assert run_members(platform, [line]) == [RowResult(Outcome.CREATED, who)]
    assert run_members(platform, [line]) == [RowResult(Outcome.UNCHANGED, who)]
    assert platform.members_of_group("MATH101", "G1") == {"ann"}


def test_membership_requires_an_enrolment(platform: FakePlatform, math: CourseRecord) -> None:
    """A user not enrolled in the course cannot join; a suspended enrolment still counts."""
    platform.seed_group(math.id or 0, "G1")
    _ann, bob = users(platform, "ann", "bob")
    enrol(platform, math, bob, active=False)
    results = run_members(
        platform,
        [
            row(courseid="MATH101", groupid="G1", userid="ID-ann"),
            row(courseid="MATH101", groupid="G1", userid="ID-bob", cmd="shift"),
        ],
    )
    assert results[0] == RowResult(Outcome.ERROR, "user 'ann' is not enrolled in course 'MATH101'")
    assert results[1].outcome is Outcome.CREATED
    assert platform.members_of_group("MATH101", "G1") == {"bob"}


def test_shift_leaves_the_other_groups_of_the_course(platform: FakePlatform, math: CourseRecord) -> None:
    """shift takes the user out of the course's other groups (not other courses'), then adds."""
    phys = platform.seed_course("PHYS")
    g1, g2, g3 = (platform.seed_group(math.id or 0, n) for n in ("G1", "G2", "G3"))
    p1 = platform.seed_group(phys.id or 0, "G1")
    [ann] = users(platform, "ann")
    enrol(platform, math, ann)
    enrol(platform, phys, ann)
    platform.direct.groups.add_members({(g1.id or 0, ann.id or 0), (g2.id or 0, ann.id or 0),
                                        (p1.id or 0, ann.id or 0)})
    line = row(courseid="MATH101", groupid="G3", userid="ID-ann", cmd="SHIFT")
    results = run_members(platform, [line, line])
    assert results == [
        RowResult(Outcome.UPDATED, "user 'ann' in group 'G3' of course 'MATH101' (taken out of 'G1', 'G2')"),
        RowResult(Outcome.UNCHANGED, "user 'ann' in group 'G3' of course 'MATH101'"),
    ]
    assert platform.group_members() == {(g3.id, ann.id), (p1.id, ann.id)}


def test_del_takes_the_user_out(platform: FakePlatform, math: CourseRecord) -> None:
    """del removes a membership (no enrolment needed); a non-member is skipped."""
    group = platform.seed_group(math.id or 0, "G1")
    ann, _bob = users(platform, "ann", "bob")
    enrol(platform, math, ann)
    platform.direct.groups.add_members({(group.id or 0, ann.id or 0)})
    platform.direct.enrolments.delete([e.id or 0 for e in platform.enrolments()])
    results = run_members(
        platform,
        [
            row(courseid="MATH101", groupid="G1", userid="ID-ann", cmd="del"),
            row(courseid="MATH101", groupid="G1", userid="ID-bob", cmd="del"),
        ],
    )
    assert results == [
        RowResult(Outcome.DELETED, "user 'ann' in group 'G1' of course 'MATH101'"),
        RowResult(Outcome.SKIPPED, "user 'bob' in group 'G1' of course 'MATH101': not a member"),
    ]
    assert platform.group_members() == set()


def test_rows_apply_in_order_within_a_batch(platform: FakePlatform, math: CourseRecord) -> None:
    """add then del of the same membership in one batch: both apply, nothing is left."""
    platform.seed_group(math.id or 0, "G1")
    [ann] = users(platform, "ann")
    enrol(platform, math, ann)
    results = run_members(
        platform,
        [
            row(courseid="MATH101", groupid="G1", userid="ID-ann"),
            row(courseid="MATH101", groupid="G1", userid="ID-ann", cmd="del"),
        ],
    )
    assert outcomes(results) == [Outcome.CREATED, Outcome.DELETED]
    assert platform.group_members() == set()


def test_group_and_user_keys(platform: FakePlatform, math: CourseRecord) -> None:
    """group_key=idnumber and user_key=email/username find group and user by those fields."""
    platform.seed_group(math.id or 0, "G1", "g-1")
    ann, bob = users(platform, "ann", "bob")
    enrol(platform, math, ann, bob)
    by_email = run_members(platform, [row(courseid="MATH101", groupid="g-1", userid="ANN@x.org")],
                           group_key="idnumber", user_key="email")
    by_name = run_members(platform, [row(courseid="M-101", groupid="G1", userid="bob")],
                          user_key="username", course_key="idnumber")
    assert outcomes(by_email + by_name) == [Outcome.CREATED, Outcome.CREATED]
    assert platform.members_of_group("MATH101", "G1") == {"ann", "bob"}


def test_unknown_references_and_commands_are_row_errors(platform: FakePlatform, math: CourseRecord) -> None:
    """Unknown course, group, user, and a bad cmd each name the column and value."""
    platform.seed_group(math.id or 0, "G1")
    users(platform, "ann")
    results = run_members(
        platform,
        [
            row(courseid="NOPE", groupid="G1", userid="ID-ann"),
            row(courseid="MATH101", groupid="G9", userid="ID-ann"),
            row(courseid="MATH101", groupid="G1", userid="ID-zed"),
            row(courseid="MATH101", groupid="G1", userid="ID-ann", cmd="move"),
        ],
    )
    assert [r.reason for r in results] == [
        "unknown course 'NOPE' (courseid)",
        "unknown group 'G9' in course 'MATH101' (groupid, by name)",
        "unknown user 'ID-zed' (userid)",
        "cmd: invalid command 'move' (expected add, shift, del)",
    ]
    assert set(outcomes(results)) == {Outcome.ERROR}


def test_group_members_batch_reads_and_writes_once_per_kind(platform: FakePlatform) -> None:
    """90 rows over 3 courses: one look-up per kind, one removal and one addition."""
    people = users(platform, *(f"u{i}" for i in range(30)))
    for name in "ABC":
        course = platform.seed_course(name)
        platform.seed_group(course.id or 0, "G1")
        platform.seed_group(course.id or 0, "G2")
        enrol(platform, course, *people)
    rows = [row(courseid=c, groupid="G1", userid=f"ID-u{i}", cmd="shift") for c in "ABC" for i in range(30)]
    with platform.transaction() as tx:
        counter = CallCounter(tx)
        results = group_members.build({}, CTX).apply(rows, cast(PlatformTx, counter))
    assert Counter(outcomes(results)) == {Outcome.CREATED: 90}
    assert counter.calls == Counter({
        "courses.find": 1, "users.find": 1, "groups.groups": 1, "groups.members": 1,
        "enrolments.find": 1, "groups.add_members": 1,
    })
    assert len(platform.group_members()) == 90
