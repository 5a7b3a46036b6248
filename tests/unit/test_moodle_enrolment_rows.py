"""The real enrolments, group_members and groups processors applied through the Moodle repositories
(tests/unit/moodle_miniplatform.py) the way the runner applies files: per-row results and
refusals, Moodle call counts per 1,000 rows, a second run that changes nothing, §5.1, dry run."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.unit.moodle_mini import MiniMoodle, _invalid
from tests.unit.moodle_miniplatform import MiniPlatform, by_outcome, outcomes, run

ENROLLED = "core_enrol_get_enrolled_users"
ENROL = "enrol_manual_enrol_users"


@pytest.fixture
def site() -> MiniPlatform:
    """Users E1..E9 (jdoe1..jdoe9); courses M101 (manual), SELF (manual+self), OFF (manual disabled)."""
    platform = MiniPlatform(MiniMoodle())
    for n in range(1, 10):
        platform.user(f"jdoe{n}", f"E{n}")
    platform.course("M101")
    platform.course("SELF", ("manual", "self"))
    platform.course("OFF", ())
    return platform


def uid(site: MiniPlatform, n: int) -> int:
    """The id of user E<n>."""
    (user,) = site.local.direct.users.find(idnumbers=[f"E{n}"])
    assert user.id is not None
    return user.id


def cid(site: MiniPlatform, shortname: str) -> int:
    """The id of a course."""
    (course,) = site.local.direct.courses.find(shortnames=[shortname])
    assert course.id is not None
    return course.id


FILE = """rolename,cid,uid,starttime,endtime,cmd,enrol,gcmd,g1
student,M101,E1,2020-01-01,2040-01-01,add,manual,,
editingteacher,M101,E2,,,add,manual,,
student,OFF,E1,,,add,manual,,
student,M101,E9x,,,add,manual,,
student,M101,E5,,,add,manual,gaddcreate,TD 1
student,M101,E6,,,disable,manual,,
student,M101,E7,,,del,manual,,
student,M101,E8,,,add,,,
"""


def test_enrolments_file_rows_and_their_errors(site: MiniPlatform, tmp_path: Path) -> None:
    """Each row's result, Moodle's state after the file, and the calls: one of each write kind."""
    mini, m101 = site.mini, cid(site, "M101")
    mini.enrol(m101, uid(site, 6))
    mini.enrol(m101, uid(site, 7))
    assert outcomes(run(site, "enrolments", FILE, tmp_path)) == [
        "created: user 'jdoe1' enrolled in 'M101' as student (manual)",
        "created: user 'jdoe2' enrolled in 'M101' as editingteacher (manual)",
        "error: enrol: enrolment method 'manual' of course 'OFF' is disabled",
        "error: unknown user 'E9x' (uid)",
        "created: user 'jdoe5' enrolled in 'M101' as student (manual); groups: +TD 1 (new group)",
        "updated: user 'jdoe6' in 'M101': enrolment suspended (manual)",
        "deleted: user 'jdoe7' in 'M101': unenrolled (manual), role student removed",
        "created: user 'jdoe8' enrolled in 'M101' as student (manual)",
    ]
    assert mini.enrolments[(m101, uid(site, 1))] == (0, 1577836800, 2208988800)
    assert mini.enrolments[(m101, uid(site, 6))][0] == 1 and (m101, uid(site, 7)) not in mini.enrolments
    assert mini.roles[(m101, uid(site, 2))] == {3} and mini.roles[(m101, uid(site, 8))] == {5}
    (group,) = [g for g in mini.groups.values() if g["name"] == "TD 1"]
    assert mini.members == {(group["id"], uid(site, 5))}
    roles_only = "rolename,cid,uid\nteacher,M101,E9\n"  # no enrol column: the role alone
    assert outcomes(run(site, "enrolments", roles_only, tmp_path)) == [
        "created: user 'jdoe9' has role teacher in 'M101'"]
    assert mini.roles[(m101, uid(site, 9))] == {4} and (m101, uid(site, 9)) not in mini.enrolments


def test_rows_moodle_refuses_are_isolated_with_the_refusal(site: MiniPlatform, tmp_path: Path) -> None:
    """A role Moodle cannot assign, a self enrolment: each fails its batch, the runner splits it down to
    that row, which alone gets the refusal; every other row is applied."""
    special = {4: "guest,M101,E4,manual", 7: "student,SELF,E7,self"}
    rows = "rolename,cid,uid,enrol\n" + "".join(
        special.get(n, f"student,M101,E{n},manual") + "\n" for n in range(1, 9))
    results = run(site, "enrolments", rows, tmp_path)
    assert [r.outcome.value for r in results] == [
        "created", "created", "created", "error", "created", "created", "error", "created"]
    assert "You don't have the permission to assign this role (6)" in results[3].reason
    assert f"user {uid(site, 4)} in course {cid(site, 'M101')} with role 6" in results[3].reason
    assert results[6].reason == (
        "not supported on moodle: writing a self enrolment (only manual enrolments can be)")
    m101 = cid(site, "M101")
    assert {u for c, u in site.mini.enrolments if c == m101} == {uid(site, n) for n in (1, 2, 3, 5, 6, 8)}
    assert len(site.mini.enrolments) == 6


def test_second_run_changes_nothing_and_sends_no_write(site: MiniPlatform, tmp_path: Path) -> None:
    """The same file (with dates) again: every row unchanged, no write, nothing read again."""
    rows = "rolename,cid,uid,starttime,endtime,enrol\n" + "".join(
        f"student,M101,E{n},2020-01-01,2040-06-30,manual\n" for n in range(1, 9))
    assert by_outcome(run(site, "enrolments", rows, tmp_path)) == {"created": 8}
    writes, reads = site.mini.writes(), len(site.mini.client.calls)
    assert by_outcome(run(site, "enrolments", rows, tmp_path)) == {"unchanged": 8}
    assert site.mini.writes() == writes
    assert len(site.mini.client.calls) == reads + 1  # the active users of M101, first asked now


def test_calls_per_thousand_rows_stay_under_thirty(tmp_path: Path) -> None:
    """3,000 enrolments in 30 courses (by course, 1,000 rows a batch, 100 items a call): ≤ 30 calls/1,000."""
    site = MiniPlatform(MiniMoodle())
    for n in range(3000):
        site.user(f"u{n}", f"S{n}")
    for c in range(30):
        site.course(f"C{c}")
    rows = "rolename,cid,uid,enrol\n" + "".join(f"student,C{n // 100},S{n},manual\n" for n in range(3000))
    assert by_outcome(run(site, "enrolments", rows, tmp_path, rows_per_batch=1000)) == {"created": 3000}
    mini = site.mini
    assert (mini.count(ENROLLED), mini.count(ENROL), mini.count("core_role_assign_roles")) == (30, 30, 0)
    assert mini.count("core_course_get_courses_by_field") == 3  # one per batch: the courses are new to each
    assert len(mini.client.calls) / 3 <= 30


def test_message_not_sent_rows_are_created(site: MiniPlatform, tmp_path: Path) -> None:
    """§5.1 through the processor: a course with a teacher and broken mail; rows succeed, users enrolled."""
    m101 = cid(site, "M101")
    site.mini.enrol(m101, uid(site, 9), role=3)
    site.mini.welcome_fails = True
    rows = "rolename,cid,uid,enrol\nstudent,M101,E1,manual\nstudent,M101,E2,manual\n"
    assert by_outcome(run(site, "enrolments", rows, tmp_path)) == {"created": 2}
    assert {(m101, uid(site, 1)), (m101, uid(site, 2))} <= set(site.mini.enrolments)


def test_dry_run_reports_without_writing(site: MiniPlatform, tmp_path: Path) -> None:
    """A dry run gives the same results as the real run would, and Moodle is untouched."""
    site.mini.enrol(cid(site, "M101"), uid(site, 6))
    rows = ("rolename,cid,uid,cmd,enrol,gcmd,g1\nstudent,M101,E1,add,manual,gaddcreate,TD\n"
            "student,M101,E1,add,manual,,\nstudent,M101,E6,disable,manual,,\n")
    assert outcomes(run(site, "enrolments", rows, tmp_path, dry_run=True)) == [
        "created: user 'jdoe1' enrolled in 'M101' as student (manual); groups: +TD (new group)",
        "unchanged: user 'jdoe1' enrolled in 'M101' as student (manual)",
        "updated: user 'jdoe6' in 'M101': enrolment suspended (manual)",
    ]
    assert site.mini.writes() == 0 and len(site.mini.enrolments) == 1


def test_group_members_file(site: MiniPlatform, tmp_path: Path) -> None:
    """Add, shift and del rows; a user not enrolled and an unknown group are row errors; one add call."""
    mini, m101 = site.mini, cid(site, "M101")
    for n in (1, 2, 3):
        mini.enrol(m101, uid(site, n))
    for gid, name in ((701, "A"), (702, "B")):
        mini.groups[gid] = {"id": gid, "courseid": m101, "name": name, "description": "", "idnumber": ""}
    mini.members |= {(701, uid(site, 2)), (701, uid(site, 3))}
    rows = ("courseid,groupid,userid,cmd\nM101,A,E1,add\nM101,B,E2,shift\nM101,A,E3,del\n"
            "M101,A,E4,add\nM101,C,E1,add\nM101,A,E3,del\n")
    assert outcomes(run(site, "group_members", rows, tmp_path)) == [
        "created: user 'jdoe1' in group 'A' of course 'M101'",
        "updated: user 'jdoe2' in group 'B' of course 'M101' (taken out of 'A')",
        "deleted: user 'jdoe3' in group 'A' of course 'M101'",
        "error: user 'jdoe4' is not enrolled in course 'M101'",
        "error: unknown group 'C' in course 'M101' (groupid, by name)",
        "skipped: user 'jdoe3' in group 'A' of course 'M101': not a member",
    ]
    assert mini.members == {(701, uid(site, 1)), (702, uid(site, 2))}
    assert mini.count("core_group_add_group_members") == mini.count("core_group_delete_group_members") == 1
    assert mini.count(ENROLLED) == 2  # the roster, and its active users: shared by groups and enrolments


def test_groups_file_creates_and_refuses_updates(site: MiniPlatform, tmp_path: Path) -> None:
    """New groups and groupings are created (grouping idnumber always sent); a changed group is refused."""
    m101 = cid(site, "M101")
    site.mini.groups[801] = {"id": 801, "courseid": m101, "name": "Old", "description": "", "idnumber": ""}
    rows = ("courseid,name,idnumber,type,grouping,description\nM101,TD 1,,group,All TD,\n"
            "M101,Projects,P1,grouping,,\nM101,Old,,group,,\n")
    assert [r.split(":")[0] for r in outcomes(run(site, "groups", rows, tmp_path))] == [
        "created", "created", "unchanged"]
    changed = "courseid,name,idnumber\nM101,Old,OLD-1\nM101,TD 1,\n"
    assert outcomes(run(site, "groups", changed, tmp_path)) == [
        "error: not supported on moodle: changing a group's idnumber or description"
        " (no core_group_update_groups)",
        "unchanged: group 'TD 1' in course 'M101'"]
    names = {g["name"]: g for g in site.mini.groupings.values()}
    assert set(names) == {"All TD", "Projects"} and names["All TD"]["idnumber"] == ""
    (td1,) = [g["id"] for g in site.mini.groups.values() if g["name"] == "TD 1"]
    assert site.mini.links == {(names["All TD"]["id"], td1)}


def test_what_a_refused_batch_did_is_undone_before_the_retry(site: MiniPlatform, tmp_path: Path) -> None:
    """Moodle refuses the group creation once, after the batch's enrolments were committed: they are
    unenrolled again before the batch is split, so the retried rows enrol anew and say 'created'."""
    mini, m101 = site.mini, cid(site, "M101")
    answer = mini.client.answer
    refusals = ["core_group_create_groups"]

    def flaky(function: str, params: Mapping[str, Any]) -> Any:
        if function in refusals:
            refusals.remove(function)
            return _invalid()
        return answer(function, params)

    mini.client.answer = flaky
    text = ("rolename,cid,uid,cmd,enrol,gcmd,g1\n"
            "student,M101,E1,add,manual,,\n"
            "student,M101,E4,add,manual,gaddcreate,TD 3\n")
    lines = outcomes(run(site, "enrolments", text, tmp_path))
    assert lines == [
        "created: user 'jdoe1' enrolled in 'M101' as student (manual)",
        "created: user 'jdoe4' enrolled in 'M101' as student (manual); groups: +TD 3 (new group)"]
    assert mini.count("enrol_manual_unenrol_users") == 1  # the undo of the refused attempt
    assert {u for c, u in mini.enrolments if c == m101} == {uid(site, 1), uid(site, 4)}
    (group,) = [g for g in mini.groups.values() if g["name"] == "TD 3"]
    assert mini.members == {(group["id"], uid(site, 4))}
