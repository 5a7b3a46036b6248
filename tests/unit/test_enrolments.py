"""The enrolments processor against the in-memory platform (SPEC §4 enrolments)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from syncd.domain import ConfigError, Outcome, RowResult
from syncd.platform.base import PlatformTx, UserRecord
from syncd.platform.model import CourseRecord, EnrolMethod
from syncd.processors.base import Row, RunContext
from syncd.processors.enrolments import SPEC, EnrolmentsProcessor, build
from tests.fakes import FakePlatform

CTX = RunContext(timezone=UTC, now=lambda: datetime(2026, 1, 1, tzinfo=UTC))


def enrol(
    uid: str = "E17", cid: str = "M101", rolename: str = "student", line: int = 2, **values: str
) -> Row:
    """An enrolments row with the required columns filled in."""
    return Row(line, {"rolename": rolename, "uid": uid, "cid": cid, **values})


def flat(*fields: str, line: int = 1) -> Row:
    """A header-less (Moodle flat file) row, named as the reader names it."""
    names = ("op", "rolename", "uid", "cid", "starttime", "endtime")
    return Row(line, dict(zip(names, fields, strict=False)))


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
    """Users jdoe (E17) and amy (E18), course MATH101 (idnumber M101) with a manual method."""
    platform = FakePlatform(roles=("auditor",))
    platform.seed(
        UserRecord(username="jdoe", idnumber="E17", email="JDoe@example.org"),
        UserRecord(username="amy", idnumber="E18"),
    )
    platform.seed_course("MATH101", idnumber="M101")
    return platform


def course_id(platform: FakePlatform, shortname: str = "MATH101") -> int:
    """The id of a stored course."""
    course = platform.course(shortname)
    assert course is not None and course.id is not None
    return course.id


def add_method(
    platform: FakePlatform, method: str, *, enabled: bool = True, shortname: str = "MATH101"
) -> None:
    """Give a course another enrolment method."""
    platform.direct.enrolments.add_methods([EnrolMethod(course_id(platform, shortname), method, enabled)])


def dates_of(platform: FakePlatform, username: str = "jdoe") -> list[tuple[datetime | None, datetime | None]]:
    """(start, end) of each stored enrolment of a user."""
    user = platform.user(username)
    assert user is not None
    return [(e.start, e.end) for e in platform.enrolments() if e.user_id == user.id]


# -- options, schema ---------------------------------------------------------------


def test_spec_registers_the_enrolments_processor() -> None:
    """The registry entry: name, priority 50, sniffing columns, option names."""
    assert (SPEC.name, SPEC.priority) == ("enrolments", 50)
    assert SPEC.sniff == {"rolename", "cid", "uid"}
    assert SPEC.options == {"user_key", "course_key"}
    assert isinstance(SPEC.factory({}, CTX), EnrolmentsProcessor)


def test_schema_and_headerless_names() -> None:
    """rolename/cid/uid are required; the flat-file form is read with op first."""
    schema = build({}, CTX).schema
    assert schema.required == {"rolename", "cid", "uid"}
    assert {"starttime", "endtime", "cmd", "enrol", "gcmd", "g1", "g9"} <= schema.optional
    assert not schema.allows("g10") and not schema.allows("op")
    assert schema.headerless == ("op", "rolename", "uid", "cid", "starttime", "endtime")


def test_bad_options_are_config_errors() -> None:
    """user_key and course_key are checked when the processor is built, naming the value."""
    with pytest.raises(ConfigError, match=r"enrolments: option user_key must be one of .* \(got 'id'\)"):
        build({"user_key": "id"}, CTX)
    with pytest.raises(ConfigError, match="option course_key must be one of idnumber, shortname, id"):
        build({"course_key": "fullname"}, CTX)


def test_describe_lists_the_keys() -> None:
    """describe() shows the effective keys, defaults included."""
    assert build({}, CTX).describe() == "user_key=idnumber course_key=idnumber"
    assert build({"user_key": "email", "course_key": "id"}, CTX).describe() == "user_key=email course_key=id"


# -- add ---------------------------------------------------------------------------


def test_add_enrols_through_manual_with_the_role(platform: FakePlatform) -> None:
    """An empty enrol means manual: the user is enrolled, active, with the role."""
    result = one(platform, enrol(enrol=""))
    assert result == RowResult(Outcome.CREATED, "user 'jdoe' enrolled in 'MATH101' as student (manual)")
    assert platform.enrolled("MATH101") == {"jdoe": True}
    assert platform.course_roles("MATH101") == {("jdoe", "student")}


def test_add_again_is_unchanged(platform: FakePlatform) -> None:
    """Enrolling a user who already is so changes nothing and says so."""
    one(platform, enrol(enrol="manual"))
    result = one(platform, enrol(enrol="manual"))
    assert result == RowResult(Outcome.UNCHANGED, "user 'jdoe' enrolled in 'MATH101' as student (manual)")
    assert len(platform.enrolments()) == 1


def test_add_without_enrol_column_gives_the_role_only(platform: FakePlatform) -> None:
    """No enrol column: the role is assigned in the course and no enrolment is made."""
    assert one(platform, enrol(rolename="Teacher")) == RowResult(
        Outcome.CREATED, "user 'jdoe' has role teacher in 'MATH101'"
    )
    assert platform.enrolments() == []
    assert platform.course_roles("MATH101") == {("jdoe", "teacher")}
    assert one(platform, enrol(rolename="teacher")).outcome is Outcome.UNCHANGED


def test_manual_method_is_created_on_demand(platform: FakePlatform) -> None:
    """A course without a manual method gets one when a row enrols through manual."""
    category = platform.courses()[0].category_id
    platform.direct.courses.add([CourseRecord("BARE", "Bare", category, idnumber="B1")])
    assert one(platform, enrol(cid="B1", enrol="")).outcome is Outcome.CREATED
    methods = [m for m in platform.methods() if m.course_id == course_id(platform, "BARE")]
    assert [(m.method, m.enabled) for m in methods] == [("manual", True)]
    assert platform.enrolled("BARE") == {"jdoe": True}


def test_manual_method_made_once_for_several_rows(platform: FakePlatform) -> None:
    """Two rows of one batch enrolling in a course without manual share the one new method."""
    category = platform.courses()[0].category_id
    platform.direct.courses.add([CourseRecord("BARE", "Bare", category, idnumber="B1")])
    results = run(platform, [enrol(cid="B1", enrol=""), enrol(uid="E18", cid="B1", enrol="")])
    assert [r.outcome for r in results] == [Outcome.CREATED, Outcome.CREATED]
    assert len([m for m in platform.methods() if m.course_id == course_id(platform, "BARE")]) == 1
    assert platform.enrolled("BARE") == {"jdoe": True, "amy": True}


def test_other_method_must_exist_and_be_enabled(platform: FakePlatform) -> None:
    """A method other than manual is never created; a disabled one is refused."""
    missing = one(platform, enrol(enrol="self"))
    assert missing == RowResult(Outcome.ERROR, "enrol: course 'MATH101' has no enrolment method 'self'")
    add_method(platform, "self", enabled=False)
    disabled = one(platform, enrol(enrol="Self"))
    assert disabled == RowResult(
        Outcome.ERROR, "enrol: enrolment method 'self' of course 'MATH101' is disabled"
    )
    assert platform.enrolments() == []


def test_add_through_an_existing_enabled_method(platform: FakePlatform) -> None:
    """enrol=self uses the course's self method."""
    add_method(platform, "self")
    result = one(platform, enrol(enrol="self"))
    assert result.reason == "user 'jdoe' enrolled in 'MATH101' as student (self)"
    (enrolment,) = platform.enrolments()
    method = next(m for m in platform.methods() if m.id == enrolment.method_id)
    assert method.method == "self"


def test_dates_iso_and_epoch(platform: FakePlatform) -> None:
    """starttime (ISO, naive = the configured zone) and endtime (epoch) are stored."""
    one(platform, enrol(enrol="", starttime="2026-09-01", endtime="1798761600"))
    assert dates_of(platform) == [(datetime(2026, 9, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))]


def test_empty_or_zero_date_means_no_limit(platform: FakePlatform) -> None:
    """An empty date or 0 (Moodle's "none") clears the date of an existing enrolment."""
    one(platform, enrol(enrol="", starttime="2026-09-01", endtime="2027-01-01"))
    result = one(platform, enrol(enrol="", starttime="0", endtime=""))
    assert result.outcome is Outcome.UPDATED and result.reason.endswith("(manual): start, end")
    assert dates_of(platform) == [(None, None)]


def test_absent_date_columns_keep_the_dates(platform: FakePlatform) -> None:
    """Without date columns an add leaves the stored dates alone."""
    one(platform, enrol(enrol="", starttime="2026-09-01"))
    assert one(platform, enrol(enrol="")).outcome is Outcome.UNCHANGED
    assert dates_of(platform) == [(datetime(2026, 9, 1, tzinfo=UTC), None)]


def test_bad_dates_are_row_errors(platform: FakePlatform) -> None:
    """A malformed date, or an end before the start, names the column and value."""
    bad = one(platform, enrol(enrol="", starttime="next monday"))
    assert bad.outcome is Outcome.ERROR and bad.reason.startswith("starttime: invalid date 'next monday'")
    order = one(platform, enrol(enrol="", starttime="2026-09-02", endtime="2026-09-01"))
    assert order == RowResult(Outcome.ERROR, "endtime: '2026-09-01' is before starttime '2026-09-02'")


def test_add_reactivates_and_adds_a_missing_role(platform: FakePlatform) -> None:
    """add on a suspended enrolment reactivates it and gives the role if missing."""
    one(platform, enrol(enrol=""))
    one(platform, enrol(enrol="", cmd="disable"))
    result = one(platform, enrol(enrol="", rolename="auditor"))
    assert result == RowResult(
        Outcome.UPDATED, "user 'jdoe' enrolled in 'MATH101' as auditor (manual): role, reactivated"
    )
    assert platform.enrolled("MATH101") == {"jdoe": True}
    assert platform.course_roles("MATH101") == {("jdoe", "student"), ("jdoe", "auditor")}


# -- del, shift, disable, enable ------------------------------------------------------


def test_del_with_enrol_unenrols_and_removes_the_role(platform: FakePlatform) -> None:
    """del with enrol removes the enrolment through that method and the role."""
    one(platform, enrol(enrol=""))
    result = one(platform, enrol(enrol="", cmd="del"))
    assert result == RowResult(
        Outcome.DELETED, "user 'jdoe' in 'MATH101': unenrolled (manual), role student removed"
    )
    assert platform.enrolments() == [] and platform.course_roles("MATH101") == set()


def test_del_without_enrol_removes_the_role_only(platform: FakePlatform) -> None:
    """del without an enrol column keeps the enrolment and removes the role."""
    one(platform, enrol(enrol=""))
    result = one(platform, enrol(cmd="DEL"))
    assert result == RowResult(Outcome.DELETED, "user 'jdoe' in 'MATH101': role student removed")
    assert platform.enrolled("MATH101") == {"jdoe": True}
    assert platform.course_roles("MATH101") == set()


def test_del_of_nothing_is_unchanged(platform: FakePlatform) -> None:
    """Deleting an enrolment and a role the user does not have is unchanged, not an error."""
    result = one(platform, enrol(enrol="self", cmd="del"))
    assert result == RowResult(
        Outcome.UNCHANGED, "user 'jdoe' in 'MATH101': not enrolled (self), no role student"
    )


def test_last_unenrolment_drops_other_roles_and_groups(platform: FakePlatform) -> None:
    """As in Moodle, when the user's last enrolment goes, their roles and groups in the course go too."""
    platform.seed_group(course_id(platform), "G1")
    one(platform, enrol(enrol="", gcmd="gadd", g1="G1"))
    one(platform, enrol(rolename="teacher"))
    result = one(platform, enrol(enrol="", cmd="del"))
    assert result.reason.endswith("role student removed, last enrolment, also removed teacher, group G1")
    assert platform.course_roles("MATH101") == set()
    assert platform.members_of_group("MATH101", "G1") == set()


def test_unenrolling_one_of_two_methods_keeps_the_rest(platform: FakePlatform) -> None:
    """With another enrolment left, only the named method's enrolment and the role go."""
    add_method(platform, "self")
    one(platform, enrol(enrol=""))
    one(platform, enrol(enrol="self", rolename="teacher"))
    one(platform, enrol(enrol="self", rolename="teacher", cmd="del"))
    assert platform.enrolled("MATH101") == {"jdoe": True}
    assert platform.course_roles("MATH101") == {("jdoe", "student")}


def test_shift_replaces_the_roles(platform: FakePlatform) -> None:
    """shift leaves the user with this role only in the course."""
    one(platform, enrol(enrol=""))
    one(platform, enrol(rolename="auditor"))
    result = one(platform, enrol(rolename="teacher", cmd="shift"))
    assert result == RowResult(
        Outcome.UPDATED,
        "user 'jdoe' in 'MATH101' as teacher only: role teacher added, auditor removed, student removed",
    )
    assert platform.course_roles("MATH101") == {("jdoe", "teacher")}
    assert one(platform, enrol(rolename="teacher", cmd="shift")).outcome is Outcome.UNCHANGED


def test_shift_with_enrol_also_enrols(platform: FakePlatform) -> None:
    """shift with an enrol column enrols the user when needed."""
    result = one(platform, enrol(rolename="teacher", cmd="shift", enrol=""))
    assert result.outcome is Outcome.CREATED
    assert platform.enrolled("MATH101") == {"jdoe": True}


def test_disable_and_enable(platform: FakePlatform) -> None:
    """disable suspends the enrolment, enable reactivates it; a repeat is unchanged."""
    one(platform, enrol(enrol=""))
    assert one(platform, enrol(cmd="disable", rolename="")) == RowResult(
        Outcome.UPDATED, "user 'jdoe' in 'MATH101': enrolment suspended"
    )
    assert platform.enrolled("MATH101") == {"jdoe": False}
    assert one(platform, enrol(cmd="disable", enrol="")).reason == (
        "user 'jdoe' in 'MATH101': enrolment already suspended (manual)"
    )
    assert one(platform, enrol(cmd="enable", enrol="")).outcome is Outcome.UPDATED
    assert platform.enrolled("MATH101") == {"jdoe": True}


def test_disable_touches_only_the_named_method(platform: FakePlatform) -> None:
    """disable with enrol=self leaves the manual enrolment active."""
    add_method(platform, "self")
    one(platform, enrol(enrol=""))
    one(platform, enrol(enrol="self"))
    one(platform, enrol(enrol="self", cmd="disable"))
    assert sorted(e.active for e in platform.enrolments()) == [False, True]


def test_disable_without_enrolment_is_an_error(platform: FakePlatform) -> None:
    """Suspending a user who is not enrolled is a row error naming user and course."""
    assert one(platform, enrol(cmd="disable", enrol="")) == RowResult(
        Outcome.ERROR, "user 'jdoe' is not enrolled in 'MATH101' (manual)"
    )


# -- references and values -----------------------------------------------------------


def test_unknown_references_name_the_column(platform: FakePlatform) -> None:
    """Unknown user, course and role are row errors naming the value and the column."""
    rows = [enrol(uid="E99"), enrol(cid="NOPE"), enrol(rolename="dean")]
    assert [r.reason for r in run(platform, rows)] == [
        "unknown user 'E99' (uid)",
        "unknown course 'NOPE' (cid)",
        "unknown role 'dean' (rolename)",
    ]


def test_deleted_user_is_unknown(platform: FakePlatform) -> None:
    """A soft-deleted user cannot be enrolled."""
    platform.seed(UserRecord(username="gone", idnumber="E50", deleted=True))
    assert one(platform, enrol(uid="E50", enrol="")).reason == "unknown user 'E50' (uid)"


def test_bad_commands_and_empty_values(platform: FakePlatform) -> None:
    """An unknown cmd or gcmd, or an empty uid/cid/rolename, names the column."""
    rows = [
        enrol(cmd="purge"),
        enrol(gcmd="gmove", g1="A"),
        enrol(uid=" "),
        enrol(cid=""),
        enrol(rolename=""),
    ]
    assert [r.reason for r in run(platform, rows)] == [
        "cmd: unknown command 'purge' (expected add | del | shift | disable | enable)",
        "gcmd: unknown command 'gmove' (expected gadd | gaddcreate | greplace | greplacecreate | gdel)",
        "uid: empty value; required",
        "cid: empty value; required",
        "rolename: empty value; required for cmd add",
    ]


def test_user_key_and_course_key_options(platform: FakePlatform) -> None:
    """uid by username or email (any case), cid by shortname or id."""
    by_name = one(
        platform, enrol(uid="JDoe", cid="MATH101", enrol=""), user_key="username", course_key="shortname"
    )
    assert by_name.outcome is Outcome.CREATED
    by_mail = one(
        platform,
        enrol(uid="jdoe@EXAMPLE.org", cid=str(course_id(platform)), enrol=""),
        user_key="email",
        course_key="id",
    )
    assert by_mail.outcome is Outcome.UNCHANGED


def test_one_bad_row_does_not_stop_the_others(platform: FakePlatform) -> None:
    """A batch with an error row applies the other rows."""
    results = run(platform, [enrol(uid="E99", enrol=""), enrol(uid="E18", enrol="")])
    assert [r.outcome for r in results] == [Outcome.ERROR, Outcome.CREATED]
    assert platform.enrolled("MATH101") == {"amy": True}


def test_rows_of_a_batch_apply_in_order(platform: FakePlatform) -> None:
    """A later row sees an earlier one: add, del, add again in one batch ends enrolled."""
    rows = [enrol(enrol=""), enrol(enrol="", cmd="del"), enrol(enrol="", rolename="teacher"), enrol(enrol="")]
    assert [r.outcome for r in run(platform, rows)] == [
        Outcome.CREATED,
        Outcome.DELETED,
        Outcome.CREATED,
        Outcome.UPDATED,
    ]
    assert platform.enrolled("MATH101") == {"jdoe": True}
    assert platform.course_roles("MATH101") == {("jdoe", "teacher"), ("jdoe", "student")}


def test_readding_an_enrolment_deleted_in_the_same_batch(platform: FakePlatform) -> None:
    """A stored enrolment deleted and re-made in one batch is written as delete then add."""
    one(platform, enrol(enrol="", starttime="2026-09-01"))
    run(platform, [enrol(enrol="", cmd="del"), enrol(enrol="")])
    assert dates_of(platform) == [(None, None)]


# -- the header-less flat file -------------------------------------------------------


def test_flat_file_add_and_del(platform: FakePlatform) -> None:
    """Moodle's flat file lines enrol through manual by idnumbers, with epoch dates."""
    results = run(
        platform,
        [flat("add", "student", "E17", "M101", "1788220800", "0"), flat("del", "student", "E18", "M101")],
    )
    assert results[0] == RowResult(Outcome.CREATED, "user 'jdoe' enrolled in 'MATH101' as student (manual)")
    assert results[1].outcome is Outcome.UNCHANGED
    assert dates_of(platform) == [(datetime(2026, 9, 1, tzinfo=UTC), None)]
    assert one(platform, flat("del", "student", "E17", "M101")).outcome is Outcome.DELETED
    assert platform.enrolments() == []


def test_flat_file_bad_operation(platform: FakePlatform) -> None:
    """A flat-file line with another operation than add/del is a row error."""
    assert one(platform, flat("shift", "student", "E17", "M101")).reason == (
        "op: unknown command 'shift' (expected add | del)"
    )
    assert one(platform, flat("add", "student", "E17")).reason == "cid: empty value; required"


# -- groups --------------------------------------------------------------------------


def test_gadd_puts_the_user_in_existing_groups(platform: FakePlatform) -> None:
    """gadd adds to the named groups; an unknown group is an error and nothing is applied."""
    platform.seed_group(course_id(platform), "G1")
    result = one(platform, enrol(enrol="", gcmd="gadd", g1="G1"))
    assert result == RowResult(
        Outcome.CREATED, "user 'jdoe' enrolled in 'MATH101' as student (manual); groups: +G1"
    )
    assert platform.members_of_group("MATH101", "G1") == {"jdoe"}
    bad = one(platform, enrol(uid="E18", enrol="", gcmd="gadd", g1="G1", g2="G2"))
    assert bad == RowResult(Outcome.ERROR, "unknown group 'G2' in course 'MATH101' (g2)")
    assert platform.enrolled("MATH101") == {"jdoe": True}


def test_gadd_on_an_unchanged_enrolment_is_an_update(platform: FakePlatform) -> None:
    """Joining a group makes an otherwise unchanged row updated."""
    platform.seed_group(course_id(platform), "G1")
    one(platform, enrol(enrol=""))
    assert one(platform, enrol(enrol="", gcmd="gadd", g1="G1")).outcome is Outcome.UPDATED
    assert one(platform, enrol(enrol="", gcmd="gadd", g1="G1")).outcome is Outcome.UNCHANGED


def test_gaddcreate_creates_missing_groups_once(platform: FakePlatform) -> None:
    """gaddcreate makes missing groups; two rows naming the same new group share it."""
    rows = [
        enrol(enrol="", gcmd="gaddcreate", g1="New", g2="New"),
        enrol(uid="E18", enrol="", gcmd="gaddcreate", g1="New"),
    ]
    results = run(platform, rows)
    assert results[0].reason.endswith("groups: +New (new group)")
    assert results[1].reason.endswith("groups: +New")
    assert [g.name for g in platform.groups()] == ["New"]
    assert platform.members_of_group("MATH101", "New") == {"jdoe", "amy"}


def test_greplace_leaves_the_other_groups(platform: FakePlatform) -> None:
    """greplace removes the user from the course's other groups, then adds."""
    cid = course_id(platform)
    for name in ("A", "B"):
        platform.seed_group(cid, name)
    one(platform, enrol(enrol="", gcmd="gadd", g1="A"))
    result = one(platform, enrol(enrol="", gcmd="greplacecreate", g1="B", g2="C"))
    assert result.reason.endswith("groups: -A, +B, +C (new group)")
    assert platform.members_of_group("MATH101", "A") == set()
    assert platform.members_of_group("MATH101", "B") == {"jdoe"}
    assert platform.members_of_group("MATH101", "C") == {"jdoe"}


def test_gdel_removes_from_the_groups(platform: FakePlatform) -> None:
    """gdel takes the user out of the named groups."""
    platform.seed_group(course_id(platform), "A")
    one(platform, enrol(enrol="", gcmd="gadd", g1="A"))
    result = one(platform, enrol(enrol="", gcmd="gdel", g1="A"))
    assert result.outcome is Outcome.UPDATED and result.reason.endswith("groups: -A")
    assert platform.members_of_group("MATH101", "A") == set()


def test_group_membership_needs_an_enrolment(platform: FakePlatform) -> None:
    """A role-only row cannot put a user who is not enrolled in a group."""
    platform.seed_group(course_id(platform), "A")
    result = one(platform, enrol(gcmd="gadd", g1="A"))
    assert result == RowResult(Outcome.ERROR, "gcmd: user 'jdoe' is not enrolled in 'MATH101'")
    assert platform.course_roles("MATH101") == set()


def test_group_columns_need_gcmd_and_gcmd_needs_a_group(platform: FakePlatform) -> None:
    """g<N> without gcmd, or gcmd without any g<N>, is a row error."""
    assert one(platform, enrol(enrol="", g3="A")).reason == "g3: group 'A' given but gcmd is empty"
    assert (
        one(platform, enrol(enrol="", gcmd="gadd", g1="")).reason
        == "gcmd: gadd names no group (g1…g9 are empty)"
    )


# -- batching ------------------------------------------------------------------------


class CallSpy:
    """Counts the repository calls made through a transaction."""

    def __init__(self, target: object, calls: Counter[str], prefix: str = "") -> None:
        self._target = target
        self._calls = calls
        self._prefix = prefix

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if not self._prefix:
            return CallSpy(value, self._calls, name)
        if callable(value):

            def counted(*args: Any, **kwargs: Any) -> Any:
                self._calls[f"{self._prefix}.{name}"] += 1
                return value(*args, **kwargs)

            return counted
        return value


def test_a_batch_reads_and_writes_once_per_kind(platform: FakePlatform) -> None:
    """Many rows over many users and courses cost one call per kind of read and write."""
    users = [UserRecord(username=f"u{i}", idnumber=f"U{i}") for i in range(20)]
    platform.seed(*users)
    category = platform.courses()[0].category_id
    platform.direct.courses.add(
        [CourseRecord(f"C{i}", f"C{i}", category, idnumber=f"C{i}") for i in range(5)]
    )
    rows = [enrol(uid=f"U{i}", cid=f"C{i % 5}", enrol="", gcmd="gaddcreate", g1="G") for i in range(20)]
    rows += [enrol(uid=f"U{i}", cid=f"C{i % 5}", cmd="disable", enrol="") for i in range(10)]
    calls: Counter[str] = Counter()
    with platform.transaction() as tx:
        results = build({}, CTX).apply(rows, cast(PlatformTx, CallSpy(tx, calls)))
    assert {r.outcome for r in results} == {Outcome.CREATED, Outcome.UPDATED}
    assert calls == Counter(
        {
            "users.find": 1,
            "courses.find": 1,
            "roles.all": 1,
            "enrolments.methods": 1,
            "enrolments.find": 1,
            "enrolments.roles": 1,
            "groups.groups": 1,
            "enrolments.add_methods": 1,
            "enrolments.add": 1,
            "enrolments.assign": 1,
            "groups.add_groups": 1,
            "groups.add_members": 1,
        }
    )
    assert len(platform.enrolments()) == 20 and sum(e.active for e in platform.enrolments()) == 10


def test_a_failing_row_leaves_no_trace(platform: FakePlatform) -> None:
    """A row refused on a group check creates neither the manual method nor the group nor a role."""
    category = platform.courses()[0].category_id
    platform.direct.courses.add([CourseRecord("BARE", "Bare", category, idnumber="B1")])
    result = one(platform, enrol(cid="B1", enrol="", gcmd="gadd", g1="Nope"))
    assert result == RowResult(Outcome.ERROR, "unknown group 'Nope' in course 'BARE' (g1)")
    bare = course_id(platform, "BARE")
    assert [m for m in platform.methods() if m.course_id == bare] == []
    assert platform.groups() == [] and platform.role_assignments() == []
