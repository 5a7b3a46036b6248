"""The enrolments and group_members processors through MoodlePlatform over HTTP to the fake Moodle
(tests/moodle_fake, tests/moodle_support.py): per-row results and refusals, call counts
(``fake.count``), the welcome-message quirk (§5.1), dry run. Users and courses are seeded
with the fake's Site helpers; the platform's own repositories look them up."""

from __future__ import annotations

from pathlib import Path

from tests.moodle_support import moodle_platform
from tests.unit.moodle_miniplatform import by_outcome, outcomes, run

ENROLLED = "core_enrol_get_enrolled_users"
ENROL = "enrol_manual_enrol_users"


def seed(fake: object) -> tuple[dict[str, int], dict[str, int]]:
    """Users E1..E8 (u1..u8) and courses M101 (with contact u8) and OFF (manual disabled): their ids."""
    site = fake.site  # type: ignore[attr-defined]
    users = {f"E{n}": site.add_user(f"u{n}", idnumber=f"E{n}") for n in range(1, 9)}
    courses = {"M101": site.add_course("M101", idnumber="M101"),
               "OFF": site.add_course("OFF", idnumber="OFF", manual=False)}
    site.enrol(users["E8"], courses["M101"], 3)  # an editingteacher: the course has a contact
    return users, courses


def test_enrolments_file_over_http(tmp_path: Path) -> None:
    """Rows created/updated/deleted or refused one by one; Moodle's state; a handful of calls."""
    with moodle_platform(tmp_path, batch_size=100) as (platform, fake):
        users, courses = seed(fake)
        m101 = courses["M101"]
        fake.site.enrol(users["E6"], m101)
        fake.site.enrol(users["E7"], m101)
        rows = ("rolename,cid,uid,starttime,endtime,cmd,enrol\n"
                "student,M101,E1,2020-01-01,2040-01-01,add,manual\nteacher,M101,E2,,,add,manual\n"
                "student,OFF,E3,,,add,manual\nstudent,M101,E9,,,add,manual\n"
                "student,M101,E6,,,disable,manual\nstudent,M101,E7,,,del,manual\n")
        assert outcomes(run(platform, "enrolments", rows, tmp_path)) == [
            "created: user 'u1' enrolled in 'M101' as student (manual)",
            "created: user 'u2' enrolled in 'M101' as teacher (manual)",
            "error: enrol: enrolment method 'manual' of course 'OFF' is disabled",
            "error: unknown user 'E9' (uid)",
            "updated: user 'u6' in 'M101': enrolment suspended (manual)",
            "deleted: user 'u7' in 'M101': unenrolled (manual), role student removed",
        ]
        enrolled = fake.site.enrolments(m101)
        assert (enrolled[users["E1"]].timestart, enrolled[users["E1"]].timeend) == (1577836800, 2208988800)
        assert enrolled[users["E6"]].status == 1 and users["E7"] not in enrolled
        assert fake.site.roles_in_course(m101, users["E2"]) == {4}
        assert fake.count(ENROL) == 2  # the suspension, then the two new enrolments with their roles
        assert fake.count("core_role_assign_roles") == 0


def test_a_refused_row_is_isolated_over_http(tmp_path: Path) -> None:
    """A role Moodle will not assign in a course: that row alone fails, with Moodle's message."""
    with moodle_platform(tmp_path) as (platform, fake):
        users, courses = seed(fake)
        rows = ("rolename,cid,uid,enrol\nstudent,M101,E1,manual\nguest,M101,E2,manual\n"
                "student,M101,E3,manual\n")
        results = run(platform, "enrolments", rows, tmp_path)
        assert [r.outcome.value for r in results] == ["created", "error", "created"]
        assert "(6)" in results[1].reason and "enrol_manual_enrol_users" in results[1].reason
        assert set(fake.site.enrolments(courses["M101"])) == {users["E1"], users["E3"], users["E8"]}


def test_welcome_message_error_after_commit_over_http(tmp_path: Path) -> None:
    """§5.1 on the fake: broken mail and a course contact; the rows are created, the users enrolled."""
    with moodle_platform(tmp_path) as (platform, fake):
        users, courses = seed(fake)
        fake.site.welcome_message_fails = True
        rows = "rolename,cid,uid,enrol\nstudent,M101,E1,manual\nstudent,M101,E2,manual\n"
        assert by_outcome(run(platform, "enrolments", rows, tmp_path)) == {"created": 2}
        assert {users["E1"], users["E2"]} <= set(fake.site.enrolments(courses["M101"]))


def test_group_members_over_http(tmp_path: Path) -> None:
    """Members added and moved via the roster shared with enrolments; a user not enrolled: a row error."""
    with moodle_platform(tmp_path) as (platform, fake):
        users, courses = seed(fake)
        m101 = courses["M101"]
        fake.site.enrol(users["E1"], m101)
        fake.site.enrol(users["E2"], m101)
        td1, td2 = fake.site.add_group(m101, "TD1"), fake.site.add_group(m101, "TD2")
        fake.site.add_group_member(td1, users["E2"])
        rows = "courseid,groupid,userid,cmd\nM101,TD1,E1,add\nM101,TD2,E2,shift\nM101,TD1,E3,add\n"
        assert [r.split(":")[0] for r in outcomes(run(platform, "group_members", rows, tmp_path))] == [
            "created", "updated", "error"]
        assert fake.site.group_members(td1) == {users["E1"]} and fake.site.group_members(td2) == {users["E2"]}
        assert fake.count(ENROLLED) == 2  # one roster read and one status read for M101
        assert fake.count("core_group_add_group_members") == 1


def test_dry_run_over_http_writes_nothing(tmp_path: Path) -> None:
    """A dry run reports what would happen and sends no write."""
    with moodle_platform(tmp_path) as (platform, fake):
        users, courses = seed(fake)
        rows = "rolename,cid,uid,enrol\nstudent,M101,E1,manual\nstudent,M101,E1,manual\n"
        assert [r.outcome.value for r in run(platform, "enrolments", rows, tmp_path, dry_run=True)] == [
            "created", "unchanged"]
        assert fake.count(ENROL) == 0 and users["E1"] not in fake.site.enrolments(courses["M101"])
