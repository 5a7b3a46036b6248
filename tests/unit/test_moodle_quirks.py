"""The recordings' README (§4 batch semantics, §5 surprises) items that no other adapter test covered:
each test runs the real processors through MoodlePlatform over HTTP to the fake Moodle
(tests/moodle_support.py) and checks the rows' results, Moodle's state and the calls sent."""

from __future__ import annotations

from pathlib import Path

from tests.moodle_support import moodle_platform
from tests.unit.moodle_miniplatform import outcomes, run

EDITINGTEACHER, STUDENT = 3, 5
ENROL = "enrol_manual_enrol_users"
ENROLLED = "core_enrol_get_enrolled_users"
DELETE_USERS = "core_user_delete_users"
UPDATE_USERS = "core_user_update_users"
UPDATE_COURSES = "core_course_update_courses"


def test_a_refused_user_delete_batch_is_split_down_to_the_refused_row(tmp_path: Path) -> None:
    """README §4: core_user_delete_users is one transaction (the admin refuses the whole call); the
    runner splits the batch, so only the admin's row fails, with Moodle's reason, and zoe is deleted."""
    with moodle_platform(tmp_path) as (platform, fake):
        fake.site.add_user("zoe", email="zoe@univ.fr")
        csv = ("username,firstname,lastname,email,deleted\n"
               "admin,Admin,User,admin@example.com,1\nzoe,Test,zoe,zoe@univ.fr,1\n")
        lines = outcomes(run(platform, "users", csv, tmp_path))
        assert lines[0].startswith("error: moodle: Administrator accounts cannot be deleted.")
        assert "'admin'" in lines[0]
        assert lines[1] == "deleted: user 'zoe'"
        assert fake.site.user_by_username("zoe") is None and fake.site.user_by_username("admin") is not None
        refused = [call for call in fake.calls if call.function == DELETE_USERS and call.error]
        assert [call.error for call in refused] == ["useradminodelete", "useradminodelete"]  # batch, then row
        assert fake.count(DELETE_USERS) == 3


def test_removing_a_non_member_is_skipped_not_sent(tmp_path: Path) -> None:
    """README §4 (silently ignored): Moodle answers null to removing a non-member from a group or a
    cohort, so syncd must not report it as done: both rows are skipped and no removal is sent."""
    with moodle_platform(tmp_path) as (platform, fake):
        site = fake.site
        user = site.add_user("u1", idnumber="E1")
        course = site.add_course("M101", idnumber="M101")
        site.enrol(user, course)
        site.add_group(course, "TD1")
        site.add_cohort("Promo", "P1")
        group_rows = "courseid,groupid,userid,cmd\nM101,TD1,E1,del\n"
        assert outcomes(run(platform, "group_members", group_rows, tmp_path)) == [
            "skipped: user 'u1' in group 'TD1' of course 'M101': not a member"]
        cohort_rows = "cidnumber,cmd,userid\nP1,del,u1\n"
        assert outcomes(run(platform, "cohorts", cohort_rows, tmp_path, user_key="username")) == [
            "skipped: user 'u1' in cohort 'Promo': not a member"]
        assert fake.count("core_group_delete_group_members") == 0
        assert fake.count("core_cohort_delete_cohort_members") == 0


def test_a_re_enrolment_whose_welcome_message_fails_is_read_back_as_done(tmp_path: Path) -> None:
    """README §5.1: re-enrolling an enrolled user (new dates, then a suspension) in a course with a
    contact sends the welcome message again, and the call fails after committing: the roster is
    read again and both rows are updated, not errors; Moodle holds the new dates and status."""
    with moodle_platform(tmp_path) as (platform, fake):
        site = fake.site
        user, teacher = site.add_user("u1", idnumber="E1"), site.add_user("u8", idnumber="E8")
        course = site.add_course("M101", idnumber="M101")
        site.enrol(teacher, course, EDITINGTEACHER)
        site.enrol(user, course, STUDENT)
        site.welcome_message_fails = True
        header = "rolename,cid,uid,starttime,endtime,cmd,enrol\n"
        dates = header + "student,M101,E1,2026-01-01,2027-01-01,add,manual\n"
        assert outcomes(run(platform, "enrolments", dates, tmp_path)) == [
            "updated: user 'u1' enrolled in 'M101' as student (manual): start, end"]
        enrolment = site.enrolments(course)[user]
        assert (enrolment.timestart, enrolment.timeend) == (1767225600, 1798761600)
        suspend = header + "student,M101,E1,,,disable,manual\n"
        assert outcomes(run(platform, "enrolments", suspend, tmp_path)) == [
            "updated: user 'u1' in 'M101': enrolment suspended (manual)"]
        assert site.enrolments(course)[user].status == 1
        failed = [call.error for call in fake.calls if call.function == ENROL]
        assert failed == ["Message was not sent.", "Message was not sent."]  # each one re-read, not reported


def test_an_end_date_alone_is_sent_with_the_start_date(tmp_path: Path) -> None:
    """README §5.4: update_courses with enddate and no startdate warns nostartdatenoenddate; a row
    changing only the end date is sent with the course's start date, updated, then unchanged."""
    with moodle_platform(tmp_path) as (platform, fake):
        fake.site.add_course("M101", idnumber="M101", startdate=1767225600, enddate=1798761600)
        csv = "shortname,fullname,enddate\nM101,M101,2027-06-30\n"
        assert outcomes(run(platform, "courses", csv, tmp_path, update=True)) == [
            "updated: course 'M101': enddate"]
        (sent,) = [call.params["courses"][0] for call in fake.calls if call.function == UPDATE_COURSES]
        assert (sent["startdate"], sent["enddate"]) == ("1767225600", "1814313600")
        course = fake.site.course_by_shortname("M101")
        assert course is not None and (course.startdate, course.enddate) == (1767225600, 1814313600)
        assert outcomes(run(platform, "courses", csv, tmp_path, update=True)) == ["unchanged: course 'M101'"]
        assert fake.count(UPDATE_COURSES) == 1


def test_an_unknown_profile_field_is_not_silently_lost(tmp_path: Path) -> None:
    """README §5.8: customfields with an unknown shortname are silently ignored by Moodle. The
    read-back finds the field missing: the row fails naming it (the user made by the refused
    attempt is deleted again), a row without it is created, and the same file again is refused
    before anything is sent (no create, no update: it converges)."""
    with moodle_platform(tmp_path) as (platform, fake):
        fake.site.add_profile_field("campus")
        csv = ("username,firstname,lastname,email,profile_field_campus,profile_field_nosuch\n"
               "zoe,Zoe,Z,zoe@univ.fr,Dijon,lost\n"
               "max,Max,M,max@univ.fr,Dijon,\n")
        first = outcomes(run(platform, "users", csv, tmp_path))
        assert first[0].startswith("error: moodle: user 'zoe'") and "profile_field_nosuch" in first[0]
        assert "no such user profile field" in first[0]
        assert first[1] == "created: user 'max'"
        assert fake.site.user_by_username("zoe") is None
        max_ = fake.site.user_by_username("max")
        assert max_ is not None
        writes = fake.count("core_user_create_users") + fake.count(UPDATE_USERS)
        again = outcomes(run(platform, "users", csv, tmp_path))
        assert again[0] == first[0] and again[1] == "unchanged: user 'max'"
        assert fake.count("core_user_create_users") + fake.count(UPDATE_USERS) == writes


def test_a_refused_role_assignment_batch_is_split_down_to_the_refused_row(tmp_path: Path) -> None:
    """README §4 and §5.14: core_role_assign_roles is one transaction and refuses a role that cannot be
    assigned in a course with a bare invalidparameter; of two enrolled users given a second role, only
    the guest row fails, with Moodle's message, and the teacher role is assigned."""
    with moodle_platform(tmp_path) as (platform, fake):
        site = fake.site
        users = [site.add_user(f"u{n}", idnumber=f"E{n}") for n in (1, 2)]
        course = site.add_course("M101", idnumber="M101")
        for user in users:
            site.enrol(user, course, STUDENT)
        rows = "rolename,cid,uid,enrol\nteacher,M101,E1,manual\nguest,M101,E2,manual\n"
        results = run(platform, "enrolments", rows, tmp_path)
        assert [r.outcome.value for r in results] == ["updated", "error"]
        assert "core_role_assign_roles" in results[1].reason
        assert site.roles_in_course(course, users[0]) == {STUDENT, 4}
        assert site.roles_in_course(course, users[1]) == {STUDENT}
        refused = [call.error for call in fake.calls if call.function == "core_role_assign_roles"]
        assert refused == ["invalidparameter", None, "invalidparameter"]  # the batch, then each half
